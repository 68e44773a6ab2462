"""A plain FFmpeg streaming pipeline on the same content as ``wavry demo``: the latency baseline.

Wavry's latency is reported as a ratio to this. It is what a person gets with FFmpeg alone and
the usual low-latency flags, the equivalent of::

    ffmpeg -re -i <testsrc> -c:v libx264 -preset ultrafast -tune zerolatency -bf 0 -g <fps> \\
        -b:v <B> -maxrate <1.5 B> -bufsize <1.5 frames of B> -x264-params repeat-headers=1 \\
        -threads 2 -flush_packets 1 -f mpegts "udp://127.0.0.1:PORT?pkt_size=1316"
    ffplay -fflags nobuffer -flags low_delay -probesize 32 -analyzeduration 0 \\
        "udp://127.0.0.1:PORT?fifo_size=50000&overrun_nonfatal=1"

run through PyAV so both ends can read the picture: a sender subprocess grabs
:class:`~wavry.media.capture.testsrc.TestSource` frames (which carry their capture time in a
barcode) at the target fps, encodes them with libx264 and muxes MPEG-TS into FFmpeg's own
``udp://`` protocol; the receiver (a thread of the calling process) demuxes and decodes with
slice threads and reads the barcode from each decoded picture. Latency = the monotonic time
right after the decoder returned the picture minus the capture time in its barcode: capture
to decoded, like the ``total`` of a headless ``wavry demo`` (both processes share this
machine's CLOCK_MONOTONIC).

Choices, so that the comparison isolates the pipeline (transport, container, framing):

* The encoder settings match the demo's libx264 profile: ultrafast + zerolatency, no
  B-frames, 2 slice threads, the same bitrate and VBV (maxrate 1.5x, buffer 1.5 frames). One
  difference is inherent to a pipeline with no back channel: a keyframe every second
  (``-g fps``), since a receiver can only start, or recover from loss, on one. ``-fflags
  nobuffer`` discards the packets the receiver analyses while it opens (the first keyframe),
  so its picture starts at the second keyframe; earlier frames count as sent, not decoded.
* Out of the box, FFmpeg holds every frame back twice, by one frame interval each: the
  MPEG-TS muxer omits video PES lengths (``omit_video_pes_length=1``), so the demuxer only
  knows a frame is complete when the next one starts; and the H.264 parser the demuxer runs
  only cuts an access unit when it sees the start of the next. ``tuned=True`` is the expert
  best case: PES lengths written (``-omit_video_pes_length 0``) and no parser (``-fflags
  +noparse+nofillin``), so a frame leaves the demuxer as soon as its last TS packet arrives.
* Frames captured in the first ``WARMUP_S`` seconds, or before the first picture the
  receiver decoded, are not measured; nor are the frames of the last ``COOLDOWN_S`` seconds,
  which the sender streams past ``seconds`` (the final frame of a stream without PES lengths
  waits for the read timeout).
* Percentiles use :class:`~wavry.telemetry.latency.LatencyHistogram`, as the demo does.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from wavry.media.capture.barcode import decode_barcode, timestamp_us
from wavry.media.capture.testsrc import PATTERNS, TestSource
from wavry.media.frames import plane_view
from wavry.telemetry.latency import LatencyHistogram

__all__ = [
    "COOLDOWN_S",
    "PIPELINE",
    "PIPELINE_TUNED",
    "WARMUP_S",
    "encoder_options",
    "main",
    "run_ffmpeg_baseline",
]

log = logging.getLogger(__name__)

PIPELINE = (
    "PyAV/FFmpeg libx264 ultrafast+zerolatency -> MPEG-TS/UDP loopback -> decode "
    "(nobuffer, low_delay)"
)
PIPELINE_TUNED = PIPELINE + " + PES lengths, no parser"
#: Seconds of frames at the start that are streamed but not measured.
WARMUP_S = 0.5
#: Seconds the sender streams past the measured period (not measured).
COOLDOWN_S = 0.25
# 7 TS packets: the payload everyone uses for MPEG-TS over UDP (fits a 1500-byte MTU).
_PKT_SIZE = 1316
# Receiver FIFO, in 188-byte TS packets (~9 MB): never the bottleneck on loopback.
_FIFO_PACKETS = 50_000
_THREADS = 2
_TS_MASK = (1 << 48) - 1
# How long the receiver waits for the stream to start (sender start-up: Python, PyAV,
# building the test pictures) and for more data once it has started.
_OPEN_TIMEOUT_S = 20.0
_READ_TIMEOUT_S = 1.0


def encoder_options(fps: int, bitrate_kbps: int) -> dict[str, str]:
    """libx264 options of the sender: the CLI's ``-preset ... -bufsize ...`` flags."""
    return {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "bf": "0",
        "g": str(fps),
        "maxrate": str(int(bitrate_kbps * 1000 * 1.5)),
        "bufsize": str(int(bitrate_kbps * 1000 / fps * 1.5)),
        "x264-params": "repeat-headers=1",
    }


