"""Admission and per-socket limits of the signaling WebSocket (policy only, no I/O).

- ``origin_refusal``: a browser's ``Origin`` must be on the allow-list; a request without
  ``Origin`` (a native client) only when configured.
- ``ConnectionCaps``: open sockets per client address and in total, per replica.
- ``MessageRate``: a fixed window per socket (time is an input).
- Frame size: ``messages.MAX_FRAME_BYTES`` checked on every frame; the HTTP server's own frame
  limit is set to ``SERVER_WS_MAX_SIZE`` so larger frames never reach memory.
- The bind deadline is a timer armed at the upgrade (``ws.py``), not a check on the next message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from wavry.gateway.signaling.messages import MAX_FRAME_BYTES

__all__ = [
    "SERVER_WS_MAX_SIZE",
    "ConnectionCaps",
    "MessageRate",
    "Refusal",
    "normalize_origin",
    "origin_refusal",
]

#: what the HTTP server (uvicorn ``ws_max_size``) accepts: frames between MAX_FRAME_BYTES and this
#: get an ERROR too_large from us, larger ones are cut by the server itself (close 1009)
SERVER_WS_MAX_SIZE = 2 * MAX_FRAME_BYTES


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an upgrade is refused: the HTTP status of the denial and a reason for the body."""

    status: int
    reason: str


def normalize_origin(origin: str) -> str:
    """Compare origins case-insensitively and without a trailing slash."""
    return origin.strip().rstrip("/").lower()


def origin_refusal(
    origin: str | None, allowed: Iterable[str], *, missing_ok: bool
) -> Refusal | None:
    if origin is None or not origin.strip():
        if missing_ok:
            return None
        return Refusal(
            403,
            "a WebSocket without an Origin header is refused; native clients need "
            "WAVRY_WS_ALLOW_MISSING_ORIGIN=1 on the gateway",
        )
    wanted = normalize_origin(origin)
    if wanted in {normalize_origin(o) for o in allowed}:
        return None
    return Refusal(403, "origin not allowed (add it to WAVRY_ALLOWED_ORIGINS)")


class ConnectionCaps:
    """Open-socket counters per client address and in total (one replica)."""

    def __init__(self, *, max_total: int, max_per_ip: int) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self.total = 0
        self._per_ip: dict[str, int] = {}

    def acquire(self, ip: str) -> Refusal | None:
        if self.total >= self.max_total:
            return Refusal(503, "the gateway is at its WebSocket capacity; retry later")
        if self._per_ip.get(ip, 0) >= self.max_per_ip:
            return Refusal(429, "too many WebSockets from this address")
        self.total += 1
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        return None

    def release(self, ip: str) -> None:
        count = self._per_ip.get(ip, 0)
        if count <= 0:
            return
        self.total -= 1
        if count == 1:
            del self._per_ip[ip]
        else:
            self._per_ip[ip] = count - 1

    def open_from(self, ip: str) -> int:
        return self._per_ip.get(ip, 0)


class MessageRate:
    """At most ``limit`` messages per fixed window of ``window`` seconds."""

    __slots__ = ("_count", "_end", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._end = float("-inf")
        self._count = 0

    def allow(self, now: float) -> bool:
        if now >= self._end:
            self._end = now + self.window
            self._count = 0
        if self._count >= self.limit:
            return False
        self._count += 1
        return True
