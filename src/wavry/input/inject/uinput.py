"""uinput injection: virtual kernel input devices, so it works under Wayland, X11 and the console.

Devices (created through a :data:`~wavry.input.inject.base.VirtualDeviceFactory`; the real one
wraps ``evdev.UInput``, tests pass a recording fake):

* a keyboard with every key of :data:`wavry.input.keymap.HID_TO_EVDEV`;
* a relative mouse: REL_X/Y, wheels (REL_WHEEL/REL_HWHEEL plus the 1/120-notch ``_HI_RES``
  variants, so fractional scrolling is smooth where the compositor supports it) and the five
  buttons (BTN_LEFT, MIDDLE, RIGHT, SIDE = back, EXTRA = forward);
* an absolute pointer, ABS_X/Y 0..65535 spanning the whole desktop. It is a separate device
  because a device with both relative and absolute axes is classified unpredictably (udev
  treats "absolute axes + mouse buttons" as an absolute mouse, like a VM's tablet). Buttons and
  wheels always go through the relative mouse; compositors merge both into the one seat pointer;
* one pad per ``gamepad_id``, created on first use, at most ``max_gamepads``.

Every state change is followed by SYN_REPORT, so each press or motion is its own frame.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from wavry.input.events import GamepadAxis, GamepadButton, GamepadEvent
from wavry.input.inject.base import (
    DeviceSpec,
    InjectorOptions,
    InjectorUnavailable,
    InputInjector,
    VirtualDevice,
    VirtualDeviceFactory,
    register_injector,
)
from wavry.input.inject.gamepad import STICK_MAX, STICK_MIN, TRIGGER_MAX, axis_to_device
from wavry.input.keymap import HID_TO_EVDEV

__all__ = ["UInputGamepads", "UInputInjector", "evdev_device_factory"]

logger = logging.getLogger(__name__)

# Linux input-event-codes.h (python-evdev's ecodes is Linux-only; tests check these against it).
EV_KEY, EV_REL, EV_ABS = 0x01, 0x02, 0x03
REL_X, REL_Y, REL_HWHEEL, REL_WHEEL = 0x00, 0x01, 0x06, 0x08
REL_WHEEL_HI_RES, REL_HWHEEL_HI_RES = 0x0B, 0x0C
ABS_X, ABS_Y, ABS_Z, ABS_RX, ABS_RY, ABS_RZ = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05
ABS_HAT0X, ABS_HAT0Y = 0x10, 0x11
BTN_LEFT, BTN_RIGHT, BTN_MIDDLE, BTN_SIDE, BTN_EXTRA = 0x110, 0x111, 0x112, 0x113, 0x114
BTN_SOUTH, BTN_EAST, BTN_NORTH, BTN_WEST = 0x130, 0x131, 0x133, 0x134
BTN_TL, BTN_TR, BTN_SELECT, BTN_START, BTN_MODE = 0x136, 0x137, 0x13A, 0x13B, 0x13C
BTN_THUMBL, BTN_THUMBR = 0x13D, 0x13E
BUS_USB = 0x03

#: ABS_X/Y range of the absolute pointer.
ABS_POINTER_MAX = 65535
#: Kernel hi-res wheel units per notch.
HI_RES_PER_NOTCH = 120

MOUSE_BUTTONS = {1: BTN_LEFT, 2: BTN_MIDDLE, 3: BTN_RIGHT, 4: BTN_SIDE, 5: BTN_EXTRA}

#: SDL pad button -> evdev code, as the kernel's xpad driver reports an Xbox 360 pad: the X
#: button (left) is BTN_X = 0x133, which the kernel also names BTN_NORTH, and Y (top) is BTN_Y =
#: 0x134 (BTN_WEST). SDL and Steam expect exactly this for the 045e:028e ids the pad presents;
#: following gamepad.rst's compass names instead would swap X and Y in every game.
PAD_BUTTONS = {
    GamepadButton.A: BTN_SOUTH,
    GamepadButton.B: BTN_EAST,
    GamepadButton.X: BTN_NORTH,
    GamepadButton.Y: BTN_WEST,
    GamepadButton.BACK: BTN_SELECT,
    GamepadButton.GUIDE: BTN_MODE,
    GamepadButton.START: BTN_START,
    GamepadButton.LEFTSTICK: BTN_THUMBL,
    GamepadButton.RIGHTSTICK: BTN_THUMBR,
    GamepadButton.LEFTSHOULDER: BTN_TL,
    GamepadButton.RIGHTSHOULDER: BTN_TR,
}
PAD_AXES = {
    GamepadAxis.LEFTX: ABS_X,
    GamepadAxis.LEFTY: ABS_Y,
    GamepadAxis.RIGHTX: ABS_RX,
    GamepadAxis.RIGHTY: ABS_RY,
    GamepadAxis.TRIGGERLEFT: ABS_Z,
    GamepadAxis.TRIGGERRIGHT: ABS_RZ,
}
_DPAD = {
    GamepadButton.DPAD_UP: (0, -1),
    GamepadButton.DPAD_DOWN: (0, 1),
    GamepadButton.DPAD_LEFT: (-1, 0),
    GamepadButton.DPAD_RIGHT: (1, 0),
}

_HELP = (
    "load the uinput module (modprobe uinput) and give the host user write access to "
    "/dev/uinput (a udev rule or the 'input' group), or run the host under X11 to use XTest"
)


def evdev_device_factory(spec: DeviceSpec) -> VirtualDevice:
    """Create a real device through /dev/uinput (python-evdev)."""
    if not os.path.exists("/dev/uinput"):
        raise InjectorUnavailable(f"no /dev/uinput: {_HELP}")
    try:
        from evdev import UInput, UInputError
    except ImportError as exc:  # not on Linux, or the wheel is missing
        raise InjectorUnavailable(f"python-evdev is not installed ({exc})") from exc
    try:
        device: VirtualDevice = UInput(
            events={k: list(v) for k, v in spec.events.items()},
            name=spec.name,
            vendor=spec.vendor,
            product=spec.product,
            version=spec.version,
            bustype=spec.bustype,
        )
    except (UInputError, OSError) as exc:
        raise InjectorUnavailable(f"cannot create {spec.name!r}: {exc}; {_HELP}") from exc
    return device


def _abs(code: int, lo: int, hi: int, fuzz: int = 0, flat: int = 0) -> tuple[int, tuple[int, ...]]:
    return code, (0, lo, hi, fuzz, flat, 0)


def _pad_spec(gamepad_id: int) -> DeviceSpec:
    sticks = [_abs(c, STICK_MIN, STICK_MAX, 16, 128) for c in (ABS_X, ABS_Y, ABS_RX, ABS_RY)]
    triggers = [_abs(c, 0, TRIGGER_MAX) for c in (ABS_Z, ABS_RZ)]
    hat = [_abs(c, -1, 1) for c in (ABS_HAT0X, ABS_HAT0Y)]
    return DeviceSpec(
        name=f"Wavry gamepad {gamepad_id}",
        events={EV_KEY: tuple(sorted(PAD_BUTTONS.values())), EV_ABS: (*sticks, *triggers, *hat)},
        vendor=0x045E,  # Microsoft Xbox 360 pad ids: games and SDL know its layout
        product=0x028E,
        version=0x0110,
        bustype=BUS_USB,
    )


@dataclass(slots=True)
class _Pad:
    device: VirtualDevice
    axes: dict[int, int] = field(default_factory=dict)  # evdev code -> value last written
    buttons: set[int] = field(default_factory=set)  # SDL buttons held (d-pad included)
    hat: tuple[int, int] = (0, 0)


class UInputGamepads:
    """Virtual pads keyed by ``gamepad_id``, created on first use, at most *max_pads*."""

    def __init__(self, factory: VirtualDeviceFactory, *, max_pads: int = 8) -> None:
        self._factory = factory
        self._max = max_pads
        self._pads: dict[int, _Pad] = {}
        self._unavailable: str | None = None
        self._warned_full = False

    @property
    def active(self) -> tuple[int, ...]:
        return tuple(sorted(self._pads))

    def handle(self, event: GamepadEvent) -> bool:
        """Apply *event*; False when it was dropped (too many pads, or no uinput)."""
        pad = self._pads.get(event.gamepad_id)
        if pad is None:
            pad = self._create(event.gamepad_id)
            if pad is None:
                return False
        dev = pad.device
        wrote = False
        for axis, value in event.axes:
            abs_code = PAD_AXES[GamepadAxis(axis)]
            v = axis_to_device(axis, value)
            if pad.axes.get(abs_code, 0) != v:
                pad.axes[abs_code] = v
                dev.write(EV_ABS, abs_code, v)
                wrote = True
        for button, pressed in event.buttons:
            if pressed == (button in pad.buttons):
                continue
            (pad.buttons.add if pressed else pad.buttons.discard)(button)
            code = PAD_BUTTONS.get(GamepadButton(button))
            if code is not None:
                dev.write(EV_KEY, code, int(pressed))
                wrote = True
        if self._write_hat(pad) or wrote:
            dev.syn()
        return True

    def release_all(self) -> None:
        """Release every button and re-centre every axis (one frame per pad that changed)."""
        for pad in self._pads.values():
            changed = bool(pad.buttons) or any(pad.axes.values())
            for button in sorted(pad.buttons):
                code = PAD_BUTTONS.get(GamepadButton(button))
                if code is not None:
                    pad.device.write(EV_KEY, code, 0)
            pad.buttons.clear()
            for code, value in sorted(pad.axes.items()):
                if value:
                    pad.device.write(EV_ABS, code, 0)
            pad.axes.clear()
            if self._write_hat(pad) or changed:
                pad.device.syn()

    def remove(self, gamepad_id: int) -> None:
        pad = self._pads.pop(gamepad_id, None)
        if pad is not None:
            pad.device.close()
            logger.info("virtual gamepad %d removed", gamepad_id)

    def close(self) -> None:
        for gamepad_id in list(self._pads):
            self.remove(gamepad_id)

    def _create(self, gamepad_id: int) -> _Pad | None:
        if self._unavailable is not None:
            return None
        if len(self._pads) >= self._max:
            if not self._warned_full:
                logger.warning("gamepad %d dropped: %d virtual pads exist", gamepad_id, self._max)
                self._warned_full = True
            return None
        try:
            device = self._factory(_pad_spec(gamepad_id))
        except InjectorUnavailable as exc:
            # Remember the reason: retrying for every stick report would only repeat it.
            self._unavailable = str(exc)
            logger.warning("gamepads disabled: %s", exc)
            return None
        logger.info("virtual gamepad %d created", gamepad_id)
        pad = _Pad(device)
        self._pads[gamepad_id] = pad
        return pad

    @staticmethod
    def _write_hat(pad: _Pad) -> bool:
        """Write the hat from the d-pad buttons held; True if it changed."""
        hx = sum(_DPAD[GamepadButton(b)][0] for b in pad.buttons if b in _DPAD)
        hy = sum(_DPAD[GamepadButton(b)][1] for b in pad.buttons if b in _DPAD)
        if hx != pad.hat[0]:
            pad.device.write(EV_ABS, ABS_HAT0X, hx)
        if hy != pad.hat[1]:
            pad.device.write(EV_ABS, ABS_HAT0Y, hy)
        changed = pad.hat != (hx, hy)
        pad.hat = (hx, hy)
        return changed


class _Wheel:
    """Hi-res wheel accumulation: 1/120-notch units every event, whole notches when due."""

    __slots__ = ("_rest", "_acc")

    def __init__(self) -> None:
        self._rest = 0.0  # below one hi-res unit
        self._acc = 0  # hi-res units not yet reported as a notch

    def step(self, notches: float) -> tuple[int, int]:
        if (notches > 0 and self._acc < 0) or (notches < 0 and self._acc > 0):
            # Reversal: a half-turned notch in the old direction must not delay the new one.
            self._rest, self._acc = 0.0, 0
        units = self._rest + notches * HI_RES_PER_NOTCH
        hi = int(units)
        self._rest = units - hi
        self._acc += hi
        whole = int(self._acc / HI_RES_PER_NOTCH)
        self._acc -= whole * HI_RES_PER_NOTCH
        return hi, whole


class UInputInjector(InputInjector):
    """Keyboard, mouse, absolute pointer and gamepads through uinput."""

    name = "uinput"

    def __init__(
        self,
        *,
        device_factory: VirtualDeviceFactory = evdev_device_factory,
        screen_size: tuple[int, int] | None = None,
        max_gamepads: int = 8,
    ) -> None:
        super().__init__(screen_size=screen_size)
        buttons = tuple(sorted(MOUSE_BUTTONS.values()))
        created: list[VirtualDevice] = []
        try:
            keys = tuple(sorted(set(HID_TO_EVDEV.values())))
            self._kbd = device_factory(DeviceSpec("Wavry keyboard", {EV_KEY: keys}))
            created.append(self._kbd)
            rel = (REL_X, REL_Y, REL_HWHEEL, REL_WHEEL, REL_WHEEL_HI_RES, REL_HWHEEL_HI_RES)
            self._mouse = device_factory(
                DeviceSpec("Wavry mouse", {EV_KEY: buttons, EV_REL: rel}, product=0x5753)
            )
            created.append(self._mouse)
            axes = (_abs(ABS_X, 0, ABS_POINTER_MAX), _abs(ABS_Y, 0, ABS_POINTER_MAX))
            self._pointer = device_factory(
                DeviceSpec(
                    "Wavry absolute pointer", {EV_KEY: buttons, EV_ABS: axes}, product=0x5754
                )
            )
        except BaseException:
            for dev in created:
                dev.close()
            raise
        self._pads = UInputGamepads(device_factory, max_pads=max_gamepads)
        self._vwheel = _Wheel()
        self._hwheel = _Wheel()

    @property
    def gamepads(self) -> UInputGamepads:
        return self._pads

    def _key(self, usage: int, pressed: bool) -> bool:
        code = HID_TO_EVDEV.get(usage)
        if code is None:
            return False
        self._kbd.write(EV_KEY, code, int(pressed))
        self._kbd.syn()
        return True

    def _button(self, button: int, pressed: bool) -> None:
        self._mouse.write(EV_KEY, MOUSE_BUTTONS[button], int(pressed))
        self._mouse.syn()

    def _move_to(self, x: float, y: float) -> None:
        region, screen = self.target_region, self.screen_size
        if region is None or screen is None:
            ax, ay = (min(int(v * (ABS_POINTER_MAX + 1)), ABS_POINTER_MAX) for v in (x, y))
        else:
            # The centre of the target pixel, in the device range spanning the whole desktop.
            px, py = region.pixel(x, y)
            ax = min(int((px + 0.5) * (ABS_POINTER_MAX + 1) / screen[0]), ABS_POINTER_MAX)
            ay = min(int((py + 0.5) * (ABS_POINTER_MAX + 1) / screen[1]), ABS_POINTER_MAX)
        self._pointer.write(EV_ABS, ABS_X, ax)
        self._pointer.write(EV_ABS, ABS_Y, ay)
        self._pointer.syn()

    def _move_by(self, dx: int, dy: int) -> None:
        if dx:
            self._mouse.write(EV_REL, REL_X, dx)
        if dy:
            self._mouse.write(EV_REL, REL_Y, dy)
        self._mouse.syn()

    def _scroll(self, dx: float, dy: float) -> None:
        wrote = False
        for wheel, notches, hi_code, code in (
            (self._vwheel, dy, REL_WHEEL_HI_RES, REL_WHEEL),
            (self._hwheel, dx, REL_HWHEEL_HI_RES, REL_HWHEEL),
        ):
            if not notches:
                continue
            hi, whole = wheel.step(notches)
            if hi:
                self._mouse.write(EV_REL, hi_code, hi)
                wrote = True
            if whole:
                self._mouse.write(EV_REL, code, whole)
        if wrote:
            self._mouse.syn()

    def _gamepad(self, event: GamepadEvent) -> None:
        if not self._pads.handle(event):
            self.counters.dropped_gamepad += 1

    def _gamepad_gone(self, gamepad_id: int) -> None:
        self._pads.remove(gamepad_id)

    def _release_gamepads(self) -> None:
        self._pads.release_all()

    def _close(self) -> None:
        self._pads.close()
        for dev in (self._kbd, self._mouse, self._pointer):
            dev.close()


@register_injector("uinput")
def _open_uinput(opts: InjectorOptions) -> InputInjector:
    return UInputInjector(
        device_factory=opts.device_factory or evdev_device_factory,
        screen_size=opts.screen_size,
        max_gamepads=opts.max_gamepads,
    )
