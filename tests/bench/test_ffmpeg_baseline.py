"""The plain FFmpeg baseline streams real frames end to end (values are not timed here)."""

from __future__ import annotations

import json

import pytest

from wavry.bench.ffmpeg_baseline import PIPELINE, PIPELINE_TUNED, main, run_ffmpeg_baseline

KEYS = ("frames_sent", "frames_decoded", "barcode_verified", "latency_ms", "pipeline")


def _check(result: dict[str, object], *, frames_per_run: int) -> None:
    for key in KEYS:
        assert key in result, key
    latency = result["latency_ms"]
    assert isinstance(latency, dict)
    assert set(latency) == {"p50", "p95", "p99"}
    sent, decoded, verified = (
        result["frames_sent"],
        result["frames_decoded"],
        result["barcode_verified"],
    )
    assert isinstance(sent, int) and isinstance(decoded, int) and isinstance(verified, int)
    # The sender paces at fps; it cannot send more than the run's ticks.
    assert 0 < sent <= frames_per_run
    # Every decoded picture came from a sent frame and every read barcode from a picture.
    assert 0 < verified <= decoded <= sent
    assert result["frames_measured"] > 0  # type: ignore[operator]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]


def test_default_pipeline_decodes_barcoded_frames() -> None:
    result = run_ffmpeg_baseline(seconds=2.5, width=640, height=360, fps=30)
    _check(result, frames_per_run=int((2.5 + 0.25) * 30) + 1)
    assert result["pipeline"] == PIPELINE
    assert result["resolution"] == "640x360"
    # The out-of-the-box options, not the tuned ones.
    assert "-omit_video_pes_length" not in str(result["cli_equivalent"])
    assert result["encoder_options"]["tune"] == "zerolatency"


def test_cli_json_tuned(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--seconds", "2", "--resolution", "640x360", "--fps", "30", "--tuned", "--json"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, "--json must print exactly one JSON object"
    result = json.loads(lines[0])
    _check(result, frames_per_run=int((2 + 0.25) * 30) + 1)
    assert result["pipeline"] == PIPELINE_TUNED
    assert result["tuned"] is True


def test_sender_failure_is_reported() -> None:
    # Smaller than the barcode strip: the test source refuses to open in the sender.
    with pytest.raises(RuntimeError, match="(?s)sender failed.*barcode strip"):
        run_ffmpeg_baseline(seconds=1, width=128, height=64, fps=30)


@pytest.mark.parametrize(
    "kwargs",
    [{"seconds": 0}, {"width": 641}, {"fps": 0}, {"pattern": "nope"}],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        run_ffmpeg_baseline(**kwargs)  # type: ignore[arg-type]
