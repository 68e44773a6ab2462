"""The capture interface, its error taxonomy, the retry policy and the backend registry.

A capture backend turns a screen (or a synthetic source) into :class:`RawFrame` s::

    with open_capture("auto", width=1280, height=720, fps=60) as cap:
        frame = cap.grab()          # blocking, one frame, no pacing

``grab()`` never sleeps to hold a frame rate: the host's capture thread paces (it knows the
negotiated fps and when the encoder is free). Backends run in that thread, never on the event
loop.

Errors (all :class:`CaptureError`):

* :class:`CaptureUnavailable` — this backend cannot run here (no display, missing X extension,
  no portal, bad monitor index). Retrying will not help; the message says what to change.
* :class:`CaptureLost` — capture was working and the source went away (X server died, screen
  reconfigured, PipeWire node removed). Close the backend and reopen it under a
  :class:`RetryPolicy`::

      policy = RetryPolicy()                         # 4 attempts: waits 0.35, 0.7, 1.4 s
      cap = policy.run(lambda: open_capture(name, **params), stop=stop_event)
      while running:
          try:
              frame = cap.grab()
          except CaptureLost:
              cap.close()
              cap = policy.run(lambda: open_capture(name, **params), stop=stop_event)

  ``policy.run`` retries only :class:`CaptureLost` (and ``CaptureUnavailable`` raised while the
  source is coming back is *not* retried: it means the configuration is wrong), waits with
  exponential backoff between attempts, and re-raises the last error when the attempts are
  spent or ``stop`` is set. It is bounded on purpose: an unbounded reconnect loop hides a dead
  host from its user.

Registry: backends register a name with :func:`register_capture`; :func:`open_capture` picks one
by its config string. ``"auto"`` tries :data:`AUTO_ORDER` in turn and takes the first that opens:
``portal`` (Wayland, when registered), ``x11`` (when ``$DISPLAY`` reaches a server), then the
synthetic ``testsrc``.

Wayland (a later issue) plugs in without touching this module: a ``capture/portal.py`` defines
a :class:`CaptureBackend` registered as ``"portal"``. Its ``open()`` runs the
xdg-desktop-portal ScreenCast handshake (persisted restore token, monitor source), then a
GStreamer ``pipewiresrc ! videoconvert ! video/x-raw,format=I420 ! appsink`` pipeline with
``max-buffers=1 drop=true``; ``grab()`` pulls one sample and wraps the mapped I420 buffer with
``VideoFrame.from_numpy_buffer`` (zero-copy); portal/PipeWire absence or a refused request map
to :class:`CaptureUnavailable`, a removed node or a compositor disconnect to
:class:`CaptureLost`. Importing the module in ``capture/__init__.py`` makes ``"auto"`` try it
first.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

from wavry.media.frames import RawFrame

__all__ = [
    "AUTO_ORDER",
    "DEFAULT_RETRY_POLICY",
    "CaptureBackend",
    "CaptureError",
    "CaptureLost",
    "CaptureUnavailable",
    "MonitorInfo",
    "RetryPolicy",
    "capture_backends",
    "open_capture",
    "register_capture",
    "resolve_size",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Backends ``"auto"`` tries, in order. Names that are not registered are skipped.
AUTO_ORDER: tuple[str, ...] = ("portal", "x11", "testsrc")

MAX_DIMENSION = 8192


class CaptureError(Exception):
    """Base of every capture failure."""


class CaptureUnavailable(CaptureError):
    """The backend cannot run in this environment or configuration; do not retry."""


class CaptureLost(CaptureError):
    """The source went away after capture had started; close and reopen (with a policy)."""


@dataclass(frozen=True, slots=True)
class MonitorInfo:
    """One capturable monitor. ``id`` is what ``open(monitor=...)`` takes."""

    id: int
    name: str
    x: int
    y: int
    width: int
    height: int
    primary: bool


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries with exponential backoff: ``attempts`` tries in total, waiting
    ``base_delay * factor**k`` (capped at ``max_delay``) before retry ``k+1``.

    The default (4 attempts; 0.35, 0.7, 1.4 s) follows the original's portal-open policy: it
    rides out a display server restart without leaving a user staring at a frozen session.
    """

    attempts: int = 4
    base_delay: float = 0.35
    factor: float = 2.0
    max_delay: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if self.base_delay < 0 or self.factor < 1 or self.max_delay < 0:
            raise ValueError("delays must be non-negative and factor >= 1")

    def delays(self) -> list[float]:
        """The waits between attempts (``attempts - 1`` values)."""
        return [
            min(self.base_delay * self.factor**k, self.max_delay) for k in range(self.attempts - 1)
        ]

    def run(
        self,
        fn: Callable[[], T],
        *,
        retry_on: tuple[type[BaseException], ...] = (CaptureLost,),
        stop: threading.Event | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> T:
        """Call ``fn`` until it returns, retrying only ``retry_on`` errors.

        Waits use ``stop.wait`` when ``stop`` is given (so a shutdown cancels the wait and
        re-raises the last error), else ``sleep``.
        """
        delays = self.delays()
        for attempt in range(self.attempts):
            try:
                return fn()
            except retry_on as exc:
                if attempt == self.attempts - 1:
                    exc.add_note(f"gave up after {self.attempts} attempts")
                    raise
                delay = delays[attempt]
                log.warning(
                    "capture attempt %d/%d failed (%s); retrying in %.2f s",
                    attempt + 1,
                    self.attempts,
                    exc,
                    delay,
                )
                if stop is not None:
                    if stop.wait(delay):
                        raise
                else:
                    sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


DEFAULT_RETRY_POLICY = RetryPolicy()


def resolve_size(
    native_width: int, native_height: int, width: int | None, height: int | None
) -> tuple[int, int]:
    """The output size for a source of ``native`` size and a requested size.

    Both None: the native size. One given: the other follows the source's aspect ratio. Both
    given: exactly that (the host negotiated it). Results are rounded down to even numbers,
    because 4:2:0 chroma needs them.
    """
    if native_width < 2 or native_height < 2:
        raise CaptureUnavailable(f"source size {native_width}x{native_height} is too small")
    if width is None and height is None:
        width, height = native_width, native_height
    elif width is None:
        assert height is not None
        width = round(native_width * height / native_height)
    elif height is None:
        height = round(native_height * width / native_width)
    assert width is not None and height is not None
    if not (2 <= width <= MAX_DIMENSION and 2 <= height <= MAX_DIMENSION):
        raise ValueError(f"capture size {width}x{height} is outside 2..{MAX_DIMENSION}")
    return width & ~1, height & ~1


class CaptureBackend(ABC):
    """A source of raw frames. Not thread-safe: use one backend from one thread."""

    #: The registry name; set by :func:`register_capture`.
    name: str = ""

    @abstractmethod
    def open(
        self, *, width: int | None, height: int | None, fps: int, monitor: int | None = None
    ) -> None:
        """Start capturing ``monitor`` (default: the primary one) scaled to ``width`` x
        ``height`` (see :func:`resolve_size`). ``fps`` is the rate the host will grab at;
        backends use it only for timing-dependent content, never to sleep."""

    @abstractmethod
    def monitors(self) -> list[MonitorInfo]:
        """The monitors this backend can capture."""

    @abstractmethod
    def grab(self) -> RawFrame:
        """Capture one frame now (blocking, no pacing)."""

    @abstractmethod
    def close(self) -> None:
        """Release the source. Idempotent."""

    @property
    @abstractmethod
    def width(self) -> int:
        """Width of the frames ``grab()`` returns (valid after ``open``)."""

    @property
    @abstractmethod
    def height(self) -> int:
        """Height of the frames ``grab()`` returns (valid after ``open``)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_REGISTRY: dict[str, type[CaptureBackend]] = {}

B = TypeVar("B", bound=type[CaptureBackend])


def register_capture(name: str) -> Callable[[B], B]:
    """Class decorator registering a backend under ``name`` (a config string)."""
    if not name or name == "auto" or ":" in name:
        raise ValueError(f"invalid capture backend name {name!r}")

    def decorate(cls: B) -> B:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"capture backend {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def capture_backends() -> list[str]:
    """Registered backend names (the values ``open_capture`` accepts, besides ``"auto"``)."""
    return sorted(_REGISTRY)


def _open_one(
    name: str,
    options: dict[str, Any],
    width: int | None,
    height: int | None,
    fps: int,
    monitor: int | None,
) -> CaptureBackend:
    backend = _REGISTRY[name](**options)
    try:
        backend.open(width=width, height=height, fps=fps, monitor=monitor)
    except BaseException:
        backend.close()
        raise
    return backend


def open_capture(
    name: str = "auto",
    *,
    width: int | None = None,
    height: int | None = None,
    fps: int = 60,
    monitor: int | None = None,
    **options: Any,
) -> CaptureBackend:
    """Construct the backend ``name`` with ``options`` and open it.

    ``"auto"`` takes no options and tries :data:`AUTO_ORDER`, skipping backends that raise
    :class:`CaptureUnavailable` (logged, so a user can see why X11 was not used).
    """
    if fps < 1:
        raise ValueError("fps must be >= 1")
    if name != "auto":
        if name not in _REGISTRY:
            raise ValueError(
                f"unknown capture backend {name!r}; choose one of: auto, "
                + ", ".join(capture_backends())
            )
        return _open_one(name, options, width, height, fps, monitor)
    if options:
        raise ValueError("capture 'auto' takes no backend options; name a backend to pass them")
    reasons: list[str] = []
    for candidate in AUTO_ORDER:
        if candidate not in _REGISTRY:
            continue
        try:
            backend = _open_one(candidate, {}, width, height, fps, monitor)
        except CaptureUnavailable as exc:
            log.info("capture backend %s unavailable: %s", candidate, exc)
            reasons.append(f"{candidate}: {exc}")
            continue
        if reasons:
            log.warning("capture: using %s (%s)", candidate, "; ".join(reasons))
        return backend
    raise CaptureUnavailable("no capture backend could open: " + "; ".join(reasons))
