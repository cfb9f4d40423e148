"""Publish-to-delivery latency and fan-out, measured the same way on every system.

One small asyncio client per system (``Endpoint``): publish a list of payloads
(one waits for its acknowledgement, more go as one batch request or pipelined,
whatever the system offers) and subscribe, calling back with the payloads of
every delivery. ``latency`` and ``fanout`` drive any of them alike: the
payload carries the send time (``perf_counter_ns``: publisher and subscribers
share this process), so latency = receive time - send time. Every loop is
bounded in count and time.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc

import publish_bench as pb

Deliver = Callable[[list[bytes]], None]
STAMP = struct.Struct(">cQI")  # kind (P probe, L latency, F fan-out), send time, index
PUBSUB_PROTO_ROOT = Path(__file__).resolve().parent / "proto"
PUBSUB_PROTO = PUBSUB_PROTO_ROOT / "google" / "pubsub" / "v1" / "pubsub.proto"
PUBSUB_PROJECT = "projects/bench"


def stamped(kind: bytes, index: int, size: int) -> bytes:
    """A payload of ``size`` bytes that says what it is and when it was sent."""
    head = STAMP.pack(kind, time.perf_counter_ns(), index)
    return head + b"x" * max(0, size - len(head))


class Endpoint:
    """What the harness needs from a system: connect, publish, subscribe, close."""

    async def connect(self) -> None:
        """Open connections and create the topic/stream."""

    async def publish(self, payloads: list[bytes]) -> None:
        """Publish and wait until every payload is acknowledged."""
        raise NotImplementedError

    async def subscribe(self, index: int, deliver: Deliver) -> None:
        """Deliver everything published from now on to ``deliver`` until cancelled.

        Raises once the subscription has been set up if it cannot be; ``index``
        names the subscriber (Pub/Sub needs one subscription per subscriber).
        """
        raise NotImplementedError

    async def close(self) -> None:
        """Close every connection."""


# --------------------------------------------------------------------------- ours

class OursEndpoint(Endpoint):
    """Our gRPC API through the generated stubs: Publish, PublishBatch, Subscribe."""

    topic = "bench/e2e"

    def __init__(self, address: str) -> None:
        self.address = address

    async def connect(self) -> None:
        from eventstream.v1 import publish_pb2_grpc, subscribe_pb2_grpc
        self.channel = grpc.aio.insecure_channel(self.address)
        self.publisher = publish_pb2_grpc.PublishServiceStub(self.channel)
        self.subscriber = subscribe_pb2_grpc.SubscribeServiceStub(self.channel)

    async def publish(self, payloads: list[bytes]) -> None:
        from eventstream.v1 import common_pb2
        events = [common_pb2.Event(topic=self.topic, payload=p) for p in payloads]
        if len(events) == 1:
            await self.publisher.Publish(pb.publish_pb2.PublishRequest(event=events[0]), timeout=10)
            return
        response = await self.publisher.PublishBatch(
            pb.publish_pb2.PublishBatchRequest(events=events), timeout=10)
        if any(not result.HasField("ack") for result in response.results):
            raise RuntimeError("our server refused a benchmark event")

    def subscriber_for(self, index: int):
        """The Subscribe stub subscriber ``index`` uses (this node's)."""
        return self.subscriber

    async def subscribe(self, index: int, deliver: Deliver) -> None:
        call = self.subscriber_for(index).Subscribe(
            pb.subscribe_pb2.SubscribeRequest(patterns=[self.topic]))
        try:
            async for response in call:
                deliver([delivered.payload for delivered in response.events])
        finally:
            call.cancel()

    async def close(self) -> None:
        await self.channel.close()


# --------------------------------------------------------------------------- NATS JetStream

class NatsEndpoint(Endpoint):
    """JetStream through nats-py: a file-storage stream, acknowledged publishes,
    one ordered push consumer per subscriber (delivering new messages only)."""

    subject = "e2e"

    def __init__(self, address: str) -> None:
        self.address = address

    async def connect(self) -> None:
        import nats
        from nats.js.api import StorageType, StreamConfig
        self.connection = await nats.connect(f"nats://{self.address}", connect_timeout=10)
        self.jetstream = self.connection.jetstream(timeout=10)
        await self.jetstream.add_stream(StreamConfig(name="E2E", subjects=[self.subject],
                                                     storage=StorageType.FILE))

    async def publish(self, payloads: list[bytes]) -> None:
        # Pipelined: every publish is sent before the first acknowledgement is awaited.
        await asyncio.gather(*(self.jetstream.publish(self.subject, p) for p in payloads))

    async def subscribe(self, index: int, deliver: Deliver) -> None:
        from nats.js.api import DeliverPolicy

        async def on_message(message) -> None:
            deliver([message.data])
        subscription = await self.jetstream.subscribe(
            self.subject, cb=on_message, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def close(self) -> None:
        await self.connection.close()


# --------------------------------------------------------------------------- Redis Streams

class RedisEndpoint(Endpoint):
    """Redis Streams through redis-py: XADD (a pipeline for many), XREAD BLOCK per subscriber."""

    key = "e2e"

    def __init__(self, address: str) -> None:
        self.host, port = address.rsplit(":", 1)
        self.port = int(port)

    async def connect(self) -> None:
        import redis.asyncio
        # A blocking pool: a publish waits for a free connection instead of failing.
        self.client = redis.asyncio.Redis(connection_pool=redis.asyncio.BlockingConnectionPool(
            host=self.host, port=self.port, socket_timeout=15, max_connections=32, timeout=15))
        await self.client.ping()

    async def publish(self, payloads: list[bytes]) -> None:
        if len(payloads) == 1:
            await self.client.xadd(self.key, {"d": payloads[0]})
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for payload in payloads:
                pipe.xadd(self.key, {"d": payload})
            await pipe.execute()

    async def subscribe(self, index: int, deliver: Deliver) -> None:
        import redis.asyncio
        client = redis.asyncio.Redis(host=self.host, port=self.port)  # XREAD BLOCK holds a connection
        stopping = asyncio.Event()

        async def read() -> None:
            last = "$"
            while not stopping.is_set():
                answer = await client.xread({self.key: last}, count=1000, block=100)
                for _, entries in answer:
                    last = entries[-1][0]
                    deliver([fields[b"d"] for _, fields in entries])

        # redis-py can hang when an XREAD is cancelled while its answer streams in, so the
        # reader is never cancelled: it sees ``stopping`` within one 100 ms block.
        reader = asyncio.create_task(read())
        try:
            await asyncio.shield(reader)
        finally:
            stopping.set()
            with contextlib.suppress(Exception, asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), 5)
            await client.aclose()

    async def close(self) -> None:
        await self.client.aclose()


# --------------------------------------------------------------------------- Google Pub/Sub

def pubsub_modules():
    """(pubsub_pb2, pubsub_pb2_grpc) compiled from bench/proto into a temporary dir.

    Compiled at run time rather than committed: only the benchmark uses them.
    """
    if "google.pubsub.v1.pubsub_pb2" in sys.modules:
        return (sys.modules["google.pubsub.v1.pubsub_pb2"], sys.modules["google.pubsub.v1.pubsub_pb2_grpc"])
    out = Path(tempfile.mkdtemp(prefix="es-pubsub-proto-"))
    atexit.register(shutil.rmtree, out, True)
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PUBSUB_PROTO_ROOT}",
                    f"--python_out={out}", f"--grpc_python_out={out}", str(PUBSUB_PROTO)],
                   check=True, capture_output=True, timeout=60)
    # google/ is a namespace package shared with protobuf; put the generated part on its path.
    import google
    google.__path__.append(str(out / "google"))
    return (importlib.import_module("google.pubsub.v1.pubsub_pb2"),
            importlib.import_module("google.pubsub.v1.pubsub_pb2_grpc"))


