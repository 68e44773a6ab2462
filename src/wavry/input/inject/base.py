"""The injector interface, its bookkeeping, and the registry that picks one by name.

An injector turns :mod:`wavry.input.events` into input on the host. This base class does what
every backend needs, once: it tracks pressed keys and buttons (a repeated press is ignored, a
release of something not held is ignored, and :meth:`InputInjector.release_all` lifts everything
still down when a client leaves, so no key sticks), maps the normalised pointer onto the target
region, accumulates sub-pixel relative motion, and counts what it had to drop.

Backends implement the small ``_``-prefixed hooks. Injectors are not thread-safe: the host calls
one from a single input thread. ``inject`` must stay fast and never wait for the display server
(no round trips; writes are flushed, not synced).
"""

from __future__ import annotations

import abc
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar

from wavry.input.events import (
    GamepadConnected,
    GamepadDisconnected,
    GamepadEvent,
    InputError,
    InputEvent,
    KeyEvent,
    MouseButton,
    MouseMove,
    MouseRelative,
    Scroll,
)

__all__ = [
    "DeviceSpec",
    "InjectorCounters",
    "InjectorOptions",
    "InjectorUnavailable",
    "InputInjector",
    "KeyMode",
    "TargetRegion",
    "VirtualDevice",
    "VirtualDeviceFactory",
    "auto_order",
    "available_injectors",
    "open_injector",
    "register_injector",
]

logger = logging.getLogger(__name__)

KeyMode = Literal["auto", "position", "keysym"]
_FLUSH_EVERY = 32


class InjectorUnavailable(InputError):
    """This backend cannot run here. The message says what to do about it."""


