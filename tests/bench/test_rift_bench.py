"""`wavry bench rift --json` prints one JSON object with the documented keys (values not timed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_bench_rift_json_quick(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wavry", "bench", "rift", "--json", "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, WAVRY_DATA_DIR=str(tmp_path)),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, "--json must print exactly one JSON object"
    data = json.loads(lines[0])
    for key in (
        "seal_open_pps",
        "frames_complete_pct_loss5",
        "delta_utilisation_pct",
        "keyframe35k_send_us_per_frame",
        "pframe18k_receive_us_per_packet",
        "path_20mbps_1080p60_cpu_pct_of_core",
        "delta_adapt_time_s",
        "stack_utilisation_pct_10mbit",
    ):
        assert key in data, key
    assert data["seal_open_pps"] > 0 and data["raw_aead_pairs_per_s"] > 0
    # Deterministic simulations: these are properties of the protocol, not of the machine.
    assert data["frames_complete_pct_loss5"] >= 99.0
    assert data["frames_in_order"] is True
    assert data["delta_utilisation_pct"] >= 85.0
    assert data["delta_queue_p95_ms"] <= 10.0
    assert data["delta_adapt_time_s"] <= 1.0
    assert data["keyframe35k_packets_per_frame"] >= 30  # 35 KB / 1200 B + parity


def test_bench_rift_human_report(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wavry", "bench", "rift", "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, WAVRY_DATA_DIR=str(tmp_path)),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "frames complete" in result.stdout and "target >= 99%" in result.stdout
    assert "AEAD seal+open" in result.stderr  # progress goes to stderr
