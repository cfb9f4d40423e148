"""Readable one-line descriptions of Raft entries, messages and Readys, for scripts and traces.

Pure: string formatting only.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventstream.server.raft import (
    AppendEntries,
    AppendResponse,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Membership,
    MembershipError,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    Ready,
    Snapshot,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
    decode_membership_entry,
)


def data_text(data: bytes) -> str:
    """Printable data as a quoted string, anything else as hex."""
    if all(32 <= byte < 127 and byte != 34 for byte in data):
        return f'"{data.decode()}"'
    return "0x" + data.hex()


def entry_text(entry: Entry) -> str:
    """E.g. ``3@t2 EVENTS "abc"``; membership entries decoded."""
    head = f"{entry.index}@t{entry.term} {entry.kind.name}"
    if entry.kind is EntryKind.NOOP:
        return head
    if entry.kind is EntryKind.MEMBERSHIP:
        try:
            change, result = decode_membership_entry(entry.data)
        except MembershipError as error:
            return f"{head} <{error}>"
        return f"{head} {change.describe()} => {result.describe()}"
    return f"{head} {data_text(bytes(entry.data))}"


def entries_text(entries: Sequence[Entry]) -> str:
    """Entries in brackets, comma separated."""
    return "[" + ", ".join(map(entry_text, entries)) + "]"


def membership_text(membership: Membership) -> str:
    """E.g. ``voters=n1,n2 learners=n3``."""
    return membership.describe()


def snapshot_text(snapshot: Snapshot) -> str:
    """E.g. ``10@t2 voters=n1,n2,n3 data="app"``."""
    text = f"{snapshot.index}@t{snapshot.term} {membership_text(snapshot.membership)}"
    return text + (f" data={data_text(snapshot.data)}" if snapshot.data else "")


def message_text(m: Message) -> str:
    """E.g. ``n1->n2 App t2 prev=3@t2 commit=3 [4@t2 EVENTS "x"]``."""
    head = f"{m.sender}->{m.recipient}" + (f" g{m.group_id}" if m.group_id else "")
    if isinstance(m, AppendEntries):
        body = f"App t{m.term} prev={m.index}@t{m.log_term} commit={m.commit}"
        if m.entries:
            body += " " + entries_text(m.entries)
    elif isinstance(m, AppendResponse):
        body = f"AppResp t{m.term} index={m.index}"
        if m.reject:
            body = f"AppResp t{m.term} reject index={m.index} hint={m.reject_hint}@t{m.log_term}"
    elif isinstance(m, VoteRequest):
        body = f"{'PreVote' if m.pre_vote else 'Vote'} t{m.term} last={m.last_index}@t{m.last_term}"
        body += " transfer" if m.transfer else ""
    elif isinstance(m, VoteResponse):
        body = f"{'PreVoteResp' if m.pre_vote else 'VoteResp'} t{m.term} "
        body += "granted" if m.granted else "rejected"
    elif isinstance(m, Heartbeat):
        body = f"Heartbeat t{m.term} commit={m.commit}"
        body += f" ctx={data_text(m.context)}" if m.context else ""
    elif isinstance(m, HeartbeatResponse):
        body = f"HeartbeatResp t{m.term}" + (f" ctx={data_text(m.context)}" if m.context else "")
    elif isinstance(m, InstallSnapshot):
        body = f"Snapshot t{m.term} {snapshot_text(m.snapshot)}"
    elif isinstance(m, TimeoutNow):
        body = f"TimeoutNow t{m.term}"
    elif isinstance(m, ReadIndexRequest):
        body = f"ReadIndex t{m.term} ctx={data_text(m.context)}"
    elif isinstance(m, ReadIndexResponse):
        body = f"ReadIndexResp t{m.term} index={m.index} ctx={data_text(m.context)}"
    else:  # pragma: no cover - every message type is listed above
        body = repr(m)
    return f"{head} {body}"


def ready_lines(ready: Ready) -> list[str]:
    """The Ready's contents, one item per line, indented by two spaces."""
    lines = []
    if ready.soft_state is not None:
        leader = ready.soft_state.leader or "-"
        lines.append(f"  State {ready.soft_state.role.name} leader={leader}")
    if ready.hard_state is not None:
        hard = ready.hard_state
        lines.append(f"  HardState term={hard.term} vote={hard.vote or '-'} commit={hard.commit}")
    if ready.snapshot is not None:
        lines.append(f"  Snapshot {snapshot_text(ready.snapshot)}")
    if ready.entries:
        lines.append("  Entries:" + (" (sync)" if ready.must_sync else ""))
        lines.extend(f"    {entry_text(entry)}" for entry in ready.entries)
    elif ready.must_sync:
        lines.append("  MustSync")
    if ready.messages:
        lines.append("  Messages:")
        lines.extend(f"    {message_text(m)}" for m in ready.messages)
    if ready.committed_entries:
        lines.append("  Apply:")
        lines.extend(f"    {entry_text(entry)}" for entry in ready.committed_entries)
    for read in ready.read_states:
        lines.append(f"  ReadState index={read.index} ctx={data_text(read.context)}")
    if ready.snapshot_request:
        lines.append("  SnapshotRequest")
    return lines
