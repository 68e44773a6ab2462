"""uinput backend against a FAKE device.

The fake is used because this machine (and CI) has no /dev/uinput: the kernel here has no
uinput driver, so no real virtual device can be created. The fake records exactly what the
backend would write to ``evdev.UInput`` (``write(type, code, value)`` and ``syn()``), and these
tests assert those evdev event sequences. ``test_open_uinput_here`` checks the real path.
"""

from __future__ import annotations

import os

import pytest
from evdev import ecodes as e

from wavry.input.events import (
    GamepadDisconnected,
    GamepadEvent,
    KeyEvent,
    MouseButton,
    MouseMove,
    MouseRelative,
    Scroll,
)
from wavry.input.inject import uinput as U
from wavry.input.inject.base import DeviceSpec, InjectorUnavailable, open_injector
from wavry.input.inject.uinput import UInputInjector
from wavry.input.keymap import HID_BY_NAME, HID_TO_EVDEV

SYN = ("syn",)
Entry = tuple[object, ...]


class FakeDevice:
    """Records writes (fake: /dev/uinput does not exist on this machine)."""

    def __init__(self, spec: DeviceSpec, log: list[tuple[str, Entry]]) -> None:
        self.spec = spec
        self.log = log
        self.closed = False

    def write(self, etype: int, code: int, value: int) -> None:
        assert not self.closed
        self.log.append((self.spec.name, (etype, code, value)))

    def syn(self) -> None:
        assert not self.closed
        self.log.append((self.spec.name, SYN))

    def close(self) -> None:
        self.closed = True


class FakeFactory:
    def __init__(self, fail_on: str | None = None) -> None:
        self.log: list[tuple[str, Entry]] = []
        self.devices: dict[str, FakeDevice] = {}
        self.fail_on = fail_on
        self.calls = 0

    def __call__(self, spec: DeviceSpec) -> FakeDevice:
        self.calls += 1
        if self.fail_on is not None and spec.name.startswith(self.fail_on):
            raise InjectorUnavailable("no /dev/uinput (fake)")
        dev = FakeDevice(spec, self.log)
        self.devices[spec.name] = dev
        return dev

    def take(self) -> list[tuple[str, Entry]]:
        out, self.log[:] = list(self.log), []
        return out


KBD, MOUSE, PTR = "Wavry keyboard", "Wavry mouse", "Wavry absolute pointer"


@pytest.fixture
def fake() -> FakeFactory:
    return FakeFactory()


@pytest.fixture
def inj(fake: FakeFactory) -> UInputInjector:
    return UInputInjector(device_factory=fake)


def test_constants_match_python_evdev() -> None:
    names = [n for n in dir(U) if n.split("_")[0] in ("EV", "REL", "ABS", "BTN", "BUS")]
    assert len(names) > 30
    for name in names:
        if name in ("ABS_POINTER_MAX",):
            continue
        assert getattr(U, name) == getattr(e, name), name
    assert U.BTN_NORTH == e.BTN_X and U.BTN_WEST == e.BTN_Y  # the xpad layout (see module)


def test_devices_and_capabilities(fake: FakeFactory, inj: UInputInjector) -> None:
    kbd, mouse, ptr = fake.devices[KBD].spec, fake.devices[MOUSE].spec, fake.devices[PTR].spec
    assert set(kbd.events[e.EV_KEY]) == set(HID_TO_EVDEV.values())
    assert set(mouse.events[e.EV_REL]) == {
        e.REL_X, e.REL_Y, e.REL_WHEEL, e.REL_HWHEEL, e.REL_WHEEL_HI_RES, e.REL_HWHEEL_HI_RES
    }  # fmt: skip
    buttons = {e.BTN_LEFT, e.BTN_RIGHT, e.BTN_MIDDLE, e.BTN_SIDE, e.BTN_EXTRA}
    assert set(mouse.events[e.EV_KEY]) == buttons
    assert e.EV_ABS not in mouse.events  # relative and absolute live on separate devices
    assert dict(ptr.events[e.EV_ABS]) == {
        e.ABS_X: (0, 0, 65535, 0, 0, 0),
        e.ABS_Y: (0, 0, 65535, 0, 0, 0),
    }
    assert set(ptr.events[e.EV_KEY]) == buttons  # udev classifies abs + buttons as a mouse
    assert fake.log == []


