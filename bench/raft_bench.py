"""Proposals per second through a 3-node Raft group in memory: the core's own cost per entry.

Three ``RaftNode`` cores with ``MemoryStorage``, messages handed over in
process, one thread: every figure is CPU spent in the core (and the thin
loop that persists to lists, delivers and applies), never waiting. Each
round proposes at the leader, then runs every node's Ready and delivers
every message until the group is idle, so a round ends with its entries
committed and applied on all three nodes.

Modes:

- ``propose_many x N``: one ``propose_many`` call of N entries per round
  (what the server's sequencer does);
- ``propose x N, one round``: N ``propose`` calls, then one round;
- ``propose, a round each``: one entry per round (the worst case).

Every loop is bounded by its entry count.

    python bench/raft_bench.py [--entries 1000000] [--size 100] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent)]

from eventstream.server.raft import Config, EntryKind, MemoryStorage, Membership, Message, RaftNode  # noqa: E402

IDS = ("n1", "n2", "n3")


class Group:
    """Three cores and the loop that persists, delivers and applies their Readys."""

    def __init__(self) -> None:
        membership = Membership(frozenset(IDS))
        self.storages = {node_id: MemoryStorage(membership) for node_id in IDS}
        self.nodes = {node_id: RaftNode(Config(node_id), self.storages[node_id], random.Random(k))
                      for k, node_id in enumerate(IDS)}
        self.inboxes: dict[str, list[Message]] = {node_id: [] for node_id in IDS}
        self.applied = dict.fromkeys(IDS, 0)
        self.nodes["n1"].campaign()
        self.run_until_idle()
        self.leader = self.nodes["n1"]
        assert self.leader.leader_id == "n1"

    def run_until_idle(self) -> None:
        """Handle Readys and deliver messages until nothing is left."""
        nodes, storages, inboxes, applied = self.nodes, self.storages, self.inboxes, self.applied
        busy = True
        while busy:
            busy = False
            for node_id in IDS:
                node = nodes[node_id]
                inbox = inboxes[node_id]
                if inbox:
                    inboxes[node_id] = []
                    for message in inbox:
                        node.step(message)
                while node.has_ready():
                    busy = True
                    ready = node.ready()
                    storage = storages[node_id]
                    if ready.entries:
                        storage.append(ready.entries)
                    if ready.hard_state is not None:
                        storage.set_hard_state(ready.hard_state)
                    for message in ready.messages:
                        inboxes[message.recipient].append(message)
                    if ready.committed_entries:
                        applied[node_id] = ready.committed_entries[-1].index
                    node.advance()
            busy = busy or any(inboxes.values())


def measure(mode: str, entries: int, batch: int, payload: bytes) -> dict[str, float]:
    """Run one mode; entries/s by wall and CPU time."""
    group = Group()
    leader = group.leader
    items = [(EntryKind.EVENTS, payload)] * batch
    start_index = leader.last_index
    wall, cpu = time.perf_counter(), time.process_time()
    done = 0
    while done < entries:
        if mode == "batched":
            leader.propose_many(items)
            done += batch
        elif mode == "calls":
            for _ in range(batch):
                leader.propose(payload)
            done += batch
        else:
            leader.propose(payload)
            done += 1
        group.run_until_idle()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    last = leader.last_index
    assert last - start_index == done and all(index == last for index in group.applied.values())
    return {"entries": done, "wall_s": wall, "per_s": done / wall, "cpu_per_s": done / cpu}


def main() -> int:
    """Run every mode and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="entries per batched mode")
    parser.add_argument("--batch", type=int, default=1000, help="entries per round in the batched modes")
    parser.add_argument("--size", type=int, default=100, help="payload bytes per entry")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    payload = b"x" * args.size
    runs = [
        (f"propose_many x {args.batch}", measure("batched", args.entries, args.batch, payload)),
        (f"propose x {args.batch}, one round", measure("calls", args.entries // 5, args.batch, payload)),
        ("propose, a round each", measure("single", args.entries // 50, 1, payload)),
    ]
    lines = [f"Python {platform.python_version()} on {platform.machine()}, {args.size}-byte entries, "
             "3 nodes in one process",
             "",
             "| mode | entries | entries/s (wall) | entries/s (CPU) |",
             "|---|---:|---:|---:|"]
    for name, run in runs:
        lines.append(f"| {name} | {run['entries']:,} | {run['per_s']:,.0f} | {run['cpu_per_s']:,.0f} |")
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
