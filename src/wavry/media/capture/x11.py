"""X11 screen capture: MIT-SHM grabs (mss), XDamage change tracking, XFixes cursor.

Per ``grab()``:

1. Drain X events (non-blocking). ``DamageNotify`` means pixels changed; ``CursorNotify``
   means the cursor shape changed (its image is refetched once, not per frame);
   ``ConfigureNotify`` on the root window means the screen was resized (:class:`CaptureLost`:
   reopen to pick up the new geometry).
2. Query the pointer (one round trip, ~30 us). If nothing was damaged and the pointer did not
   move, return the previous picture with ``unchanged=True`` without touching the pixels: a
   static desktop costs almost nothing and the host can skip encoding it.
3. Otherwise clear the damage region *before* grabbing (damage that lands during the grab is
   reported for the next frame, never lost), grab the monitor with ``XShmGetImage`` (mss 10's
   XCB backend; it falls back to ``XGetImage`` where MIT-SHM is missing, e.g. remote X),
   composite the cursor with numpy (mss' own cursor merge is a per-pixel Python loop), and
   convert BGRA to yuv420p with swscale (``VideoFrame.reformat``: BT.709 limited range, scaled
   to the requested size in the same pass).

Two X connections are used: mss' XCB connection for pixels and a python-xlib one for
events, pointer and cursor (python-xlib has no MIT-SHM; mss has no DAMAGE). Without the
DAMAGE extension every grab is a full grab and ``unchanged`` is always False; without XFIXES
the cursor is not drawn.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from wavry.media.capture.base import (
    CaptureBackend,
    CaptureLost,
    CaptureUnavailable,
    MonitorInfo,
    register_capture,
    resolve_size,
)
from wavry.media.frames import RawFrame

__all__ = ["X11Capture", "composite_cursor"]

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]


def composite_cursor(screen: U8, cursor: U8, x: int, y: int) -> None:
    """Blend a premultiplied-alpha BGRA ``cursor`` onto a BGRA ``screen`` at (x, y), in place.

    XFixes cursor images are premultiplied ARGB32, which in little-endian memory is the same
    B, G, R, A byte order as the screen, so the blend is ``out = c + bg * (255 - a) / 255``.
    Parts outside the screen are clipped.
    """
    sh, sw = screen.shape[:2]
    ch, cw = cursor.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + cw, sw), min(y + ch, sh)
    if x0 >= x1 or y0 >= y1:
        return
    c = cursor[y0 - y : y1 - y, x0 - x : x1 - x]
    bg = screen[y0:y1, x0:x1, :3].astype(np.uint16)
    inv = 255 - c[:, :, 3:4].astype(np.uint16)
    out = (bg * inv + 127) // 255 + c[:, :, :3]
    screen[y0:y1, x0:x1, :3] = np.minimum(out, 255).astype(np.uint8)


@register_capture("x11")
class X11Capture(CaptureBackend):
    """Capture an X11 monitor. Options: ``display`` (default ``$DISPLAY``), ``with_cursor``
    (draw the pointer into the picture), ``track_damage`` (report ``unchanged`` frames)."""

    def __init__(
        self,
        *,
        display: str | None = None,
        with_cursor: bool = True,
        track_damage: bool = True,
    ) -> None:
        self._display_name = display
        self._with_cursor = with_cursor
        self._track_damage = track_damage
        self._sct: Any = None  # mss.MSS (untyped third-party object)
        self._xd: Any = None  # Xlib.display.Display
        self._root: Any = None
        self._damage: int | None = None
        self._rect: dict[str, int] = {}
        self._root_size = (0, 0)
        self._size: tuple[int, int] | None = None
        self._cursor: U8 | None = None
        self._cursor_hot = (0, 0)
        self._pointer: tuple[int, int] | None = None
        self._last: av.VideoFrame | None = None
        self._index = 0

    # -- connection ------------------------------------------------------------------------

    def _resolve_display(self) -> str:
        name = self._display_name or os.environ.get("DISPLAY")
        if not name:
            raise CaptureUnavailable(
                "no X display: DISPLAY is not set (run inside an X11 session, pass "
                "display=':0', or use the 'testsrc' capture backend)"
            )
        return name

    def _connect_mss(self, name: str) -> Any:
        import mss

        try:
            return mss.MSS(backend="xshmgetimage", display=name, with_cursor=False)
        except mss.ScreenShotError as exc:
            raise CaptureUnavailable(f"cannot open X display {name!r}: {exc}") from exc

    def _connect_xlib(self, name: str) -> Any:
        from Xlib import display as xdisplay
        from Xlib import error as xerror

        try:
            return xdisplay.Display(name)
        except (xerror.DisplayError, xerror.ConnectionClosedError, OSError) as exc:
            raise CaptureUnavailable(f"cannot open X display {name!r}: {exc}") from exc

    @staticmethod
    def _monitor_list(sct: Any) -> list[MonitorInfo]:
        # mss lists [all monitors' bounding box, monitor 1, monitor 2, ...] from RandR.
        found = []
        for i, mon in enumerate(sct.monitors[1:]):
            found.append(
                MonitorInfo(
                    id=i,
                    name=str(mon.get("output") or mon.get("name") or f"monitor-{i}"),
                    x=int(mon["left"]),
                    y=int(mon["top"]),
                    width=int(mon["width"]),
                    height=int(mon["height"]),
                    primary=bool(mon.get("is_primary", False)),
                )
            )
        return found

    def monitors(self) -> list[MonitorInfo]:
        if self._sct is not None:
            return self._monitor_list(self._sct)
        sct = self._connect_mss(self._resolve_display())
        try:
            return self._monitor_list(sct)
        finally:
            sct.close()

    def open(
        self, *, width: int | None, height: int | None, fps: int, monitor: int | None = None
    ) -> None:
        self.close()
        name = self._resolve_display()
        self._sct = self._connect_mss(name)
        try:
            self._xd = self._connect_xlib(name)
            self._select_monitor(monitor)
            self._size = resolve_size(self._rect["width"], self._rect["height"], width, height)
            self._setup_events()
            # python-xlib's has_extension only knows extensions it has modules for.
            shm = self._xd.query_extension("MIT-SHM") is not None
        except BaseException:
            self.close()
            raise
        log.info(
            "x11 capture on %s: monitor %sx%s+%s+%s -> %dx%d (shm=%s, damage=%s, cursor=%s)",
            name,
            self._rect["width"],
            self._rect["height"],
            self._rect["left"],
            self._rect["top"],
            *self._size,
            shm,
            self._damage is not None,
            self._cursor is not None,
        )
        if not shm:
            log.warning("X server has no MIT-SHM: capture falls back to XGetImage (slower)")

    def _select_monitor(self, monitor: int | None) -> None:
        mons = self._monitor_list(self._sct)
        if not mons:
            raise CaptureUnavailable("the X server reports no monitors")
        if monitor is None:
            chosen = next((m for m in mons if m.primary), mons[0])
        elif 0 <= monitor < len(mons):
            chosen = mons[monitor]
        else:
            listing = ", ".join(f"{m.id} ({m.name} {m.width}x{m.height})" for m in mons)
            raise CaptureUnavailable(f"monitor {monitor} does not exist; available: {listing}")
        self._rect = {
            "left": chosen.x,
            "top": chosen.y,
            "width": chosen.width,
            "height": chosen.height,
        }

    def _setup_events(self) -> None:
        from Xlib import X
        from Xlib.ext import damage, xfixes

        xd = self._xd
        self._root = xd.screen().root
        geom = self._root.get_geometry()
        self._root_size = (int(geom.width), int(geom.height))
        # Screen resizes arrive as ConfigureNotify on the root window.
        self._root.change_attributes(event_mask=X.StructureNotifyMask)
        if self._track_damage and xd.has_extension("DAMAGE"):
            xd.damage_query_version()
            self._damage = self._root.damage_create(damage.DamageReportNonEmpty)
        if self._with_cursor and xd.has_extension("XFIXES"):
            xd.xfixes_query_version()
            xd.xfixes_select_cursor_input(self._root, xfixes.XFixesDisplayCursorNotifyMask)
            self._fetch_cursor()
        xd.sync()

    def _fetch_cursor(self) -> None:
        img = self._xd.xfixes_get_cursor_image(self._root)
        pixels = np.asarray(img.cursor_image, dtype="<u4").view(np.uint8)
        self._cursor = pixels.reshape(int(img.height), int(img.width), 4)
        self._cursor_hot = (int(img.xhot), int(img.yhot))

    # -- capture ---------------------------------------------------------------------------

    @property
    def width(self) -> int:
        return self._require_open()[0]

    @property
    def height(self) -> int:
        return self._require_open()[1]

    def _require_open(self) -> tuple[int, int]:
        if self._size is None:
            raise RuntimeError("x11 capture is not open")
        return self._size

    def _poll(self) -> bool:
        """Drain pending X events and query the pointer; True when the picture may differ."""
        from Xlib import X
        from Xlib import error as xerror

        # python-xlib clones extension event classes per display, so events are told apart by
        # their codes, never with isinstance.
        codes = self._xd.extension_event
        damage_code = getattr(codes, "DamageNotify", None)
        cursor_code = getattr(codes, "DisplayCursorNotify", (None, None))
        changed = False
        try:
            while self._xd.pending_events():
                event = self._xd.next_event()
                if event.type == damage_code:
                    changed = True
                elif (event.type, getattr(event, "sub_code", None)) == cursor_code:
                    self._fetch_cursor()
                    changed = True
                elif event.type == X.ConfigureNotify and event.window == self._root:
                    if (event.width, event.height) != self._root_size:
                        raise CaptureLost(
                            f"X screen resized to {event.width}x{event.height}; reopen capture"
                        )
            if self._cursor is not None:
                ptr = self._root.query_pointer()
                pos = (int(ptr.root_x), int(ptr.root_y))
                if pos != self._pointer:
                    self._pointer = pos
                    changed = True
            if (changed or self._last is None) and self._damage is not None:
                self._xd.damage_subtract(self._damage)
                self._xd.flush()
        except (xerror.ConnectionClosedError, OSError) as exc:
            raise CaptureLost(f"X display connection lost: {exc}") from exc
        return changed or self._damage is None or self._last is None

    def grab(self) -> RawFrame:
        out_w, out_h = self._require_open()
        start = time.monotonic()
        index = self._index
        self._index += 1
        if not self._poll():
            assert self._last is not None
            return RawFrame(
                image=self._last,
                frame_index=index,
                capture_time=start,
                capture_duration=time.monotonic() - start,
                unchanged=True,
            )
        bgra = self._grab_pixels()
        if self._cursor is not None and self._pointer is not None:
            hx, hy = self._cursor_hot
            composite_cursor(
                bgra,
                self._cursor,
                self._pointer[0] - hx - self._rect["left"],
                self._pointer[1] - hy - self._rect["top"],
            )
        # X's 32-bit ZPixmap is BGRX: the fourth byte is padding, which "bgra" input ignores
        # when converting to YUV.
        image = av.VideoFrame.from_numpy_buffer(bgra, format="bgra").reformat(
            width=out_w,
            height=out_h,
            format="yuv420p",
            dst_colorspace="ITU709",
            dst_color_range="MPEG",
            interpolation="BILINEAR",
        )
        self._last = image
        return RawFrame(
            image=image,
            frame_index=index,
            capture_time=start,
            capture_duration=time.monotonic() - start,
        )

    def _grab_pixels(self) -> U8:
        import mss

        try:
            shot = self._sct.grab(self._rect)
        # mss' XCB layer asserts on a missing reply when the server has gone away.
        except (mss.ScreenShotError, AssertionError, OSError) as exc:
            raise CaptureLost(f"X screen grab failed: {exc or type(exc).__name__}") from exc
        h, w = self._rect["height"], self._rect["width"]
        return np.frombuffer(shot.raw, dtype=np.uint8).reshape(h, w, 4)

    def close(self) -> None:
        if self._sct is not None:
            import mss

            try:
                self._sct.close()
            except mss.ScreenShotError:
                pass  # the server is already gone; nothing to release
            self._sct = None
        if self._xd is not None:
            from Xlib import error as xerror

            try:
                self._xd.close()
            except (xerror.ConnectionClosedError, OSError):
                pass
            self._xd = None
        self._damage = None
        self._cursor = None
        self._pointer = None
        self._last = None
        self._size = None