def test_keys(fake: FakeFactory, inj: UInputInjector) -> None:
    a, shift = HID_BY_NAME["A"], HID_BY_NAME["LEFTSHIFT"]
    inj.inject(KeyEvent(shift, True))
    inj.inject(KeyEvent(a, True))
    inj.inject(KeyEvent(a, True))  # duplicate press: ignored
    inj.inject(KeyEvent(a, False))
    inj.inject(KeyEvent(a, False))  # stray release: ignored
    inj.inject(KeyEvent(shift, False))
    assert fake.take() == [
        (KBD, (e.EV_KEY, e.KEY_LEFTSHIFT, 1)), (KBD, SYN),
        (KBD, (e.EV_KEY, e.KEY_A, 1)), (KBD, SYN),
        (KBD, (e.EV_KEY, e.KEY_A, 0)), (KBD, SYN),
        (KBD, (e.EV_KEY, e.KEY_LEFTSHIFT, 0)), (KBD, SYN),
    ]  # fmt: skip
    assert inj.counters.duplicate_presses == 1 and inj.counters.stray_releases == 1
    assert inj.counters.events == 6


def test_unmapped_key_is_counted_not_held(fake: FakeFactory, inj: UInputInjector) -> None:
    inj.inject(KeyEvent(0x82, True))  # locking Caps Lock: the kernel has no code for it
    assert fake.take() == [] and inj.counters.unmapped_keys == 1 and inj.held_keys == set()


def test_relative_motion_accumulates_fractions(fake: FakeFactory, inj: UInputInjector) -> None:
    inj.inject(MouseRelative(0.6, -0.4))
    assert fake.take() == []
    inj.inject(MouseRelative(0.6, -0.7))  # 1.2, -1.1
    inj.inject(MouseRelative(5.0, 0.0))  # 5.2, -0.1
    assert fake.take() == [
        (MOUSE, (e.EV_REL, e.REL_X, 1)), (MOUSE, (e.EV_REL, e.REL_Y, -1)), (MOUSE, SYN),
        (MOUSE, (e.EV_REL, e.REL_X, 5)), (MOUSE, SYN),
    ]  # fmt: skip


def test_absolute_motion_whole_desktop(fake: FakeFactory, inj: UInputInjector) -> None:
    inj.inject(MouseMove(0.0, 1.0))
    inj.inject(MouseMove(0.5, 0.25))
    assert fake.take() == [
        (PTR, (e.EV_ABS, e.ABS_X, 0)), (PTR, (e.EV_ABS, e.ABS_Y, 65535)), (PTR, SYN),
        (PTR, (e.EV_ABS, e.ABS_X, 32768)), (PTR, (e.EV_ABS, e.ABS_Y, 16384)), (PTR, SYN),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="screen size unknown"):
        inj.set_target_region(0, 0, 100, 100)


def test_absolute_motion_into_a_region(fake: FakeFactory) -> None:
    # Two 1920x1080 monitors side by side; the stream shows the right one.
    inj = UInputInjector(device_factory=fake, screen_size=(3840, 1080))
    inj.set_target_region(1920, 0, 1920, 1080)
    inj.inject(MouseMove(0.5 / 1920, 0.5 / 1080))  # centre of the region's top-left pixel
    inj.inject(MouseMove(1.0, 1.0))
    # pixel (1920, 0) centre -> 1920.5/3840*65536 = 32776; pixel (3839, 1079) -> 65527/65505
    assert fake.take() == [
        (PTR, (e.EV_ABS, e.ABS_X, 32776)), (PTR, (e.EV_ABS, e.ABS_Y, 30)), (PTR, SYN),
        (PTR, (e.EV_ABS, e.ABS_X, 65527)), (PTR, (e.EV_ABS, e.ABS_Y, 65505)), (PTR, SYN),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="exceeds"):
        inj.set_target_region(1920, 0, 1921, 1080)


def test_buttons(fake: FakeFactory, inj: UInputInjector) -> None:
    codes = [e.BTN_LEFT, e.BTN_MIDDLE, e.BTN_RIGHT, e.BTN_SIDE, e.BTN_EXTRA]
    for button in range(1, 6):
        inj.inject(MouseButton(button, True))
        inj.inject(MouseButton(button, False))
    expected: list[tuple[str, Entry]] = []
    for code in codes:
        expected += [(MOUSE, (e.EV_KEY, code, 1)), (MOUSE, SYN)]
        expected += [(MOUSE, (e.EV_KEY, code, 0)), (MOUSE, SYN)]
    assert fake.take() == expected


