"""The values a :class:`wavry.client.window.ClientWindow` takes and gives: the frame it presents,
the picture geometry, its local window events and hot keys, and its error (no SDL window needed
to use them).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
import sdl2

__all__ = [
    "HOTKEYS",
    "HOTKEY_MODS",
    "YUV_MODES",
    "ColorMatrix",
    "FocusChanged",
    "Rect",
    "WindowClosed",
    "WindowCommand",
    "WindowCommandKind",
    "WindowError",
    "WindowEvent",
    "WindowResized",
    "YuvFrame",
    "checked_plane",
    "fit_rect",
    "sdl_error",
]

ColorMatrix = Literal["bt601", "bt709", "auto"]
# SDL_YUV_CONVERSION_MODE values (pysdl2 does not export the names).
YUV_MODES: dict[ColorMatrix, int] = {"bt601": 1, "bt709": 2, "auto": 3}


class YuvFrame(Protocol):
    """What :meth:`ClientWindow.present` accepts: 8-bit yuv420p planes, each with its own stride.

    ``y`` is at least (height, width); ``u``/``v`` at least ((height+1)//2, (width+1)//2).
    Rows may be padded (a view into a decoder's line-sized buffer is fine); pixels inside a row
    must be contiguous, otherwise the plane is copied first.
    """

    @property
    def y(self) -> npt.NDArray[np.uint8]: ...
    @property
    def u(self) -> npt.NDArray[np.uint8]: ...
    @property
    def v(self) -> npt.NDArray[np.uint8]: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Rect:
    x: int
    y: int
    w: int
    h: int


def fit_rect(frame_w: int, frame_h: int, out_w: int, out_h: int) -> Rect:
    """The largest rect of the frame's aspect centred in (out_w, out_h): letterbox/pillarbox."""
    if frame_w <= 0 or frame_h <= 0 or out_w <= 0 or out_h <= 0:
        return Rect(0, 0, max(out_w, 0), max(out_h, 0))
    # Integer cross-multiplication: no float drift, and an exact fit stays exact.
    if out_w * frame_h <= out_h * frame_w:
        w, h = out_w, max(1, round(out_w * frame_h / frame_w))
    else:
        w, h = max(1, round(out_h * frame_w / frame_h)), out_h
    return Rect((out_w - w) // 2, (out_h - h) // 2, w, h)


class WindowCommandKind(enum.Enum):
    CAPTURE = "capture"
    FULLSCREEN = "fullscreen"
    OVERLAY = "overlay"


@dataclass(frozen=True, slots=True)
class WindowCommand:
    """A local hot key (or click-to-capture) was handled; ``enabled`` is the new state."""

    kind: WindowCommandKind
    enabled: bool


@dataclass(frozen=True, slots=True)
class WindowClosed:
    """The user asked to close the window (close button, Alt+F4, SIGINT-free SDL_QUIT)."""


@dataclass(frozen=True, slots=True)
class WindowResized:
    """New drawable size in output pixels; the picture rect has already been recomputed."""

    width: int
    height: int


@dataclass(frozen=True, slots=True)
class FocusChanged:
    focused: bool


WindowEvent = WindowClosed | WindowResized | FocusChanged | WindowCommand

#: local hot keys (``Ctrl+Alt+Shift`` + key, never sent to the host) and what each toggles
HOTKEY_MODS = (sdl2.KMOD_CTRL, sdl2.KMOD_ALT, sdl2.KMOD_SHIFT)
HOTKEYS = {
    sdl2.SDL_SCANCODE_Z: WindowCommandKind.CAPTURE,
    sdl2.SDL_SCANCODE_F: WindowCommandKind.FULLSCREEN,
    sdl2.SDL_SCANCODE_S: WindowCommandKind.OVERLAY,
}


class WindowError(RuntimeError):
    """SDL refused something (no display, no renderer, bad texture)."""


def sdl_error(what: str) -> WindowError:
    return WindowError(f"{what}: {sdl2.SDL_GetError().decode(errors='replace')}")


def checked_plane(
    arr: npt.NDArray[np.uint8], rows: int, cols: int, name: str
) -> npt.NDArray[np.uint8]:
    if arr.dtype != np.uint8 or arr.ndim != 2:
        raise ValueError(f"plane {name} must be a 2-D uint8 array, got {arr.dtype} {arr.shape}")
    if arr.shape[0] < rows or arr.shape[1] < cols:
        raise ValueError(f"plane {name} is {arr.shape}, need at least ({rows}, {cols})")
    if arr.strides[1] != 1 or arr.strides[0] < cols:
        arr = np.ascontiguousarray(arr[:rows, :cols])
    return arr
