"""Stats overlay: a semi-transparent box of text lines in the window's top-left corner.

The caller formats the lines (fps, bitrate, RTT, loss, FEC recoveries, per-stage latency); the
overlay rasterises them with the built-in bitmap font into one RGBA texture, rebuilt only when the
text changes, so drawing it costs a single ``SDL_RenderCopy`` per presented frame.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np
import sdl2

from wavry.client.font import GLYPH_HEIGHT, GLYPH_WIDTH, render_text

__all__ = ["StatsOverlay"]

_BG_RGBA = (0, 0, 0, 170)
_FG_RGBA = (255, 255, 255, 255)


class StatsOverlay:
    """Text box state plus its cached texture; all calls on the window's thread."""

    def __init__(self, *, scale: int = 1, margin: int = 8, padding: int = 6) -> None:
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.visible = False
        self._scale = scale
        self._margin = margin
        self._padding = padding
        self._lines: tuple[str, ...] = ()
        self._texture: ctypes.c_void_p | None = None
        self._tex_size = (0, 0)
        self._dirty = True

    @property
    def lines(self) -> tuple[str, ...]:
        return self._lines

    def set_lines(self, lines: Sequence[str]) -> None:
        new = tuple(lines)
        if new != self._lines:
            self._lines = new
            self._dirty = True

    def box_rect(self) -> tuple[int, int, int, int] | None:
        """(x, y, w, h) of the box in output pixels, or None when nothing would be drawn."""
        if not self.visible or not self._lines:
            return None
        mask_h, mask_w = self._mask_shape()
        pad = self._padding * 2
        return (self._margin, self._margin, mask_w + pad, mask_h + pad)

    def _mask_shape(self) -> tuple[int, int]:
        # Same arithmetic as render_text (line gap 1), without rasterising on every frame.
        rows = len(self._lines) * (GLYPH_HEIGHT + 1) - 1
        cols = max(len(line) for line in self._lines) * GLYPH_WIDTH
        return rows * self._scale, cols * self._scale

    def _build_pixels(self) -> np.ndarray:
        mask = render_text(self._lines, scale=self._scale)
        pad = self._padding
        img = np.empty((mask.shape[0] + 2 * pad, mask.shape[1] + 2 * pad, 4), dtype=np.uint8)
        img[:] = _BG_RGBA
        img[pad : pad + mask.shape[0], pad : pad + mask.shape[1]][mask] = _FG_RGBA
        return img

    def invalidate(self) -> None:
        """Forget the texture (after a renderer reset) without destroying it."""
        self._texture = None
        self._dirty = True

    def draw(self, renderer: ctypes.c_void_p) -> None:
        """Copy the box onto the current back buffer (no-op when hidden or empty)."""
        rect = self.box_rect()
        if rect is None:
            return
        if self._dirty or self._texture is None:
            self._upload(renderer)
        x, y, w, h = rect
        sdl2.SDL_RenderCopy(renderer, self._texture, None, sdl2.SDL_Rect(x, y, w, h))

    def _upload(self, renderer: ctypes.c_void_p) -> None:
        img = self._build_pixels()
        height, width = int(img.shape[0]), int(img.shape[1])
        if self._texture is None or self._tex_size != (width, height):
            self.destroy()
            tex = sdl2.SDL_CreateTexture(
                renderer, sdl2.SDL_PIXELFORMAT_RGBA32, sdl2.SDL_TEXTUREACCESS_STATIC, width, height
            )
            if not tex:
                raise RuntimeError(f"overlay texture: {sdl2.SDL_GetError().decode()}")
            sdl2.SDL_SetTextureBlendMode(tex, sdl2.SDL_BLENDMODE_BLEND)
            self._texture = tex
            self._tex_size = (width, height)
        sdl2.SDL_UpdateTexture(self._texture, None, img.ctypes.data, width * 4)
        self._dirty = False

    def destroy(self) -> None:
        if self._texture is not None:
            sdl2.SDL_DestroyTexture(self._texture)
            self._texture = None
        self._dirty = True
