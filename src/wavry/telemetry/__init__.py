"""Latency stages, percentiles and counters shared by host, client, demo and benchmarks."""

from wavry.telemetry.latency import STAGES, LatencyRecorder, Percentiles

__all__ = ["STAGES", "LatencyRecorder", "Percentiles"]
