"""Typed input events and their protobuf (``rift_pb2.InputMessage``) encoding.

The client builds these from SDL events and sends them; the host decodes what arrives with
:func:`from_proto` and hands the result to an injector. Conventions (the wire contract):

* **Keys** are USB HID usages of the keyboard page (0x07), ``KEY_USAGE_MIN..KEY_USAGE_MAX``
  (4 = 'a' .. 0xE7 = right GUI). They name *physical key positions* (as on a US layout), like SDL
  scancodes; the host's layout decides which character a position produces.
* **Absolute pointer** ``MouseMove(x, y)``: normalised 0..1 of the streamed picture, (0, 0) its
  top-left corner. Send a pixel's centre, ``((col + 0.5) / width, (row + 0.5) / height)``: the
  host maps ``x`` to column ``floor(x * width)`` of its target region, so float32 rounding
  never moves the pointer to a neighbouring pixel.
* **Relative pointer** ``MouseRelative(dx, dy)``: host pointer pixels (after any sensitivity
  scaling on the client); fractions accumulate in the injector.
* **Buttons**: 1 left, 2 middle, 3 right, 4 back, 5 forward.
* **Scroll** in notches (float, high-resolution wheels send fractions); ``+dy`` = up (away from
  the user), ``+dx`` = right.
* **Gamepads**: SDL GameController numbering (:class:`GamepadAxis`, :class:`GamepadButton`);
  stick axes -1..1 (-1 = left/up), triggers 0..1.

Floats travel as protobuf ``float`` (32 bit): a decoded event equals the sent one after rounding
to float32.

**Peer input is untrusted.** :func:`from_proto` never raises anything but
:class:`InputDecodeError`. Its policy: *quantities saturate, identifiers are refused*. A finite
coordinate, motion, scroll or axis value outside its range is clamped (a pointer pushed past the
edge stays at the edge: harmless, and float rounding on the client can overshoot by an ulp);
NaN/inf, an unknown key usage, button, axis or gamepad id, a duplicated axis/button in one
gamepad message, or an empty message is refused.

Constructors are for *our* code and refuse anything out of range with ``ValueError``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from wavry.rift.proto import rift_pb2

__all__ = [
    "KEY_USAGE_MAX",
    "KEY_USAGE_MIN",
    "MAX_GAMEPAD_ID",
    "MAX_RELATIVE",
    "MAX_SCROLL_NOTCHES",
    "GamepadAxis",
    "GamepadButton",
    "GamepadConnected",
    "GamepadDisconnected",
    "GamepadEvent",
    "InputDecodeError",
    "InputError",
    "InputEvent",
    "KeyEvent",
    "MouseButton",
    "MouseButtonId",
    "MouseMove",
    "MouseRelative",
    "Scroll",
    "WireEvent",
    "from_proto",
    "to_proto",
]

#: HID keyboard-page usages a key event may carry: 0x04 ('a') .. 0xE7 (right GUI). 0..3 are
#: HID error codes ("no event", roll-over, POST fail, undefined), not keys.
KEY_USAGE_MIN = 0x04
KEY_USAGE_MAX = 0xE7
#: Largest relative motion per message, in pixels; more than any real mouse reports in one poll.
MAX_RELATIVE = 16384.0
#: Largest scroll per message, in notches.
MAX_SCROLL_NOTCHES = 64.0
#: Gamepad ids are client-side slots, not SDL instance ids (those grow on every reconnect).
MAX_GAMEPAD_ID = 255
_UINT64_MAX = (1 << 64) - 1


class InputError(Exception):
    """Base of the errors of ``wavry.input``."""


class InputDecodeError(InputError):
    """A peer's ``InputMessage`` is malformed or out of range. The host drops it and counts it."""


class MouseButtonId(enum.IntEnum):
    LEFT = 1
    MIDDLE = 2
    RIGHT = 3
    BACK = 4
    FORWARD = 5


class GamepadAxis(enum.IntEnum):
    """SDL_GameControllerAxis numbering."""

    LEFTX = 0
    LEFTY = 1
    RIGHTX = 2
    RIGHTY = 3
    TRIGGERLEFT = 4
    TRIGGERRIGHT = 5

    @property
    def is_trigger(self) -> bool:
        return self in (GamepadAxis.TRIGGERLEFT, GamepadAxis.TRIGGERRIGHT)


