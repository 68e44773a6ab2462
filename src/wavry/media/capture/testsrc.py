"""Synthetic capture source: animated content generated directly in yuv420p.

Two kinds of content, chosen with ``pattern``:

* ``"desktop"`` — a static wallpaper, two application windows and a document that scrolls
  slowly inside one of them: little motion, sharp text-like edges (what remote desktop sends).
* ``"game"`` — the whole picture pans along a Lissajous path over a textured plasma, plus fresh
  grain every frame at a random offset that motion search cannot follow: hard to encode (what
  game streaming sends, and the worst case for bitrate and encode time).

Every frame carries the :mod:`~wavry.media.capture.barcode` strip (frame index and capture
timestamp) unless ``barcode=False``.

Cost: the pixels are made in Y/U/V directly (converting from BGRA would cost about 40% of an
encode), and everything expensive (textures, grain, the document) is computed once in
``open()``. A ``grab()`` is then one pass over the frame — a copy (desktop) or an add of two
precomputed sources (game) into a fresh buffer — plus the barcode. Content depends only on the
frame index and ``fps`` (not the wall clock), so a given frame is the same on every run.
"""

from __future__ import annotations

import math
import time

import av
import numpy as np
import numpy.typing as npt

from wavry.media.capture.barcode import (
    BARCODE_HEIGHT,
    BARCODE_WIDTH,
    BarcodeValue,
    stamp_barcode,
    timestamp_us,
)
from wavry.media.capture.base import (
    CaptureBackend,
    CaptureUnavailable,
    MonitorInfo,
    register_capture,
    resolve_size,
)
from wavry.media.frames import RawFrame

__all__ = ["PATTERNS", "TestSource"]

PATTERNS = ("desktop", "game")

U8 = npt.NDArray[np.uint8]