def test_scroll_hi_res_and_notches(fake: FakeFactory, inj: UInputInjector) -> None:
    inj.inject(Scroll(0.0, 1.0))  # one notch up
    inj.inject(Scroll(0.0, 0.5))  # half a notch: hi-res only
    inj.inject(Scroll(0.0, 0.5))  # completes the notch
    inj.inject(Scroll(0.0, -0.25))  # reversal starts afresh
    inj.inject(Scroll(-2.0, 0.0))  # two notches left
    assert fake.take() == [
        (MOUSE, (e.EV_REL, e.REL_WHEEL_HI_RES, 120)), (MOUSE, (e.EV_REL, e.REL_WHEEL, 1)),
        (MOUSE, SYN),
        (MOUSE, (e.EV_REL, e.REL_WHEEL_HI_RES, 60)), (MOUSE, SYN),
        (MOUSE, (e.EV_REL, e.REL_WHEEL_HI_RES, 60)), (MOUSE, (e.EV_REL, e.REL_WHEEL, 1)),
        (MOUSE, SYN),
        (MOUSE, (e.EV_REL, e.REL_WHEEL_HI_RES, -30)), (MOUSE, SYN),
        (MOUSE, (e.EV_REL, e.REL_HWHEEL_HI_RES, -240)), (MOUSE, (e.EV_REL, e.REL_HWHEEL, -2)),
        (MOUSE, SYN),
    ]  # fmt: skip


PAD0 = "Wavry gamepad 0"


def test_gamepad_axes_buttons_and_dpad(fake: FakeFactory, inj: UInputInjector) -> None:
    inj.inject(GamepadEvent(0, axes=((0, -1.0), (1, 0.5), (5, 1.0)), buttons=((0, True),)))
    spec = fake.devices[PAD0].spec
    assert (spec.vendor, spec.product, spec.bustype) == (0x045E, 0x028E, e.BUS_USB)
    assert dict(spec.events[e.EV_ABS])[e.ABS_X] == (0, -32768, 32767, 16, 128, 0)
    assert dict(spec.events[e.EV_ABS])[e.ABS_RZ] == (0, 0, 255, 0, 0, 0)
    assert dict(spec.events[e.EV_ABS])[e.ABS_HAT0Y] == (0, -1, 1, 0, 0, 0)
    inj.inject(GamepadEvent(0, axes=((1, 0.5),), buttons=((11, True), (13, True))))  # up+left
    inj.inject(GamepadEvent(0, buttons=((11, False), (12, True), (2, True), (3, True))))
    inj.inject(GamepadEvent(0, buttons=((9, True), (10, True), (4, True), (6, True), (5, True))))
    inj.inject(GamepadEvent(0, buttons=((7, True), (8, True), (1, True))))
    assert fake.take() == [
        (PAD0, (e.EV_ABS, e.ABS_X, -32768)), (PAD0, (e.EV_ABS, e.ABS_Y, 16384)),
        (PAD0, (e.EV_ABS, e.ABS_RZ, 255)), (PAD0, (e.EV_KEY, e.BTN_SOUTH, 1)), (PAD0, SYN),
        # the unchanged Y axis is not re-sent; d-pad buttons become the hat
        (PAD0, (e.EV_ABS, e.ABS_HAT0X, -1)), (PAD0, (e.EV_ABS, e.ABS_HAT0Y, -1)), (PAD0, SYN),
        (PAD0, (e.EV_KEY, e.BTN_X, 1)), (PAD0, (e.EV_KEY, e.BTN_Y, 1)),
        (PAD0, (e.EV_ABS, e.ABS_HAT0Y, 1)), (PAD0, SYN),
        (PAD0, (e.EV_KEY, e.BTN_TL, 1)), (PAD0, (e.EV_KEY, e.BTN_TR, 1)),
        (PAD0, (e.EV_KEY, e.BTN_SELECT, 1)), (PAD0, (e.EV_KEY, e.BTN_START, 1)),
        (PAD0, (e.EV_KEY, e.BTN_MODE, 1)), (PAD0, SYN),
        (PAD0, (e.EV_KEY, e.BTN_THUMBL, 1)), (PAD0, (e.EV_KEY, e.BTN_THUMBR, 1)),
        (PAD0, (e.EV_KEY, e.BTN_EAST, 1)), (PAD0, SYN),
    ]  # fmt: skip


