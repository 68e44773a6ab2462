"""XTest injection into an X display (python-xlib).

Keys: a HID usage becomes an X keycode once, when the injector opens (see
:mod:`wavry.input.keymap` for why keys are physical positions). On a server that numbers keys
like evdev (``keycode = evdev + 8``: Xorg, Xwayland, Xvfb) positions go straight through; on
another, or for a position whose keycode has no symbols, the key's US keysym is looked up in the
display's mapping. A key with neither is skipped and counted (``counters.unmapped_keys``). After
a layout change call :meth:`XTestInjector.refresh_keymap`.

Pointer: absolute motion lands in the target region (default: the whole screen), relative
motion is XTest's relative motion. Buttons 1/2/3 stay, back/forward are X buttons 8/9. Scroll is
X's wheel buttons: 4 up, 5 down, 6 left, 7 right, one click per whole notch; fractions
accumulate until they make a notch, and a change of direction starts afresh.

Requests are buffered and flushed after each event (or batch); nothing waits for a reply, so
``inject`` costs a few microseconds plus one socket write.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wavry.input.events import GamepadEvent
from wavry.input.inject.base import (
    InjectorOptions,
    InjectorUnavailable,
    InputInjector,
    KeyMode,
    register_injector,
)
from wavry.input.inject.uinput import UInputGamepads, evdev_device_factory
from wavry.input.keymap import HID_TO_EVDEV, HID_TO_KEYSYMS

if TYPE_CHECKING:
    from Xlib.display import Display

__all__ = ["XTestInjector", "build_keycode_map", "uses_evdev_keycodes"]

logger = logging.getLogger(__name__)

# X protocol constants (Xlib.X), kept here so the module imports without python-xlib.
_KEY_PRESS, _KEY_RELEASE, _BUTTON_PRESS, _BUTTON_RELEASE, _MOTION = 2, 3, 4, 5, 6
#: wire button -> X button: back and forward are 8 and 9 (4-7 are the wheel)
X_BUTTONS = {1: 1, 2: 2, 3: 3, 4: 8, 5: 9}
SCROLL_UP, SCROLL_DOWN, SCROLL_LEFT, SCROLL_RIGHT = 4, 5, 6, 7
#: the evdev offset of X keycodes (X reserves 0..7)
EVDEV_KEYCODE_OFFSET = 8
#: keycodes whose symbols are the same on every layout: they tell whether a server numbers keys
#: like evdev (Escape, Return, space, Shift_L, Control_L, F1)
_EVDEV_PROBES = ((9, 0xFF1B), (36, 0xFF0D), (65, 0x0020), (50, 0xFFE1), (37, 0xFFE3), (67, 0xFFBE))


def uses_evdev_keycodes(column0: dict[int, int]) -> bool:
    """True when keycode -> unmodified keysym *column0* numbers keys as ``evdev + 8``."""
    return all(column0.get(kc) == ks for kc, ks in _EVDEV_PROBES)


def build_keycode_map(
    min_keycode: int, mapping: Sequence[Sequence[int]], mode: KeyMode
) -> tuple[dict[int, int], str]:
    """HID usage -> X keycode for a display whose keyboard mapping starts at *min_keycode*.

    Returns the map and the mode used ("position" or "keysym"). Pure, so it is testable with
    any mapping.
    """
    column0: dict[int, int] = {}
    has_symbols: set[int] = set()
    by_keysym: dict[int, int] = {}
    for i, syms in enumerate(mapping):
        keycode = min_keycode + i
        if any(syms):
            has_symbols.add(keycode)
        if syms and syms[0]:
            column0[keycode] = syms[0]
            by_keysym.setdefault(syms[0], keycode)  # the lowest keycode wins
    used = mode
    if mode == "auto":
        used = "position" if uses_evdev_keycodes(column0) else "keysym"
    result: dict[int, int] = {}
    for usage in sorted(set(HID_TO_EVDEV) | set(HID_TO_KEYSYMS)):
        if used == "position":
            keycode = HID_TO_EVDEV[usage] + EVDEV_KEYCODE_OFFSET if usage in HID_TO_EVDEV else 0
            if keycode in has_symbols:
                result[usage] = keycode
                continue
        for keysym in HID_TO_KEYSYMS.get(usage, ()):
            if keysym in by_keysym:
                result[usage] = by_keysym[keysym]
                break
    return result, used


class _Notches:
    """Whole wheel clicks out of fractional notches."""

    __slots__ = ("_acc",)

    def __init__(self) -> None:
        self._acc = 0.0

    def step(self, notches: float) -> int:
        if notches * self._acc < 0:  # reversal: drop the half-turned notch of the old direction
            self._acc = 0.0
        self._acc += notches
        whole = int(self._acc)
        self._acc -= whole
        return whole


class XTestInjector(InputInjector):
    """Injects into an X display with the XTEST extension."""

    name = "xtest"

    def __init__(
        self,
        *,
        display: str | None = None,
        key_mode: KeyMode = "auto",
        gamepads: UInputGamepads | None = None,
    ) -> None:
        from Xlib import error as xerror
        from Xlib.display import Display
        from Xlib.ext import xtest

        self._fake_input = xtest.fake_input
        self._closed_error = xerror.ConnectionClosedError
        try:
            self._d: Display = Display(display)
        except (xerror.DisplayError, xerror.ConnectionClosedError, OSError) as exc:
            raise InjectorUnavailable(
                f"cannot open X display {display or '$DISPLAY'}: {exc}; run the host inside "
                "an X11 session (or set DISPLAY), or use the uinput injector"
            ) from exc
        if not self._d.has_extension("XTEST"):
            self._d.close()
            raise InjectorUnavailable("the X server has no XTEST extension; use uinput")
        self._d.set_error_handler(self._on_x_error)
        screen = self._d.screen()
        self._root = screen.root
        super().__init__(screen_size=(screen.width_in_pixels, screen.height_in_pixels))
        self._key_mode: KeyMode = key_mode
        self._keycodes: dict[int, int] = {}
        self.used_key_mode = ""
        self.refresh_keymap()
        self._gamepads = gamepads
        self._vwheel = _Notches()
        self._hwheel = _Notches()
        self._warned: set[int] = set()

    @property
    def keycodes(self) -> dict[int, int]:
        """HID usage -> X keycode in use (a copy)."""
        return dict(self._keycodes)

    def refresh_keymap(self) -> None:
        """Re-read the display's keyboard mapping (after a layout change)."""
        info = self._d.display.info
        first, last = info.min_keycode, info.max_keycode
        mapping = self._d.get_keyboard_mapping(first, last - first + 1)
        self._keycodes, self.used_key_mode = build_keycode_map(first, mapping, self._key_mode)
        logger.debug("xtest key map: %d keys, %s mode", len(self._keycodes), self.used_key_mode)

    def sync(self) -> None:
        """Wait until the server has processed everything sent (tests; shutdown)."""
        self._d.sync()

    def _fake(self, event_type: int, detail: int, x: int = 0, y: int = 0, root: Any = 0) -> None:
        try:
            self._fake_input(self._d, event_type, detail, root=root, x=x, y=y)
        except self._closed_error as exc:
            raise InjectorUnavailable(f"X display connection lost: {exc}") from exc

    def _key(self, usage: int, pressed: bool) -> bool:
        keycode = self._keycodes.get(usage)
        if keycode is None:
            if usage not in self._warned:
                self._warned.add(usage)
                logger.info("HID usage %#x has no key on this display: skipped", usage)
            return False
        self._fake(_KEY_PRESS if pressed else _KEY_RELEASE, keycode)
        return True

    def _button(self, button: int, pressed: bool) -> None:
        self._fake(_BUTTON_PRESS if pressed else _BUTTON_RELEASE, X_BUTTONS[button])

    def _move_to(self, x: float, y: float) -> None:
        region = self.target_region
        assert region is not None  # an X screen always has a size
        px, py = region.pixel(x, y)
        self._fake(_MOTION, 0, px, py, root=self._root)

    def _move_by(self, dx: int, dy: int) -> None:
        self._fake(_MOTION, 1, dx, dy)

    def _click(self, button: int, times: int) -> None:
        for _ in range(times):
            self._fake(_BUTTON_PRESS, button)
            self._fake(_BUTTON_RELEASE, button)

    def _scroll(self, dx: float, dy: float) -> None:
        if dy:
            n = self._vwheel.step(dy)
            self._click(SCROLL_UP if n > 0 else SCROLL_DOWN, abs(n))
        if dx:
            n = self._hwheel.step(dx)
            self._click(SCROLL_RIGHT if n > 0 else SCROLL_LEFT, abs(n))

    def _gamepad(self, event: GamepadEvent) -> None:
        if self._gamepads is None or not self._gamepads.handle(event):
            self.counters.dropped_gamepad += 1

    def _gamepad_gone(self, gamepad_id: int) -> None:
        if self._gamepads is not None:
            self._gamepads.remove(gamepad_id)

    def _release_gamepads(self) -> None:
        if self._gamepads is not None:
            self._gamepads.release_all()

    def _flush(self) -> None:
        try:
            self._d.flush()
        except self._closed_error as exc:
            raise InjectorUnavailable(f"X display connection lost: {exc}") from exc

    def _close(self) -> None:
        if self._gamepads is not None:
            self._gamepads.close()
        try:
            self._d.close()
        except self._closed_error:
            pass  # the server went first

    @staticmethod
    def _on_x_error(err: Any, *_: Any) -> None:
        # Asynchronous protocol errors (e.g. the server refused a request); never fatal here.
        logger.warning("X error from input injection: %s", err)


@register_injector("xtest")
def _open_xtest(opts: InjectorOptions) -> InputInjector:
    gamepads = None
    if opts.gamepads and opts.max_gamepads:
        factory = opts.device_factory or evdev_device_factory
        gamepads = UInputGamepads(factory, max_pads=opts.max_gamepads)
    return XTestInjector(display=opts.display, key_mode=opts.key_mode, gamepads=gamepads)
