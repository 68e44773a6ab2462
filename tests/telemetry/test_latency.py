from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from wavry.telemetry.latency import LatencyHistogram, LatencyRecorder


def test_percentiles_match_exact_within_one_percent() -> None:
    rng = random.Random(3)
    values = [rng.lognormvariate(2.0, 0.6) for _ in range(20_000)]
    h = LatencyHistogram()
    for v in values:
        h.record(v)
    values.sort()
    for q in (50, 95, 99):
        exact = values[max(0, int(q / 100 * len(values)) - 1)]
        assert abs(h.percentile(q) - exact) / exact < 0.02
    s = h.summary()
    assert s.count == 20_000 and s.max == max(values)


def test_empty_and_non_finite() -> None:
    h = LatencyHistogram()
    assert h.summary().p99 == 0.0
    h.record(float("nan"))
    h.record(float("inf"))
    assert h.count == 0


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200))
def test_percentiles_ordered_and_bounded(values: list[float]) -> None:
    h = LatencyHistogram()
    for v in values:
        h.record(v)
    s = h.summary()
    assert s.p50 <= s.p95 <= s.p99 <= s.max + 1e-9


def test_recorder_stages_in_seconds_report_ms() -> None:
    r = LatencyRecorder()
    for _ in range(10):
        r.record("encode", 0.004)
    d = r.as_dict()
    assert 3.9 < d["encode"]["p50"] <= 4.05
    assert d["total"]["count"] == 0
