"""Per-identity quotas against the real server: rates, open calls, connections per source.

Rates are checked as bounds and ratios measured in one run: a token bucket
can never let through more than ``rate * elapsed + burst``, and a second
identity must go on at many times the noisy one's limit, never refused.
"""

from __future__ import annotations

import threading
import time

import pytest

from eventstream.client import (
    NO_RETRY,
    Client,
    Event,
    PermissionDeniedError,
    ResourceExhaustedError,
)
from eventstream.client.frames import FrameError, TcpFrameSender, encode_frame
from tests.support.certs import new_token, token_line
from tests.support.server import metric, wait_for_metric

NOISY_RATE = 200.0
BURST_SECONDS = 0.5
BATCH = 10
WINDOW_SECONDS = 3.0
EXCEEDED = "eventstream_quota_exceeded_total"


@pytest.fixture
def tokens(tmp_path):
    names = {name: new_token() for name in ("noisy", "quiet", "streams", "nobody")}
    path = tmp_path / "tokens"
    path.write_text("".join(token_line(name, token) for name, token in names.items()))
    return names, path


@pytest.fixture
def server(start_server, tokens):
    everything = {"publish": {"allow": ["#"]}, "subscribe": {"allow": ["#"]}}
    return start_server({"ingest": {"udp_enabled": False, "max_connections_per_source": 3},
                         "auth": {"enabled": True, "tokens_file": str(tokens[1]), "identities": [
        {"name": "noisy", **everything, "quotas": {
            "publish_events_per_second": NOISY_RATE, "burst_seconds": BURST_SECONDS}},
        {"name": "quiet", **everything},
        {"name": "streams", **everything,
         "quotas": {"max_publish_streams": 1, "max_subscriptions": 1}},
    ]}})


def publish_for(client: Client, seconds: float, counter: list[int], stop: threading.Event) -> None:
    """Publish batches until ``seconds`` pass or ``stop`` is set; count acknowledged events."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        results = client.publish_batch([Event("load/x", b"p")] * BATCH, timeout=30)
        counter[0] += sum(result.ok for result in results)


def test_a_noisy_identity_is_held_to_its_rate_and_a_quiet_one_is_unaffected(server, tokens):
    names = tokens[0]
    stop = threading.Event()
    with Client(server.target, token=names["quiet"]) as quiet:
        alone = [0]
        started = time.monotonic()
        publish_for(quiet, WINDOW_SECONDS, alone, stop)
        alone_rate = alone[0] / (time.monotonic() - started)

        # The noisy identity retries as the SDK does: after the server's hint.
        noisy_count, quiet_count = [0], [0]
        with Client(server.target, token=names["noisy"]) as noisy:
            thread = threading.Thread(target=publish_for,
                                      args=(noisy, WINDOW_SECONDS, noisy_count, stop))
            started = time.monotonic()
            thread.start()
            try:
                publish_for(quiet, WINDOW_SECONDS, quiet_count, stop)
            finally:
                stop.set()
                thread.join(60)
            elapsed = time.monotonic() - started
    noisy_rate, quiet_rate = noisy_count[0] / elapsed, quiet_count[0] / elapsed
    # The bucket's bound (plus one batch in flight), and its rate is really given.
    assert noisy_count[0] <= NOISY_RATE * (elapsed + BURST_SECONDS) + BATCH
    assert noisy_rate >= 0.3 * NOISY_RATE, (noisy_rate, elapsed)
    assert metric(server, EXCEEDED, identity="noisy", quota="publish_events_per_second") > 0
    # The quiet identity: never refused, far above the noisy limit, near its own pace alone.
    assert metric(server, EXCEEDED, identity="quiet", quota="publish_events_per_second") == 0
    assert quiet_rate >= 3 * NOISY_RATE, (quiet_rate, noisy_rate)
    assert quiet_rate / alone_rate >= 0.25, (quiet_rate, alone_rate)   # 0.5-0.6 measured


def test_an_exhausted_rate_says_when_to_retry(server, tokens):
    with Client(server.target, token=tokens[0]["noisy"], retry=NO_RETRY) as noisy:
        burst = int(NOISY_RATE * BURST_SECONDS)
        assert all(result.ok for result in noisy.publish_batch([Event("load/x", b"p")] * burst))
        with pytest.raises(ResourceExhaustedError) as refused:
            noisy.publish_batch([Event("load/x", b"p")] * BATCH)
    assert refused.value.reason == "QUOTA_EXCEEDED"
    assert refused.value.retry_delay is not None and 0 < refused.value.retry_delay <= 1.0
    assert "publish_events_per_second" in refused.value.message


def test_open_streams_and_subscriptions_are_bounded(server, tokens):
    with Client(server.target, token=tokens[0]["streams"], retry=NO_RETRY) as client:
        with client.publish_stream() as first:
            assert first.send(Event("s/x", b"p")).result(timeout=30).offset >= 0
            with pytest.raises(ResourceExhaustedError) as refused, \
                    client.publish_stream() as second:
                second.send(Event("s/x", b"p")).result(timeout=30)
        assert refused.value.reason == "QUOTA_EXCEEDED"
        with client.subscribe("s/#", start="earliest") as events:
            next(events)
            with pytest.raises(ResourceExhaustedError), client.subscribe("s/#") as more:
                next(more)
        with client.subscribe("s/#", start="earliest") as events:   # freed when it ended
            next(events)
    assert metric(server, EXCEEDED, identity="streams", quota="max_subscriptions") == 1


def test_tcp_is_paused_to_the_rate_not_refused(server, tokens):
    frames = int(NOISY_RATE * BURST_SECONDS) + 100   # the burst, then 0.5 s of the rate
    started = time.monotonic()
    frame = encode_frame("load/x", b"p")
    with TcpFrameSender("127.0.0.1", server.tcp_port, acked=True,
                        token=tokens[0]["noisy"]) as sender:
        for _ in range(frames // BATCH):
            for _ in range(BATCH):
                sender.send_encoded(frame)
            assert len(sender.flush()) == BATCH
    elapsed = time.monotonic() - started
    # Nothing refused; the bucket made it wait for the frames past the burst.
    assert elapsed >= (frames - NOISY_RATE * BURST_SECONDS - BATCH) / NOISY_RATE
    assert wait_for_metric(server, EXCEEDED, 1, identity="noisy",
                           quota="publish_events_per_second") >= 1
    assert metric(server, "eventstream_events_committed_total", transport="tcp") == frames


def test_tcp_connections_per_source_are_bounded(server, tokens):
    token = tokens[0]["quiet"]
    open_senders = [TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, token=token)
                    for _ in range(3)]
    try:
        for sender in open_senders:
            sender.send("c/x", b"p")
            assert len(sender.flush()) == 1   # each is being served
        with pytest.raises(FrameError) as refused, \
                TcpFrameSender("127.0.0.1", server.tcp_port, acked=True, token=token) as extra:
            extra.send("c/x", b"p")
            extra.flush()
        assert refused.value.reason == "CONNECTION_LIMIT"
        assert "max_connections_per_source" in str(refused.value)
    finally:
        for sender in open_senders:
            sender.close()


def test_identity_labels_stay_bounded(server, tokens):
    # "nobody" has a token but no configured identity: its refusals count as "other".
    with Client(server.target, token=tokens[0]["nobody"], retry=NO_RETRY) as client, \
            pytest.raises(PermissionDeniedError):
        client.publish(Event("load/x", b"p"))
    assert wait_for_metric(server, "eventstream_auth_denied_total", 1, identity="other",
                           access="publish") == 1
    assert metric(server, "eventstream_auth_denied_total", identity="nobody",
                  access="publish") == 0
