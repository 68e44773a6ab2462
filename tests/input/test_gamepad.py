"""Gamepad helpers: change tracking for several pads, device ranges, dead zone."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wavry.input.events import GamepadAxis as A
from wavry.input.events import GamepadButton as B
from wavry.input.events import GamepadEvent
from wavry.input.inject.gamepad import (
    STICK_MAX,
    STICK_MIN,
    TRIGGER_MAX,
    GamepadState,
    GamepadTracker,
    axis_to_device,
    radial_deadzone,
)


def test_first_update_sends_the_full_state() -> None:
    tracker = GamepadTracker()
    ev = tracker.update(GamepadState(0, {A.LEFTX: 0.5}, frozenset({B.A})))
    assert ev is not None
    assert dict(ev.axes) == {0: 0.5, 1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0, 5: 0.0}
    assert dict(ev.buttons) == {b: b == B.A for b in range(15)}


def test_only_changes_are_sent_per_pad() -> None:
    tracker = GamepadTracker()
    tracker.update(GamepadState(0))
    tracker.update(GamepadState(1))
    assert tracker.update(GamepadState(0)) is None  # idle pad: nothing
    ev = tracker.update(GamepadState(1, {A.TRIGGERRIGHT: 0.75}, frozenset({B.DPAD_UP})))
    assert ev == GamepadEvent(1, ((A.TRIGGERRIGHT, 0.75),), ((B.DPAD_UP, True),))
    ev = tracker.update(GamepadState(1, {A.TRIGGERRIGHT: 0.75}))
    assert ev == GamepadEvent(1, (), ((B.DPAD_UP, False),))
    assert tracker.update(GamepadState(0)) is None  # pad 1's traffic did not touch pad 0


def test_small_moves_are_suppressed_but_rest_is_always_reached() -> None:
    tracker = GamepadTracker(min_axis_change=0.01)
    tracker.update(GamepadState(0))
    assert tracker.update(GamepadState(0, {A.LEFTY: 0.005})) is None
    assert tracker.update(GamepadState(0, {A.LEFTY: 0.009})) is None  # still < 0.01 from 0
    assert tracker.update(GamepadState(0, {A.LEFTY: 0.02})) == GamepadEvent(0, ((1, 0.02),))
    assert tracker.update(GamepadState(0, {A.LEFTY: 0.025})) is None
    # Back to rest: sent although it moved by less than the threshold since the last send.
    assert tracker.update(GamepadState(0, {A.LEFTY: 0.0})) == GamepadEvent(0, ((1, 0.0),))
    assert tracker.update(GamepadState(0, {A.LEFTY: 0.995})) == GamepadEvent(0, ((1, 0.995),))
    assert tracker.update(GamepadState(0, {A.LEFTY: 1.0})) == GamepadEvent(0, ((1, 1.0),))


def test_forget_resends_everything_and_bad_values_are_tamed() -> None:
    tracker = GamepadTracker()
    tracker.update(GamepadState(2))
    tracker.forget(2)
    ev = tracker.update(GamepadState(2, {A.LEFTX: math.nan, A.TRIGGERLEFT: -1.0, A.RIGHTX: 9}))
    assert ev is not None and len(ev.axes) == 6 and len(ev.buttons) == 15
    assert dict(ev.axes)[A.LEFTX] == 0.0 and dict(ev.axes)[A.TRIGGERLEFT] == 0.0
    assert dict(ev.axes)[A.RIGHTX] == 1.0


@given(
    st.lists(
        st.tuples(
            st.dictionaries(st.sampled_from(list(A)), st.floats(-1, 1)),
            st.frozensets(st.sampled_from(list(B))),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_applying_the_diffs_reproduces_the_state(polls: list[tuple[dict, frozenset]]) -> None:
    tracker = GamepadTracker(min_axis_change=0.0)
    axes: dict[int, float] = {}
    buttons: dict[int, bool] = {}
    for raw_axes, pressed in polls:
        ev = tracker.update(GamepadState(5, raw_axes, pressed))
        if ev is not None:
            axes.update(ev.axes)
            buttons.update(ev.buttons)
        for axis in A:
            lo = 0.0 if axis.is_trigger else -1.0
            assert axes[axis] == max(lo, raw_axes.get(axis, 0.0))
        assert {b for b, down in buttons.items() if down} == set(pressed)


def test_axis_to_device_ranges() -> None:
    assert axis_to_device(A.LEFTX, -1.0) == STICK_MIN
    assert axis_to_device(A.LEFTX, 1.0) == STICK_MAX
    assert axis_to_device(A.LEFTY, 0.0) == 0
    assert axis_to_device(A.RIGHTY, -0.5) == -16384
    assert axis_to_device(A.TRIGGERLEFT, 1.0) == TRIGGER_MAX
    assert axis_to_device(A.TRIGGERRIGHT, 0.5) == 128
    assert axis_to_device(A.TRIGGERRIGHT, -0.5) == 0


def test_radial_deadzone() -> None:
    assert radial_deadzone(0.05, 0.05, 0.1) == (0.0, 0.0)
    x, y = radial_deadzone(0.55, 0.0, 0.1)
    assert x == pytest.approx(0.5) and y == 0.0
    x, y = radial_deadzone(1.0, 1.0, 0.1)  # a corner stays inside the unit square
    assert math.hypot(x, y) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        radial_deadzone(0, 0, 1.0)
