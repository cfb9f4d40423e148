"""/metrics rendering: numbers read on the event loop's thread, the text made off it.

A scrape's collection and exposition cost milliseconds of Python work; made on
the loop they stalled every event behind them. Only the readings, which read
state the loop owns, run on its thread.
"""

import asyncio
import threading

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily

from eventstream.server.observability.metrics import Metrics


class ThreadRecorder:
    """A collector of the shared registry that notes the thread collecting it."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def collect(self):
        self.threads.append(threading.get_ident())
        yield GaugeMetricFamily("test_render_thread", "thread probe", value=1)


async def test_readings_run_on_the_loop_and_the_exposition_off_it():
    metrics = Metrics("render-test")
    recorder = ThreadRecorder()
    REGISTRY.register(recorder)
    recorder.threads.clear()   # registering collects once, to learn the names
    read_on: list[int] = []

    def reading():
        read_on.append(threading.get_ident())
        return [(7.0, {"queue": "batch"})]

    try:
        metrics.observe("eventstream.queue.depth", reading)
        metrics.committed.add(5, {"transport": "tcp"})
        text = (await asyncio.gather(metrics.render_off_loop(), metrics.render_off_loop()))[0].decode()
        loop_thread = threading.get_ident()
        assert read_on == [loop_thread, loop_thread]
        assert recorder.threads and loop_thread not in recorder.threads
        assert 'eventstream_queue_depth{queue="batch"} 7.0' in text
        assert 'eventstream_events_committed_total{transport="tcp"} 5.0' in text
        # Numbers changed since are in the next rendering, on the caller's thread too.
        metrics.committed.add(1, {"transport": "tcp"})
        assert 'eventstream_events_committed_total{transport="tcp"} 6.0' in metrics.render().decode()
        assert recorder.threads[-1] == loop_thread
    finally:
        REGISTRY.unregister(recorder)
        metrics.shutdown()
