"""``wavry bench stream``: ``wavry demo`` next to plain FFmpeg pipelines, in the same run.

Same content (the barcoded test source), same encoder (libx264 ultrafast + zerolatency), same
machine and clock; latency is capture -> decoded picture for all three. Ratios < 1 mean Wavry
is faster. The FFmpeg pipelines: MPEG-TS over UDP on loopback, decoded with low-delay flags,
once with FFmpeg's defaults and once with the two options that remove its one-frame holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wavry.bench.ffmpeg_baseline import run_ffmpeg_baseline
from wavry.demo import DemoOptions, run_demo

__all__ = ["format_stream_bench", "run_stream_bench"]


def run_stream_bench(
    *,
    seconds: float = 10.0,
    width: int = 1280,
    height: int = 720,
    fps: int = 60,
    bitrate_kbps: int = 10_000,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    say = progress or (lambda _m: None)
    say(f"wavry demo {width}x{height}@{fps}, {seconds:g} s")
    demo = run_demo(
        DemoOptions(seconds=seconds, width=width, height=height, fps=fps, bitrate_kbps=bitrate_kbps)
    )
    say("plain FFmpeg pipeline (defaults)")
    plain = run_ffmpeg_baseline(
        seconds=seconds, width=width, height=height, fps=fps, bitrate_kbps=bitrate_kbps
    )
    say("plain FFmpeg pipeline (tuned: pes_length, +noparse+nofillin)")
    tuned = run_ffmpeg_baseline(
        seconds=seconds, width=width, height=height, fps=fps, bitrate_kbps=bitrate_kbps, tuned=True
    )
    ours = demo["latency_ms"]["total"]

    def ratio(other: dict[str, Any], q: str) -> float | None:
        theirs = other["latency_ms"][q]
        return round(ours[q] / theirs, 3) if theirs else None

    return {
        "resolution": f"{width}x{height}",
        "fps": fps,
        "seconds": seconds,
        "wavry": {"latency_ms": ours, "fps": demo["fps"], "demo": demo},
        "ffmpeg": plain,
        "ffmpeg_tuned": tuned,
        "ratio_vs_ffmpeg": {q: ratio(plain, q) for q in ("p50", "p95", "p99")},
        "ratio_vs_ffmpeg_tuned": {q: ratio(tuned, q) for q in ("p50", "p95", "p99")},
    }


def format_stream_bench(r: dict[str, Any]) -> str:
    def row(name: str, lat: dict[str, Any]) -> str:
        return f"  {name:<28} {lat['p50']:8.2f} {lat['p95']:8.2f} {lat['p99']:8.2f}"

    lines = [
        f"wavry bench stream — {r['resolution']}@{r['fps']}, {r['seconds']:g} s each, "
        "capture -> decoded (ms)",
        "                                    p50      p95      p99",
        row("wavry (RIFT)", r["wavry"]["latency_ms"]),
        row("FFmpeg MPEG-TS/UDP, defaults", r["ffmpeg"]["latency_ms"]),
        row("FFmpeg MPEG-TS/UDP, tuned", r["ffmpeg_tuned"]["latency_ms"]),
        f"  ratio wavry/FFmpeg defaults: {r['ratio_vs_ffmpeg']}",
        f"  ratio wavry/FFmpeg tuned:    {r['ratio_vs_ffmpeg_tuned']}",
    ]
    return "\n".join(lines)