class GamepadButton(enum.IntEnum):
    """SDL_GameControllerButton numbering (A is the bottom face button)."""

    A = 0
    B = 1
    X = 2
    Y = 3
    BACK = 4
    GUIDE = 5
    START = 6
    LEFTSTICK = 7
    RIGHTSTICK = 8
    LEFTSHOULDER = 9
    RIGHTSHOULDER = 10
    DPAD_UP = 11
    DPAD_DOWN = 12
    DPAD_LEFT = 13
    DPAD_RIGHT = 14


_TRIGGERS = frozenset({GamepadAxis.TRIGGERLEFT.value, GamepadAxis.TRIGGERRIGHT.value})


def _check_finite(name: str, value: float) -> None:
    if not isinstance(value, float | int) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    _check_finite(name, value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value!r}")


def _check_int(name: str, value: int, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value!r}")


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """A key went down or up; ``usage`` is a HID keyboard-page usage (``wavry.input.keymap``)."""

    usage: int
    pressed: bool

    def __post_init__(self) -> None:
        _check_int("usage", self.usage, KEY_USAGE_MIN, KEY_USAGE_MAX)


@dataclass(frozen=True, slots=True)
class MouseMove:
    """Absolute pointer position, normalised 0..1 of the streamed picture (pixel centres)."""

    x: float
    y: float

    def __post_init__(self) -> None:
        _check_range("x", self.x, 0.0, 1.0)
        _check_range("y", self.y, 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class MouseRelative:
    """Relative pointer motion in host pixels (pointer lock / games)."""

    dx: float
    dy: float

    def __post_init__(self) -> None:
        _check_range("dx", self.dx, -MAX_RELATIVE, MAX_RELATIVE)
        _check_range("dy", self.dy, -MAX_RELATIVE, MAX_RELATIVE)


@dataclass(frozen=True, slots=True)
class MouseButton:
    button: int  # MouseButtonId value
    pressed: bool

    def __post_init__(self) -> None:
        _check_int("button", self.button, MouseButtonId.LEFT, MouseButtonId.FORWARD)


@dataclass(frozen=True, slots=True)
class Scroll:
    """Wheel motion in notches; +dy = up, +dx = right."""

    dx: float
    dy: float

    def __post_init__(self) -> None:
        _check_range("dx", self.dx, -MAX_SCROLL_NOTCHES, MAX_SCROLL_NOTCHES)
        _check_range("dy", self.dy, -MAX_SCROLL_NOTCHES, MAX_SCROLL_NOTCHES)


@dataclass(frozen=True, slots=True)
class GamepadEvent:
    """Changed axes and buttons of one pad. Each axis and button appears at most once."""

    gamepad_id: int
    axes: tuple[tuple[int, float], ...] = ()
    buttons: tuple[tuple[int, bool], ...] = ()

    def __post_init__(self) -> None:
        _check_int("gamepad_id", self.gamepad_id, 0, MAX_GAMEPAD_ID)
        seen: set[int] = set()
        for axis, value in self.axes:
            _check_int("axis", axis, GamepadAxis.LEFTX, GamepadAxis.TRIGGERRIGHT)
            lo = 0.0 if axis in _TRIGGERS else -1.0
            _check_range(f"axis {axis} value", value, lo, 1.0)
            if axis in seen:
                raise ValueError(f"axis {axis} appears twice")
            seen.add(axis)
        seen.clear()
        for button, _pressed in self.buttons:
            _check_int("button", button, GamepadButton.A, GamepadButton.DPAD_RIGHT)
            if button in seen:
                raise ValueError(f"button {button} appears twice")
            seen.add(button)


@dataclass(frozen=True, slots=True)
class GamepadConnected:
    """Local only (never on the wire): a pad appeared on this side."""

    gamepad_id: int
    name: str = ""

    def __post_init__(self) -> None:
        _check_int("gamepad_id", self.gamepad_id, 0, MAX_GAMEPAD_ID)


@dataclass(frozen=True, slots=True)
class GamepadDisconnected:
    """Local only: a pad went away. Injectors drop the virtual pad on receiving it."""

    gamepad_id: int

    def __post_init__(self) -> None:
        _check_int("gamepad_id", self.gamepad_id, 0, MAX_GAMEPAD_ID)


WireEvent = KeyEvent | MouseMove | MouseRelative | MouseButton | Scroll | GamepadEvent
InputEvent = WireEvent | GamepadConnected | GamepadDisconnected


def to_proto(event: WireEvent, timestamp_us: int) -> rift_pb2.InputMessage:
    """Encode *event*; ``timestamp_us`` is the client's capture time (microseconds)."""
    _check_int("timestamp_us", timestamp_us, 0, _UINT64_MAX)
    msg = rift_pb2.InputMessage(timestamp_us=timestamp_us)
    match event:
        case KeyEvent(usage=usage, pressed=pressed):
            msg.key.keycode = usage
            msg.key.pressed = pressed
        case MouseMove(x=x, y=y):
            msg.mouse_move.x = x
            msg.mouse_move.y = y
        case MouseRelative(dx=dx, dy=dy):
            msg.mouse_relative.dx = dx
            msg.mouse_relative.dy = dy
        case MouseButton(button=button, pressed=pressed):
            msg.mouse_button.button = button
            msg.mouse_button.pressed = pressed
        case Scroll(dx=dx, dy=dy):
            msg.scroll.dx = dx
            msg.scroll.dy = dy
        case GamepadEvent():
            msg.gamepad.gamepad_id = event.gamepad_id
            # Setting the id alone marks the oneof; an empty pad message still round-trips.
            msg.gamepad.SetInParent()
            for axis, value in event.axes:
                msg.gamepad.axes.add(axis=axis, value=value)
            for button, pressed in event.buttons:
                msg.gamepad.buttons.add(button=button, pressed=pressed)
        case _:
            raise TypeError(f"{type(event).__name__} is not sent on the wire")
    return msg


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise InputDecodeError(f"{name} is not finite")
    return value


def _clamp(name: str, value: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, _finite(name, value)))