def test_several_pads_bounded_and_removed(fake: FakeFactory) -> None:
    inj = UInputInjector(device_factory=fake, max_gamepads=2)
    for pad in (0, 7, 9):
        inj.inject(GamepadEvent(pad, buttons=((0, True),)))
    assert inj.gamepads.active == (0, 7)
    assert inj.counters.dropped_gamepad == 1
    assert [name for name, _ in fake.take()] == [PAD0, PAD0, "Wavry gamepad 7", "Wavry gamepad 7"]
    inj.inject(GamepadDisconnected(7))
    assert fake.devices["Wavry gamepad 7"].closed and inj.gamepads.active == (0,)
    inj.inject(GamepadEvent(9, buttons=((0, True),)))  # the freed slot is reused
    assert inj.gamepads.active == (0, 9)


def test_gamepads_without_uinput_are_dropped_once(fake: FakeFactory) -> None:
    factory = FakeFactory(fail_on="Wavry gamepad")
    inj = UInputInjector(device_factory=factory)
    for _ in range(3):
        inj.inject(GamepadEvent(0, buttons=((0, True),)))
    assert inj.counters.dropped_gamepad == 3
    assert factory.calls == 4  # three devices at open, then one failed attempt, not three


def test_release_all(fake: FakeFactory, inj: UInputInjector) -> None:
    inj.inject_many(
        [
            KeyEvent(HID_BY_NAME["W"], True),
            KeyEvent(HID_BY_NAME["LEFTCTRL"], True),
            MouseButton(1, True),
            MouseButton(3, True),
            GamepadEvent(0, axes=((0, 0.5), (4, 1.0)), buttons=((0, True), (14, True))),
        ]
    )
    fake.take()
    inj.release_all()
    assert fake.take() == [
        (KBD, (e.EV_KEY, e.KEY_W, 0)), (KBD, SYN),
        (KBD, (e.EV_KEY, e.KEY_LEFTCTRL, 0)), (KBD, SYN),
        (MOUSE, (e.EV_KEY, e.BTN_LEFT, 0)), (MOUSE, SYN),
        (MOUSE, (e.EV_KEY, e.BTN_RIGHT, 0)), (MOUSE, SYN),
        (PAD0, (e.EV_KEY, e.BTN_SOUTH, 0)),
        (PAD0, (e.EV_ABS, e.ABS_X, 0)), (PAD0, (e.EV_ABS, e.ABS_Z, 0)),
        (PAD0, (e.EV_ABS, e.ABS_HAT0X, 0)), (PAD0, SYN),
    ]  # fmt: skip
    assert inj.held_keys == set() and inj.held_buttons == set()
    assert inj.counters.released_on_reset == 4
    inj.release_all()  # nothing left: nothing written
    assert fake.take() == []
    # Pressing again after a reset works (the state was cleared, not just the device).
    inj.inject(KeyEvent(HID_BY_NAME["W"], True))
    assert fake.take() == [(KBD, (e.EV_KEY, e.KEY_W, 1)), (KBD, SYN)]


def test_close_releases_and_closes_everything(fake: FakeFactory, inj: UInputInjector) -> None:
    inj.inject(KeyEvent(HID_BY_NAME["SPACE"], True))
    inj.inject(GamepadEvent(0))
    fake.take()
    inj.close()
    assert fake.take() == [(KBD, (e.EV_KEY, e.KEY_SPACE, 0)), (KBD, SYN)]
    assert all(dev.closed for dev in fake.devices.values()) and len(fake.devices) == 4
    inj.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        inj.inject(KeyEvent(4, True))


def test_failed_open_closes_what_was_created() -> None:
    factory = FakeFactory(fail_on="Wavry absolute pointer")
    with pytest.raises(InjectorUnavailable):
        UInputInjector(device_factory=factory)
    assert factory.devices[KBD].closed and factory.devices[MOUSE].closed


def test_open_injector_passes_options(fake: FakeFactory) -> None:
    inj = open_injector("uinput", device_factory=fake, screen_size=(800, 600), max_gamepads=1)
    assert isinstance(inj, UInputInjector) and inj.screen_size == (800, 600)
    inj.close()


def test_open_uinput_here() -> None:
    """On this machine there is no /dev/uinput: the real open fails with what to do."""
    if not os.path.exists("/dev/uinput"):
        with pytest.raises(InjectorUnavailable) as info:
            open_injector("uinput")
        msg = str(info.value)
        assert "no /dev/uinput" in msg and "modprobe uinput" in msg and "X11" in msg
    else:  # a machine with uinput: opening works or fails only with the typed error
        try:
            open_injector("uinput").close()
        except InjectorUnavailable as exc:
            assert "uinput" in str(exc)
