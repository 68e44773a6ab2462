"""The small value types of a RIFT connection, re-exported by :mod:`wavry.rift.connection`."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Address", "Admission", "ConnectionState", "ConnectionStats", "RandomBytes"]

Address = tuple[str, int]
RandomBytes = Callable[[int], bytes]


class ConnectionState(enum.Enum):
    HANDSHAKE = "handshake"
    AWAIT_HELLO = "await_hello"
    AWAIT_HELLO_ACK = "await_hello_ack"
    ESTABLISHED = "established"
    CLOSED = "closed"


class Admission:
    """How many sessions a host lets be active at once (one controlling client by default)."""

    def __init__(self, max_active: int = 1) -> None:
        self.max_active = max_active
        self._active: set[int] = set()

    def try_admit(self, key: int) -> bool:
        if key in self._active:
            return True
        if len(self._active) >= self.max_active:
            return False
        self._active.add(key)
        return True

    def release(self, key: int) -> None:
        self._active.discard(key)

    @property
    def active(self) -> int:
        return len(self._active)


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    state: str
    srtt_ms: float | None
    packets_received: int
    packets_sent: int
    bytes_sent: int
    retransmits_sent: int
    fec_packets_sent: int
    fec_recovered: int
    frames_received: int
    frames_lost: int
    target_bitrate_kbps: int
    drops: dict[str, int]
    #: media receiver's view: packets lost before / after FEC repair, keyframes asked for
    packets_lost_before_fec: int = 0
    packets_expected: int = 0
    keyframe_requests: int = 0
