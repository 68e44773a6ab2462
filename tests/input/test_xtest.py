"""XTest backend on a real X server (Xvfb): a real window receives the injected events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from Xlib import XK, X
from Xlib.display import Display

from wavry.input.events import (
    GamepadEvent,
    InputEvent,
    KeyEvent,
    MouseButton,
    MouseMove,
    MouseRelative,
    Scroll,
)
from wavry.input.inject.base import DeviceSpec, InjectorUnavailable, open_injector
from wavry.input.inject.xtest import XTestInjector, build_keycode_map
from wavry.input.keymap import HID_BY_NAME, HID_TO_EVDEV

W, H = 1280, 720
K = HID_BY_NAME
EVENT_MASK = (
    X.KeyPressMask
    | X.KeyReleaseMask
    | X.ButtonPressMask
    | X.ButtonReleaseMask
    | X.PointerMotionMask
)


class Receiver:
    """A full-screen, focused window on its own connection that records what it receives."""

    def __init__(self, display: str) -> None:
        self.d = Display(display)
        screen = self.d.screen()
        self.win = screen.root.create_window(
            0, 0, W, H, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
            override_redirect=True, event_mask=EVENT_MASK,
        )  # fmt: skip
        self.win.map()
        self.d.sync()
        self.win.set_input_focus(X.RevertToParent, X.CurrentTime)
        self.d.sync()
        self.drain()

    def drain(self) -> list[Any]:
        out = []
        while self.d.pending_events():
            out.append(self.d.next_event())
        return out

    def received(self, injector: XTestInjector) -> list[tuple[Any, ...]]:
        # The injector's round trip means the server has handled every fake event, so their
        # X events are already queued for us; our own round trip then reads them all in.
        injector.sync()
        self.d.sync()
        # MappingNotify goes to every client when the server switches the master keyboard to
        # XTest's device keymap; it is not input.
        return [self.describe(ev) for ev in self.drain() if ev.type != X.MappingNotify]

    def describe(self, ev: Any) -> tuple[Any, ...]:
        if ev.type in (X.KeyPress, X.KeyRelease):
            keysym = self.d.keycode_to_keysym(ev.detail, 0)  # the key's unshifted symbol
            return ("key", ev.type == X.KeyPress, keysym, bool(ev.state & X.ShiftMask))
        if ev.type in (X.ButtonPress, X.ButtonRelease):
            return ("button", ev.type == X.ButtonPress, ev.detail)
        if ev.type == X.MotionNotify:
            return ("motion", ev.root_x, ev.root_y)
        return ("other", ev.type)

    def close(self) -> None:
        self.win.destroy()
        self.d.close()


@pytest.fixture
def receiver(x_server: str) -> Iterator[Receiver]:
    r = Receiver(x_server)
    yield r
    r.close()


@pytest.fixture
def injector(x_server: str) -> Iterator[XTestInjector]:
    inj = XTestInjector(display=x_server)
    yield inj
    inj.close()


def press(usage: int) -> list[InputEvent]:
    return [KeyEvent(usage, True), KeyEvent(usage, False)]


def click(button: int) -> list[InputEvent]:
    return [MouseButton(button, True), MouseButton(button, False)]


def centre(px: int, py: int) -> MouseMove:
    return MouseMove((px + 0.5) / W, (py + 0.5) / H)


def test_injected_sequence_arrives_exactly(receiver: Receiver, injector: XTestInjector) -> None:
    assert injector.used_key_mode == "position"  # Xvfb numbers keys like evdev
    seq: list[InputEvent] = [
        *press(K["A"]),
        KeyEvent(K["LEFTSHIFT"], True), *press(K["1"]), KeyEvent(K["LEFTSHIFT"], False),
        centre(100, 200), *click(1), *click(3), *click(2), *click(4), *click(5),
        MouseRelative(10.0, -5.0),
        Scroll(0.0, 1.0), Scroll(0.0, -2.0), Scroll(1.0, 0.0), Scroll(-1.0, 0.0),
        MouseMove(1.0, 1.0),
    ]  # fmt: skip
    for event in seq:
        injector.inject(event)
    got = receiver.received(injector)
    expected = [
        ("key", True, XK.XK_a, False), ("key", False, XK.XK_a, False),
        ("key", True, XK.XK_Shift_L, False),
        ("key", True, XK.XK_1, True), ("key", False, XK.XK_1, True),  # shift+1 = '!'
        ("key", False, XK.XK_Shift_L, True),
        ("motion", 100, 200),
        ("button", True, 1), ("button", False, 1),
        ("button", True, 3), ("button", False, 3),
        ("button", True, 2), ("button", False, 2),
        ("button", True, 8), ("button", False, 8),  # back
        ("button", True, 9), ("button", False, 9),  # forward
        ("motion", 110, 195),
        ("button", True, 4), ("button", False, 4),  # up
        ("button", True, 5), ("button", False, 5), ("button", True, 5), ("button", False, 5),
        ("button", True, 7), ("button", False, 7),  # right
        ("button", True, 6), ("button", False, 6),  # left
        ("motion", W - 1, H - 1),
    ]  # fmt: skip
    assert got == expected
    shifted = receiver.d.keycode_to_keysym(injector.keycodes[K["1"]], 1)
    assert shifted == XK.XK_exclam
    assert injector.counters.unmapped_keys == 0


def test_pointer_lands_within_one_pixel(receiver: Receiver, injector: XTestInjector) -> None:
    points = [(0.0, 0.0), (0.25, 0.75), (0.5, 0.5), (0.999, 0.001), (1 / 3, 2 / 3)]
    for x, y in points:
        injector.inject(MouseMove(x, y))
    got = [g for g in receiver.received(injector) if g[0] == "motion"]
    assert len(got) == len(points)
    for (_, gx, gy), (x, y) in zip(got, points, strict=True):
        assert abs(gx - x * W) <= 1 and abs(gy - y * H) <= 1


def test_target_region(receiver: Receiver, injector: XTestInjector) -> None:
    injector.set_target_region(640, 360, 320, 180)  # the picture shows this quarter
    injector.inject(MouseMove(0.0, 0.0))
    injector.inject(MouseMove(0.5, 0.5))
    injector.inject(MouseMove(1.0, 1.0))
    got = receiver.received(injector)
    assert got == [("motion", 640, 360), ("motion", 800, 450), ("motion", 959, 539)]


def test_fractional_scroll_accumulates(receiver: Receiver, injector: XTestInjector) -> None:
    injector.inject(Scroll(0.0, 0.4))
    assert receiver.received(injector) == []
    injector.inject(Scroll(0.0, 0.7))  # 1.1 notches: one click, 0.1 kept
    assert receiver.received(injector) == [("button", True, 4), ("button", False, 4)]
    injector.inject(Scroll(0.0, -0.3))  # reversal: the kept 0.1 up is dropped, not subtracted
    injector.inject(Scroll(0.0, -0.7))
    assert receiver.received(injector) == [("button", True, 5), ("button", False, 5)]


def test_release_all_releases_held(receiver: Receiver, injector: XTestInjector) -> None:
    injector.inject_many(
        [KeyEvent(K["A"], True), KeyEvent(K["RIGHTSHIFT"], True), MouseButton(1, True)]
    )
    receiver.received(injector)
    injector.inject(KeyEvent(K["A"], True))  # duplicate: not sent again
    assert receiver.received(injector) == []
    injector.release_all()
    got = receiver.received(injector)
    assert got == [
        ("key", False, XK.XK_a, True),
        ("key", False, XK.XK_Shift_R, True),
        ("button", False, 1),
    ]
    assert injector.held_keys == set() and injector.held_buttons == set()


def test_keysym_mode_on_a_real_display(receiver: Receiver, x_server: str) -> None:
    inj = XTestInjector(display=x_server, key_mode="keysym")
    try:
        assert inj.used_key_mode == "keysym"
        for event in [*press(K["Q"]), *press(K["KP7"]), *press(K["ESC"])]:
            inj.inject(event)
        got = [(g[1], g[2]) for g in receiver.received(inj)]
        assert got == [
            (True, XK.XK_q), (False, XK.XK_q),
            (True, XK.XK_KP_Home), (False, XK.XK_KP_Home),
            (True, XK.XK_Escape), (False, XK.XK_Escape),
        ]  # fmt: skip
    finally:
        inj.close()


def test_both_key_modes_agree_on_xvfb(injector: XTestInjector, x_server: str) -> None:
    """The keysym table and the evdev table name the same keys (checked on a real keymap)."""
    d = Display(x_server)
    try:
        info = d.display.info
        mapping = d.get_keyboard_mapping(info.min_keycode, info.max_keycode - info.min_keycode + 1)
    finally:
        d.close()
    by_position, _ = build_keycode_map(info.min_keycode, mapping, "position")
    by_keysym, _ = build_keycode_map(info.min_keycode, mapping, "keysym")
    assert len(by_keysym) > 100
    for usage, keycode in by_keysym.items():
        assert by_position[usage] == keycode, hex(usage)
    assert by_position == injector.keycodes
    for usage, keycode in by_position.items():
        if keycode == HID_TO_EVDEV[usage] + 8:
            continue
        pytest.fail(f"{usage:#x} did not go by position")


def test_unmapped_keys_are_counted(receiver: Receiver, injector: XTestInjector) -> None:
    injector.inject_many(press(0x82))  # locking Caps Lock: in no table
    injector.inject_many(press(K["YEN"]))  # a Japanese key: no symbol on a US keymap
    assert receiver.received(injector) == []
    assert injector.counters.unmapped_keys == 2 and injector.counters.stray_releases == 2


def test_gamepads_go_to_uinput_pads(x_server: str) -> None:
    # Fake uinput device (this machine has no /dev/uinput): XTest cannot do pads itself.
    made: list[str] = []

    class Dev:
        def write(self, etype: int, code: int, value: int) -> None: ...
        def syn(self) -> None: ...
        def close(self) -> None: ...

    def factory(spec: DeviceSpec) -> Dev:
        made.append(spec.name)
        return Dev()

    with open_injector("xtest", display=x_server, device_factory=factory) as inj:
        inj.inject(GamepadEvent(3, buttons=((0, True),)))
        assert made == ["Wavry gamepad 3"] and inj.counters.dropped_gamepad == 0
    with open_injector("xtest", display=x_server, gamepads=False) as inj:
        inj.inject(GamepadEvent(3, buttons=((0, True),)))
        assert inj.counters.dropped_gamepad == 1


def test_unreachable_display_is_unavailable() -> None:
    for display in (":9999", "not a display"):
        with pytest.raises(InjectorUnavailable, match="X11 session"):
            XTestInjector(display=display)


def test_auto_picks_xtest_under_x11(x_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    with open_injector("auto") as inj:
        assert isinstance(inj, XTestInjector)


# -- build_keycode_map on synthetic keymaps (no server needed) ----------------------------------

_PROBES = {9: XK.XK_Escape, 36: XK.XK_Return, 65: XK.XK_space, 50: XK.XK_Shift_L,
           37: XK.XK_Control_L, 67: XK.XK_F1}  # fmt: skip


def _mapping(entries: dict[int, tuple[int, ...]]) -> list[list[int]]:
    return [
        list(entries.get(kc, ())) + [0] * (4 - len(entries.get(kc, ()))) for kc in range(8, 256)
    ]


def test_position_mode_keeps_positions_across_layouts() -> None:
    # A German-style layout on evdev numbering: the keys at US 'y' and 'z' are swapped.
    german = {kc: (ks,) for kc, ks in _PROBES.items()} | {29: (XK.XK_z,), 52: (XK.XK_y,)}
    by_pos, mode = build_keycode_map(8, _mapping(german), "auto")
    assert mode == "position"
    assert by_pos[K["Y"]] == 29 and by_pos[K["Z"]] == 52  # the key where US 'y' is: it types z
    by_sym, mode = build_keycode_map(8, _mapping(german), "keysym")
    assert mode == "keysym"
    assert by_sym[K["Y"]] == 52 and by_sym[K["Z"]] == 29  # the key that types y


def test_auto_uses_keysyms_on_other_numberings() -> None:
    odd = {100: (XK.XK_a, XK.XK_A), 200: (XK.XK_Escape,), 12: (XK.XK_3, XK.XK_numbersign)}
    keycodes, mode = build_keycode_map(8, _mapping(odd), "auto")
    assert mode == "keysym"
    assert keycodes == {K["A"]: 100, K["ESC"]: 200, K["3"]: 12}  # numbersign is not column 0


def test_position_falls_back_to_keysym_for_an_empty_keycode() -> None:
    base = {kc: (ks,) for kc, ks in _PROBES.items()} | {250: (XK.XK_a,)}  # 38 (evdev A) empty
    keycodes, mode = build_keycode_map(8, _mapping(base), "position")
    assert mode == "position" and keycodes[K["A"]] == 250 and keycodes[K["ESC"]] == 9
    assert K["B"] not in keycodes


def test_lost_display_is_a_typed_error(private_xvfb: tuple[str, Any]) -> None:
    display, proc = private_xvfb
    inj = XTestInjector(display=display)
    inj.inject(KeyEvent(K["A"], True))
    proc.kill()
    proc.wait()
    with pytest.raises(InjectorUnavailable, match="connection lost"):
        for _ in range(1000):  # the first writes may still fit the socket buffer
            inj.inject(MouseRelative(1.0, 0.0))
    inj.close()  # does not raise: the held key cannot and need not be released
