"""A real host and a real client (both services, in this process) over UDP on loopback.

Real capture (test source or Xvfb), real libx264 encode and decode, real RIFT encryption.
Impairments come from the in-process impairment link on the host's outgoing packets.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from Xlib import X
from Xlib.display import Display

from tests.host.conftest import Session, run_session
from wavry.client.service import FrameTiming
from wavry.client.settings import ClientSettings
from wavry.host.settings import HostSettings
from wavry.input.events import KeyEvent, MouseButton, MouseMove, Scroll
from wavry.input.keymap import HID_BY_NAME
from wavry.media.capture.barcode import check_picture, decode_barcode, timestamp_us
from wavry.media.frames import DecodedFrame
from wavry.net.impairment import ImpairmentConfig, ImpairmentLink
from wavry.rift.identity import Identity


@dataclass
class FrameLog:
    timings: list[FrameTiming] = field(default_factory=list)
    verified: int = 0
    checks: Counter[str] = field(default_factory=Counter)
    pictures: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    keep_pictures: bool = False

    def __call__(self, picture: DecodedFrame, timing: FrameTiming) -> None:
        self.timings.append(timing)
        value = decode_barcode(picture.y)
        if value is not None and value.timestamp_us == timestamp_us(timing.capture_start):
            self.verified += 1
        self.checks[check_picture(picture.y, timing.capture_start)] += 1
        if self.keep_pictures:
            self.pictures.append((picture.y.copy(), picture.u.copy(), picture.v.copy()))
            if len(self.pictures) > 3:
                del self.pictures[1]  # keep the first and the latest two


async def test_test_source_streams_verified_pictures() -> None:
    log = FrameLog()
    host, report = await run_session(seconds=3.0, client_kwargs={"on_frame": log})
    assert report.established_at is not None
    assert report.frames_presented >= 100
    assert log.verified == report.frames_presented  # the barcode in every picture matched
    assert host.status.frames_sent >= report.frames_presented
    # The host told the client what it can capture.
    assert report.monitors and report.monitors[0]["width"] > 0
    ids = [t.frame_id for t in log.timings]
    assert ids == sorted(ids)
    assert report.latency.summary()["total"].count == report.frames_presented


async def test_unknown_client_is_refused_with_a_reason() -> None:
    host, report = await run_session(seconds=2.0, allow_client=False)
    assert report.established_at is None
    assert report.rejected is not None and "--allow" in report.rejected
    assert host.status.sessions_started == 0


async def test_changed_host_key_is_refused_by_the_client() -> None:
    other = Identity.generate().wavry_id
    host, report = await run_session(seconds=2.0, expected_host_id=other)
    assert report.established_at is None
    assert report.close_reason is not None and "HOST_KEY_CHANGED" in report.close_reason
    assert host.status.sessions_started == 0


async def test_five_percent_loss_keeps_95_percent_of_frames() -> None:
    link = ImpairmentLink(ImpairmentConfig(loss=0.05, delay=0.005), random.Random(5))
    log = FrameLog()
    host, report = await run_session(
        seconds=5.0, host_kwargs={"impairment": link}, client_kwargs={"on_frame": log}
    )
    sent = host.status.frames_sent
    assert sent >= 200
    assert report.frames_presented / sent >= 0.95
    assert report.stats["fec_recovered"] > 0
    # every picture shown is the right one, intact (nothing decoded across a lost frame)
    assert log.verified == report.frames_presented


async def test_a_blackout_shows_no_damaged_picture() -> None:
    """Frames lost in a blackout break the reference chain: the client shows nothing decoded
    from a broken chain (it waits for the keyframe it asks for) — every picture verifies."""
    start = time.monotonic() + 1.5
    blackout = ImpairmentConfig(delay=0.002, loss_episodes=((start, start + 0.4, 1.0),))
    log = FrameLog()
    _host, report = await run_session(
        seconds=3.5,
        host_kwargs={"impairment": ImpairmentLink(blackout, random.Random(3))},
        client_kwargs={"on_frame": log},
    )
    assert report.frames_lost >= 1 or report.frames_skipped >= 1, report
    assert report.frames_presented >= 60
    # After the outage the bitrate has collapsed and the first keyframe can be a flat grey
    # picture ("blurred") on a busy machine; what must never be shown is a picture decoded
    # from a broken reference chain (crisp blocks, no valid barcode: "damaged").
    assert log.checks["damaged"] == 0, log.checks
    assert log.checks["verified"] + log.checks["blurred"] == report.frames_presented


async def test_picture_recovers_within_500ms_after_a_300ms_blackout() -> None:
    start = time.monotonic() + 2.5
    end = start + 0.3
    blackout = ImpairmentConfig(delay=0.002, loss_episodes=((start, end, 1.0),))
    link = ImpairmentLink(blackout, random.Random(1))
    log = FrameLog()
    _host, report = await run_session(
        seconds=5.0, host_kwargs={"impairment": link}, client_kwargs={"on_frame": log}
    )
    after = [t for t in log.timings if t.capture_start >= end]
    assert after, "no picture after the blackout"
    first = min(t.present_end for t in after)
    assert first - end <= 0.5
    # ...and the stream keeps going at full rate afterwards.
    later = [t for t in after if t.capture_start >= end + 0.5]
    assert len(later) >= 0.9 * 60 * (5.0 - 2.5 - 0.8 - 0.5)


async def test_host_lowers_bitrate_under_a_cap_and_raises_it_after() -> None:
    t0 = time.monotonic()
    cap_on, cap_off = t0 + 3.0, t0 + 7.0
    link = ImpairmentLink(
        ImpairmentConfig(
            delay=0.005,
            bandwidth_schedule=((cap_on, 3e6), (cap_off, None)),
            queue_limit_s=0.1,
        ),
        random.Random(2),
    )
    samples: list[tuple[float, int]] = []

    async def watch(session: Session) -> None:
        while True:
            endpoint = session.host._endpoint
            if endpoint is not None:
                for conn in endpoint.connections.values():
                    samples.append((time.monotonic(), conn.target_bitrate_kbps))
            await asyncio.sleep(0.1)

    settings = HostSettings(
        capture="testsrc", testsrc_pattern="game", input_backend="none", bitrate_kbps=6_000
    )
    # 13 s: DELTA climbs back gradually after the cap lifts; 4 s of "lifted" samples leave room
    # for a slow start on a loaded machine (1.5 s was marginal: 2884 vs the 2946 needed once).
    await run_session(
        seconds=13.0, host_settings=settings, host_kwargs={"impairment": link}, during=watch
    )
    before = [kbps for t, kbps in samples if t0 + 1.5 < t < cap_on]
    capped = [kbps for t, kbps in samples if cap_on + 1.5 < t < cap_off]
    lifted = [kbps for t, kbps in samples if cap_off + 2.5 < t]
    assert before and capped and lifted
    # DELTA's target is the whole budget; x264 undershoots it, so the target may sit a little
    # above the cap while the real rate fits under it.
    # Medians: on a loaded 2-core machine a starved host can queue a frame and DELTA dips once
    # before the cap; the claim is about where the rate sits, not about a single sample.
    assert sorted(capped)[len(capped) // 2] < 3_000 < sorted(before)[len(before) // 2]
    assert max(capped) < 3_600
    assert max(lifted) > max(capped) * 1.3


def _fill(display: Display, rgb: tuple[int, int, int], area: tuple[int, int, int, int]) -> object:
    screen = display.screen()
    colormap = screen.default_colormap
    pixel = colormap.alloc_color(rgb[0] * 257, rgb[1] * 257, rgb[2] * 257).pixel
    x, y, w, h = area
    win = screen.root.create_window(
        x, y, w, h, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
        background_pixel=pixel, override_redirect=True,
    )  # fmt: skip
    win.map()
    display.sync()
    return win


def _rgb(y: float, u: float, v: float) -> tuple[float, float, float]:
    """BT.709 limited range -> RGB 0..255."""
    c, d, e = 1.164 * (float(y) - 16), float(u) - 128, float(v) - 128
    return (c + 1.793 * e, c - 0.213 * d - 0.533 * e, c + 2.112 * d)


async def test_x11_capture_of_known_content(xvfb_display: str) -> None:
    """Known content is captured, streamed and decoded; a static screen sends no new frames
    (damage-aware), and a change on screen reaches the client."""
    display = Display(xvfb_display)
    log = FrameLog(keep_pictures=True)

    async def repaint(session: Session) -> None:
        while not log.pictures:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        _fill(display, (30, 200, 30), (0, 0, 1280, 720))

    try:
        _fill(display, (220, 30, 30), (0, 0, 640, 720))
        _fill(display, (30, 30, 220), (640, 0, 640, 720))
        settings = HostSettings(capture="x11", input_backend="none")
        host, report = await run_session(
            seconds=2.5, host_settings=settings, client_kwargs={"on_frame": log}, during=repaint
        )
    finally:
        display.close()
    assert 2 <= report.frames_presented < 60  # a mostly static screen is not re-encoded
    y, u, v = log.pictures[0]
    left = _rgb(y[360, 320], u[180, 160], v[180, 160])
    right = _rgb(y[360, 960], u[180, 480], v[180, 480])
    assert left[0] > 170 and left[2] < 80, left
    assert right[2] > 170 and right[0] < 80, right
    y, u, v = log.pictures[-1]
    # (640, 360) is where Xvfb parks the pointer, which is composited into the picture.
    after = _rgb(y[500, 900], u[250, 450], v[250, 450])
    assert after[1] > 150 and after[0] < 80 and after[2] < 80, after


class _InputReceiver:
    MASK = X.KeyPressMask | X.KeyReleaseMask | X.ButtonPressMask | X.ButtonReleaseMask

    def __init__(self, display: str) -> None:
        self.d = Display(display)
        screen = self.d.screen()
        self.win = screen.root.create_window(
            0, 0, 1280, 720, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
            override_redirect=True, event_mask=self.MASK | X.PointerMotionMask,
        )  # fmt: skip
        self.win.map()
        self.d.sync()
        self.win.set_input_focus(X.RevertToParent, X.CurrentTime)
        self.d.sync()

    def events(self) -> list[tuple[object, ...]]:
        self.d.sync()
        out: list[tuple[object, ...]] = []
        while self.d.pending_events():
            ev = self.d.next_event()
            if ev.type in (X.KeyPress, X.KeyRelease):
                out.append(("key", ev.type == X.KeyPress, self.d.keycode_to_keysym(ev.detail, 0)))
            elif ev.type in (X.ButtonPress, X.ButtonRelease):
                out.append(("button", ev.type == X.ButtonPress, ev.detail))
            elif ev.type == X.MotionNotify:
                out.append(("motion", ev.root_x, ev.root_y))
        return out


async def test_client_input_reaches_an_x11_window_on_the_host(xvfb_display: str) -> None:
    receiver = _InputReceiver(xvfb_display)
    sent: list[bool] = []

    async def drive(session: Session) -> None:
        while session.client.report.established_at is None:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        for event in (
            MouseMove(0.25, 0.5),
            MouseButton(1, True),
            MouseButton(1, False),
            KeyEvent(HID_BY_NAME["A"], True),
            KeyEvent(HID_BY_NAME["A"], False),
            Scroll(0.0, 1.0),
        ):
            sent.append(session.client.send_input(event))
            await asyncio.sleep(0.02)

    settings = HostSettings(capture="testsrc", input_backend="xtest")
    await run_session(seconds=2.5, host_settings=settings, during=drive)
    events = receiver.events()
    assert sent == [True] * 6
    keysym_a = receiver.d.keycode_to_keysym(receiver.d.keysym_to_keycode(ord("a")), 0)
    assert ("motion", 320, 360) in events
    assert ("button", True, 1) in events and ("button", False, 1) in events
    assert ("key", True, keysym_a) in events and ("key", False, keysym_a) in events
    keys = [e for e in events if e[0] in ("key", "button")]
    assert keys == [
        ("button", True, 1), ("button", False, 1),
        ("key", True, keysym_a), ("key", False, keysym_a),
        ("button", True, 4), ("button", False, 4),  # one notch up = X button 4
    ]  # fmt: skip


def test_client_settings_defaults_offer_all_codecs() -> None:
    settings = ClientSettings(host="127.0.0.1", port=1)
    assert len(settings.codecs) == 3


async def test_client_can_pick_a_monitor_and_ask_for_skips() -> None:
    seen: list[list[str]] = []

    async def ask(session: Session) -> None:
        while session.client.report.established_at is None:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        seen.append(session.client.overlay_lines())

    settings = ClientSettings(host="127.0.0.1", port=1, headless=True, monitor=0)
    host, report = await run_session(seconds=2.0, client_settings=settings, during=ask)
    assert report.frames_presented > 30
    assert seen
    assert any("fps" in line for line in seen[0]) and any("rtt" in line for line in seen[0])
