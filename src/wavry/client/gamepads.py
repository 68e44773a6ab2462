"""Game controllers for the client window: which SDL controllers are open, the wire slot each one
has, and their SDL events as ``wavry.input.events`` gamepad events (SDL GameController numbering).
"""

from __future__ import annotations

import ctypes
import logging

import sdl2

from wavry.client.window_types import WindowEvent
from wavry.input.events import (
    MAX_GAMEPAD_ID,
    GamepadAxis,
    GamepadButton,
    GamepadConnected,
    GamepadDisconnected,
    GamepadEvent,
    InputEvent,
)

__all__ = ["PAD_EVENTS", "GamepadSlots"]

# The window's logger name: gamepad log lines keep the name they had when this lived in window.py.
logger = logging.getLogger("wavry.client.window")

#: SDL's axis range is -32768..32767; dividing by the positive end maps full deflection to 1.0
AXIS_SCALE = 32767.0

PAD_EVENTS = frozenset(
    {
        sdl2.SDL_CONTROLLERDEVICEADDED,
        sdl2.SDL_CONTROLLERDEVICEREMOVED,
        sdl2.SDL_CONTROLLERAXISMOTION,
        sdl2.SDL_CONTROLLERBUTTONDOWN,
        sdl2.SDL_CONTROLLERBUTTONUP,
    }
)


class GamepadSlots:
    """The open SDL game controllers, each with the lowest free wire slot (0..MAX_GAMEPAD_ID)."""

    def __init__(self) -> None:
        self._pads: dict[int, tuple[ctypes.c_void_p, int]] = {}  # SDL instance id -> (pad, slot)

    def close_all(self) -> None:
        for pad, _slot in self._pads.values():
            sdl2.SDL_GameControllerClose(pad)
        self._pads.clear()

    def translate(self, ev: sdl2.SDL_Event, out: list[InputEvent | WindowEvent]) -> None:
        """One of :data:`PAD_EVENTS` onto ``out`` (consecutive changes of one pad are merged)."""
        t = ev.type
        if t == sdl2.SDL_CONTROLLERDEVICEADDED:
            self._open(ev.cdevice.which, out)
            return
        if t == sdl2.SDL_CONTROLLERDEVICEREMOVED:
            entry = self._pads.pop(ev.cdevice.which, None)
            if entry is not None:
                sdl2.SDL_GameControllerClose(entry[0])
                out.append(GamepadDisconnected(entry[1]))
            return
        which = ev.caxis.which if t == sdl2.SDL_CONTROLLERAXISMOTION else ev.cbutton.which
        entry = self._pads.get(which)
        if entry is None:
            return
        slot = entry[1]
        axes: tuple[tuple[int, float], ...] = ()
        buttons: tuple[tuple[int, bool], ...] = ()
        if t == sdl2.SDL_CONTROLLERAXISMOTION:
            axis = int(ev.caxis.axis)
            if axis > GamepadAxis.TRIGGERRIGHT:
                return
            lo = 0.0 if GamepadAxis(axis).is_trigger else -1.0
            axes = ((axis, min(max(ev.caxis.value / AXIS_SCALE, lo), 1.0)),)
        else:
            button = int(ev.cbutton.button)
            if button > GamepadButton.DPAD_RIGHT:
                return  # misc/paddles/touchpad have no wire number
            buttons = ((button, t == sdl2.SDL_CONTROLLERBUTTONDOWN),)
        prev = out[-1] if out else None
        if isinstance(prev, GamepadEvent) and prev.gamepad_id == slot:
            merged_axes = dict(prev.axes) | dict(axes)
            if not buttons or buttons[0][0] not in dict(prev.buttons):
                out[-1] = GamepadEvent(slot, tuple(merged_axes.items()), prev.buttons + buttons)
                return
        out.append(GamepadEvent(slot, axes, buttons))

    def _open(self, device_index: int, out: list[InputEvent | WindowEvent]) -> None:
        pad = sdl2.SDL_GameControllerOpen(device_index)
        if not pad:
            logger.warning(
                "cannot open game controller %d: %s", device_index, sdl2.SDL_GetError().decode()
            )
            return
        instance = sdl2.SDL_JoystickInstanceID(sdl2.SDL_GameControllerGetJoystick(pad))
        if instance in self._pads:
            sdl2.SDL_GameControllerClose(pad)  # SDL reference-counts; ours is already open
            return
        used = {slot for _pad, slot in self._pads.values()}
        slot = next((s for s in range(MAX_GAMEPAD_ID + 1) if s not in used), None)
        if slot is None:
            sdl2.SDL_GameControllerClose(pad)
            return
        self._pads[instance] = (pad, slot)
        name = (sdl2.SDL_GameControllerName(pad) or b"").decode(errors="replace")
        logger.info("gamepad %d connected: %s", slot, name)
        out.append(GamepadConnected(slot, name))
