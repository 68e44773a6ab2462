"""`wavry bench relay --quick --json`: our relay and coturn, same load, same run.

Real processes on loopback: `python -m wavry relay` and coturn's `turnserver` (Debian package
coturn, in scripts/apt-packages.txt; missing, the test skips locally and fails under CI=true).
Checks the structure and that the datagrams really went through both relays, with every one
accounted for; never how fast (the machine is shared).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("turnserver") is None, reason="coturn not installed (apt-get install coturn)"
)


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data_dir = tmp_path_factory.mktemp("wavry-data")
    proc = subprocess.run(
        [sys.executable, "-m", "wavry", "bench", "relay", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        env=dict(os.environ, WAVRY_DATA_DIR=str(data_dir)),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_structure(result: dict[str, Any]) -> None:
    assert result["datagram_bytes"] == 1200
    assert result["coturn_relay_threads"] == 1
    assert result["profile"]["sessions"] == [1, 50]
    rows = result["throughput"]
    assert sorted((r["relay"], r["sessions"]) for r in rows) == [
        ("coturn", 1), ("coturn", 50), ("wavry", 1), ("wavry", 50)
    ]  # fmt: skip
    for n in ("1", "50"):
        summary = result["summary"][n]
        for name in ("wavry", "coturn"):
            assert summary[name]["pps_per_core"] > 0
        assert summary["ratio_wavry_over_coturn"] > 0
        assert len(summary["ratios"]) == 1
    assert set(result["latency"]) == {"normal", "realtime"}
    for mode in ("normal", "realtime"):
        for name in ("wavry", "coturn"):
            lat = result["latency"][mode][name]
            for key in ("relayed_us", "direct_us", "added_us", "added_paired_us"):
                assert set(lat[key]) == {"p50", "p99"}
            assert lat["relayed_us"]["p50"] > 0 and lat["direct_us"]["p50"] > 0


@pytest.mark.parametrize("relay", ["wavry", "coturn"])
def test_packets_went_through_and_add_up(result: dict[str, Any], relay: str) -> None:
    for row in (r for r in result["throughput"] if r["relay"] == relay):
        assert row["offered_pps"] > 0 and row["forwarded_pps"] > 0
        assert row["relay_cpu_s"] > 0
        t = row["totals"]
        delivered = t["received"] + t["receiver_socket_drops"]
        assert t["received"] > 0
        # every datagram sent was delivered or dropped by the kernel at the relay's socket,
        # or (ours) dropped by the relay and counted
        unaccounted = t["sent"] - delivered - t["relay_socket_drops"]
        if relay == "wavry":
            c = t["relay_counters"]
            assert c["packets_rx"] + t["relay_socket_drops"] == t["sent"]
            assert c["packets_forwarded"] == delivered
            assert c["packets_rx"] == c["packets_forwarded"] + c["dropped_packets"]
            assert unaccounted == c["dropped_packets"]
        else:
            assert 0 <= unaccounted <= max(100, t["sent"] // 100)
    for mode in ("normal", "realtime"):
        lat = result["latency"][mode][relay]
        assert lat["received_relayed"] > 0
        assert lat["received_relayed"] <= lat["sent_per_path"]
        assert lat["received_direct"] <= lat["sent_per_path"]


def test_human_table(tmp_path: Path) -> None:
    from wavry.bench.relay_bench import format_relay_bench

    doc = {
        "datagram_bytes": 1200, "cpus": {"relay": [0], "load": [1]}, "coturn_version": "x",
        "coturn_relay_threads": 1, "profile": {"latency_rate": 10000.0},
        "throughput": [{"relay": "wavry", "sessions": 1, "repetition": 1, "offered_pps": 10,
                        "forwarded_pps": 9, "relay_cpu_pct": 50.0, "relay_user_s": 0.1,
                        "relay_system_s": 0.2, "pps_per_core": 30, "relay_socket_drops": 0,
                        "saturated": False}],
        "summary": {"1": {"wavry": {"pps_per_core": 30}, "coturn": {"pps_per_core": 40},
                          "ratio_wavry_over_coturn": 0.75, "ratios": [0.75]}},
        "latency": {"realtime": {"wavry": {k: {"p50": 1.0, "p99": 2.0} for k in
                              ("relayed_us", "direct_us", "added_us", "added_paired_us")}
                    | {"relay_cpu_pct": 1.0, "achieved_pps": 10.0, "received_relayed": 1,
                       "sent_per_path": 1, "realtime": False}}},
    }  # fmt: skip
    text = format_relay_bench(doc)
    assert "(not saturated)" in text and "ratio 0.75" in text and "p99" in text
    assert "SCHED_FIFO refused" in text
