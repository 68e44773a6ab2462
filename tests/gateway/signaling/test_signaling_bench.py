"""`wavry bench signaling` runs end to end (tiny sizes; numbers live in docs/benchmarks.md)."""

from __future__ import annotations

from wavry.bench.signaling_bench import format_signaling_bench, run_signaling_bench


def test_bench_smoke() -> None:
    result = run_signaling_bench(
        pairs=3, rounds=2, seconds=0.5, window=2, idle_samples=5, rate=50, paced_seconds=0.2
    )
    assert result["sockets"] == 6
    assert result["idle_rtt_ms"]["n"] == 5 and result["loaded_rtt_ms"]["n"] == 6
    assert result["paced_rtt_ms"]["n"] == 10
    t = result["throughput"]
    assert t["round_trips"] > 0 and t["messages_routed"] == 2 * t["round_trips"]
    assert t["gateway_cpu_s"] >= 0
    assert "offer->answer" in format_signaling_bench(result)
