"""The relay's optional native FORWARD fast path: loading it and choosing whether to use it.

``wavry.relay._fastpath`` (C, ``src/wavry/relay/_fastpath.c``, built by ``hatch_build.py``) owns
the UDP receive loop when enabled: it reads with ``recvmmsg``, decides FORWARDs from bound peers
exactly as ``RelayCore._forward`` does, sends them with ``sendmmsg`` and hands everything else to
``RelayCore.receive_datagram``. The pure-Python path stays complete and runnable; both pass the
same tests (docs/relay.md, "Native fast path").

``WAVRY_RELAY_FASTPATH``: ``auto`` (default: on when the extension imports), ``on`` (refuse to
start without it), ``off``.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

__all__ = ["MODES", "FastPathLike", "available", "load", "resolve", "unavailable_reason"]

MODES = ("auto", "on", "off")


class FastPathLike(Protocol):
    """What RelayCore and the server use of ``_fastpath.FastPath``."""

    sessions: int
    tx_dropped: int

    def set_peer(
        self, sid: bytes, role: int, addr: Any, expires: float, soft_bytes: int, hard_bytes: int
    ) -> None: ...

    def remove_session(self, sid: bytes) -> bool: ...

    def last_activity(self, sid: bytes) -> float | None: ...

    def take_counters(self) -> tuple[int, ...] | None: ...

    def forward_one(self, data: bytes, addr: Any, now: float) -> Any: ...

    def drain(self, fd: int, now: float, budget: int, raw: bool) -> list[tuple[bytes, Any]]: ...


_module: Any = None
_error = ""


def _import() -> Any:
    global _module, _error
    if _module is None and not _error:
        if not sys.platform.startswith("linux"):
            _error = "the native fast path needs Linux (recvmmsg/sendmmsg)"
            return None
        try:
            from wavry.relay import _fastpath  # type: ignore[attr-defined]
        except ImportError as exc:
            _error = f"extension not built ({exc})"
        else:
            _module = _fastpath
    return _module


def available() -> bool:
    """Whether the compiled extension imports here."""
    return _import() is not None


def unavailable_reason() -> str:
    _import()
    return _error


def counter_names() -> tuple[str, ...]:
    mod = _import()
    return tuple(mod.COUNTER_NAMES) if mod is not None else ()


def load(replay_window: int) -> FastPathLike:
    """A new FastPath object; raises RuntimeError when the extension is not available."""
    mod = _import()
    if mod is None:
        raise RuntimeError(f"the relay fast path is not available: {_error}")
    fp: FastPathLike = mod.FastPath(replay_window)
    return fp


def resolve(mode: str) -> bool:
    """Whether to use the fast path for ``WAVRY_RELAY_FASTPATH=mode``; ``on`` without the
    extension raises RuntimeError."""
    mode = mode.strip().lower()
    if mode not in MODES:
        raise ValueError(f"WAVRY_RELAY_FASTPATH must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "off":
        return False
    if available():
        return True
    if mode == "on":
        raise RuntimeError(f"WAVRY_RELAY_FASTPATH=on but {_error}")
    return False
