"""X11 capture against a real X server (Xvfb): pixels, monitors, damage, cursor, failures."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from Xlib import X, display
from Xlib.ext import xtest
from Xlib.protocol import event as xevent

from wavry.media.capture.base import CaptureLost, CaptureUnavailable, open_capture
from wavry.media.capture.x11 import X11Capture, composite_cursor
from wavry.media.frames import RawFrame

# Patches: (x, y, w, h, rgb). The window behind them is mid grey.
PATCHES = [
    (40, 200, 200, 160, (255, 0, 0)),
    (300, 200, 200, 160, (0, 255, 0)),
    (560, 200, 200, 160, (0, 0, 255)),
    (820, 200, 200, 160, (255, 255, 255)),
    (1080, 200, 160, 160, (255, 255, 0)),
]
GREY = (128, 128, 128)


def _pixel(rgb: tuple[int, int, int]) -> int:
    return (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]


class Painter:
    """An override-redirect window over the whole screen that tests paint on."""

    def __init__(self, name: str) -> None:
        self.d = display.Display(name)
        root = self.d.screen().root
        self.win = root.create_window(
            0, 0, 1280, 720, 0, 24, background_pixel=_pixel(GREY), override_redirect=True
        )
        self.win.map()
        self.win.raise_window()
        self.d.sync()
        self.win.clear_area(0, 0, 1280, 720)
        self.d.sync()

    def fill(self, x: int, y: int, w: int, h: int, rgb: tuple[int, int, int]) -> None:
        gc = self.win.create_gc(foreground=_pixel(rgb))
        self.win.fill_rectangle(gc, x, y, w, h)
        gc.free()
        self.d.sync()

    def move_pointer(self, x: int, y: int) -> None:
        xtest.fake_input(self.d, X.MotionNotify, x=x, y=y)
        self.d.sync()

    def close(self) -> None:
        self.win.destroy()
        self.d.sync()
        self.d.close()


@pytest.fixture(scope="module")
def x_server(xvfb_display: str) -> Iterator[str]:
    """The session's Xvfb, with one connection held for the whole module: Xvfb resets itself
    when its last client disconnects, and a connection attempt during that reset fails."""
    conn = display.Display(xvfb_display)
    try:
        yield xvfb_display
    finally:
        conn.close()


@pytest.fixture
def painter(x_server: str) -> Iterator[Painter]:
    p = Painter(x_server)
    p.move_pointer(1279, 719)  # park the cursor in a corner, away from the patches
    try:
        yield p
    finally:
        p.close()


def _rgb(frame: RawFrame) -> np.ndarray:
    image = frame.image.reformat(format="rgb24", src_colorspace="ITU709", src_color_range="MPEG")
    return np.asarray(image.to_ndarray(), dtype=np.int16)


def _settle_damage(cap: X11Capture) -> RawFrame:
    """Grab until the damage of earlier drawing has been consumed; return the last frame."""
    frame = cap.grab()
    for _ in range(20):
        time.sleep(0.01)
        frame = cap.grab()
        if frame.unchanged:
            return frame
    return frame


def test_monitors_report_the_xvfb_screen(x_server: str) -> None:
    mons = X11Capture().monitors()
    assert len(mons) == 1
    mon = mons[0]
    assert (mon.id, mon.x, mon.y, mon.width, mon.height) == (0, 0, 0, 1280, 720)


@pytest.mark.parametrize("size", [(1280, 720), (640, 360)])
def test_captured_colours_survive_conversion(painter: Painter, size: tuple[int, int]) -> None:
    for x, y, w, h, rgb in PATCHES:
        painter.fill(x, y, w, h, rgb)
    with X11Capture(with_cursor=False) as cap:
        cap.open(width=size[0], height=size[1], fps=30)
        frame = cap.grab()
    assert frame.pixel_format == "yuv420p"
    assert (frame.width, frame.height) == size
    rgb = _rgb(frame)
    scale = size[0] / 1280
    for x, y, w, h, colour in [*PATCHES, (0, 0, 1280, 150, GREY)]:
        cx, cy = int((x + w / 2) * scale), int((y + h / 2) * scale)
        got = rgb[cy, cx]
        assert np.max(np.abs(got - np.array(colour))) <= 6, (colour, got)
    assert frame.capture_duration > 0


def test_unchanged_screen_is_flagged_and_costs_no_grab(painter: Painter) -> None:
    with X11Capture(with_cursor=False) as cap:
        cap.open(width=None, height=None, fps=30)
        frame = _settle_damage(cap)
        assert frame.unchanged
        again = cap.grab()
        assert again.unchanged
        assert again.image is frame.image
        assert again.frame_index == frame.frame_index + 1
        painter.fill(100, 100, 50, 50, (255, 0, 0))
        time.sleep(0.05)
        changed = cap.grab()
        assert not changed.unchanged
        assert np.max(np.abs(_rgb(changed)[125, 125] - np.array([255, 0, 0]))) <= 6


def test_without_damage_tracking_every_frame_is_grabbed(painter: Painter) -> None:
    with X11Capture(with_cursor=False, track_damage=False) as cap:
        cap.open(width=None, height=None, fps=30)
        assert not any(cap.grab().unchanged for _ in range(3))


def test_cursor_is_composited_and_its_motion_is_a_change(painter: Painter) -> None:
    painter.move_pointer(640, 500)
    with X11Capture(with_cursor=True) as cap, X11Capture(with_cursor=False) as bare:
        cap.open(width=None, height=None, fps=30)
        bare.open(width=None, height=None, fps=30)
        with_cursor = _rgb(_settle_damage(cap))[480:520, 620:660]
        without = _rgb(bare.grab())[480:520, 620:660]
        assert np.all(np.abs(without - np.array(GREY)) <= 6)
        assert np.count_nonzero(np.abs(with_cursor - without).max(axis=2) > 40) >= 10
        painter.move_pointer(200, 500)
        time.sleep(0.02)
        moved = cap.grab()
        assert not moved.unchanged
        assert np.all(np.abs(_rgb(moved)[480:520, 620:660] - np.array(GREY)) <= 6)


def test_a_cursor_shape_change_is_picked_up(painter: Painter) -> None:
    painter.move_pointer(640, 500)
    with X11Capture(with_cursor=True) as cap:
        cap.open(width=None, height=None, fps=30)
        before = _rgb(_settle_damage(cap))[480:520, 620:660]
        font = painter.d.open_font("cursor")
        hand = font.create_glyph_cursor(font, 58, 59, (0, 0, 0), (65535, 65535, 65535))
        painter.win.change_attributes(cursor=hand)  # XC_hand2 over our window
        painter.d.sync()
        time.sleep(0.05)
        after = cap.grab()
        assert not after.unchanged
        assert np.count_nonzero(np.abs(_rgb(after)[480:520, 620:660] - before).max(axis=2) > 40)


def test_composite_cursor_blends_premultiplied_alpha_and_clips() -> None:
    screen = np.full((4, 4, 4), 100, np.uint8)
    cursor = np.zeros((2, 2, 4), np.uint8)
    cursor[0, 0] = (255, 0, 0, 255)  # opaque blue
    cursor[1, 1] = (64, 64, 64, 128)  # half-transparent, premultiplied
    composite_cursor(screen, cursor, 3, 3)  # only cursor[0, 0] lands on the screen
    assert tuple(screen[3, 3, :3]) == (255, 0, 0)
    composite_cursor(screen, cursor, 0, 0)
    assert tuple(screen[1, 1, :3]) == (114, 114, 114)  # 64 + 100 * 127/255
    assert tuple(screen[0, 1, :3]) == (100, 100, 100)  # transparent
    composite_cursor(screen, cursor, -5, -5)  # entirely off screen: no error


def test_open_capture_auto_picks_x11_under_a_display(x_server: str) -> None:
    with open_capture("auto", width=640, height=360, fps=30) as cap:
        assert cap.name == "x11"
        assert cap.grab().width == 640


def test_missing_display_or_monitor_is_unavailable(
    x_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CaptureUnavailable, match="monitor 3 does not exist; available: 0"):
        open_capture("x11", width=None, height=None, fps=30, monitor=3)
    with pytest.raises(CaptureUnavailable, match="cannot open X display"):
        open_capture("x11", display=":4097")
    monkeypatch.delenv("DISPLAY")
    with pytest.raises(CaptureUnavailable, match="DISPLAY is not set"):
        X11Capture().monitors()


def test_a_screen_resize_is_reported_as_lost(painter: Painter) -> None:
    with X11Capture(with_cursor=False) as cap:
        cap.open(width=None, height=None, fps=30)
        cap.grab()
        root = painter.d.screen().root
        notify = xevent.ConfigureNotify(
            window=root,
            event=root,
            above_sibling=X.NONE,
            x=0,
            y=0,
            width=1024,
            height=768,
            border_width=0,
            override=False,
        )
        root.send_event(notify, event_mask=X.StructureNotifyMask)
        painter.d.sync()
        time.sleep(0.05)
        with pytest.raises(CaptureLost, match="resized to 1024x768"):
            cap.grab()


def _private_xvfb() -> tuple[subprocess.Popen[Any], str]:
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb, or run scripts/bootstrap.sh)")
    n = next(
        n
        for n in range(300, 400)
        if not os.path.exists(f"/tmp/.X11-unix/X{n}") and not os.path.exists(f"/tmp/.X{n}-lock")
    )
    proc = subprocess.Popen(
        [xvfb, f":{n}", "-screen", "0", "320x240x24", "-nolisten", "tcp", "-ac", "-noreset"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not os.path.exists(f"/tmp/.X11-unix/X{n}"):
        assert proc.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.05)
    return proc, f":{n}"


def test_a_dying_x_server_is_reported_as_lost() -> None:
    proc, name = _private_xvfb()
    try:
        cap = open_capture("x11", display=name, track_damage=False, with_cursor=False)
        assert (cap.width, cap.height) == (320, 240)
        cap.grab()
        proc.terminate()
        proc.wait(5)
        with pytest.raises(CaptureLost):
            for _ in range(5):  # the first grab may still be served from buffered state
                cap.grab()
                time.sleep(0.05)
        cap.close()  # closing after the loss must not raise
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