def _muxer_options(tuned: bool) -> dict[str, str]:
    return {
        # Hand every packet to the socket at once instead of when the AVIO buffer fills.
        "flush_packets": "1",
        "max_delay": "0",
        "max_interleave_delta": "0",
        "omit_video_pes_length": "0" if tuned else "1",
    }


def _demuxer_options(tuned: bool) -> dict[str, str]:
    # noparse: hand each PES (one access unit) to the decoder as it is; the H.264 parser
    # would hold it until the next access unit starts. Only sound with PES lengths.
    fflags = "nobuffer+noparse+nofillin" if tuned else "nobuffer"
    return {"fflags": fflags, "probesize": "32", "analyzeduration": "0"}


def _cli_equivalent(fps: int, bitrate_kbps: int, tuned: bool) -> str:
    enc = " ".join(f"-{k} {v}" for k, v in encoder_options(fps, bitrate_kbps).items())
    pes = " -omit_video_pes_length 0" if tuned else ""
    fflags = _demuxer_options(tuned)["fflags"]
    return (
        f"ffmpeg -re -i <testsrc> -c:v libx264 -b:v {bitrate_kbps}k {enc} -threads {_THREADS} "
        f"-flush_packets 1 -max_delay 0{pes} -f mpegts 'udp://127.0.0.1:PORT?pkt_size="
        f"{_PKT_SIZE}'; ffplay -fflags {fflags} -flags low_delay -probesize 32 "
        f"-analyzeduration 0 'udp://127.0.0.1:PORT?fifo_size={_FIFO_PACKETS}"
        "&overrun_nonfatal=1'"
    )


def _percentiles(hist: LatencyHistogram) -> dict[str, float]:
    s = hist.summary()
    return {"p50": round(s.p50, 3), "p95": round(s.p95, 3), "p99": round(s.p99, 3)}


# -- sender (subprocess) ------------------------------------------------------------------


