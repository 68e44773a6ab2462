"""ClientWindow on a real X server (Xvfb) and on SDL's dummy driver.

Pictures are checked by reading the renderer's pixels back; input is checked with events pushed
into SDL's queue (SDL_PushEvent), with real X events from xdotool, and with a virtual SDL
game controller (SDL_JoystickAttachVirtual) for hot-plug, axes and buttons.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
import sdl2

from wavry.client.window import (
    ClientWindow,
    FocusChanged,
    Rect,
    WindowClosed,
    WindowCommand,
    WindowCommandKind,
    WindowResized,
    fit_rect,
)
from wavry.input.events import (
    GamepadConnected,
    GamepadDisconnected,
    GamepadEvent,
    KeyEvent,
    MouseButton,
    MouseMove,
    MouseRelative,
    Scroll,
)

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREEN = (0, 255, 0)
HOTKEY_MOD = sdl2.KMOD_LCTRL | sdl2.KMOD_LALT | sdl2.KMOD_LSHIFT
LCTRL, LSHIFT, LALT = 224, 225, 226


@dataclass(frozen=True)
class Frame:
    y: npt.NDArray[np.uint8]
    u: npt.NDArray[np.uint8]
    v: npt.NDArray[np.uint8]
    width: int
    height: int


def rgb_to_yuv709(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.709 limited range, the convention the window presents by default."""
    r, g, b = (c / 255 for c in rgb)
    luma = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return (
        round(16 + 219 * luma),
        round(128 + 224 * (b - luma) / 1.8556),
        round(128 + 224 * (r - luma) / 1.5748),
    )


