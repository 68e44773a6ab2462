"""``wavry demo``: the main job on its embedded default, with nothing to set up.

A host process on the synthetic test source and a client in this process, on loopback, with
real UDP sockets, real encryption and real encode/decode. Both run on this machine's monotonic
clock, so every stage of every frame is measured exactly; the capture time is also stamped in
the pixels (a barcode) and read back from the decoded picture, which proves the number refers
to that very picture.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wavry.client.service import ClientReport, ClientService, FrameTiming
from wavry.client.settings import ClientSettings
from wavry.identity_store import create_identity_file
from wavry.media.capture.barcode import decode_barcode, timestamp_us
from wavry.media.frames import DecodedFrame
from wavry.rift.proto import rift_pb2

__all__ = ["DemoOptions", "run_demo"]

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class DemoOptions:
    seconds: float = 10.0
    width: int = 1280
    height: int = 720
    fps: int = 60
    codec: str = "h264"
    pattern: str = "desktop"
    bitrate_kbps: int = 10_000
    window: bool = False
    impair: str | None = None


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _BarcodeCheck:
    def __init__(self) -> None:
        self.verified = 0
        self.mismatched = 0
        self.unreadable = 0

    def __call__(self, picture: DecodedFrame, timing: FrameTiming) -> None:
        value = decode_barcode(picture.y)
        if value is None:
            self.unreadable += 1
        elif value.timestamp_us == timestamp_us(timing.capture_start):
            self.verified += 1
        else:
            self.mismatched += 1


_HOST_START_TIMEOUT = 30.0
_READY_MARK = "Wavry host ready"


class _StderrCollector:
    """Reads the host's stderr in a thread (so the pipe never fills) and flags readiness."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.ready = threading.Event()
        self._lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self._lines.append(line)
            if _READY_MARK in line or line.startswith("wavry host:"):
                self.ready.set()
        self.ready.set()  # the host exited: stop waiting

    def join(self) -> None:
        self._thread.join(timeout=5)

    def text(self) -> str:
        return "".join(self._lines)


def _host_command(opts: DemoOptions, port: int, client_id: str) -> list[str]:
    cmd = [
        sys.executable, "-m", "wavry", "host",
        "--capture", "testsrc", "--pattern", opts.pattern,
        "--listen", "127.0.0.1", "--port", str(port),
        "--allow", client_id, "--no-mdns", "--input", "none",
        "--resolution", f"{opts.width}x{opts.height}", "--fps", str(opts.fps),
        "--codec", opts.codec, "--bitrate", str(opts.bitrate_kbps),
        "--max-bitrate", str(max(opts.bitrate_kbps, 50_000)),
        "--run-for", str(opts.seconds + 30), "--status-json",
    ]  # fmt: skip
    if opts.impair:
        cmd += ["--impair", opts.impair]
    return cmd


async def _progress_loop(report: ClientReport, seconds: float, say: Progress) -> None:
    start = time.monotonic()
    last_frames = 0
    while True:
        await asyncio.sleep(1.0)
        elapsed = time.monotonic() - start
        frames = report.frames_presented
        total = report.latency.summary()["total"]
        say(
            f"{elapsed:4.0f}/{seconds:.0f} s  {frames - last_frames:3d} fps  "
            f"frames {frames}  capture->present p50 {total.p50:.1f} ms"
        )
        last_frames = frames


