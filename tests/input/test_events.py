"""Input event model: validation, the wire encoding, and peer-input robustness."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wavry.input.events import (
    KEY_USAGE_MAX,
    KEY_USAGE_MIN,
    MAX_GAMEPAD_ID,
    MAX_RELATIVE,
    MAX_SCROLL_NOTCHES,
    GamepadAxis,
    GamepadButton,
    GamepadConnected,
    GamepadDisconnected,
    GamepadEvent,
    InputDecodeError,
    KeyEvent,
    MouseButton,
    MouseMove,
    MouseRelative,
    Scroll,
    WireEvent,
    from_proto,
    to_proto,
)
from wavry.rift.proto import rift_pb2


def f32(lo: float, hi: float) -> st.SearchStrategy[float]:
    # Values representable in float32, as the wire carries them, so round trips are exact.
    return st.floats(lo, hi, width=32)


def gamepad_events() -> st.SearchStrategy[GamepadEvent]:
    def axis_value(axis: int) -> st.SearchStrategy[tuple[int, float]]:
        lo = 0.0 if GamepadAxis(axis).is_trigger else -1.0
        return f32(lo, 1.0).map(lambda v: (axis, v))

    axes = st.lists(st.sampled_from(list(GamepadAxis)), unique=True).flatmap(
        lambda chosen: st.tuples(*(axis_value(int(a)) for a in chosen))
    )
    buttons = st.lists(
        st.tuples(st.sampled_from([int(b) for b in GamepadButton]), st.booleans()),
        unique_by=lambda t: t[0],
    ).map(tuple)
    return st.builds(GamepadEvent, st.integers(0, MAX_GAMEPAD_ID), axes, buttons)


wire_events: st.SearchStrategy[WireEvent] = st.one_of(
    st.builds(KeyEvent, st.integers(KEY_USAGE_MIN, KEY_USAGE_MAX), st.booleans()),
    st.builds(MouseMove, f32(0.0, 1.0), f32(0.0, 1.0)),
    st.builds(MouseRelative, f32(-MAX_RELATIVE, MAX_RELATIVE), f32(-MAX_RELATIVE, MAX_RELATIVE)),
    st.builds(MouseButton, st.integers(1, 5), st.booleans()),
    st.builds(
        Scroll,
        f32(-MAX_SCROLL_NOTCHES, MAX_SCROLL_NOTCHES),
        f32(-MAX_SCROLL_NOTCHES, MAX_SCROLL_NOTCHES),
    ),
    gamepad_events(),
)


@given(wire_events, st.integers(0, 2**64 - 1))
def test_round_trip_through_bytes(event: WireEvent, ts: int) -> None:
    msg = to_proto(event, ts)
    parsed = rift_pb2.InputMessage.FromString(msg.SerializeToString())
    assert parsed.timestamp_us == ts
    assert from_proto(parsed) == event


# -- arbitrary peer messages ---------------------------------------------------------------------

any_f32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
any_u32 = st.one_of(st.integers(0, 300), st.integers(0, 2**32 - 1))


def _arbitrary_message(draw: st.DrawFn) -> rift_pb2.InputMessage:
    msg = rift_pb2.InputMessage(timestamp_us=draw(st.integers(0, 2**64 - 1)))
    kind = draw(st.sampled_from(["none", "key", "move", "rel", "button", "scroll", "pad"]))
    if kind == "key":
        msg.key.keycode = draw(any_u32)
        msg.key.pressed = draw(st.booleans())
    elif kind == "move":
        msg.mouse_move.x, msg.mouse_move.y = draw(any_f32), draw(any_f32)
    elif kind == "rel":
        msg.mouse_relative.dx, msg.mouse_relative.dy = draw(any_f32), draw(any_f32)
    elif kind == "button":
        msg.mouse_button.button = draw(any_u32)
        msg.mouse_button.pressed = draw(st.booleans())
    elif kind == "scroll":
        msg.scroll.dx, msg.scroll.dy = draw(any_f32), draw(any_f32)
    elif kind == "pad":
        msg.gamepad.gamepad_id = draw(any_u32)
        msg.gamepad.SetInParent()
        for axis, value in draw(st.lists(st.tuples(st.integers(0, 9), any_f32), max_size=8)):
            msg.gamepad.axes.add(axis=axis, value=value)
        for button, pressed in draw(st.lists(st.tuples(any_u32, st.booleans()), max_size=20)):
            msg.gamepad.buttons.add(button=button, pressed=pressed)
    return msg


arbitrary_messages = st.composite(_arbitrary_message)()


def _check_decoded(msg: rift_pb2.InputMessage) -> None:
    try:
        event = from_proto(msg)
    except InputDecodeError:
        return
    # Whatever is accepted is a valid event (constructors re-checked it) that encodes again.
    assert from_proto(to_proto(event, msg.timestamp_us)) == event


@given(arbitrary_messages)
def test_arbitrary_messages_raise_only_decode_errors(msg: rift_pb2.InputMessage) -> None:
    _check_decoded(msg)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_decode_errors(data: bytes) -> None:
    from google.protobuf.message import DecodeError

    try:
        msg = rift_pb2.InputMessage.FromString(data)
    except DecodeError:
        return  # the RIFT layer drops unparsable payloads before input sees them
    _check_decoded(msg)


# -- the documented policy: quantities saturate, identifiers are refused ---------------------


def _move(x: float, y: float) -> rift_pb2.InputMessage:
    msg = rift_pb2.InputMessage()
    msg.mouse_move.x, msg.mouse_move.y = x, y
    return msg


def test_out_of_range_quantities_are_clamped() -> None:
    assert from_proto(_move(1.5, -3.0)) == MouseMove(1.0, 0.0)
    msg = rift_pb2.InputMessage()
    msg.scroll.dx, msg.scroll.dy = 1e9, -1e9
    assert from_proto(msg) == Scroll(MAX_SCROLL_NOTCHES, -MAX_SCROLL_NOTCHES)
    msg = rift_pb2.InputMessage()
    msg.mouse_relative.dx, msg.mouse_relative.dy = -1e30, 5.0
    assert from_proto(msg) == MouseRelative(-MAX_RELATIVE, 5.0)
    msg = rift_pb2.InputMessage()
    msg.gamepad.axes.add(axis=GamepadAxis.TRIGGERLEFT, value=-0.5)
    msg.gamepad.axes.add(axis=GamepadAxis.LEFTX, value=7.0)
    assert from_proto(msg) == GamepadEvent(0, ((4, 0.0), (0, 1.0)))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(bad: float) -> None:
    with pytest.raises(InputDecodeError, match="finite"):
        from_proto(_move(0.5, bad))
    msg = rift_pb2.InputMessage()
    msg.gamepad.axes.add(axis=1, value=bad)
    with pytest.raises(InputDecodeError, match="finite"):
        from_proto(msg)


def _pad(**kw: object) -> rift_pb2.InputMessage:
    msg = rift_pb2.InputMessage()
    msg.gamepad.SetInParent()
    for name, value in kw.items():
        setattr(msg.gamepad, name, value)
    return msg


def test_unknown_identifiers_are_refused() -> None:
    for usage in (0, 1, 3, KEY_USAGE_MAX + 1, 2**32 - 1):
        msg = rift_pb2.InputMessage()
        msg.key.keycode = usage
        with pytest.raises(InputDecodeError, match="usage"):
            from_proto(msg)
    for button in (0, 6, 2**31):
        msg = rift_pb2.InputMessage()
        msg.mouse_button.button = button
        with pytest.raises(InputDecodeError, match="mouse button"):
            from_proto(msg)
    with pytest.raises(InputDecodeError, match="gamepad_id"):
        from_proto(_pad(gamepad_id=MAX_GAMEPAD_ID + 1))
    msg = _pad()
    msg.gamepad.axes.add(axis=6, value=0.0)
    with pytest.raises(InputDecodeError, match="axis 6"):
        from_proto(msg)
    msg = _pad()
    msg.gamepad.buttons.add(button=15, pressed=True)
    with pytest.raises(InputDecodeError, match="button 15"):
        from_proto(msg)
    msg = _pad()
    msg.gamepad.axes.add(axis=2, value=0.1)
    msg.gamepad.axes.add(axis=2, value=0.2)
    with pytest.raises(InputDecodeError, match="twice"):
        from_proto(msg)
    msg = _pad()
    msg.gamepad.buttons.add(button=0, pressed=True)
    msg.gamepad.buttons.add(button=0, pressed=False)
    with pytest.raises(InputDecodeError, match="twice"):
        from_proto(msg)
    with pytest.raises(InputDecodeError, match="no event"):
        from_proto(rift_pb2.InputMessage(timestamp_us=5))


def test_an_empty_gamepad_message_round_trips() -> None:
    assert from_proto(to_proto(GamepadEvent(3), 0)) == GamepadEvent(3)


# -- construction (our own code) -------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: KeyEvent(3, True),
        lambda: KeyEvent(0xE8, True),
        lambda: MouseMove(1.0001, 0.0),
        lambda: MouseMove(0.5, math.nan),
        lambda: MouseRelative(MAX_RELATIVE * 2, 0.0),
        lambda: MouseButton(6, True),
        lambda: Scroll(0.0, math.inf),
        lambda: GamepadEvent(MAX_GAMEPAD_ID + 1),
        lambda: GamepadEvent(0, axes=((GamepadAxis.TRIGGERRIGHT, -0.1),)),
        lambda: GamepadEvent(0, axes=((0, 0.1), (0, 0.2))),
        lambda: GamepadEvent(0, buttons=((15, True),)),
        lambda: GamepadEvent(0, buttons=((1, True), (1, False))),
        lambda: GamepadConnected(-1),
        lambda: GamepadDisconnected(256),
    ],
)
def test_constructors_refuse_out_of_range(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_constructors_refuse_wrong_types() -> None:
    with pytest.raises(TypeError):
        KeyEvent(True, True)
    with pytest.raises(TypeError):
        MouseMove("0.5", 0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        KeyEvent(4.0, True)  # type: ignore[arg-type]


def test_local_events_are_not_sent() -> None:
    with pytest.raises(TypeError, match="not sent"):
        to_proto(GamepadConnected(0, "pad"), 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        to_proto(KeyEvent(4, True), -1)


def test_wire_fields_match_the_schema() -> None:
    msg = to_proto(KeyEvent(0x04, True), 123)
    assert (msg.WhichOneof("event"), msg.key.keycode, msg.key.pressed) == ("key", 4, True)
    msg = to_proto(MouseRelative(-2.5, 3.0), 1)
    assert msg.WhichOneof("event") == "mouse_relative"
    assert (msg.mouse_relative.dx, msg.mouse_relative.dy) == (-2.5, 3.0)
    msg = to_proto(GamepadEvent(2, ((1, -1.0),), ((11, True),)), 1)
    assert msg.gamepad.gamepad_id == 2
    assert [(a.axis, a.value) for a in msg.gamepad.axes] == [(1, -1.0)]
    assert [(b.button, b.pressed) for b in msg.gamepad.buttons] == [(11, True)]
