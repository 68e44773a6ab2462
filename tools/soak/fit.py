"""Leak-slope fitting: least squares of RSS over time, after a warm-up, against a threshold.

The verdict uses the fitted slope *and* its standard error: a process fails when the slope is
above its threshold with confidence (``slope - z * stderr > threshold``, z = 2 by default), so
sampling noise in a short run cannot fail the gate, while a real leak — whose slope is steady —
fails with a small standard error. Long profiles shrink the standard error and the rule
converges to ``slope > threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_THRESHOLD_MB_PER_H", "Fit", "ProcessVerdict", "Threshold", "evaluate", "fit"]

DEFAULT_THRESHOLD_MB_PER_H = 5.0
#: fewer post-warm-up samples than this cannot give a verdict (and then the soak fails)
MIN_SAMPLES = 10


@dataclass(frozen=True)
class Threshold:
    mb_per_h: float = DEFAULT_THRESHOLD_MB_PER_H
    reason: str = "default"


@dataclass(frozen=True)
class Fit:
    """Least-squares line through (seconds, MB) samples; slope reported in MB per hour."""

    slope_mb_per_h: float
    stderr_mb_per_h: float
    intercept_mb: float
    samples: int
    span_s: float

    @property
    def lower_mb_per_h(self) -> float:
        return self.slope_mb_per_h - 2.0 * self.stderr_mb_per_h


def fit(samples: Sequence[tuple[float, float]]) -> Fit:
    """Fit ``rss_mb = a + b * t``; ``samples`` are ``(t_seconds, rss_mb)``."""
    n = len(samples)
    if n < 2:
        raise ValueError("need at least two samples to fit a slope")
    ts = [t for t, _ in samples]
    ys = [y for _, y in samples]
    t_mean, y_mean = sum(ts) / n, sum(ys) / n
    sxx = sum((t - t_mean) ** 2 for t in ts)
    if sxx == 0:
        raise ValueError("samples must span some time")
    sxy = sum((t - t_mean) * (y - y_mean) for t, y in zip(ts, ys, strict=True))
    slope = sxy / sxx  # MB per second
    intercept = y_mean - slope * t_mean
    if n > 2:
        residual = sum((y - (intercept + slope * t)) ** 2 for t, y in zip(ts, ys, strict=True))
        stderr = math.sqrt(residual / (n - 2) / sxx)
    else:
        stderr = math.inf
    return Fit(slope * 3600.0, stderr * 3600.0, intercept, n, ts[-1] - ts[0])


@dataclass
class ProcessVerdict:
    name: str
    status: str  # "pass", "fail", "insufficient"
    threshold: Threshold
    fit: Fit | None
    samples_total: int
    warmup_s: float
    start_mb: float | None
    end_mb: float | None
    peak_mb: float | None
    detail: str = ""
    z: float = 2.0
    extra: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def as_dict(self) -> dict[str, Any]:
        f = self.fit
        return {
            "process": self.name,
            "status": self.status,
            "slope_mb_per_h": None if f is None else round(f.slope_mb_per_h, 3),
            "stderr_mb_per_h": None if f is None else round(f.stderr_mb_per_h, 3),
            "lower_bound_mb_per_h": None if f is None else round(f.lower_mb_per_h, 3),
            "threshold_mb_per_h": self.threshold.mb_per_h,
            "threshold_reason": self.threshold.reason,
            "samples": self.samples_total,
            "samples_fitted": 0 if f is None else f.samples,
            "fitted_span_s": None if f is None else round(f.span_s, 1),
            "warmup_s": self.warmup_s,
            "start_mb": self.start_mb,
            "end_mb": self.end_mb,
            "peak_mb": self.peak_mb,
            "detail": self.detail,
            **({"workload": self.extra} if self.extra else {}),
        }


def evaluate(
    name: str,
    samples: Sequence[tuple[float, float]],
    *,
    warmup_s: float,
    threshold: Threshold,
    z: float = 2.0,
) -> ProcessVerdict:
    """Discard samples before ``warmup_s`` (seconds from the first sample), fit, decide."""
    if not samples:
        return ProcessVerdict(
            name, "insufficient", threshold, None, 0, warmup_s, None, None, None, "no samples"
        )
    t0 = samples[0][0]
    kept = [(t - t0, y) for t, y in samples if t - t0 >= warmup_s]
    peak = max(y for _, y in samples)
    start = kept[0][1] if kept else None
    end = kept[-1][1] if kept else None
    if len(kept) < MIN_SAMPLES:
        return ProcessVerdict(
            name,
            "insufficient",
            threshold,
            None,
            len(samples),
            warmup_s,
            start,
            end,
            peak,
            f"{len(kept)} samples after the {warmup_s:g} s warm-up; need {MIN_SAMPLES}",
            z,
        )
    result = fit(kept)
    leaking = result.slope_mb_per_h - z * result.stderr_mb_per_h > threshold.mb_per_h
    detail = (
        f"RSS grows {result.slope_mb_per_h:.1f} ± {result.stderr_mb_per_h:.1f} MB/h "
        f"> {threshold.mb_per_h:g} MB/h"
        if leaking
        else ""
    )
    return ProcessVerdict(
        name,
        "fail" if leaking else "pass",
        threshold,
        result,
        len(samples),
        warmup_s,
        start,
        end,
        peak,
        detail,
        z,
    )
