"""`wavry demo` as a user runs it: one command, no set-up, real processes and sockets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _demo(tmp_path: Path, *args: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", "wavry", "demo", "--json", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ, WAVRY_DATA_DIR=str(tmp_path)),
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fps" in result.stderr  # the progress line
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data


def test_demo_json_has_every_documented_key(tmp_path: Path) -> None:
    data = _demo(tmp_path, "--seconds", "4", "--resolution", "640x360")
    for key in ("fps", "frames_sent", "frames_presented", "bitrate_kbps", "loss_pct"):
        assert key in data
    assert "fec_recovered" in data and "latency_ms" in data
    latency = data["latency_ms"]
    assert isinstance(latency, dict)
    for stage in ("capture", "encode", "network", "decode", "present", "total"):
        assert set(latency[stage]) >= {"p50", "p95", "p99"}
        assert latency[stage]["p50"] <= latency[stage]["p95"] <= latency[stage]["p99"]
    presented, sent = data["frames_presented"], data["frames_sent"]
    assert isinstance(presented, int) and isinstance(sent, int)
    # The host's start-up time varies with machine load; what matters is that every frame
    # sent was presented and that a stream actually ran.
    assert presented >= 60 and presented >= 0.95 * sent
    barcode = data["barcode"]
    assert isinstance(barcode, dict)
    # Every barcode read back matches its frame's timestamp; a few may be unreadable when the
    # encoder starves (the rate controller is timing-dependent on a loaded machine).
    assert barcode["mismatched"] == 0
    assert isinstance(barcode["verified"], int)
    assert barcode["verified"] >= 0.9 * data["frames_presented"]
    assert latency["total"]["count"] == data["frames_presented"]


def test_demo_under_impairment_recovers_losses(tmp_path: Path) -> None:
    data = _demo(
        tmp_path, "--seconds", "4", "--resolution", "640x360", "--impair", "loss=5%,delay=10ms"
    )
    assert isinstance(data["loss_pct"], float) and data["loss_pct"] > 1.0
    assert isinstance(data["fec_recovered"], int) and data["fec_recovered"] > 0
    sent, presented = data["frames_sent"], data["frames_presented"]
    assert isinstance(sent, int) and isinstance(presented, int)
    assert presented >= 0.95 * sent


def test_demo_rejects_a_bad_impairment_spec(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wavry", "demo", "--impair", "loss=lots"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "--impair" in result.stderr