def _planes(buf: U8, width: int, height: int) -> tuple[U8, U8, U8]:
    """Y, U, V views of an I420 buffer shaped (height * 3 / 2, width)."""
    q = height // 4
    u = buf[height : height + q].reshape(height // 2, width // 2)
    v = buf[height + q : height + 2 * q].reshape(height // 2, width // 2)
    return buf[:height], u, v


class _Desktop:
    """Static background plus a scrolling document region (Y only; its chroma is neutral)."""

    def __init__(self, width: int, height: int, fps: int, rng: np.random.Generator) -> None:
        self.background = np.empty((height * 3 // 2, width), np.uint8)
        y, u, v = _planes(self.background, width, height)
        grad = np.linspace(60, 110, height, dtype=np.float32)[:, None]
        y[:] = grad.astype(np.uint8)
        u[:] = 150
        v[:] = 110
        taskbar = max(8, height // 24) & ~1
        y[height - taskbar :] = 40
        u[(height - taskbar) // 2 :] = 128
        v[(height - taskbar) // 2 :] = 128
        # Window A: static text. Window B: the scrolling document.
        self._win_a = self._window(y, u, v, 0.08, 0.22, 0.40, 0.55, rng, text=True)
        x0, y0, x1, y1 = self._window(y, u, v, 0.45, 0.12, 0.95, 0.85, rng, text=False)
        self.region = (y0, y1, x0, x1)
        rows = y1 - y0
        self.document = np.concatenate([self._text(rows, x1 - x0, rng)] * 2)
        self._rows = rows
        # About a tenth of the region per second: a reader scrolling a page.
        self._speed = max(1.0, rows / 10 / fps)

    @staticmethod
    def _window(
        y: U8,
        u: U8,
        v: U8,
        fx0: float,
        fy0: float,
        fx1: float,
        fy1: float,
        rng: np.random.Generator,
        *,
        text: bool,
    ) -> tuple[int, int, int, int]:
        h, w = y.shape
        x0, x1 = int(w * fx0) & ~1, int(w * fx1) & ~1
        y0, y1 = int(h * fy0) & ~1, int(h * fy1) & ~1
        title = max(4, h // 40) & ~1
        y[y0 : y0 + title, x0:x1] = 100
        u[y0 // 2 : (y0 + title) // 2, x0 // 2 : x1 // 2] = 170
        v[y0 // 2 : (y0 + title) // 2, x0 // 2 : x1 // 2] = 100
        y[y0 + title : y1, x0:x1] = 230
        u[(y0 + title) // 2 : y1 // 2, x0 // 2 : x1 // 2] = 128
        v[(y0 + title) // 2 : y1 // 2, x0 // 2 : x1 // 2] = 128
        if text:
            y[y0 + title : y1, x0:x1] = _Desktop._text(y1 - y0 - title, x1 - x0, rng)
        return x0, y0 + title, x1, y1

    @staticmethod
    def _text(rows: int, cols: int, rng: np.random.Generator) -> U8:
        """Dark word-like runs on white, in lines, like a page of text."""
        page = np.full((rows, cols), 230, np.uint8)
        pitch = max(6, rows // 30)
        glyph = max(2, pitch * 2 // 3)
        margin = max(2, cols // 40)
        for top in range(pitch // 3, rows - glyph, pitch):
            x = margin
            end = cols - margin - int(rng.integers(0, max(1, cols // 3)))
            while x < end:
                word = int(rng.integers(glyph, glyph * 6))
                page[top : top + glyph, x : min(x + word, end)] = 30
                x += word + glyph
        return page

    def render(self, index: int, buf: U8) -> None:
        np.copyto(buf, self.background)
        y0, y1, x0, x1 = self.region
        offset = int(index * self._speed) % self._rows
        buf[y0:y1, x0:x1] = self.document[offset : offset + self._rows]


class _Game:
    """A textured plasma panned over the whole frame, plus moving grain."""

    def __init__(self, width: int, height: int, fps: int, rng: np.random.Generator) -> None:
        self._w, self._h, self._fps = width, height, fps
        self._mx, self._my = (width // 4) & ~1, (height // 4) & ~1
        self._tex_y = self._plasma(height + 2 * self._my, width + 2 * self._mx, 6.0, rng)
        ch, cw = height // 2 + self._my, width // 2 + self._mx
        self._tex_u = self._plasma(ch, cw, 3.0, rng, lo=70, hi=190)
        self._tex_v = self._plasma(ch, cw, 4.0, rng, lo=70, hi=190)
        # Grain in [-12, 12] stored as uint8 two's complement: adding it with uint8 wraparound
        # is a signed add, and the textures stay in [24, 231] so nothing actually wraps.
        self._grain_margin = 64
        g = self._grain_margin
        self._grain_y = rng.integers(-12, 13, (height + g, width + g), dtype=np.int8).view(np.uint8)
        self._grain_c = rng.integers(-6, 7, (height // 2 + g, width // 2 + g), dtype=np.int8).view(
            np.uint8
        )
        # Grain offsets per frame index (a table, so frame N looks the same on every run).
        self._grain_offsets = (rng.integers(0, self._grain_margin, (1024, 2)) & ~1).tolist()

    @staticmethod
    def _plasma(
        rows: int,
        cols: int,
        scale: float,
        rng: np.random.Generator,
        lo: int = 24,
        hi: int = 231,
    ) -> U8:
        yy = np.linspace(0, scale * math.pi, rows, dtype=np.float32)[:, None]
        xx = np.linspace(0, scale * 1.7 * math.pi, cols, dtype=np.float32)[None, :]
        field = np.sin(xx) + np.sin(yy * 1.3) + np.sin((xx + yy) * 0.7) + np.sin(xx * 3.1 - yy)
        # Per-pixel random detail on top of the smooth field, like textured game geometry.
        field += rng.standard_normal((rows, cols), dtype=np.float32) * 0.35
        field -= field.min()
        field *= (hi - lo) / max(float(field.max()), 1e-6)
        field += lo
        out: U8 = field.astype(np.uint8)
        return out

    def render(self, index: int, buf: U8) -> None:
        t = index / self._fps
        ox = int(self._mx * (1 + math.sin(t * 2.3))) & ~1
        oy = int(self._my * (1 + math.sin(t * 1.7 + 1.0))) & ~1
        nx, ny = self._grain_offsets[index % len(self._grain_offsets)]
        y, u, v = _planes(buf, self._w, self._h)
        np.add(
            self._tex_y[oy : oy + self._h, ox : ox + self._w],
            self._grain_y[ny : ny + self._h, nx : nx + self._w],
            out=y,
        )
        ch, cw = self._h // 2, self._w // 2
        cy, cx, gy, gx = oy // 2, ox // 2, ny // 2, nx // 2
        grain = self._grain_c[gy : gy + ch, gx : gx + cw]
        np.add(self._tex_u[cy : cy + ch, cx : cx + cw], grain, out=u)
        np.add(self._tex_v[cy : cy + ch, cx : cx + cw], grain, out=v)


@register_capture("testsrc")
class TestSource(CaptureBackend):
    """Synthetic source with a barcode. Options: ``pattern`` ("desktop" | "game"), ``barcode``,
    ``seed``, and the virtual monitor size ``native_width`` x ``native_height``."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self,
        *,
        pattern: str = "desktop",
        barcode: bool = True,
        seed: int = 0,
        native_width: int = 1920,
        native_height: int = 1080,
    ) -> None:
        if pattern not in PATTERNS:
            raise ValueError(
                f"testsrc pattern must be one of {', '.join(PATTERNS)}, not {pattern!r}"
            )
        self.pattern = pattern
        self._barcode = barcode
        self._seed = seed
        self._native = (native_width, native_height)
        self._size: tuple[int, int] | None = None
        self._content: _Desktop | _Game | None = None
        self._index = 0

    def open(
        self, *, width: int | None, height: int | None, fps: int, monitor: int | None = None
    ) -> None:
        if monitor not in (None, 0):
            raise CaptureUnavailable(f"testsrc has one monitor (0), not {monitor}")
        w, h = resolve_size(*self._native, width, height)
        if self._barcode and (w < BARCODE_WIDTH or h < BARCODE_HEIGHT):
            raise CaptureUnavailable(
                f"testsrc at {w}x{h} is smaller than the {BARCODE_WIDTH}x{BARCODE_HEIGHT} "
                "barcode strip; use a larger size or barcode=False"
            )
        rng = np.random.default_rng(self._seed)
        self._content = (
            _Desktop(w, h, fps, rng) if self.pattern == "desktop" else _Game(w, h, fps, rng)
        )
        self._size = (w, h)
        self._index = 0

    def monitors(self) -> list[MonitorInfo]:
        w, h = self._native
        return [
            MonitorInfo(
                id=0, name=f"testsrc-{self.pattern}", x=0, y=0, width=w, height=h, primary=True
            )
        ]

    @property
    def width(self) -> int:
        return self._require_open()[0]

    @property
    def height(self) -> int:
        return self._require_open()[1]

    def _require_open(self) -> tuple[int, int]:
        if self._size is None:
            raise RuntimeError("testsrc is not open")
        return self._size

    def grab(self) -> RawFrame:
        w, h = self._require_open()
        assert self._content is not None
        now = time.monotonic()
        # Snap to a quarter past a whole microsecond: whether a consumer truncates or rounds
        # capture_time * 1e6 (even after a trip through float seconds), it gets the barcode's
        # timestamp. Moves the time by under a microsecond.
        start = (math.floor(now * 1_000_000) + 0.25) / 1_000_000
        index = self._index
        self._index += 1
        # A fresh buffer per frame: earlier frames may still sit in the encoder's queue. After
        # the first frames glibc serves these from its heap, so this costs no page faults.
        buf = np.empty((h * 3 // 2, w), np.uint8)
        self._content.render(index, buf)
        if self._barcode:
            stamp_barcode(
                buf[:h],
                BarcodeValue(frame_index=index & 0xFFFFFFFF, timestamp_us=timestamp_us(start)),
            )
        image = av.VideoFrame.from_numpy_buffer(buf, format="yuv420p")
        return RawFrame(
            image=image,
            frame_index=index,
            capture_time=start,
            capture_duration=time.monotonic() - now,
        )

    def close(self) -> None:
        self._content = None
        self._size = None