def _decode_gamepad(pad: rift_pb2.Gamepad) -> GamepadEvent:
    if pad.gamepad_id > MAX_GAMEPAD_ID:
        raise InputDecodeError(f"gamepad_id {pad.gamepad_id} > {MAX_GAMEPAD_ID}")
    axes: dict[int, float] = {}
    for a in pad.axes:
        if a.axis > GamepadAxis.TRIGGERRIGHT:
            raise InputDecodeError(f"unknown gamepad axis {a.axis}")
        if a.axis in axes:
            raise InputDecodeError(f"gamepad axis {a.axis} appears twice")
        lo = 0.0 if a.axis in _TRIGGERS else -1.0
        axes[a.axis] = _clamp("gamepad axis value", a.value, lo, 1.0)
    buttons: dict[int, bool] = {}
    for b in pad.buttons:
        if b.button > GamepadButton.DPAD_RIGHT:
            raise InputDecodeError(f"unknown gamepad button {b.button}")
        if b.button in buttons:
            raise InputDecodeError(f"gamepad button {b.button} appears twice")
        buttons[b.button] = b.pressed
    return GamepadEvent(pad.gamepad_id, tuple(axes.items()), tuple(buttons.items()))


def from_proto(msg: rift_pb2.InputMessage) -> WireEvent:
    """Decode a peer's message. Raises only :class:`InputDecodeError` (policy in module doc)."""
    kind = msg.WhichOneof("event")
    if kind == "key":
        if not KEY_USAGE_MIN <= msg.key.keycode <= KEY_USAGE_MAX:
            raise InputDecodeError(f"key usage {msg.key.keycode:#x} is not a keyboard-page key")
        return KeyEvent(msg.key.keycode, msg.key.pressed)
    if kind == "mouse_move":
        m = msg.mouse_move
        return MouseMove(_clamp("x", m.x, 0.0, 1.0), _clamp("y", m.y, 0.0, 1.0))
    if kind == "mouse_relative":
        r = msg.mouse_relative
        return MouseRelative(
            _clamp("dx", r.dx, -MAX_RELATIVE, MAX_RELATIVE),
            _clamp("dy", r.dy, -MAX_RELATIVE, MAX_RELATIVE),
        )
    if kind == "mouse_button":
        if not MouseButtonId.LEFT <= msg.mouse_button.button <= MouseButtonId.FORWARD:
            raise InputDecodeError(f"unknown mouse button {msg.mouse_button.button}")
        return MouseButton(msg.mouse_button.button, msg.mouse_button.pressed)
    if kind == "scroll":
        s = msg.scroll
        return Scroll(
            _clamp("scroll dx", s.dx, -MAX_SCROLL_NOTCHES, MAX_SCROLL_NOTCHES),
            _clamp("scroll dy", s.dy, -MAX_SCROLL_NOTCHES, MAX_SCROLL_NOTCHES),
        )
    if kind == "gamepad":
        return _decode_gamepad(msg.gamepad)
    raise InputDecodeError("input message carries no event")
