"""``wavry connect``: receive, decode, present; capture input and send it at once.

Threads: the event loop runs RIFT, the window and input; one decode thread turns bitstreams
into pictures (PyAV releases the GIL while decoding). Encoded frames wait in a bounded queue;
if it overflows the client drops it all and asks for a keyframe instead of falling behind.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from wavry.client.settings import ClientSettings
from wavry.input.events import to_proto
from wavry.media.decoder import VideoDecoder
from wavry.media.frames import DecodedFrame
from wavry.net.impairment import ImpairmentLink
from wavry.net.udp import DSCP_EF, UdpDriver, impairment_from_spec, open_udp_driver
from wavry.rift import events as ev
from wavry.rift.config import RiftConfig
from wavry.rift.connection import Connection, ConnectionState
from wavry.rift.identity import Identity
from wavry.rift.proto import rift_pb2
from wavry.telemetry.latency import LatencyRecorder

__all__ = ["ClientReport", "ClientService", "FrameTiming"]

log = logging.getLogger(__name__)

_DECODE_QUEUE = 8


@dataclass(frozen=True, slots=True)
class FrameTiming:
    frame_id: int
    keyframe: bool
    capture_start: float  # host clock (monotonic), from the frame's timestamp
    capture_s: float
    encode_s: float
    received_at: float  # client clock
    first_chunk_at: float
    decode_start: float
    decode_end: float
    present_end: float
    size: int


@dataclass(slots=True)
class ClientReport:
    connected_at: float | None = None
    established_at: float | None = None
    first_frame_at: float | None = None
    frames_received: int = 0
    frames_decoded: int = 0
    frames_presented: int = 0
    frames_lost: int = 0
    decode_errors: int = 0
    decode_overflows: int = 0
    #: frames not decoded because a reference was missing (waiting for a keyframe instead)
    frames_skipped: int = 0
    #: the longest time between two presented pictures: how long an outage froze the screen
    max_frame_gap_s: float = 0.0
    bytes_received: int = 0
    close_reason: str | None = None
    rejected: str | None = None
    latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    host_wavry_id: str | None = None
    monitors: list[dict[str, Any]] = field(default_factory=list)
    skip_requests: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


class ClientService:
    def __init__(
        self,
        settings: ClientSettings,
        *,
        identity: Identity,
        expected_host_id: str | None,
        on_host_identity: Callable[[str], bool] | None = None,
        window_factory: Callable[[], Any] | None = None,
        on_frame: Callable[[DecodedFrame, FrameTiming], None] | None = None,
        impairment: ImpairmentLink | None = None,
        driver: UdpDriver | None = None,
        candidates: Sequence[tuple[str, int]] = (),
    ) -> None:
        """``driver``: an already open socket to stream on (its reflexive address was given to
        the host for hole punching); the service replaces its core and closes it at the end.
        ``candidates``: further addresses of the host, tried at once (docs/protocol.md §4.10)."""
        self.settings = settings
        self.identity = identity
        self.expected_host_id = expected_host_id
        self._on_host_identity = on_host_identity
        self._window_factory = window_factory
        self._on_frame = on_frame
        self._impairment = impairment
        self.report = ClientReport()
        self._conn: Connection | None = None
        self._driver: UdpDriver | None = driver
        self._candidates = list(candidates)
        #: how the session reached the host and how long that took, for the overlay
        self.path: str | None = None
        self.connect_ms: float | None = None
        self._window: Any = None
        self._decode_q: queue.Queue[ev.VideoFrameReceived | None] = queue.Queue(_DECODE_QUEUE)
        self._decoder: VideoDecoder | None = None
        self._stop = asyncio.Event()
        self._trusted = expected_host_id is not None
        self._same_clock = settings.same_clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_skip_request = -1.0
        self._need_keyframe = True  # nothing decodes before the first keyframe
        self._last_present_at: float | None = None
        self._last_frame_id: int | None = None
        self._last_keyframe_ask = -1.0
        self._overlay_window: list[tuple[float, int, int]] = []

    def stop(self) -> None:
        self._stop.set()

    @property
    def connection(self) -> Connection | None:
        return self._conn

    @property
    def driver(self) -> UdpDriver | None:
        return self._driver

    def add_candidates(self, addrs: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
        """More paths to the host while the handshake runs (a relay); see ``Connection``."""
        conn, loop = self._conn, self._loop
        if conn is None or loop is None:
            self._candidates.extend(addrs)
            return list(addrs)
        added = conn.add_candidates(addrs, loop.time())
        if self._driver is not None:
            self._driver.flush()
        return added

    def send_input(self, event: Any) -> bool:
        """Send one input event now (call on the event loop). False when not streaming."""
        conn = self._conn
        if conn is None or conn.state is not ConnectionState.ESTABLISHED or self._loop is None:
            return False
        now = self._loop.time()
        conn.send_input(to_proto(event, int(now * 1_000_000)), now)
        if self._driver is not None:
            self._driver.flush()
        return True

    async def run(self) -> ClientReport:
        s = self.settings
        loop = asyncio.get_running_loop()
        self._loop = loop
        conn = Connection.client(
            identity=self.identity,
            peer_addr=(s.host, s.port),
            hello=s.hello(),
            now=loop.time(),
            config=RiftConfig(),
            expected_host_id=self.expected_host_id,
            candidates=self._candidates,
        )
        self._conn = conn
        if self._driver is not None:
            self._driver.core = conn
            self._driver.flush()
        else:
            bind_host = "::" if ":" in s.host else "0.0.0.0"
            if s.host in ("127.0.0.1", "localhost", "::1"):
                bind_host = "::1" if s.host == "::1" else "127.0.0.1"
            self._driver = await open_udp_driver(
                lambda: conn,
                local_addr=(bind_host, 0),
                tos=DSCP_EF,
                impairment=self._impairment or impairment_from_spec(s.impair),
            )
        self.report.connected_at = loop.time()
        decode_thread = threading.Thread(target=self._decode_loop, name="wavry-decode", daemon=True)
        decode_thread.start()
        poll_task: asyncio.Task[None] | None = None
        # ``run_for`` is streaming time: it starts when the session is established (a relay
        # fallback may take a second); until then RIFT's handshake timeout bounds the attempt.
        deadline = None
        try:
            while not self._stop.is_set():
                timeout = 0.25
                if deadline is None and s.run_for is not None and self.report.established_at:
                    deadline = self.report.established_at + s.run_for
                if deadline is not None:
                    timeout = min(timeout, max(0.0, deadline - loop.time()))
                    if loop.time() >= deadline:
                        break
                await self._driver.wait_activity(timeout)
                self._handle_events(loop.time())
                if conn.state is ConnectionState.CLOSED:
                    break
                if self._window is None and self._window_factory and self.report.established_at:
                    self._open_window()
                    poll_task = asyncio.create_task(self._poll_window())
        finally:
            if poll_task is not None:
                poll_task.cancel()
            if conn.state is not ConnectionState.CLOSED:
                conn.close(loop.time(), rift_pb2.DISCONNECT_NORMAL, "client quit")
            self._driver.close()
            self._decode_q.put(None)
            decode_thread.join(timeout=2)
            if self._window is not None:
                self._window.close()
            self.report.stats = _stats_dict(conn)
        return self.report

    # -- protocol events ------------------------------------------------------------------
    def _handle_events(self, now: float) -> None:
        conn = self._conn
        assert conn is not None
        while (event := conn.next_event()) is not None:
            if isinstance(event, ev.VideoFrameReceived):
                self._on_video(event)
            elif isinstance(event, ev.FrameLost):
                self.report.frames_lost += 1
            elif isinstance(event, ev.ControlReceived):
                self._on_control(event.message, now)
            elif isinstance(event, ev.HandshakeCompleted):
                self._on_handshake(event, now)
            elif isinstance(event, ev.SessionEstablished):
                self.report.established_at = now
                p = event.params
                self.report.params = {
                    "codec": rift_pb2.Codec.Name(p.codec),
                    "width": p.width,
                    "height": p.height,
                    "fps": p.fps,
                    "bitrate_kbps": p.bitrate_kbps,
                }
                log.info(
                    "streaming %s %dx%d@%d", self.report.params["codec"], p.width, p.height, p.fps
                )
                self._decoder = VideoDecoder(p.codec)
            elif isinstance(event, ev.SessionRejected):
                self.report.rejected = event.message
                log.error("the host refused the session: %s", event.message)
            elif isinstance(event, ev.ConnectionClosed):
                self.report.close_reason = (
                    f"{rift_pb2.DisconnectReason.Name(event.reason)}: {event.message}"
                )
                if event.by_peer:
                    log.info("the host closed the session: %s", event.message or "no reason given")
                else:
                    log.info("session closed: %s", event.message)
        if self._driver is not None:
            self._driver.flush()

    def _on_control(self, control: rift_pb2.ControlMessage, now: float) -> None:
        if control.WhichOneof("content") == "monitor_list":
            self.report.monitors = [
                {"id": m.id, "name": m.name, "width": m.width, "height": m.height}
                for m in control.monitor_list.monitors
            ]
            names = ", ".join(f"{m['id']}: {m['name']} {m['width']}x{m['height']}"
                              for m in self.report.monitors)  # fmt: skip
            log.info("host monitors: %s", names or "none reported")

    def _on_handshake(self, event: ev.HandshakeCompleted, now: float) -> None:
        self.report.host_wavry_id = event.peer_wavry_id
        if self._trusted:
            return
        ok = self._on_host_identity(event.peer_wavry_id) if self._on_host_identity else True
        if not ok:
            assert self._conn is not None
            self._conn.close(now, rift_pb2.DISCONNECT_NORMAL, "host identity not trusted")
        self._trusted = ok

    def _on_video(self, event: ev.VideoFrameReceived) -> None:
        self.report.frames_received += 1
        self.report.bytes_received += len(event.data)
        if self.report.first_frame_at is None:
            self.report.first_frame_at = event.released_at
        # A frame after a gap (a lost frame: the ids are consecutive) references what never
        # reached the decoder: decoding it would show a damaged picture. Keep the last good
        # one until a keyframe. (The core reports a loss after the frames behind it, so the
        # ids, not FrameLost, tell.)
        last, self._last_frame_id = self._last_frame_id, event.frame_id
        if event.keyframe:
            self._need_keyframe = False
        elif self._need_keyframe or (last is not None and event.frame_id != last + 1):
            self._need_keyframe = True
            self.report.frames_skipped += 1
            self._ask_keyframe()
            return
        backlog = self._decode_q.qsize()
        conn = self._conn
        now = asyncio.get_running_loop().time()
        if backlog >= 2 and conn is not None and now - self._last_skip_request > 0.2:
            # Falling behind: ask the host to drop a frame or two rather than queue them.
            self._last_skip_request = now
            self.report.skip_requests += 1
            control = rift_pb2.ControlMessage(
                encoder_control=rift_pb2.EncoderControl(skip_frames=min(backlog, 4))
            )
            if conn.state is ConnectionState.ESTABLISHED:
                conn.send_control(control, now)
        try:
            self._decode_q.put_nowait(event)
        except queue.Full:
            # The decoder fell behind: skipping frames of a P-frame chain breaks the picture,
            # so drop everything queued and restart from a fresh keyframe.
            self.report.decode_overflows += 1
            with self._decode_q.mutex:
                self._decode_q.queue.clear()
            self._need_keyframe = True
            self._ask_keyframe()

    def _ask_keyframe(self) -> None:
        conn = self._conn
        if conn is None or conn.state is not ConnectionState.ESTABLISHED:
            return
        now = asyncio.get_running_loop().time()
        if now - self._last_keyframe_ask >= 0.2:  # the host needs a moment to send it
            self._last_keyframe_ask = now
            conn.request_keyframe(now)

    # -- decode thread --------------------------------------------------------------------
    def _decode_loop(self) -> None:
        while True:
            item = self._decode_q.get()
            if item is None:
                return
            decoder = self._decoder
            if decoder is None:
                continue
            start = time.monotonic()
            try:
                picture = decoder.decode(item.data)
            except Exception:  # noqa: BLE001 - top of a thread: count, never die
                self.report.decode_errors += 1
                continue
            if picture is None:
                continue
            self.report.frames_decoded += 1
            self._deliver(item, picture, start)

    def _deliver(self, item: ev.VideoFrameReceived, picture: DecodedFrame, start: float) -> None:
        decode_end = time.monotonic()
        present_end = decode_end
        window = self._window
        if window is not None:
            self._present_soon(item, picture, start, decode_end)
            return
        self._record(item, picture, start, decode_end, present_end)

    def _present_soon(
        self, item: ev.VideoFrameReceived, picture: DecodedFrame, start: float, decode_end: float
    ) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._present, item, picture, start, decode_end)

    def _present(
        self, item: ev.VideoFrameReceived, picture: DecodedFrame, start: float, decode_end: float
    ) -> None:
        window = self._window
        if window is None:
            return
        present_end = window.present(picture)
        self._record(item, picture, start, decode_end, present_end)

    def _record(
        self,
        item: ev.VideoFrameReceived,
        picture: DecodedFrame,
        start: float,
        decode_end: float,
        present_end: float,
    ) -> None:
        timing = FrameTiming(
            frame_id=item.frame_id,
            keyframe=item.keyframe,
            capture_start=item.timestamp_us / 1e6,
            capture_s=item.capture_us / 1e6,
            encode_s=item.encode_us / 1e6,
            received_at=item.released_at,
            first_chunk_at=item.first_chunk_at,
            decode_start=start,
            decode_end=decode_end,
            present_end=present_end,
            size=len(item.data),
        )
        self.report.frames_presented += 1
        if self._last_present_at is not None:
            gap = present_end - self._last_present_at
            self.report.max_frame_gap_s = max(self.report.max_frame_gap_s, gap)
        self._last_present_at = present_end
        lat = self.report.latency
        lat.record("capture", timing.capture_s)
        lat.record("encode", timing.encode_s)
        lat.record("decode", decode_end - start)
        lat.record("present", present_end - decode_end)
        if self._same_clock:
            sent = timing.capture_start + timing.capture_s + timing.encode_s
            lat.record("network", timing.received_at - sent)
            lat.record("total", present_end - timing.capture_start)
        if self._on_frame is not None:
            self._on_frame(picture, timing)

    def overlay_lines(self) -> list[str]:
        """What the stats overlay shows (fps, bitrate, RTT, loss, FEC, per-stage latency)."""
        r = self.report
        conn = self._conn
        stats = conn.stats() if conn is not None else None
        now = time.monotonic()
        window = self._overlay_window
        window.append((now, r.frames_presented, r.bytes_received))
        while len(window) > 2 and now - window[0][0] > 2.0:
            window.pop(0)
        t0, f0, b0 = window[0]
        span = max(now - t0, 1e-3)
        p = r.params
        fps = (r.frames_presented - f0) / span
        mbps = (r.bytes_received - b0) * 8 / span / 1e6
        lines = [
            f"{p.get('codec', '?')} {p.get('width', '?')}x{p.get('height', '?')}",
            f"fps {fps:5.1f}   {mbps:5.2f} Mbit/s",
        ]
        if self.path is not None:
            took = f" in {self.connect_ms:.0f} ms" if self.connect_ms is not None else ""
            lines.append(f"path {self.path}{took}")
        if stats is not None:
            loss = 100 * stats.packets_lost_before_fec / max(stats.packets_expected, 1)
            rtt = stats.srtt_ms or 0.0
            lines.append(f"rtt {rtt:5.1f} ms   loss {loss:4.1f}%   fec {stats.fec_recovered}")
        summary = r.latency.summary()
        for stage in ("network", "decode", "present", "total"):
            if summary[stage].count:
                lines.append(_fmt_stage(stage, summary[stage]))
        return lines

    # -- window and input -----------------------------------------------------------------
    def _open_window(self) -> None:
        assert self._window_factory is not None
        self._window = self._window_factory()
        self._window.open()

    async def _poll_window(self) -> None:
        from wavry.client.window import WindowClosed

        conn = self._conn
        assert conn is not None
        loop = asyncio.get_running_loop()
        next_overlay = 0.0
        while True:
            if loop.time() >= next_overlay:
                next_overlay = loop.time() + 0.5
                self._window.set_overlay_lines(self.overlay_lines())
            sent = False
            for event in self._window.poll_events():
                if isinstance(event, WindowClosed):
                    self.stop()
                    return
                wire = _wire_event(event)
                if wire is not None and conn.state is ConnectionState.ESTABLISHED:
                    conn.send_input(to_proto(wire, int(loop.time() * 1e6)), loop.time())
                    sent = True
            if sent and self._driver is not None:
                self._driver.flush()  # input goes out now, not at the next timer
            await asyncio.sleep(0.002)


def _fmt_stage(name: str, p: Any) -> str:
    return f"{name:<8} p50 {p.p50:6.1f}  p95 {p.p95:6.1f} ms"


def _wire_event(event: object) -> Any:
    from wavry.input import events as ie

    wire_types = (
        ie.KeyEvent,
        ie.MouseMove,
        ie.MouseRelative,
        ie.MouseButton,
        ie.Scroll,
        ie.GamepadEvent,
    )
    return event if isinstance(event, wire_types) else None


def _stats_dict(conn: Connection) -> dict[str, Any]:
    s = conn.stats()
    return {
        "srtt_ms": s.srtt_ms,
        "packets_received": s.packets_received,
        "fec_recovered": s.fec_recovered,
        "frames_lost": s.frames_lost,
        "drops": s.drops,
        "packets_lost_before_fec": s.packets_lost_before_fec,
        "packets_expected": s.packets_expected,
        "keyframe_requests": s.keyframe_requests,
    }