def _send(
    *,
    port: int,
    seconds: float,
    width: int,
    height: int,
    fps: int,
    bitrate_kbps: int,
    pattern: str,
    tuned: bool,
) -> dict[str, Any]:
    """Grab, encode and mux for ``seconds`` + ``COOLDOWN_S``; the stats the parent needs."""
    source = TestSource(pattern=pattern)
    source.open(width=width, height=height, fps=fps)
    out = av.open(
        f"udp://127.0.0.1:{port}?pkt_size={_PKT_SIZE}",
        mode="w",
        format="mpegts",
        container_options=_muxer_options(tuned),
    )
    try:
        stream = out.add_stream("libx264", rate=fps, options=encoder_options(fps, bitrate_kbps))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = bitrate_kbps * 1000
        ctx = stream.codec_context
        ctx.thread_type = "SLICE"
        ctx.thread_count = _THREADS
        encode_ms, sent_ms = LatencyHistogram(), LatencyHistogram()
        frames, late_ticks = 0, 0
        interval = 1.0 / fps
        start = time.monotonic()
        end = start + seconds + COOLDOWN_S
        tick = 0
        while True:
            due = start + tick * interval
            now = time.monotonic()
            if due >= end:
                break
            if due > now:
                time.sleep(due - now)
            raw = source.grab()
            image = raw.image
            # pts in frame ticks, as a -re/grab device would stamp them.
            image.pts = tick
            image.time_base = Fraction(1, fps)
            t_enc = time.monotonic()
            packets = stream.encode(image)
            t_mux = time.monotonic()
            for packet in packets:
                out.mux(packet)
            done = time.monotonic()
            frames += 1
            encode_ms.record((t_mux - t_enc) * 1000)
            sent_ms.record((done - raw.capture_time) * 1000)
            tick += 1
            # Behind by more than a frame: skip ticks rather than grab a burst of frames.
            behind = int((time.monotonic() - (start + tick * interval)) / interval)
            if behind > 0:
                tick += behind
                late_ticks += behind
        for packet in stream.encode(None):
            out.mux(packet)
    finally:
        out.close()
        source.close()
    return {
        "start": start,
        "frames_sent": frames,
        "late_ticks": late_ticks,
        "encode_ms": _percentiles(encode_ms),
        "capture_to_sent_ms": _percentiles(sent_ms),
    }


def _sender_command(
    port: int,
    seconds: float,
    width: int,
    height: int,
    fps: int,
    bitrate_kbps: int,
    pattern: str,
    tuned: bool,
) -> list[str]:
    cmd = [
        sys.executable, "-m", "wavry.bench.ffmpeg_baseline", "--sender",
        "--port", str(port), "--seconds", str(seconds),
        "--resolution", f"{width}x{height}", "--fps", str(fps),
        "--bitrate", str(bitrate_kbps), "--pattern", pattern,
    ]  # fmt: skip
    if tuned:
        cmd.append("--tuned")
    return cmd


# -- receiver (this process) --------------------------------------------------------------


@dataclass
class _Sample:
    frame_index: int
    capture_us: int
    decoded_at: float
    decode_s: float


