"""A no-op eventstream.v1.PublishService on grpc.aio: the transport ceiling.

Registers the same three methods with the same message types and the same
(de)serializers as the real server, and answers every event with a PublishAck
of the same shape, without validating, queuing or storing anything. Server
reflection is on, so ghz can call it like the real server.

    python bench/noop_server.py --port PORT [--loop uvloop|asyncio]

Prints ``READY <port>`` once serving; exits on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import sys
import time
from collections.abc import AsyncIterator

import grpc
from eventstream.v1 import common_pb2, publish_pb2
from grpc_reflection.v1alpha import reflection

SERVICE = "eventstream.v1.PublishService"
_ID_PREFIX = "0123456789abcdef-"


class NoopPublish:
    """PublishService handlers that only build acknowledgements."""

    def __init__(self) -> None:
        self._offsets = itertools.count()

    def _ack(self, event: common_pb2.Event) -> publish_pb2.PublishAck:
        offset = next(self._offsets)
        ack = publish_pb2.PublishAck(
            id=event.id or f"{_ID_PREFIX}{offset}", partition=0, offset=offset,
            duplicate=False, durability=common_pb2.DURABILITY_MEMORY)
        ack.ingest_time.FromNanoseconds(time.time_ns())
        return ack

    def _results(self, events) -> list[publish_pb2.PublishResult]:
        return [publish_pb2.PublishResult(ack=self._ack(event)) for event in events]

    async def publish(self, request: publish_pb2.PublishRequest,
                      context: grpc.aio.ServicerContext) -> publish_pb2.PublishResponse:
        return publish_pb2.PublishResponse(ack=self._ack(request.event))

    async def publish_batch(self, request: publish_pb2.PublishBatchRequest,
                            context: grpc.aio.ServicerContext
                            ) -> publish_pb2.PublishBatchResponse:
        return publish_pb2.PublishBatchResponse(results=self._results(request.events))

    async def publish_stream(self, requests: AsyncIterator[publish_pb2.PublishStreamRequest],
                             context: grpc.aio.ServicerContext
                             ) -> AsyncIterator[publish_pb2.PublishStreamResponse]:
        async for request in requests:
            yield publish_pb2.PublishStreamResponse(
                sequence=request.sequence, results=self._results(request.events))

    def handlers(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Publish": grpc.unary_unary_rpc_method_handler(
                self.publish, publish_pb2.PublishRequest.FromString,
                publish_pb2.PublishResponse.SerializeToString),
            "PublishBatch": grpc.unary_unary_rpc_method_handler(
                self.publish_batch, publish_pb2.PublishBatchRequest.FromString,
                publish_pb2.PublishBatchResponse.SerializeToString),
            "PublishStream": grpc.stream_stream_rpc_method_handler(
                self.publish_stream, publish_pb2.PublishStreamRequest.FromString,
                publish_pb2.PublishStreamResponse.SerializeToString),
        })


async def serve(port: int) -> None:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)])
    server.add_generic_rpc_handlers((NoopPublish().handlers(),))
    reflection.enable_server_reflection(
        (publish_pb2.DESCRIPTOR.services_by_name["PublishService"].full_name,
         reflection.SERVICE_NAME), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"READY {bound}", flush=True)
    await stop.wait()
    await server.stop(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args(argv)
    if args.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            asyncio.run(serve(args.port))
        else:
            uvloop.run(serve(args.port))
    else:
        asyncio.run(serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
