"""Gamepad helpers: pad state snapshots, change tracking (client side) and device value ranges.

Client side, :class:`GamepadTracker` turns a poll of each pad (a :class:`GamepadState`) into a
:class:`~wavry.input.events.GamepadEvent` carrying only what changed, so an idle pad sends
nothing and a moving stick sends one axis. Host side, :func:`axis_to_device` maps wire values
onto the ranges of the virtual Xbox 360-style pad the uinput backend creates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from wavry.input.events import GamepadAxis, GamepadButton, GamepadEvent

__all__ = [
    "STICK_MAX",
    "STICK_MIN",
    "TRIGGER_MAX",
    "GamepadState",
    "GamepadTracker",
    "axis_to_device",
    "radial_deadzone",
]

#: evdev ranges of the virtual pad, as the Linux xpad driver reports an Xbox 360 pad.
STICK_MIN = -32768
STICK_MAX = 32767
TRIGGER_MAX = 255

_ALL_AXES = tuple(GamepadAxis)
_ALL_BUTTONS = tuple(GamepadButton)


def axis_to_device(axis: int, value: float) -> int:
    """Wire value (sticks -1..1, -1 = left/up; triggers 0..1) -> evdev value.

    Sticks use the full asymmetric int16 range so -1 and 1 both reach the ends; evdev and SDL
    agree that negative Y is up, so no axis is inverted.
    """
    if GamepadAxis(axis).is_trigger:
        return round(min(1.0, max(0.0, value)) * TRIGGER_MAX)
    v = min(1.0, max(-1.0, value))
    return round(v * -STICK_MIN) if v < 0 else round(v * STICK_MAX)


def radial_deadzone(x: float, y: float, deadzone: float) -> tuple[float, float]:
    """Zero a stick inside a circular dead zone and rescale the rest to start at 0.

    Radial rather than per-axis, so diagonals near the centre do not snap to the axes.
    """
    if not 0.0 <= deadzone < 1.0:
        raise ValueError("deadzone must be in [0, 1)")
    mag = math.hypot(x, y)
    if mag <= deadzone:
        return 0.0, 0.0
    scale = min(1.0, (mag - deadzone) / (1.0 - deadzone)) / mag
    return max(-1.0, min(1.0, x * scale)), max(-1.0, min(1.0, y * scale))


@dataclass(frozen=True, slots=True)
class GamepadState:
    """A full poll of one pad: every axis value (missing = rest) and the buttons held."""

    gamepad_id: int
    axes: Mapping[int, float] = field(default_factory=dict)
    buttons: frozenset[int] = frozenset()

    def axis(self, axis: int) -> float:
        return self.axes.get(axis, 0.0)


class GamepadTracker:
    """Remembers what was last sent per pad and emits only the differences.

    An axis counts as changed when it moved by at least *min_axis_change* since it was last
    sent, or when it reached rest or an end stop (so a released stick always re-centres exactly
    even after many small moves were suppressed). The first update of a pad, and the first after
    :meth:`forget`, sends the full state, so the host never relies on defaults it may not have.
    """

    def __init__(self, *, min_axis_change: float = 1 / 1024) -> None:
        if not 0.0 <= min_axis_change < 1.0:
            raise ValueError("min_axis_change must be in [0, 1)")
        self._min_change = min_axis_change
        self._sent: dict[int, tuple[dict[int, float], frozenset[int]]] = {}

    def update(self, state: GamepadState) -> GamepadEvent | None:
        last = self._sent.get(state.gamepad_id)
        values: dict[int, float] = {int(a): _clamp_axis(a, state.axis(a)) for a in _ALL_AXES}
        pressed = frozenset(b for b in state.buttons if b in _ALL_BUTTONS)
        if last is None:
            self._sent[state.gamepad_id] = (values, pressed)
            return GamepadEvent(
                state.gamepad_id,
                tuple(values.items()),
                tuple((int(b), b in pressed) for b in _ALL_BUTTONS),
            )
        sent_values, sent_pressed = last
        axes: list[tuple[int, float]] = []
        for a, v in values.items():
            old = sent_values[a]
            if v == old:
                continue
            at_stop = v in (0.0, 1.0, -1.0)
            if at_stop or abs(v - old) >= self._min_change:
                axes.append((a, v))
                sent_values[a] = v
        buttons = tuple(
            (int(b), b in pressed) for b in _ALL_BUTTONS if (b in pressed) != (b in sent_pressed)
        )
        self._sent[state.gamepad_id] = (sent_values, pressed)
        if not axes and not buttons:
            return None
        return GamepadEvent(state.gamepad_id, tuple(axes), buttons)

    def forget(self, gamepad_id: int) -> None:
        """The pad went away; its next update sends the full state again."""
        self._sent.pop(gamepad_id, None)


def _clamp_axis(axis: GamepadAxis, value: float) -> float:
    if not math.isfinite(value):
        return 0.0
    lo = 0.0 if axis.is_trigger else -1.0
    return min(1.0, max(lo, float(value)))