def run_demo(opts: DemoOptions, progress: Progress | None = None) -> dict[str, Any]:
    say = progress or (lambda _m: None)
    with tempfile.TemporaryDirectory(prefix="wavry-demo-") as tmp:
        host_dir, client_dir = Path(tmp, "host"), Path(tmp, "client")
        host_identity = create_identity_file(host_dir / "identity.key")
        client_identity = create_identity_file(client_dir / "identity.key")
        port = _free_udp_port()
        env = dict(os.environ, WAVRY_DATA_DIR=str(host_dir))
        host = subprocess.Popen(
            _host_command(opts, port, client_identity.wavry_id),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        log = _StderrCollector(host)
        try:
            # Start the client only once the host listens (imports and the encoder probe take
            # a second or two); otherwise the client's handshake backoff would eat the run.
            if log.ready.wait(_HOST_START_TIMEOUT):
                say("host ready; streaming")
            report, barcode = _run_client(opts, port, client_identity, host_identity.wavry_id, say)
        finally:
            with contextlib.suppress(ProcessLookupError):
                host.terminate()
            try:
                out = host.communicate(timeout=10)[0]
            except subprocess.TimeoutExpired:
                host.kill()
                out = host.communicate()[0]
            log.join()
            err = log.text()
    host_status = _last_json_line(out)
    if report.established_at is None:
        host_said = [line for line in err.strip().splitlines() if line.startswith("wavry host:")]
        if host_said:
            raise RuntimeError(f"the demo host could not start: {host_said[-1]}")
        raise RuntimeError(
            "the demo client could not connect to its host: "
            f"{report.close_reason or 'no answer'}; host log:\n{err[-2000:]}"
        )
    return _summary(opts, report, barcode, host_status)


def _run_client(
    opts: DemoOptions, port: int, identity: Any, host_id: str, say: Progress
) -> tuple[ClientReport, _BarcodeCheck]:
    from wavry.net.udp import install_uvloop

    settings = ClientSettings(
        host="127.0.0.1",
        port=port,
        client_name="wavry-demo",
        headless=not opts.window,
        same_clock=True,
        run_for=opts.seconds,
        impair=opts.impair,
    )
    barcode = _BarcodeCheck()
    window_factory = None
    if opts.window:
        from wavry.client.window import ClientWindow

        def window_factory() -> ClientWindow:
            return ClientWindow("Wavry demo", width=opts.width, height=opts.height)

    service = ClientService(
        settings,
        identity=identity,
        expected_host_id=host_id,
        window_factory=window_factory,
        on_frame=barcode,
    )

    async def main() -> ClientReport:
        ticker = asyncio.create_task(_progress_loop(service.report, opts.seconds, say))
        try:
            return await service.run()
        finally:
            ticker.cancel()

    install_uvloop()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.monotonic()
    report = asyncio.run(main())
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    report.stats["cpu_pct_of_core"] = round(100 * cpu / max(time.monotonic() - wall0, 1e-9), 1)
    report.stats["max_rss_mb"] = round(usage1.ru_maxrss / 1024, 1)
    return report, barcode


def _last_json_line(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            if isinstance(data, dict):
                return data
    return {}


def _summary(
    opts: DemoOptions, report: ClientReport, barcode: _BarcodeCheck, host: dict[str, Any]
) -> dict[str, Any]:
    start = report.first_frame_at or report.established_at or 0.0
    duration = max(opts.seconds - (start - (report.connected_at or start)), 1e-3)
    stats = report.stats
    expected = max(1, int(stats.get("packets_expected", 0)))
    latency = {
        stage: {k: v for k, v in values.items() if k in ("p50", "p95", "p99", "count")}
        for stage, values in report.latency.as_dict().items()
    }
    return {
        "fps": round(report.frames_presented / duration, 1),
        "frames_sent": int(host.get("frames_sent", 0)),
        "frames_presented": report.frames_presented,
        "frames_lost": report.frames_lost,
        "bitrate_kbps": round(report.bytes_received * 8 / duration / 1000, 1),
        "loss_pct": round(100 * stats.get("packets_lost_before_fec", 0) / expected, 2),
        "fec_recovered": int(stats.get("fec_recovered", 0)),
        "keyframe_requests": int(stats.get("keyframe_requests", 0)),
        "latency_ms": latency,
        "barcode": {
            "verified": barcode.verified,
            "mismatched": barcode.mismatched,
            "unreadable": barcode.unreadable,
        },
        "codec": report.params.get("codec", rift_pb2.Codec.Name(rift_pb2.H264)),
        "resolution": f"{opts.width}x{opts.height}",
        "target_fps": opts.fps,
        "seconds": opts.seconds,
        "impair": opts.impair,
        "srtt_ms": stats.get("srtt_ms"),
        "host_cpu_pct_of_core": host.get("cpu_pct_of_core"),
        "host_max_rss_mb": host.get("max_rss_mb"),
        "client_cpu_pct_of_core": stats.get("cpu_pct_of_core"),
        "client_max_rss_mb": stats.get("max_rss_mb"),
    }


def format_summary(s: dict[str, Any]) -> str:
    lines = [
        f"wavry demo — {s['codec']} {s['resolution']}@{s['target_fps']} for {s['seconds']:g} s"
        + (f", impaired: {s['impair']}" if s["impair"] else ""),
        f"  frames: {s['frames_sent']} sent, {s['frames_presented']} presented "
        f"({s['fps']} fps), {s['frames_lost']} lost",
        f"  bitrate {s['bitrate_kbps']} kbit/s, packet loss {s['loss_pct']}%, "
        f"FEC recovered {s['fec_recovered']}, keyframe requests {s['keyframe_requests']}",
        f"  CPU (% of one core): host {s['host_cpu_pct_of_core']}, client "
        f"{s['client_cpu_pct_of_core']}; peak RSS: host {s['host_max_rss_mb']} MB, client "
        f"{s['client_max_rss_mb']} MB",
        f"  barcode check: {s['barcode']['verified']} pictures verified, "
        f"{s['barcode']['mismatched']} mismatched, {s['barcode']['unreadable']} unreadable",
        "  latency (ms)        p50      p95      p99",
    ]
    for stage, v in s["latency_ms"].items():
        lines.append(f"    {stage:<14} {v['p50']:8.2f} {v['p95']:8.2f} {v['p99']:8.2f}")
    return "\n".join(lines)
