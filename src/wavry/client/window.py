"""The client's presentation window (SDL2): show decoded yuv420p frames, capture local input.

Latency first: :meth:`ClientWindow.present` uploads the planes into an IYUV streaming texture,
draws it letterboxed, and calls ``SDL_RenderPresent`` at once (no vsync unless asked). Colour
conversion happens in SDL (GPU when there is one); the default matrix is BT.709 limited range,
the convention of every picture Wavry produces (``wavry.media.frames.COLORSPACE``).

:meth:`ClientWindow.poll_events` translates SDL events into ``wavry.input.events`` (the wire
model: HID usages, picture-normalised pointer, SDL GameController numbering) plus local
:data:`WindowEvent` values. Local hot keys, never sent to the host (``Ctrl+Alt+Shift`` + key):

* **Z** toggles input capture (keyboard grab, relative mouse). Releasing capture first sends the
  host a release for every key and button it believes held, so nothing sticks. While released, a
  left click in the window captures again (that click is not sent).
* **F** toggles fullscreen (desktop fullscreen: no mode switch).
* **S** toggles the stats overlay (text from :meth:`ClientWindow.set_overlay_lines`).

Value types (frames, geometry, window events, hot keys) live in ``wavry.client.window_types``
(re-exported here, where callers import them); game controllers in ``wavry.client.gamepads``.

Threading: SDL windows and events belong to one thread. Open, present, poll and close from the
same thread, and keep one ClientWindow per process (SDL's event queue is process-wide).
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Self

import numpy as np
import numpy.typing as npt
import sdl2

from wavry.client.gamepads import PAD_EVENTS, GamepadSlots
from wavry.client.overlay import StatsOverlay
from wavry.client.window_types import (
    HOTKEY_MODS,
    HOTKEYS,
    YUV_MODES,
    ColorMatrix,
    FocusChanged,
    Rect,
    WindowClosed,
    WindowCommand,
    WindowCommandKind,
    WindowError,
    WindowEvent,
    WindowResized,
    YuvFrame,
    checked_plane,
    fit_rect,
    sdl_error,
)
from wavry.input.events import (
    MAX_RELATIVE,
    MAX_SCROLL_NOTCHES,
    InputEvent,
    KeyEvent,
    MouseButton,
    MouseMove,
    MouseRelative,
    Scroll,
)
from wavry.input.keymap import sdl_scancode_to_hid

__all__ = [
    "ClientWindow",
    "FocusChanged",
    "Rect",
    "WindowClosed",
    "WindowCommand",
    "WindowCommandKind",
    "WindowError",
    "WindowEvent",
    "WindowResized",
    "YuvFrame",
    "fit_rect",
]

logger = logging.getLogger(__name__)

_SUBSYSTEMS = sdl2.SDL_INIT_VIDEO | sdl2.SDL_INIT_GAMECONTROLLER


class ClientWindow:
    """An SDL2 window that presents yuv420p frames and turns local input into wire events."""

    def __init__(
        self,
        title: str,
        *,
        width: int,
        height: int,
        fullscreen: bool = False,
        relative_mouse: bool = False,
        vsync: bool = False,
        renderer: str | None = None,
        color_matrix: ColorMatrix = "bt709",
        overlay_scale: int = 1,
    ) -> None:
        """``renderer`` forces an SDL render driver ("software", "opengl"...); None: SDL's pick."""
        if width <= 0 or height <= 0:
            raise ValueError(f"window size must be positive, got {width}x{height}")
        self._title = title
        self._size = (width, height)
        self._fullscreen = fullscreen
        self._relative_mouse = relative_mouse
        self._vsync = vsync
        self._renderer_name = renderer
        self._color_matrix = color_matrix
        self._overlay = StatsOverlay(scale=overlay_scale)
        self._window: ctypes.c_void_p | None = None
        self._renderer: ctypes.c_void_p | None = None
        self._texture: ctypes.c_void_p | None = None
        self._window_id = 0
        self._driver = ""
        self._frame_size = (width, height)
        self._tex_size = (0, 0)
        self._out_size = (width, height)
        self._win_size = (width, height)
        self._rect = Rect(0, 0, width, height)
        self._captured = True
        self._focused = False
        self._held_keys: set[int] = set()
        self._held_buttons: set[int] = set()
        self._swallowed_keys: set[int] = set()
        self._swallow_left_up = False
        self._last_move: tuple[float, float] | None = None
        self._gamepads = GamepadSlots()
        self._needs_redraw = False
        self._event = sdl2.SDL_Event()

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> None:
        if self._window is not None:
            return
        # Python owns SIGINT/SIGTERM; SDL would turn Ctrl+C into an SDL_QUIT nobody polls.
        sdl2.SDL_SetHint(sdl2.SDL_HINT_NO_SIGNAL_HANDLERS, b"1")
        sdl2.SDL_SetHint(sdl2.SDL_HINT_VIDEO_MINIMIZE_ON_FOCUS_LOSS, b"0")
        sdl2.SDL_SetHint(sdl2.SDL_HINT_RENDER_SCALE_QUALITY, b"1")
        sdl2.SDL_SetHint(sdl2.SDL_HINT_RENDER_VSYNC, b"1" if self._vsync else b"0")
        sdl2.SDL_SetHint(sdl2.SDL_HINT_APP_NAME, b"Wavry")
        if sdl2.SDL_InitSubSystem(_SUBSYSTEMS) != 0:
            raise sdl_error(f"SDL_Init (SDL_VIDEODRIVER={os.environ.get('SDL_VIDEODRIVER')})")
        try:
            self._create_window()
        except BaseException:
            if self._window is not None:
                sdl2.SDL_DestroyWindow(self._window)
                self._window = None
            sdl2.SDL_QuitSubSystem(_SUBSYSTEMS)
            raise
        self._update_geometry()
        self._apply_capture()

    def _create_window(self) -> None:
        sdl2.SDL_SetYUVConversionMode(YUV_MODES[self._color_matrix])
        driver = self._render_driver_index()
        flags = sdl2.SDL_WINDOW_RESIZABLE | sdl2.SDL_WINDOW_ALLOW_HIGHDPI
        if self._fullscreen:
            flags |= sdl2.SDL_WINDOW_FULLSCREEN_DESKTOP
        pos = sdl2.SDL_WINDOWPOS_CENTERED
        window = sdl2.SDL_CreateWindow(self._title.encode(), pos, pos, *self._size, flags)
        if not window:
            raise sdl_error("SDL_CreateWindow")
        self._window = window
        rflags = sdl2.SDL_RENDERER_PRESENTVSYNC if self._vsync else 0
        renderer = sdl2.SDL_CreateRenderer(window, driver, rflags)
        if not renderer:
            raise sdl_error("SDL_CreateRenderer")
        self._renderer = renderer
        self._window_id = sdl2.SDL_GetWindowID(window)
        info = sdl2.SDL_RendererInfo()
        sdl2.SDL_GetRendererInfo(renderer, ctypes.byref(info))
        self._driver = info.name.decode()
        logger.info("window open: renderer %s, vsync %s", self._driver, self._vsync)

    def _render_driver_index(self) -> int:
        """SDL's index of the requested render driver; -1 lets SDL pick (hints are global, so
        the driver is chosen by index rather than by SDL_HINT_RENDER_DRIVER)."""
        if self._renderer_name is None:
            return -1
        info = sdl2.SDL_RendererInfo()
        names = []
        for index in range(sdl2.SDL_GetNumRenderDrivers()):
            sdl2.SDL_GetRenderDriverInfo(index, ctypes.byref(info))
            names.append(info.name.decode())
            if names[-1] == self._renderer_name:
                return index
        raise WindowError(f"no SDL render driver {self._renderer_name!r} (have {names})")

    def close(self) -> None:
        if self._window is None:
            return
        self._gamepads.close_all()
        self._overlay.destroy()
        if self._texture is not None:
            sdl2.SDL_DestroyTexture(self._texture)
            self._texture = None
        sdl2.SDL_SetRelativeMouseMode(sdl2.SDL_FALSE)
        sdl2.SDL_DestroyRenderer(self._renderer)
        sdl2.SDL_DestroyWindow(self._window)
        self._window = self._renderer = None
        self._tex_size = (0, 0)
        sdl2.SDL_QuitSubSystem(_SUBSYSTEMS)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- state -----------------------------------------------------------------------------------

    @property
    def window_id(self) -> int:
        return self._window_id

    @property
    def render_driver(self) -> str:
        """The SDL render driver in use ("opengl", "software", ...), "" before open()."""
        return self._driver

    @property
    def output_size(self) -> tuple[int, int]:
        """Drawable size in pixels (differs from the window size on HiDPI screens)."""
        return self._out_size

    @property
    def picture_rect(self) -> Rect:
        """Where the picture is drawn, in output pixels (letterboxed to the frame's aspect)."""
        return self._rect

    @property
    def captured(self) -> bool:
        return self._captured

    @property
    def focused(self) -> bool:
        """Keyboard focus as last reported by SDL (through poll_events)."""
        return self._focused

    @property
    def fullscreen(self) -> bool:
        return self._fullscreen

    @property
    def overlay_visible(self) -> bool:
        return self._overlay.visible

    @overlay_visible.setter
    def overlay_visible(self, visible: bool) -> None:
        self._overlay.visible = visible
        self._needs_redraw = True

    def overlay_rect(self) -> Rect | None:
        box = self._overlay.box_rect()
        return None if box is None else Rect(*box)

    def set_overlay_lines(self, lines: Sequence[str]) -> None:
        """Text of the stats overlay (drawn with the next present while visible)."""
        self._overlay.set_lines(lines)

    def set_size(self, width: int, height: int) -> None:
        """Resize the (windowed) window; a WindowResized follows from poll_events."""
        sdl2.SDL_SetWindowSize(self._require_window(), width, height)

    def set_fullscreen(self, fullscreen: bool) -> None:
        flag = sdl2.SDL_WINDOW_FULLSCREEN_DESKTOP if fullscreen else 0
        if sdl2.SDL_SetWindowFullscreen(self._require_window(), flag) != 0:
            logger.warning("fullscreen toggle failed: %s", sdl2.SDL_GetError().decode())
            return
        self._fullscreen = fullscreen

    def set_capture(self, captured: bool) -> list[InputEvent]:
        """Capture or release local input; returns the releases owed to the host."""
        self._captured = captured
        released = [] if captured else self._release_all()
        self._apply_capture()
        return released

    def _require_window(self) -> ctypes.c_void_p:
        if self._window is None:
            raise WindowError("window is not open")
        return self._window

    def _apply_capture(self) -> None:
        window = self._require_window()
        grab = self._captured and self._focused
        sdl2.SDL_SetWindowKeyboardGrab(window, sdl2.SDL_TRUE if grab else sdl2.SDL_FALSE)
        relative = self._captured and self._relative_mouse
        if sdl2.SDL_SetRelativeMouseMode(sdl2.SDL_TRUE if relative else sdl2.SDL_FALSE) != 0:
            logger.debug("relative mouse mode unavailable: %s", sdl2.SDL_GetError().decode())

    def _release_all(self) -> list[InputEvent]:
        out: list[InputEvent] = [KeyEvent(u, False) for u in sorted(self._held_keys)]
        out += [MouseButton(b, False) for b in sorted(self._held_buttons)]
        self._held_keys.clear()
        self._held_buttons.clear()
        return out

    def _update_geometry(self) -> None:
        window, renderer = self._require_window(), self._renderer
        w, h, ow, oh = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        sdl2.SDL_GetWindowSize(window, ctypes.byref(w), ctypes.byref(h))
        if sdl2.SDL_GetRendererOutputSize(renderer, ctypes.byref(ow), ctypes.byref(oh)) != 0:
            ow.value, oh.value = w.value, h.value
        self._win_size = (max(w.value, 1), max(h.value, 1))
        self._out_size = (max(ow.value, 1), max(oh.value, 1))
        self._rect = fit_rect(*self._frame_size, *self._out_size)

    # -- presentation ------------------------------------------------------------------------

    def present(self, frame: YuvFrame) -> float:
        """Upload, draw letterboxed (plus the overlay) and present now; returns time.monotonic()."""
        renderer = self._renderer
        if renderer is None:
            raise WindowError("window is not open")
        width, height = frame.width, frame.height
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        cw, ch = (width + 1) // 2, (height + 1) // 2
        y = checked_plane(frame.y, height, width, "y")
        u = checked_plane(frame.u, ch, cw, "u")
        v = checked_plane(frame.v, ch, cw, "v")
        if self._texture is None or self._tex_size != (width, height):
            self._create_texture(width, height)
        u8 = ctypes.POINTER(ctypes.c_uint8)
        if (
            sdl2.SDL_UpdateYUVTexture(
                self._texture,
                None,
                y.ctypes.data_as(u8),
                y.strides[0],
                u.ctypes.data_as(u8),
                u.strides[0],
                v.ctypes.data_as(u8),
                v.strides[0],
            )
            != 0
        ):
            raise sdl_error("SDL_UpdateYUVTexture")
        self._render()
        sdl2.SDL_RenderPresent(renderer)
        self._needs_redraw = False
        return time.monotonic()

    def _create_texture(self, width: int, height: int) -> None:
        if self._texture is not None:
            sdl2.SDL_DestroyTexture(self._texture)
            self._texture = None
        tex = sdl2.SDL_CreateTexture(
            self._renderer,
            sdl2.SDL_PIXELFORMAT_IYUV,
            sdl2.SDL_TEXTUREACCESS_STREAMING,
            width,
            height,
        )
        if not tex:
            raise sdl_error(f"SDL_CreateTexture IYUV {width}x{height}")
        self._texture = tex
        self._tex_size = self._frame_size = (width, height)
        self._rect = fit_rect(width, height, *self._out_size)

    def _render(self) -> None:
        renderer = self._renderer
        if renderer is None:
            raise WindowError("window is not open")
        sdl2.SDL_SetRenderDrawColor(renderer, 0, 0, 0, 255)
        sdl2.SDL_RenderClear(renderer)
        if self._texture is not None:
            r = self._rect
            sdl2.SDL_RenderCopy(renderer, self._texture, None, sdl2.SDL_Rect(r.x, r.y, r.w, r.h))
        self._overlay.draw(renderer)

    def redraw(self) -> None:
        """Present the last frame again (after expose, resize or an overlay toggle)."""
        if self._renderer is None:
            raise WindowError("window is not open")
        self._render()
        sdl2.SDL_RenderPresent(self._renderer)
        self._needs_redraw = False

    def read_pixels(self) -> npt.NDArray[np.uint8]:
        """The scene as present() draws it, as (height, width, 3) RGB (tests, screenshots).

        The back buffer is undefined after a present, so this renders the scene again and
        reads it before presenting.
        """
        if self._renderer is None:
            raise WindowError("window is not open")
        self._render()
        w, h = self._out_size
        buf = np.empty((h, w, 4), dtype=np.uint8)
        if (
            sdl2.SDL_RenderReadPixels(
                self._renderer, None, sdl2.SDL_PIXELFORMAT_RGBA32, buf.ctypes.data, w * 4
            )
            != 0
        ):
            raise sdl_error("SDL_RenderReadPixels")
        return buf[:, :, :3].copy()

    # -- input -------------------------------------------------------------------------------

    def poll_events(self) -> list[InputEvent | WindowEvent]:
        """Drain SDL's queue into wire input events and local window events, in order.

        Runs of pointer motion are coalesced (absolute: last position; relative: summed), runs
        of scroll summed, and consecutive changes of one gamepad merged; nothing else is.
        """
        if self._window is None:
            raise WindowError("window is not open")
        out: list[InputEvent | WindowEvent] = []
        ev = self._event
        while sdl2.SDL_PollEvent(ctypes.byref(ev)):
            self._translate(ev, out)
        if self._needs_redraw and self._texture is not None:
            self.redraw()
        return out

    def _translate(self, ev: sdl2.SDL_Event, out: list[InputEvent | WindowEvent]) -> None:
        t = ev.type
        if t in (sdl2.SDL_KEYDOWN, sdl2.SDL_KEYUP):
            if ev.key.windowID in (0, self._window_id):
                self._on_key(ev.key, t == sdl2.SDL_KEYDOWN, out)
        elif t == sdl2.SDL_MOUSEMOTION:
            if ev.motion.windowID in (0, self._window_id):
                self._on_motion(ev.motion, out)
        elif t in (sdl2.SDL_MOUSEBUTTONDOWN, sdl2.SDL_MOUSEBUTTONUP):
            if ev.button.windowID in (0, self._window_id):
                self._on_button(ev.button, t == sdl2.SDL_MOUSEBUTTONDOWN, out)
        elif t == sdl2.SDL_MOUSEWHEEL:
            if ev.wheel.windowID in (0, self._window_id):
                self._on_wheel(ev.wheel, out)
        elif t in PAD_EVENTS:
            self._gamepads.translate(ev, out)
        elif t == sdl2.SDL_WINDOWEVENT:
            if ev.window.windowID == self._window_id:
                self._on_window(ev.window, out)
        elif t == sdl2.SDL_QUIT:
            if not any(isinstance(e, WindowClosed) for e in out):
                out.append(WindowClosed())
        elif t == sdl2.SDL_RENDER_DEVICE_RESET:
            # Every texture is gone with the device; recreate on the next present.
            self._texture = None
            self._tex_size = (0, 0)
            self._overlay.invalidate()

    def _on_key(
        self, key: sdl2.SDL_KeyboardEvent, down: bool, out: list[InputEvent | WindowEvent]
    ) -> None:
        code = int(key.keysym.scancode)
        if down and key.repeat:
            return  # the host's own auto-repeat runs from the held key
        if down and code in HOTKEYS and all(key.keysym.mod & m for m in HOTKEY_MODS):
            self._swallowed_keys.add(code)
            out.extend(self._run_command(HOTKEYS[code]))
            return
        if not down and code in self._swallowed_keys:
            self._swallowed_keys.discard(code)
            return
        usage = sdl_scancode_to_hid(code)
        if usage is None:
            return  # consumer-page and vendor keys have no keyboard usage
        if down and self._captured:
            self._held_keys.add(usage)
            out.append(KeyEvent(usage, True))
        elif not down and usage in self._held_keys:
            self._held_keys.discard(usage)
            out.append(KeyEvent(usage, False))

    def _run_command(self, kind: WindowCommandKind) -> list[InputEvent | WindowEvent]:
        out: list[InputEvent | WindowEvent] = []
        if kind is WindowCommandKind.CAPTURE:
            out.extend(self.set_capture(not self._captured))
            enabled = self._captured
        elif kind is WindowCommandKind.FULLSCREEN:
            self.set_fullscreen(not self._fullscreen)
            enabled = self._fullscreen
        else:
            self.overlay_visible = not self._overlay.visible
            enabled = self._overlay.visible
        logger.info("hot key: %s %s", kind.value, "on" if enabled else "off")
        out.append(WindowCommand(kind, enabled))
        return out

    def _normalise(self, x: int, y: int) -> tuple[float, float]:
        """Window coordinates -> 0..1 of the picture (clamped at its edges)."""
        sx = self._out_size[0] / self._win_size[0]
        sy = self._out_size[1] / self._win_size[1]
        r = self._rect
        nx = (x * sx - r.x) / r.w
        ny = (y * sy - r.y) / r.h
        return min(max(nx, 0.0), 1.0), min(max(ny, 0.0), 1.0)

    def _relative_scale(self) -> tuple[float, float]:
        """Window pixels -> picture (host) pixels, so the host pointer tracks the local one."""
        sx = self._out_size[0] / self._win_size[0] * self._frame_size[0] / self._rect.w
        sy = self._out_size[1] / self._win_size[1] * self._frame_size[1] / self._rect.h
        return sx, sy

    def _move_to(self, x: int, y: int, out: list[InputEvent | WindowEvent]) -> None:
        pos = self._normalise(x, y)
        if pos == self._last_move:
            return
        self._last_move = pos
        if out and isinstance(out[-1], MouseMove):
            out[-1] = MouseMove(*pos)
        else:
            out.append(MouseMove(*pos))

    def _on_motion(self, m: sdl2.SDL_MouseMotionEvent, out: list[InputEvent | WindowEvent]) -> None:
        if not self._captured:
            return
        if not self._relative_mouse:
            self._move_to(m.x, m.y, out)
            return
        sx, sy = self._relative_scale()
        dx, dy = m.xrel * sx, m.yrel * sy
        if out and isinstance(out[-1], MouseRelative):
            dx, dy = dx + out[-1].dx, dy + out[-1].dy
            out.pop()
        if dx or dy:
            lim = MAX_RELATIVE
            out.append(MouseRelative(min(max(dx, -lim), lim), min(max(dy, -lim), lim)))

    def _on_button(
        self, b: sdl2.SDL_MouseButtonEvent, down: bool, out: list[InputEvent | WindowEvent]
    ) -> None:
        button = int(b.button)  # SDL 1..5 = left, middle, right, X1 (back), X2 (forward) = wire
        if not self._captured:
            if down and button == sdl2.SDL_BUTTON_LEFT:
                self._swallow_left_up = True
                out.extend(self._run_command(WindowCommandKind.CAPTURE))
            return
        if not down and button == sdl2.SDL_BUTTON_LEFT and self._swallow_left_up:
            self._swallow_left_up = False
            return
        if not 1 <= button <= 5:
            return
        if down:
            if not self._relative_mouse:
                self._move_to(b.x, b.y, out)  # the click lands where the user clicked
            self._held_buttons.add(button)
            out.append(MouseButton(button, True))
        elif button in self._held_buttons:
            self._held_buttons.discard(button)
            out.append(MouseButton(button, False))

    def _on_wheel(self, w: sdl2.SDL_MouseWheelEvent, out: list[InputEvent | WindowEvent]) -> None:
        if not self._captured:
            return
        dx, dy = float(w.preciseX), float(w.preciseY)
        if dx == 0.0 and dy == 0.0:
            dx, dy = float(w.x), float(w.y)  # a sender that fills only the integer fields
        if w.direction == sdl2.SDL_MOUSEWHEEL_FLIPPED:
            dx, dy = -dx, -dy
        if out and isinstance(out[-1], Scroll):
            dx, dy = dx + out[-1].dx, dy + out[-1].dy
            out.pop()
        if dx or dy:
            lim = MAX_SCROLL_NOTCHES
            out.append(Scroll(min(max(dx, -lim), lim), min(max(dy, -lim), lim)))

    def _on_window(self, w: sdl2.SDL_WindowEvent, out: list[InputEvent | WindowEvent]) -> None:
        e = w.event
        if e == sdl2.SDL_WINDOWEVENT_CLOSE:
            if not any(isinstance(x, WindowClosed) for x in out):
                out.append(WindowClosed())
        elif e == sdl2.SDL_WINDOWEVENT_SIZE_CHANGED:
            self._update_geometry()
            self._needs_redraw = True
            out.append(WindowResized(*self._out_size))
        elif e == sdl2.SDL_WINDOWEVENT_EXPOSED:
            self._needs_redraw = True
        elif e == sdl2.SDL_WINDOWEVENT_FOCUS_GAINED:
            self._focused = True
            self._apply_capture()
            out.append(FocusChanged(True))
        elif e == sdl2.SDL_WINDOWEVENT_FOCUS_LOST:
            self._focused = False
            # Keys released while we are not focused never reach us: release them now.
            out.extend(self._release_all())
            self._apply_capture()
            out.append(FocusChanged(False))
