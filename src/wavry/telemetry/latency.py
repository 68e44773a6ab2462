"""Per-stage latency percentiles with bounded memory.

Stages of one video frame, each measured on one monotonic clock (host and client share the
machine's CLOCK_MONOTONIC in ``wavry demo``; across machines only ``network`` needs the RTT):

    capture  grab of the picture (start of grab -> frame in memory)
    encode   encoder input -> bitstream out
    network  first chunk sealed -> frame reassembled on the client (includes pacing, FEC/NACK)
    decode   bitstream -> picture
    present  picture -> on screen (texture upload + present), or 0 headless
    total    capture time (stamped in the picture itself) -> presented

A log-bucketed histogram (1% relative resolution from 1 us to 100 s) keeps memory constant no
matter how long a session runs, like HdrHistogram but without a dependency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["STAGES", "LatencyHistogram", "LatencyRecorder", "Percentiles"]

STAGES = ("capture", "encode", "network", "decode", "present", "total")

_MIN_MS = 0.001
_MAX_MS = 100_000.0
_GROWTH = 1.01
_BUCKETS = int(math.log(_MAX_MS / _MIN_MS) / math.log(_GROWTH)) + 2


@dataclass(frozen=True, slots=True)
class Percentiles:
    count: int
    p50: float
    p95: float
    p99: float
    mean: float
    max: float

    def as_dict(self) -> dict[str, float]:
        return {
            "count": self.count,
            "p50": round(self.p50, 3),
            "p95": round(self.p95, 3),
            "p99": round(self.p99, 3),
            "mean": round(self.mean, 3),
            "max": round(self.max, 3),
        }


class LatencyHistogram:
    """Milliseconds, log buckets of 1% width; values outside [1 us, 100 s] are clamped."""

    def __init__(self) -> None:
        self._counts = [0] * _BUCKETS
        self.count = 0
        self._sum = 0.0
        self._max = 0.0

    def record(self, ms: float) -> None:
        if not math.isfinite(ms):
            return
        ms = min(max(ms, _MIN_MS), _MAX_MS)
        index = int(math.log(ms / _MIN_MS) / math.log(_GROWTH)) + 1
        self._counts[min(index, _BUCKETS - 1)] += 1
        self.count += 1
        self._sum += ms
        self._max = max(self._max, ms)

    def percentile(self, q: float) -> float:
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(q / 100 * self.count))
        seen = 0
        for index, n in enumerate(self._counts):
            seen += n
            if seen >= rank:
                # Upper edge of the bucket: never under-reports.
                return min(_MIN_MS * _GROWTH**index, self._max)
        return self._max

    def summary(self) -> Percentiles:
        if self.count == 0:
            return Percentiles(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        return Percentiles(
            self.count,
            self.percentile(50),
            self.percentile(95),
            self.percentile(99),
            self._sum / self.count,
            self._max,
        )


class LatencyRecorder:
    """One histogram per stage."""

    def __init__(self, stages: tuple[str, ...] = STAGES) -> None:
        self._hist = {stage: LatencyHistogram() for stage in stages}

    def record(self, stage: str, seconds: float) -> None:
        self._hist[stage].record(seconds * 1000.0)

    def summary(self) -> dict[str, Percentiles]:
        return {stage: h.summary() for stage, h in self._hist.items()}

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {stage: p.as_dict() for stage, p in self.summary().items()}