def split_frame(
    width: int, height: int, left: tuple[int, int, int], right: tuple[int, int, int]
) -> Frame:
    """Left half one colour, right half another; rows padded so every plane has its own pitch."""
    half = width // 2
    planes = []
    for index, (rows, cols, split) in enumerate(
        [
            (height, width, half),
            (height // 2, width // 2, half // 2),
            (height // 2, width // 2, half // 2),
        ]
    ):
        pitch = cols + 16 + 8 * index
        buf = np.zeros((rows, pitch), dtype=np.uint8)
        plane = buf[:, :cols]
        plane[:, :split] = rgb_to_yuv709(left)[index]
        plane[:, split:] = rgb_to_yuv709(right)[index]
        assert plane.strides[0] == pitch
        planes.append(plane)
    return Frame(planes[0], planes[1], planes[2], width, height)


def assert_colour(pixel: npt.NDArray[np.uint8], expected: tuple[int, int, int]) -> None:
    assert np.abs(pixel.astype(int) - np.array(expected)).max() <= 4, (pixel, expected)


def wait_for(win: ClientWindow, condition: Callable[[], bool], what: str) -> list[object]:
    """Poll until condition() holds (a deadline, not a timing assertion)."""
    seen: list[object] = []
    deadline = time.monotonic() + 5.0
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within 5 s; saw {seen}")
        seen.extend(win.poll_events())
        time.sleep(0.005)
    return seen


def poll_until(
    win: ClientWindow, predicate: Callable[[object], bool], what: str, timeout: float = 5.0
) -> list[object]:
    """Poll until an event matching predicate arrives (a deadline, not a timing assertion)."""
    seen: list[object] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = win.poll_events()
        seen.extend(events)
        if any(predicate(e) for e in events):
            return seen
        time.sleep(0.005)
    raise AssertionError(f"no {what} within {timeout} s; saw {seen}")


# -- SDL event injection -------------------------------------------------------------------


def push(ev: sdl2.SDL_Event) -> None:
    assert sdl2.SDL_PushEvent(ctypes.byref(ev)) == 1, sdl2.SDL_GetError()


def push_key(
    win: ClientWindow, scancode: int, down: bool, *, mod: int = 0, repeat: int = 0
) -> None:
    ev = sdl2.SDL_Event()
    ev.type = sdl2.SDL_KEYDOWN if down else sdl2.SDL_KEYUP
    ev.key.windowID = win.window_id
    ev.key.state = sdl2.SDL_PRESSED if down else sdl2.SDL_RELEASED
    ev.key.repeat = repeat
    ev.key.keysym.scancode = scancode
    ev.key.keysym.mod = mod
    push(ev)


def push_motion(win: ClientWindow, x: int, y: int, xrel: int = 0, yrel: int = 0) -> None:
    ev = sdl2.SDL_Event()
    ev.type = sdl2.SDL_MOUSEMOTION
    ev.motion.windowID = win.window_id
    ev.motion.x, ev.motion.y, ev.motion.xrel, ev.motion.yrel = x, y, xrel, yrel
    push(ev)


def push_button(win: ClientWindow, button: int, down: bool, x: int = 0, y: int = 0) -> None:
    ev = sdl2.SDL_Event()
    ev.type = sdl2.SDL_MOUSEBUTTONDOWN if down else sdl2.SDL_MOUSEBUTTONUP
    ev.button.windowID = win.window_id
    ev.button.button = button
    ev.button.state = sdl2.SDL_PRESSED if down else sdl2.SDL_RELEASED
    ev.button.clicks = 1
    ev.button.x, ev.button.y = x, y
    push(ev)


def push_wheel(win: ClientWindow, px: float, py: float, *, flipped: bool = False) -> None:
    ev = sdl2.SDL_Event()
    ev.type = sdl2.SDL_MOUSEWHEEL
    ev.wheel.windowID = win.window_id
    ev.wheel.x, ev.wheel.y = int(px), int(py)
    ev.wheel.preciseX, ev.wheel.preciseY = px, py
    ev.wheel.direction = sdl2.SDL_MOUSEWHEEL_FLIPPED if flipped else sdl2.SDL_MOUSEWHEEL_NORMAL
    push(ev)


def push_window_event(win: ClientWindow, event: int) -> None:
    ev = sdl2.SDL_Event()
    ev.type = sdl2.SDL_WINDOWEVENT
    ev.window.windowID = win.window_id
    ev.window.event = event
    push(ev)


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def x11(xvfb_display: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
    return xvfb_display


@pytest.fixture
def dummy_window(monkeypatch: pytest.MonkeyPatch) -> Iterator[ClientWindow]:
    """800x600 window showing a 1600x900 (16:9) picture: rect (0, 75, 800, 450)."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    with ClientWindow("wavry-test", width=800, height=600, renderer="software") as win:
        win.present(split_frame(1600, 900, RED, BLUE))
        win.poll_events()  # drain whatever SDL queued while opening
        assert win.picture_rect == Rect(0, 75, 800, 450)
        yield win


# -- geometry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "out", "rect"),
    [
        ((1920, 1080), (1920, 1080), Rect(0, 0, 1920, 1080)),
        ((1920, 1080), (800, 600), Rect(0, 75, 800, 450)),  # letterbox
        ((1920, 1080), (1000, 300), Rect(233, 0, 533, 300)),  # pillarbox
        ((640, 480), (1280, 720), Rect(160, 0, 960, 720)),
        ((1, 1), (7, 3), Rect(2, 0, 3, 3)),
    ],
)
def test_fit_rect_keeps_aspect_and_centres(
    frame: tuple[int, int], out: tuple[int, int], rect: Rect
) -> None:
    assert fit_rect(*frame, *out) == rect


# -- presentation on Xvfb ----------------------------------------------------------------


@pytest.mark.parametrize("renderer", ["software", None], ids=["software", "sdl-default"])
def test_present_letterboxes_with_correct_colours(x11: str, renderer: str | None) -> None:
    with ClientWindow("wavry-test", width=800, height=600, renderer=renderer) as win:
        before = time.monotonic()
        presented = win.present(split_frame(320, 180, RED, BLUE))
        assert presented >= before
        rect = win.picture_rect
        assert rect == Rect(0, 75, 800, 450)
        px = win.read_pixels()
        assert px.shape == (600, 800, 3)
        # Bars above and below the 16:9 picture are black, the picture's halves red and blue.
        for y in (0, 37, 74, 525, 599):
            assert_colour(px[y, 400], (0, 0, 0))
        for x in (10, 200, 390):
            assert_colour(px[300, x], RED)
            assert_colour(px[80, x], RED)
        for x in (410, 600, 790):
            assert_colour(px[300, x], BLUE)
            assert_colour(px[519, x], BLUE)


def test_frame_size_change_recreates_texture(x11: str) -> None:
    with ClientWindow("wavry-test", width=640, height=480, renderer="software") as win:
        win.present(split_frame(640, 480, RED, BLUE))
        assert win.picture_rect == Rect(0, 0, 640, 480)
        win.present(split_frame(1280, 720, GREEN, RED))  # 16:9 now: letterboxed
        assert win.picture_rect == Rect(0, 60, 640, 360)
        px = win.read_pixels()
        assert_colour(px[30, 320], (0, 0, 0))
        assert_colour(px[240, 100], GREEN)
        assert_colour(px[240, 540], RED)


def test_resize_recomputes_picture_rect(x11: str) -> None:
    with ClientWindow("wavry-test", width=800, height=600, renderer="software") as win:
        win.present(split_frame(640, 360, RED, BLUE))
        assert win.picture_rect == Rect(0, 75, 800, 450)
        win.set_size(1000, 300)
        seen = poll_until(win, lambda e: e == WindowResized(1000, 300), "WindowResized(1000, 300)")
        assert WindowResized(1000, 300) in seen
        assert win.output_size == (1000, 300)
        assert win.picture_rect == Rect(233, 0, 533, 300)  # pillarbox now
        px = win.read_pixels()
        assert_colour(px[150, 100], (0, 0, 0))
        assert_colour(px[150, 900], (0, 0, 0))
        assert_colour(px[150, 300], RED)
        assert_colour(px[150, 700], BLUE)


def test_overlay_draws_a_box_with_text(x11: str) -> None:
    with ClientWindow("wavry-test", width=640, height=360, renderer="software") as win:
        win.present(split_frame(640, 360, RED, BLUE))
        plain = win.read_pixels()
        lines = ["fps 60.0  bitrate 12.3 Mbit/s", "rtt 1.2 ms  loss 0.0%"]
        win.set_overlay_lines(lines)
        assert win.overlay_rect() is None  # hidden until toggled
        win.overlay_visible = True
        box = win.overlay_rect()
        assert box is not None
        assert (box.x, box.y) == (8, 8)
        # 6x13 glyphs, 1 px line gap, 6 px padding on each side.
        assert box.w == len(lines[0]) * 6 + 12 and box.h == 2 * 14 - 1 + 12
        shown = win.read_pixels()
        inside = shown[box.y : box.y + box.h, box.x : box.x + box.w].astype(int)
        under = plain[box.y : box.y + box.h, box.x : box.x + box.w].astype(int)
        # Background: the red picture darkened by the translucent box.
        bg = inside[2, 2]
        assert bg[0] < under[2, 2][0] - 100 and bg[0] > 20
        # Text: some pixels are (near) white, which the red picture never is.
        white = (inside.min(axis=2) > 200).sum()
        assert 100 < white < inside.shape[0] * inside.shape[1] // 2
        # Outside the box nothing changed.
        assert np.array_equal(shown[box.y + box.h + 1 :], plain[box.y + box.h + 1 :])
        assert np.array_equal(shown[:, box.x + box.w + 1 :], plain[:, box.x + box.w + 1 :])
        win.overlay_visible = False
        assert np.array_equal(win.read_pixels(), plain)


def test_real_x_events_from_xdotool(x11: str) -> None:
    xdotool = shutil.which("xdotool")
    assert xdotool is not None, "xdotool is installed by scripts/bootstrap.sh"
    with ClientWindow("wavry-xdotool", width=800, height=600, renderer="software") as win:
        win.present(split_frame(1600, 900, RED, BLUE))
        info = sdl2.SDL_SysWMinfo()
        sdl2.SDL_VERSION(info.version)
        assert sdl2.SDL_GetWindowWMInfo(win._window, ctypes.byref(info))  # noqa: SLF001
        xid = str(info.info.x11.window)
        subprocess.run([xdotool, "windowfocus", "--sync", xid], check=True, timeout=10)
        wait_for(win, lambda: win.focused, "keyboard focus")
        win.poll_events()
        # XTEST input (no --window): what a real keyboard and mouse produce.
        subprocess.run(
            [xdotool, "mousemove", "--window", xid, "200", "300"], check=True, timeout=10
        )
        subprocess.run([xdotool, "key", "a", "click", "3"], check=True, timeout=10)
        seen = poll_until(win, lambda e: e == MouseButton(3, False), "right button release")
        assert MouseMove(0.25, 0.5) in seen
        inputs = [e for e in seen if isinstance(e, KeyEvent | MouseButton)]
        assert inputs == [
            KeyEvent(4, True),
            KeyEvent(4, False),
            MouseButton(3, True),
            MouseButton(3, False),
        ]
        assert sdl2.SDL_GetWindowKeyboardGrab(win._window) == sdl2.SDL_TRUE  # noqa: SLF001


def test_relative_mode_with_real_x_motion(x11: str) -> None:
    xdotool = shutil.which("xdotool")
    assert xdotool is not None, "xdotool is installed by scripts/bootstrap.sh"
    with ClientWindow(
        "wavry-relative", width=640, height=360, relative_mouse=True, renderer="software"
    ) as win:
        win.present(split_frame(1280, 720, RED, BLUE))  # 2 picture pixels per window pixel
        wait_for(win, lambda: win.focused, "keyboard focus")
        assert sdl2.SDL_GetRelativeMouseMode() == sdl2.SDL_TRUE
        win.poll_events()
        subprocess.run([xdotool, "mousemove_relative", "--", "10", "5"], check=True, timeout=10)
        seen = wait_for_relative(win)
        assert sum(e.dx for e in seen) == 20.0 and sum(e.dy for e in seen) == 10.0
        win.set_capture(False)
        assert sdl2.SDL_GetRelativeMouseMode() == sdl2.SDL_FALSE


def wait_for_relative(win: ClientWindow) -> list[MouseRelative]:
    seen = poll_until(win, lambda e: isinstance(e, MouseRelative), "MouseRelative")
    return [e for e in seen if isinstance(e, MouseRelative)]


def test_present_cost_720p_1080p(x11: str) -> None:
    """Reports present() cost (printed with -s; not asserted: numbers belong in benchmarks)."""
    for width, height in ((1280, 720), (1920, 1080)):
        for renderer in ("software", None):
            with ClientWindow("wavry-bench", width=width, height=height, renderer=renderer) as win:
                frame = split_frame(width, height, RED, BLUE)
                costs = []
                for _ in range(30):
                    start = time.perf_counter()
                    win.present(frame)
                    costs.append(time.perf_counter() - start)
                costs.sort()
                print(
                    f"present {width}x{height} renderer={win.render_driver}: "
                    f"median {costs[15] * 1e3:.2f} ms, p90 {costs[27] * 1e3:.2f} ms"
                )
                assert win.picture_rect == Rect(0, 0, width, height)


# -- input translation (dummy driver: no spontaneous events) ------------------------------


def test_keys_are_hid_usages_and_repeats_are_dropped(dummy_window: ClientWindow) -> None:
    win = dummy_window
    push_key(win, sdl2.SDL_SCANCODE_A, True)
    push_key(win, sdl2.SDL_SCANCODE_A, True, repeat=1)
    push_key(win, sdl2.SDL_SCANCODE_RGUI, True)
    push_key(win, sdl2.SDL_SCANCODE_A, False)
    push_key(win, sdl2.SDL_SCANCODE_RGUI, False)
    push_key(win, sdl2.SDL_SCANCODE_AUDIOPLAY, True)  # 261: no HID keyboard-page usage
    push_key(win, sdl2.SDL_SCANCODE_AUDIOMUTE, True)  # 262: HID Mute (0x7F)
    push_key(win, sdl2.SDL_SCANCODE_B, False)  # never pressed while captured: not sent
    assert win.poll_events() == [
        KeyEvent(4, True),
        KeyEvent(231, True),
        KeyEvent(4, False),
        KeyEvent(231, False),
        KeyEvent(0x7F, True),
    ]


def test_mouse_motion_is_normalised_to_the_picture(dummy_window: ClientWindow) -> None:
    win = dummy_window  # picture rect (0, 75, 800, 450)
    push_motion(win, 400, 300)
    assert win.poll_events() == [MouseMove(0.5, 0.5)]
    push_motion(win, 200, 75)
    assert win.poll_events() == [MouseMove(0.25, 0.0)]
    push_motion(win, 200, 10)  # in the letterbox bar: clamped to the picture's edge
    push_motion(win, 200, 20)  # same clamped position: not sent twice
    assert win.poll_events() == []
    push_motion(win, 900, 599)
    assert win.poll_events() == [MouseMove(1.0, 1.0)]
    # A run of motion is coalesced to its last position.
    for x in range(100, 500, 40):
        push_motion(win, x, 300)
    push_key(win, sdl2.SDL_SCANCODE_A, True)
    assert win.poll_events() == [MouseMove(460 / 800, 0.5), KeyEvent(4, True)]
    # A click moves the pointer to where it happened first.
    push_button(win, sdl2.SDL_BUTTON_LEFT, True, 600, 300)
    assert win.poll_events() == [MouseMove(0.75, 0.5), MouseButton(1, True)]


def test_buttons_map_to_wire_numbers(dummy_window: ClientWindow) -> None:
    win = dummy_window
    push_motion(win, 400, 300)
    win.poll_events()
    for sdl_button, wire in [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]:
        push_button(win, sdl_button, True, 400, 300)
        push_button(win, sdl_button, False, 400, 300)
        assert win.poll_events() == [MouseButton(wire, True), MouseButton(wire, False)]
    push_button(win, 6, True, 400, 300)  # no wire number
    assert win.poll_events() == []


def test_wheel_uses_precise_values_and_direction(dummy_window: ClientWindow) -> None:
    win = dummy_window
    push_wheel(win, 0.0, 1.0)
    assert win.poll_events() == [Scroll(0.0, 1.0)]
    push_wheel(win, 0.25, -0.5)
    push_wheel(win, 0.25, -0.25)  # a run is summed
    assert win.poll_events() == [Scroll(0.5, -0.75)]
    push_wheel(win, 0.0, 2.0, flipped=True)  # "natural" scrolling reported flipped
    assert win.poll_events() == [Scroll(0.0, -2.0)]


def test_release_combo_toggles_capture_and_is_never_sent(dummy_window: ClientWindow) -> None:
    win = dummy_window
    push_key(win, sdl2.SDL_SCANCODE_LCTRL, True, mod=sdl2.KMOD_LCTRL)
    push_key(win, sdl2.SDL_SCANCODE_LALT, True, mod=sdl2.KMOD_LCTRL | sdl2.KMOD_LALT)
    push_key(win, sdl2.SDL_SCANCODE_LSHIFT, True, mod=HOTKEY_MOD)
    push_button(win, 1, True, 400, 300)
    push_key(win, sdl2.SDL_SCANCODE_Z, True, mod=HOTKEY_MOD)
    push_key(win, sdl2.SDL_SCANCODE_Z, False, mod=HOTKEY_MOD)
    events = win.poll_events()
    # The modifiers went to the host before Z; releasing capture releases everything held.
    assert events == [
        KeyEvent(LCTRL, True),
        KeyEvent(LALT, True),
        KeyEvent(LSHIFT, True),
        MouseMove(0.5, 0.5),
        MouseButton(1, True),
        KeyEvent(LCTRL, False),
        KeyEvent(LSHIFT, False),
        KeyEvent(LALT, False),
        MouseButton(1, False),
        WindowCommand(WindowCommandKind.CAPTURE, False),
    ]
    assert not win.captured
    # Released: nothing local reaches the host.
    push_key(win, sdl2.SDL_SCANCODE_LSHIFT, False)
    push_key(win, sdl2.SDL_SCANCODE_A, True)
    push_key(win, sdl2.SDL_SCANCODE_A, False)
    push_motion(win, 100, 100)
    push_wheel(win, 0, 1)
    push_button(win, 3, True, 100, 100)
    assert win.poll_events() == []
    # The combo again captures again; Z is swallowed both ways.
    push_key(win, sdl2.SDL_SCANCODE_Z, True, mod=HOTKEY_MOD)
    push_key(win, sdl2.SDL_SCANCODE_Z, False, mod=HOTKEY_MOD)
    assert win.poll_events() == [WindowCommand(WindowCommandKind.CAPTURE, True)]
    assert win.captured
    # Only Ctrl+Alt+Shift together make Z a hot key.
    push_key(win, sdl2.SDL_SCANCODE_Z, True, mod=sdl2.KMOD_LCTRL | sdl2.KMOD_LALT)
    assert win.poll_events() == [KeyEvent(sdl2.SDL_SCANCODE_Z, True)]


def test_click_in_released_window_recaptures_without_sending(dummy_window: ClientWindow) -> None:
    win = dummy_window
    win.set_capture(False)
    push_button(win, 1, True, 400, 300)
    push_button(win, 1, False, 400, 300)
    assert win.poll_events() == [WindowCommand(WindowCommandKind.CAPTURE, True)]
    push_button(win, 1, True, 400, 300)
    assert win.poll_events() == [MouseMove(0.5, 0.5), MouseButton(1, True)]


def test_overlay_and_fullscreen_hotkeys(dummy_window: ClientWindow) -> None:
    win = dummy_window
    push_key(win, sdl2.SDL_SCANCODE_S, True, mod=HOTKEY_MOD)
    push_key(win, sdl2.SDL_SCANCODE_S, False, mod=HOTKEY_MOD)
    assert win.poll_events() == [WindowCommand(WindowCommandKind.OVERLAY, True)]
    assert win.overlay_visible
    push_key(win, sdl2.SDL_SCANCODE_F, True, mod=HOTKEY_MOD)
    push_key(win, sdl2.SDL_SCANCODE_F, False, mod=HOTKEY_MOD)
    events = win.poll_events()
    assert events[0] == WindowCommand(WindowCommandKind.FULLSCREEN, True)
    assert all(not isinstance(e, KeyEvent) for e in events)
    assert win.fullscreen
    flags = sdl2.SDL_GetWindowFlags(win._window)  # noqa: SLF001
    assert flags & sdl2.SDL_WINDOW_FULLSCREEN_DESKTOP == sdl2.SDL_WINDOW_FULLSCREEN_DESKTOP


def test_focus_loss_releases_held_input(dummy_window: ClientWindow) -> None:
    win = dummy_window
    push_window_event(win, sdl2.SDL_WINDOWEVENT_FOCUS_GAINED)
    push_key(win, sdl2.SDL_SCANCODE_W, True)
    push_button(win, 3, True, 400, 300)
    push_window_event(win, sdl2.SDL_WINDOWEVENT_FOCUS_LOST)
    push_key(win, sdl2.SDL_SCANCODE_W, False)  # arrives after the release: not sent again
    assert win.poll_events() == [
        FocusChanged(True),
        KeyEvent(26, True),
        MouseMove(0.5, 0.5),
        MouseButton(3, True),
        KeyEvent(26, False),
        MouseButton(3, False),
        FocusChanged(False),
    ]


def test_pointer_mapping_follows_a_resize(dummy_window: ClientWindow) -> None:
    win = dummy_window
    win.set_size(1000, 300)
    assert win.poll_events() == [WindowResized(1000, 300)]
    assert win.picture_rect == Rect(233, 0, 533, 300)  # pillarbox now
    push_motion(win, 500, 150)
    assert win.poll_events() == [MouseMove((500 - 233) / 533, 0.5)]
    push_motion(win, 233 + 133, 0)
    assert win.poll_events() == [MouseMove(133 / 533, 0.0)]
    push_motion(win, 10, 299)  # the left bar clamps to the picture's left edge
    assert win.poll_events() == [MouseMove(0.0, 299 / 300)]


def test_close_request(dummy_window: ClientWindow) -> None:
    push_window_event(dummy_window, sdl2.SDL_WINDOWEVENT_CLOSE)
    quit_ev = sdl2.SDL_Event()
    quit_ev.type = sdl2.SDL_QUIT
    push(quit_ev)
    assert dummy_window.poll_events() == [WindowClosed()]


def test_relative_mouse_is_scaled_to_picture_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    with ClientWindow(
        "wavry-test", width=800, height=600, relative_mouse=True, renderer="software"
    ) as win:
        win.present(split_frame(1600, 900, RED, BLUE))  # 2 picture pixels per window pixel
        win.poll_events()
        push_motion(win, 0, 0, xrel=3, yrel=-2)
        assert win.poll_events() == [MouseRelative(6.0, -4.0)]
        push_motion(win, 0, 0, xrel=1, yrel=0)
        push_motion(win, 0, 0, xrel=1, yrel=1)
        push_button(win, 1, True, 0, 0)  # no absolute move in relative mode
        assert win.poll_events() == [MouseRelative(4.0, 2.0), MouseButton(1, True)]
        win.set_capture(False)
        push_motion(win, 0, 0, xrel=5, yrel=5)
        assert win.poll_events() == []


# -- gamepads: a virtual SDL game controller ---------------------------------------------


def test_gamepad_hotplug_axes_and_buttons(dummy_window: ClientWindow) -> None:
    win = dummy_window
    index = sdl2.SDL_JoystickAttachVirtual(sdl2.SDL_JOYSTICK_TYPE_GAMECONTROLLER, 6, 15, 0)
    assert index >= 0, sdl2.SDL_GetError()
    joystick = sdl2.SDL_JoystickOpen(index)
    try:
        events = win.poll_events()
        assert [e for e in events if isinstance(e, GamepadConnected)] == [
            GamepadConnected(0, sdl2.SDL_GameControllerNameForIndex(index).decode())
        ]
        sdl2.SDL_JoystickSetVirtualAxis(joystick, 0, -32768)  # left stick full left
        sdl2.SDL_JoystickSetVirtualAxis(joystick, 3, 16384)  # right stick half down
        sdl2.SDL_JoystickSetVirtualAxis(joystick, 5, 32767)  # right trigger full
        sdl2.SDL_JoystickSetVirtualButton(joystick, 0, 1)  # A
        sdl2.SDL_JoystickSetVirtualButton(joystick, 14, 1)  # DPAD_RIGHT
        sdl2.SDL_JoystickUpdate()
        pads = [e for e in win.poll_events() if isinstance(e, GamepadEvent)]
        assert len(pads) == 1  # one pad's changes in one poll merge into one message
        pad = pads[0]
        assert pad.gamepad_id == 0
        axes = dict(pad.axes)
        assert axes[0] == -1.0 and axes[5] == 1.0
        assert axes[3] == pytest.approx(16384 / 32767)
        assert dict(pad.buttons) == {0: True, 14: True}
        # Press and release in one poll: two messages, the press is not lost.
        sdl2.SDL_JoystickSetVirtualButton(joystick, 1, 1)
        sdl2.SDL_JoystickUpdate()
        sdl2.SDL_JoystickSetVirtualButton(joystick, 1, 0)
        sdl2.SDL_JoystickUpdate()
        assert [e for e in win.poll_events() if isinstance(e, GamepadEvent)] == [
            GamepadEvent(0, (), ((1, True),)),
            GamepadEvent(0, (), ((1, False),)),
        ]
    finally:
        sdl2.SDL_JoystickClose(joystick)
        sdl2.SDL_JoystickDetachVirtual(index)
    seen = win.poll_events()
    assert seen[-1] == GamepadDisconnected(0)


def test_gamepad_slots_are_reused(dummy_window: ClientWindow) -> None:
    win = dummy_window
    first = sdl2.SDL_JoystickAttachVirtual(sdl2.SDL_JOYSTICK_TYPE_GAMECONTROLLER, 6, 15, 0)
    second = sdl2.SDL_JoystickAttachVirtual(sdl2.SDL_JOYSTICK_TYPE_GAMECONTROLLER, 6, 15, 0)
    connected = [e.gamepad_id for e in win.poll_events() if isinstance(e, GamepadConnected)]
    assert connected == [0, 1]
    sdl2.SDL_JoystickDetachVirtual(first)
    assert [e for e in win.poll_events() if isinstance(e, GamepadDisconnected)] == [
        GamepadDisconnected(0)
    ]
    third = sdl2.SDL_JoystickAttachVirtual(sdl2.SDL_JOYSTICK_TYPE_GAMECONTROLLER, 6, 15, 0)
    assert [e.gamepad_id for e in win.poll_events() if isinstance(e, GamepadConnected)] == [0]
    assert (first, second, third) == (0, 1, 1)  # device indices shift down on removal
    sdl2.SDL_JoystickDetachVirtual(1)
    sdl2.SDL_JoystickDetachVirtual(0)
    assert sorted(
        e.gamepad_id for e in win.poll_events() if isinstance(e, GamepadDisconnected)
    ) == [
        0,
        1,
    ]


def test_bad_planes_are_rejected(dummy_window: ClientWindow) -> None:
    frame = split_frame(64, 32, RED, BLUE)
    with pytest.raises(ValueError, match="plane u"):
        dummy_window.present(Frame(frame.y, frame.u[:8], frame.v, 64, 32))
    with pytest.raises(ValueError, match="uint8"):
        dummy_window.present(Frame(frame.y.astype(np.uint16), frame.u, frame.v, 64, 32))
    # A non-contiguous row (every other pixel) is copied, not misread.
    wide = split_frame(128, 32, RED, BLUE)
    dummy_window.present(Frame(wide.y[:, ::2], wide.u[:, ::2], wide.v[:, ::2], 64, 32))
    px = dummy_window.read_pixels()
    assert_colour(px[300, 100], RED)
    assert_colour(px[300, 700], BLUE)


# -- the built-in font ---------------------------------------------------------------------


def test_font_glyphs_and_fallback() -> None:
    from wavry.client.font import GLYPH_HEIGHT, GLYPH_WIDTH, glyph, render_text

    a = glyph("A")
    assert a.shape == (GLYPH_HEIGHT, GLYPH_WIDTH)
    assert a[7].tolist() == [True] * 5 + [False]  # the crossbar of 'A'
    assert not glyph(" ").any()
    assert np.array_equal(glyph("é"), glyph("?"))
    mask = render_text(["Ab", "", "é"], scale=2)
    assert mask.shape == ((3 * 14 - 1) * 2, 2 * 6 * 2)
    assert np.array_equal(mask[0:26:2, 0:12:2], a)
    assert not mask[28:54].any()  # the empty line
    assert np.array_equal(mask[56:82:2, 0:12:2], glyph("?"))
    with pytest.raises(ValueError):
        render_text(["x"], scale=0)