@dataclass
class _Receiver:
    """Demux + decode in a thread; records every decoded picture."""

    port: int
    tuned: bool
    samples: list[_Sample] = field(default_factory=list)
    decoded: int = 0
    bytes_received: int = 0
    unreadable: int = 0
    error: Exception | None = None

    def url(self) -> str:
        return f"udp://127.0.0.1:{self.port}?fifo_size={_FIFO_PACKETS}&overrun_nonfatal=1"

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - top of a thread: the caller re-raises it
            self.error = exc

    def _run(self) -> None:
        container = av.open(
            self.url(),
            format="mpegts",
            container_options=_demuxer_options(self.tuned),
            timeout=(_OPEN_TIMEOUT_S, _READ_TIMEOUT_S),
        )
        try:
            if not container.streams.video:
                raise RuntimeError("the MPEG-TS stream has no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            # Slice threads + LOW_DELAY: the picture of packet N comes out for packet N
            # (frame threads would hold threads-1 pictures back).
            ctx.thread_type = "SLICE"
            ctx.thread_count = _THREADS
            ctx.flags |= av.codec.context.Flags.low_delay
            try:
                for packet in container.demux(stream):
                    if packet.size == 0:
                        continue
                    self.bytes_received += packet.size
                    t0 = time.monotonic()
                    try:
                        pictures = ctx.decode(packet)
                    except av.error.InvalidDataError:
                        continue  # a damaged packet; the decoder resyncs on its own
                    t1 = time.monotonic()
                    for picture in pictures:
                        self._record(picture, t0, t1)
            except (av.error.ExitError, TimeoutError, av.error.EOFError) as exc:
                # The read timeout: the sender has stopped. That is the end of the stream.
                log.debug("receiver: stream ended (%s)", type(exc).__name__)
        finally:
            container.close()

    def _record(self, picture: av.VideoFrame, t0: float, t1: float) -> None:
        self.decoded += 1
        value = decode_barcode(plane_view(picture, 0))
        if value is None:
            self.unreadable += 1
            return
        self.samples.append(_Sample(value.frame_index, value.timestamp_us, t1, t1 - t0))


def _port_bound(port: int) -> bool:
    """True when some socket listens on UDP ``port`` (Linux: /proc/net/udp)."""
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return False
    want = f":{port:04X}"
    return any(line.split()[1].endswith(want) for line in lines if len(line.split()) > 1)


def _wait_listening(port: int, thread: threading.Thread, timeout: float = 5.0) -> None:
    if not Path("/proc/net/udp").exists():
        time.sleep(0.5)  # no way to look; FFmpeg binds within milliseconds
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and thread.is_alive():
        if _port_bound(port):
            return
        time.sleep(0.005)
    if thread.is_alive():
        raise RuntimeError(f"the FFmpeg receiver did not bind udp port {port} in {timeout} s")


def _free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_ffmpeg_baseline(
    *,
    seconds: float = 10.0,
    width: int = 1280,
    height: int = 720,
    fps: int = 60,
    bitrate_kbps: int = 10_000,
    pattern: str = "desktop",
    tuned: bool = False,
) -> dict[str, Any]:
    """Stream the test source through plain FFmpeg on loopback; capture->decoded latency.

    Returns ``frames_sent``, ``frames_decoded``, ``barcode_verified`` (pictures whose barcode
    read back with a valid CRC), ``latency_ms`` {p50, p95, p99} over the measured frames,
    ``pipeline`` and details (``fps``, sender-side stages, the equivalent CLI). Raises
    ``RuntimeError`` when the sender or receiver fails.
    """
    if seconds <= 0:
        raise ValueError("seconds must be > 0")
    if width % 2 or height % 2 or width < 16 or height < 16:
        raise ValueError("width and height must be even and >= 16")
    if not 1 <= fps <= 240:
        raise ValueError("fps must be in 1..240")
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {', '.join(PATTERNS)}, not {pattern!r}")
    port = _free_udp_port()
    receiver = _Receiver(port, tuned)
    thread = threading.Thread(target=receiver.run, name="ffmpeg-baseline-rx", daemon=True)
    thread.start()
    _wait_listening(port, thread)
    if receiver.error is not None:
        raise RuntimeError(f"the FFmpeg receiver failed to open: {receiver.error}")
    sender = subprocess.Popen(
        _sender_command(port, seconds, width, height, fps, bitrate_kbps, pattern, tuned),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = sender.communicate(timeout=seconds + _OPEN_TIMEOUT_S + 30)
    except BaseException:
        sender.kill()
        sender.communicate()
        raise
    if sender.returncode != 0:
        raise RuntimeError(f"the FFmpeg sender failed ({sender.returncode}):\n{err[-2000:]}")
    sent = json.loads(out.strip().splitlines()[-1])
    # The receiver stops at its read timeout once the stream has gone quiet.
    thread.join(timeout=_OPEN_TIMEOUT_S + _READ_TIMEOUT_S + 5)
    if thread.is_alive():
        raise RuntimeError("the FFmpeg receiver did not stop after the stream ended")
    if receiver.error is not None:
        raise RuntimeError(f"the FFmpeg receiver failed: {receiver.error}") from receiver.error
    return _summary(receiver, sent, seconds, width, height, fps, bitrate_kbps, pattern, tuned)


def _summary(
    receiver: _Receiver,
    sent: dict[str, Any],
    seconds: float,
    width: int,
    height: int,
    fps: int,
    bitrate_kbps: int,
    pattern: str,
    tuned: bool,
) -> dict[str, Any]:
    start_us = timestamp_us(float(sent["start"]))
    run_us = int((seconds + COOLDOWN_S) * 1e6)
    # A barcode counts as verified when its CRC holds and it carries a capture time inside
    # the sender's run (the receiver sees nothing else, so anything else would be a bug).
    offsets = [
        (s, off) for s in receiver.samples if (off := (s.capture_us - start_us) & _TS_MASK) < run_us
    ]
    first_us = min((off for _, off in offsets), default=0)
    window_us = (max(int(WARMUP_S * 1e6), first_us), int(seconds * 1e6))
    total, decode = LatencyHistogram(), LatencyHistogram()
    measured = 0
    for s, offset in offsets:
        if not window_us[0] <= offset < window_us[1]:
            continue
        measured += 1
        total.record(((timestamp_us(s.decoded_at) - s.capture_us) & _TS_MASK) / 1000)
        decode.record(s.decode_s * 1000)
    measured_s = max((window_us[1] - window_us[0]) / 1e6, 1e-3)
    return {
        "frames_sent": int(sent["frames_sent"]),
        "frames_decoded": receiver.decoded,
        "barcode_verified": len(offsets),
        "barcode_unreadable": receiver.unreadable,
        "frames_measured": measured,
        "measured_from_s": round(window_us[0] / 1e6, 3),
        "fps": round(measured / measured_s, 1),
        "latency_ms": _percentiles(total),
        "stages_ms": {
            "encode": sent["encode_ms"],
            "capture_to_sent": sent["capture_to_sent_ms"],
            "decode": _percentiles(decode),
        },
        "late_ticks": int(sent["late_ticks"]),
        # Video payload the receiver demuxed, over the whole run (the target is bitrate_kbps).
        "received_kbps": round(receiver.bytes_received * 8 / (seconds + COOLDOWN_S) / 1000, 1),
        "pipeline": PIPELINE_TUNED if tuned else PIPELINE,
        "tuned": tuned,
        "warmup_s": WARMUP_S,
        "resolution": f"{width}x{height}",
        "target_fps": fps,
        "bitrate_kbps": bitrate_kbps,
        "pattern": pattern,
        "seconds": seconds,
        "encoder_options": encoder_options(fps, bitrate_kbps),
        "cli_equivalent": _cli_equivalent(fps, bitrate_kbps, tuned),
    }


def format_summary(s: dict[str, Any]) -> str:
    lat = s["latency_ms"]
    return "\n".join(
        [
            f"FFmpeg baseline — {s['resolution']}@{s['target_fps']}, {s['bitrate_kbps']} kbit/s, "
            f"{s['pattern']}, {s['seconds']:g} s (measured from {s['measured_from_s']:g} s)",
            f"  {s['pipeline']}",
            f"  frames: {s['frames_sent']} sent, {s['frames_decoded']} decoded, "
            f"{s['barcode_verified']} barcodes read, {s['frames_measured']} measured "
            f"({s['fps']} fps)",
            f"  capture->decoded (ms)  p50 {lat['p50']:.2f}  p95 {lat['p95']:.2f}  "
            f"p99 {lat['p99']:.2f}",
        ]
    )


def _resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"resolution must be WxH, not {text!r}") from None
    return w, h


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m wavry.bench.ffmpeg_baseline",
        description="Latency of a plain FFmpeg pipeline (libx264 -> MPEG-TS/UDP -> decode) "
        "on the wavry demo's test source.",
    )
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--resolution", type=_resolution, default=(1280, 720), metavar="WxH")
    p.add_argument("--fps", type=int, default=60)
    p.add_argument("--bitrate", type=int, default=10_000, metavar="KBPS")
    p.add_argument("--pattern", choices=PATTERNS, default="desktop")
    p.add_argument(
        "--tuned",
        action="store_true",
        help="expert best case: MPEG-TS PES lengths and no H.264 parser in the demuxer",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--sender", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    width, height = ns.resolution
    kwargs: dict[str, Any] = dict(
        seconds=ns.seconds,
        width=width,
        height=height,
        fps=ns.fps,
        bitrate_kbps=ns.bitrate,
        pattern=ns.pattern,
        tuned=ns.tuned,
    )
    if ns.sender:
        print(json.dumps(_send(port=ns.port, **kwargs)), flush=True)
        return 0
    result = run_ffmpeg_baseline(**kwargs)
    print(json.dumps(result, sort_keys=True) if ns.json else format_summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
