"""`wavry bench connect` end to end in the NAT lab (one short round of each mode)."""

from __future__ import annotations

import pytest

from wavry.bench.connect_bench import format_connect_bench, run_connect_bench
from wavry.netlab import NetlabUnavailable, check_available


def test_one_round_of_each_mode() -> None:
    try:
        check_available()
    except NetlabUnavailable as exc:
        pytest.skip(str(exc))  # CI=true turns this into a failure (tests/conftest.py)
    result = run_connect_bench(runs=1, seconds=1.0)
    assert result["failures"] == []
    s = result["summary"]
    assert s["direct"]["paths"] == ["srflx"]
    assert all(row["relayed"] is False for row in result["per_run"]["direct"])
    assert all(row["relayed"] is True for row in result["per_run"]["relayed"])
    assert all(row["relayed"] is True for row in result["per_run"]["fallback"])
    assert all(row["relayed"] is True for row in result["per_run"]["detected"])
    for mode in ("direct", "relayed", "fallback", "detected"):
        assert s[mode]["all_frames_verified"] is True, (mode, result["per_run"][mode])
        assert s[mode]["network_p50_ms"] is not None  # --same-clock measured it
    # the fallback waited for the direct paths' deadline (1 s) before asking for a relay
    assert s["fallback"]["first_frame_ms_p50"] >= 1000 > s["direct"]["first_frame_ms_p50"]
    # ... unless two STUN servers showed the client's NAT to be symmetric (relay after 0.25 s)
    assert 250 <= s["detected"]["first_frame_ms_p50"] < s["fallback"]["first_frame_ms_p50"]
    assert set(result["relay_added_ms"]) == {"network_p50_ms", "network_p99_ms", "srtt_ms"}
    table = format_connect_bench(result)
    assert "relay added" in table and "direct" in table


def test_recovery_bench_measures_each_disruption() -> None:
    from wavry.bench.connect_bench import (
        DISRUPTIONS,
        format_recovery_bench,
        run_recovery_bench,
    )

    try:
        check_available()
    except NetlabUnavailable as exc:
        pytest.skip(str(exc))
    result = run_recovery_bench(runs=1, seconds=5.0, at=2.0)
    assert result["failures"] == []
    for what in DISRUPTIONS:
        (gap,) = result["max_frame_gap_ms"][what]
        # a disruption freezes the picture for longer than a frame, but the session lived on
        assert gap > 1000 / 30, (what, gap)
    (calm,) = result["baseline_max_gap_ms"]
    assert calm < min(g for (g,) in result["max_frame_gap_ms"].values())
    assert "relay_restart" in format_recovery_bench(result)
