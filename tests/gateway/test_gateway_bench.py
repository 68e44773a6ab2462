"""``wavry bench gateway-logins`` runs end to end (cheap Argon2, half a second)."""

from __future__ import annotations

from wavry.bench.gateway_logins import format_gateway_logins, run_gateway_logins


def test_bench_gateway_logins_smoke() -> None:
    result = run_gateway_logins(
        seconds=0.5, concurrency=2, users=2, memory_kib=8, time_cost=1, argon2_threads=1
    )
    assert result["logins"] > 0 and result["failures"] == 0
    assert result["argon2"] == {"variant": "argon2id", "memory_kib": 8, "time_cost": 1,
                                "parallelism": 1}  # fmt: skip
    assert "logins/s" in format_gateway_logins(result)
