"""`wavry bench stream --json`: ours and FFmpeg's pipelines in one run, with ratios."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_bench_stream_json(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wavry", "bench", "stream", "--json", "--seconds", "2.5",
         "--resolution", "640x360", "--fps", "30"],
        capture_output=True,
        text=True,
        timeout=240,
        env=dict(os.environ, WAVRY_DATA_DIR=str(tmp_path)),
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    for side in ("ffmpeg", "ffmpeg_tuned"):
        assert data[side]["frames_decoded"] > 0 and data[side]["barcode_verified"] > 0
    assert data["wavry"]["demo"]["frames_presented"] > 0
    for key in ("ratio_vs_ffmpeg", "ratio_vs_ffmpeg_tuned"):
        assert set(data[key]) == {"p50", "p95", "p99"}
        assert all(v is None or v > 0 for v in data[key].values())
