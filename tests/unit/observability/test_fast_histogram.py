"""The publish latency histogram kept as plain numbers renders as a Prometheus histogram would."""

import re

from eventstream.server.observability.metrics import LATENCY_BUCKETS, Metrics

VALUES = {"grpc": [0.00005, 0.00007, 0.0001, 0.3, 12.0], "tcp": [0.0025]}


def series(text: str, transport: str) -> dict[str, float]:
    pattern = re.compile(r'eventstream_publish_latency_seconds_(\w+)\{(?:le="([^"]+)",)?'
                         rf'transport="{transport}"\}} (\S+)')
    return {(le or kind): float(value) for kind, le, value in pattern.findall(text)}


def test_buckets_count_each_value_at_or_below_their_bound_and_appear_at_first_record():
    metrics = Metrics("n1")
    try:
        assert "eventstream_publish_latency_seconds" not in metrics.render().decode()
        for transport, values in VALUES.items():
            for value in values:
                metrics.publish_latency.record(value, {"transport": transport})
        text = metrics.render().decode()
        assert "# TYPE eventstream_publish_latency_seconds histogram" in text
        for transport, values in VALUES.items():
            got = series(text, transport)
            for bound in LATENCY_BUCKETS:
                le = next(key for key in got if key not in ("count", "sum", "+Inf")
                          and float(key) == bound)
                assert got[le] == sum(1 for value in values if value <= bound), (transport, bound)
            assert got["+Inf"] == got["count"] == len(values)
            assert abs(got["sum"] - sum(values)) < 1e-9
    finally:
        metrics.shutdown()