class VirtualDevice(Protocol):
    """What the uinput backends need of a device: ``evdev.UInput`` satisfies it."""

    def write(self, etype: int, code: int, value: int) -> None: ...

    def syn(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A virtual device to create: its name, ids and capabilities in ``evdev.UInput`` form.

    ``events`` maps an event type to codes, or for EV_ABS to ``(code, (value, min, max, fuzz,
    flat, resolution))`` pairs.
    """

    name: str
    events: Mapping[int, tuple[Any, ...]]
    vendor: int = 0x1209  # pid.codes open-source vendor id
    product: int = 0x5752
    version: int = 1
    bustype: int = 0x06  # BUS_VIRTUAL


#: Creates a device from a spec; raises InjectorUnavailable when it cannot.
VirtualDeviceFactory = Callable[[DeviceSpec], VirtualDevice]


@dataclass(frozen=True, slots=True)
class InjectorOptions:
    """Knobs of the injectors; each backend reads the ones it understands.

    ``display``: X display for XTest (None: ``$DISPLAY``). ``key_mode``: how XTest finds a
    keycode ("position": evdev+8; "keysym": look up the US keysym; "auto": position when the
    server numbers keys like evdev). ``device_factory``: creates uinput devices (None: real
    ``/dev/uinput`` through python-evdev; tests pass a fake). ``screen_size``: the host desktop
    in pixels, which uinput needs to map a target region (XTest asks the server). ``gamepads``:
    let the XTest backend create uinput pads for gamepad events. ``max_gamepads``: at most this
    many virtual pads at once.
    """

    display: str | None = None
    key_mode: KeyMode = "auto"
    device_factory: VirtualDeviceFactory | None = None
    screen_size: tuple[int, int] | None = None
    gamepads: bool = True
    max_gamepads: int = 8

    def __post_init__(self) -> None:
        if self.key_mode not in ("auto", "position", "keysym"):
            raise ValueError(f"key_mode must be auto, position or keysym, not {self.key_mode!r}")
        if not 0 <= self.max_gamepads <= 32:
            raise ValueError("max_gamepads must be in 0..32")
        if self.screen_size is not None and min(self.screen_size) <= 0:
            raise ValueError("screen_size must be positive")


@dataclass(frozen=True, slots=True)
class TargetRegion:
    """The part of the host screen the streamed picture shows, in screen pixels."""

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.x < 0 or self.y < 0 or self.width <= 0 or self.height <= 0:
            raise ValueError(f"invalid target region {self}")

    def pixel(self, nx: float, ny: float) -> tuple[int, int]:
        """Screen pixel under normalised picture point (nx, ny).

        Column ``c`` of the picture covers ``[c/width, (c+1)/width)``; clients send a pixel's
        centre, ``(c + 0.5) / width``, so float32 rounding never lands on a neighbour.
        """
        col = min(int(nx * self.width), self.width - 1)
        row = min(int(ny * self.height), self.height - 1)
        return self.x + col, self.y + row


@dataclass(slots=True)
class InjectorCounters:
    """What an injector did and dropped; read by telemetry, never reset by the injector."""

    events: int = 0
    unmapped_keys: int = 0
    duplicate_presses: int = 0
    stray_releases: int = 0
    dropped_gamepad: int = 0
    released_on_reset: int = 0


class InputInjector(abc.ABC):
    """Injects input events on this host. Use :func:`open_injector` to get one."""

    #: the registry name of the backend
    name: str = ""

    def __init__(self, *, screen_size: tuple[int, int] | None) -> None:
        self.counters = InjectorCounters()
        self._screen_size = screen_size
        self._region: TargetRegion | None = (
            TargetRegion(0, 0, *screen_size) if screen_size is not None else None
        )
        self._held_keys: set[int] = set()
        self._held_buttons: set[int] = set()
        self._rel_rest = [0.0, 0.0]  # sub-pixel remainder of relative motion
        self._closed = False
        self._dispatch: dict[type, Callable[[Any], None]] = {
            KeyEvent: self._on_key,
            MouseMove: self._on_move,
            MouseRelative: self._on_relative,
            MouseButton: self._on_button,
            Scroll: self._on_scroll,
            GamepadEvent: self._on_gamepad,
            GamepadConnected: lambda _e: None,
            GamepadDisconnected: self._on_gamepad_disconnected,
        }

    # -- public API ------------------------------------------------------------------------------

    @property
    def screen_size(self) -> tuple[int, int] | None:
        return self._screen_size

    @property
    def target_region(self) -> TargetRegion | None:
        """None when the picture covers the whole (unknown-size) screen."""
        return self._region

    @property
    def held_keys(self) -> frozenset[int]:
        return frozenset(self._held_keys)

    @property
    def held_buttons(self) -> frozenset[int]:
        return frozenset(self._held_buttons)

    def set_target_region(self, x: int, y: int, width: int, height: int) -> None:
        """Map the picture onto this rectangle of the screen (e.g. one monitor)."""
        region = TargetRegion(x, y, width, height)
        if self._screen_size is None:
            raise ValueError("screen size unknown: pass screen_size= to map a region")
        sw, sh = self._screen_size
        if x + width > sw or y + height > sh:
            raise ValueError(f"region {region} exceeds the {sw}x{sh} screen")
        self._region = region

    def inject(self, event: InputEvent) -> None:
        """Inject one event and flush it to the display server/kernel."""
        self._inject_one(event)
        self._flush()

    def inject_many(self, events: Iterable[InputEvent]) -> None:
        """Inject a batch, flushing every few events and at the end."""
        for i, event in enumerate(events, 1):
            self._inject_one(event)
            # Bounded so a long batch neither waits nor piles up a large buffer in the
            # client library (python-xlib's grows by concatenation).
            if i % _FLUSH_EVERY == 0:
                self._flush()
        self._flush()

    def release_all(self) -> None:
        """Release every key, button and pad control still held (a client left)."""
        self._check_open()
        for usage in sorted(self._held_keys):
            self._key(usage, False)
        for button in sorted(self._held_buttons):
            self._button(button, False)
        self.counters.released_on_reset += len(self._held_keys) + len(self._held_buttons)
        self._held_keys.clear()
        self._held_buttons.clear()
        self._release_gamepads()
        self._flush()

    def close(self) -> None:
        """Release what is held, then free the backend. Idempotent."""
        if self._closed:
            return
        try:
            self.release_all()
        except InjectorUnavailable as exc:  # the display or device is already gone
            logger.info("input injector closed without releasing: %s", exc)
        finally:
            self._closed = True
            self._close()

    def __enter__(self) -> InputInjector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- bookkeeping -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")

    def _inject_one(self, event: InputEvent) -> None:
        self._check_open()
        handler = self._dispatch.get(type(event))
        if handler is None:
            raise TypeError(f"not an input event: {type(event).__name__}")
        self.counters.events += 1
        handler(event)

    def _on_key(self, event: KeyEvent) -> None:
        if event.pressed:
            if event.usage in self._held_keys:
                self.counters.duplicate_presses += 1
            elif self._key(event.usage, True):
                self._held_keys.add(event.usage)
            else:
                self.counters.unmapped_keys += 1
        elif event.usage in self._held_keys:
            self._held_keys.discard(event.usage)
            self._key(event.usage, False)
        else:
            self.counters.stray_releases += 1

    def _on_button(self, event: MouseButton) -> None:
        if event.pressed:
            if event.button in self._held_buttons:
                self.counters.duplicate_presses += 1
            else:
                self._held_buttons.add(event.button)
                self._button(event.button, True)
        elif event.button in self._held_buttons:
            self._held_buttons.discard(event.button)
            self._button(event.button, False)
        else:
            self.counters.stray_releases += 1

    def _on_move(self, event: MouseMove) -> None:
        self._move_to(event.x, event.y)

    def _on_relative(self, event: MouseRelative) -> None:
        # Whole pixels go out now, the fraction waits for the next event: slow, steady hand
        # motion (0.3 px per report) still moves the pointer.
        fx = self._rel_rest[0] + event.dx
        fy = self._rel_rest[1] + event.dy
        ix, iy = int(fx), int(fy)
        self._rel_rest[0], self._rel_rest[1] = fx - ix, fy - iy
        if ix or iy:
            self._move_by(ix, iy)

    def _on_scroll(self, event: Scroll) -> None:
        self._scroll(event.dx, event.dy)

    def _on_gamepad(self, event: GamepadEvent) -> None:
        self._gamepad(event)

    def _on_gamepad_disconnected(self, event: GamepadDisconnected) -> None:
        self._gamepad_gone(event.gamepad_id)

    # -- backend hooks ---------------------------------------------------------------------------

    @abc.abstractmethod
    def _key(self, usage: int, pressed: bool) -> bool:
        """Press/release the key at HID *usage*; False when this host has no such key."""

    @abc.abstractmethod
    def _button(self, button: int, pressed: bool) -> None: ...

    @abc.abstractmethod
    def _move_to(self, x: float, y: float) -> None:
        """Absolute motion to normalised picture point (x, y); see :meth:`TargetRegion.pixel`."""

    @abc.abstractmethod
    def _move_by(self, dx: int, dy: int) -> None: ...

    @abc.abstractmethod
    def _scroll(self, dx: float, dy: float) -> None:
        """Scroll by notches (+dy up, +dx right); the backend keeps fractional remainders."""

    def _gamepad(self, event: GamepadEvent) -> None:
        self.counters.dropped_gamepad += 1

    def _gamepad_gone(self, gamepad_id: int) -> None:
        """A pad's client went away: drop its virtual device if there is one."""
        return None  # default: nothing to do

    def _release_gamepads(self) -> None:
        """Release buttons and centre sticks of every virtual pad."""
        return None  # default: nothing to do

    def _flush(self) -> None:
        """Push queued requests out (no round trip)."""
        return None  # default: nothing to do

    @abc.abstractmethod
    def _close(self) -> None: ...


# -- registry ------------------------------------------------------------------------------------

InjectorFactory = Callable[[InjectorOptions], InputInjector]
_REGISTRY: dict[str, InjectorFactory] = {}
_F = TypeVar("_F", bound=InjectorFactory)


def register_injector(name: str) -> Callable[[_F], _F]:
    """Register a factory ``(InjectorOptions) -> InputInjector`` under *name*."""

    def deco(factory: _F) -> _F:
        if name in _REGISTRY or name == "auto":
            raise ValueError(f"injector {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def available_injectors() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def auto_order(environ: Mapping[str, str], platform: str = sys.platform) -> list[str]:
    """Backends "auto" tries, best first, for a session described by *environ*.

    Under Wayland, XTest would only reach X clients of Xwayland, so uinput comes first; under
    X11, XTest needs no privileges and maps the pointer exactly, so it comes first; on a console
    only uinput can work.
    """
    if not platform.startswith("linux"):
        return []
    wayland = bool(environ.get("WAYLAND_DISPLAY")) or environ.get("XDG_SESSION_TYPE") == "wayland"
    if wayland:
        return ["uinput", "xtest"]
    if environ.get("DISPLAY"):
        return ["xtest", "uinput"]
    return ["uinput"]


def open_injector(name: str = "auto", **options: Any) -> InputInjector:
    """Open the injector called *name* (or the best one that works here, for "auto").

    *options* are :class:`InjectorOptions` fields. Raises :class:`InjectorUnavailable` (with
    what to do) when the backend, or for "auto" every candidate, cannot run.
    """
    import os

    opts = InjectorOptions(**options)
    if name != "auto":
        factory = _REGISTRY.get(name)
        if factory is None:
            known = ", ".join(("auto", *available_injectors()))
            raise ValueError(f"unknown injector {name!r} (known: {known})")
        return factory(opts)
    reasons: list[str] = []
    for candidate in auto_order(os.environ):
        factory = _REGISTRY.get(candidate)
        if factory is None:
            continue
        try:
            injector = factory(opts)
        except InjectorUnavailable as exc:
            reasons.append(f"{candidate}: {exc}")
            continue
        logger.info("input injector: %s", candidate)
        return injector
    if not reasons:
        reasons.append(f"no injector exists for platform {sys.platform}")
    raise InjectorUnavailable("no input injector works here; " + "; ".join(reasons))