class PubsubEndpoint(Endpoint):
    """The Pub/Sub emulator's gRPC API: Publish, one subscription and StreamingPull per subscriber."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.topic = f"{PUBSUB_PROJECT}/topics/e2e"

    async def connect(self) -> None:
        self.pb2, grpc_module = pubsub_modules()
        self.channel = grpc.aio.insecure_channel(self.address)
        self.publisher = grpc_module.PublisherStub(self.channel)
        self.subscriber = grpc_module.SubscriberStub(self.channel)
        with contextlib.suppress(grpc.aio.AioRpcError):  # ALREADY_EXISTS on a second connect
            await self.publisher.CreateTopic(self.pb2.Topic(name=self.topic), timeout=10)

    async def publish(self, payloads: list[bytes]) -> None:
        await self.publisher.Publish(self.pb2.PublishRequest(
            topic=self.topic, messages=[self.pb2.PubsubMessage(data=p) for p in payloads]), timeout=10)

    async def subscribe(self, index: int, deliver: Deliver) -> None:
        name = f"{PUBSUB_PROJECT}/subscriptions/e2e-{index}-{time.monotonic_ns()}"
        await self.subscriber.CreateSubscription(
            self.pb2.Subscription(name=name, topic=self.topic, ack_deadline_seconds=60), timeout=10)
        call = self.subscriber.StreamingPull()
        try:
            await call.write(self.pb2.StreamingPullRequest(
                subscription=name, stream_ack_deadline_seconds=60, max_outstanding_messages=10_000))
            while True:
                response = await call.read()
                if response is grpc.aio.EOF:
                    return
                received = response.received_messages
                deliver([r.message.data for r in received])
                await call.write(self.pb2.StreamingPullRequest(ack_ids=[r.ack_id for r in received]))
        finally:
            call.cancel()

    async def close(self) -> None:
        await self.channel.close()


# --------------------------------------------------------------------------- Kafka

class KafkaEndpoint(Endpoint):
    """Kafka through aiokafka: a one-partition topic, acks=all publishes (many are sent
    before the first acknowledgement is awaited), one group-less consumer per subscriber
    starting at the end of the log."""

    topic = "e2e"

    def __init__(self, address: str) -> None:
        self.address = address

    async def connect(self) -> None:
        from aiokafka import AIOKafkaProducer
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        from aiokafka.errors import TopicAlreadyExistsError
        admin = AIOKafkaAdminClient(bootstrap_servers=self.address, request_timeout_ms=10_000)
        await admin.start()
        try:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(self.topic, num_partitions=1, replication_factor=1)])
        finally:
            await admin.close()
        self.producer = AIOKafkaProducer(bootstrap_servers=self.address, acks="all", linger_ms=0,
                                         request_timeout_ms=10_000)
        await self.producer.start()

    async def publish(self, payloads: list[bytes]) -> None:
        if len(payloads) == 1:
            await self.producer.send_and_wait(self.topic, payloads[0])
            return
        acks = [await self.producer.send(self.topic, payload) for payload in payloads]
        await asyncio.gather(*acks)

    async def subscribe(self, index: int, deliver: Deliver) -> None:
        from aiokafka import AIOKafkaConsumer
        consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.address, group_id=None,
                                    auto_offset_reset="latest", enable_auto_commit=False)
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=100, max_records=1000)
                for records in batches.values():
                    deliver([record.value for record in records])
        finally:
            await consumer.stop()

    async def close(self) -> None:
        await self.producer.stop()


ENDPOINTS: dict[str, type[Endpoint]] = {
    "ours": OursEndpoint, "nats": NatsEndpoint, "redis": RedisEndpoint, "pubsub": PubsubEndpoint,
    "kafka": KafkaEndpoint}


# --------------------------------------------------------------------------- workloads

async def _subscribed(endpoint: Endpoint, count: int,
                      deliver_for: Callable[[int], Deliver]) -> list[asyncio.Task]:
    """``count`` live subscriptions (subscriber ``i`` delivers to ``deliver_for(i)``): probes
    are published until every one has delivered one."""
    probed = [asyncio.Event() for _ in range(count)]

    def receiver(index: int) -> Deliver:
        deliver = deliver_for(index)

        def on_payloads(payloads: list[bytes]) -> None:
            if any(p[:1] == b"P" for p in payloads):
                probed[index].set()
            deliver(payloads)
        return on_payloads

    tasks = [asyncio.create_task(endpoint.subscribe(i, receiver(i))) for i in range(count)]
    try:
        for attempt in range(100):
            await endpoint.publish([stamped(b"P", attempt, 100)])
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(e.wait() for e in probed)), 0.2)
                return tasks
            failed = next((t for t in tasks if t.done() and t.exception()), None)
            if failed:
                raise RuntimeError(f"a subscription failed: {failed.exception()!r}")
        raise RuntimeError("the subscriptions never delivered a probe event")
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


async def _stop(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def latency(endpoint: Endpoint, rate: int, seconds: float, size: int = 100) -> dict:
    """One subscriber; one event at a time at ``rate`` events/s, each waiting for its ack."""
    total = int(rate * seconds)
    latencies: list[int] = []
    finished = asyncio.Event()

    def on_payloads(payloads: list[bytes]) -> None:
        now = time.perf_counter_ns()
        for payload in payloads:
            kind, sent, _ = STAMP.unpack_from(payload)
            if kind == b"L":
                latencies.append(now - sent)
        if len(latencies) >= total:
            finished.set()

    tasks = await _subscribed(endpoint, 1, lambda index: on_payloads)
    pending: set[asyncio.Task] = set()
    try:
        start = time.monotonic()
        for index in range(total):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(endpoint.publish([stamped(b"L", index, size)]))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending), 15)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(finished.wait(), 10)
    finally:
        for task in pending:
            task.cancel()
        await _stop(tasks)
    if not latencies:
        raise RuntimeError("no latency sample arrived")
    cuts = statistics.quantiles(sorted(latencies), n=1000, method="inclusive")
    return {"p50_ms": cuts[499] / 1e6, "p99_ms": cuts[989] / 1e6, "p999_ms": cuts[998] / 1e6,
            "samples": len(latencies), "lost": total - len(latencies), "rate": rate, "seconds": seconds}


async def fanout(endpoint: Endpoint, subscribers: int, events: int, batch: int = 100,
                 size: int = 100, timeout: float = 60.0) -> dict:
    """``subscribers`` subscriptions; ``events`` published in batches of ``batch`` as fast as
    acknowledged; deliveries/s = events x subscribers / (last delivery - first publish)."""
    counts = [0] * subscribers
    done = asyncio.Event()
    wanted = events * subscribers

    def receiver(index: int) -> Deliver:
        def on_payloads(payloads: list[bytes]) -> None:
            counts[index] += sum(1 for p in payloads if p[:1] == b"F")
            if sum(counts) >= wanted:
                done.set()
        return on_payloads

    tasks = await _subscribed(endpoint, subscribers, receiver)
    try:
        start = time.monotonic()
        deadline = start + timeout
        for first in range(0, events, batch):
            if time.monotonic() > deadline:
                break
            await endpoint.publish([stamped(b"F", i, size) for i in range(first, min(events, first + batch))])
        published = time.monotonic() - start
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), max(1.0, deadline - time.monotonic()))
        elapsed = time.monotonic() - start
    finally:
        await _stop(tasks)
    delivered = sum(counts)
    return {"deliveries_per_s": delivered / elapsed, "delivered": delivered, "wanted": wanted,
            "publish_seconds": published, "seconds": elapsed, "subscribers": subscribers}
