"""Anti-replay sliding window over packet ids (the RFC 6479 / IPsec style bitmap).

Use it in two steps around the AEAD: ``check(pid)`` before decrypting (cheap, no state change, so
garbage cannot disturb the window) and ``update(pid)`` only after the packet authenticated (so a
forged packet cannot advance the window and make genuine packets look old).

Semantics: the first packet passes; an id more than ``size - 1`` below the highest seen is
rejected; an id above the highest passes and slides the window (a jump of ``size`` or more clears
it); inside the window an id passes only if it was not seen. Packet id 0 is never valid for data.
"""

from __future__ import annotations

from wavry.rift.errors import LocalProtocolError

__all__ = ["DEFAULT_WINDOW_SIZE", "MAX_PACKET_ID", "MAX_WINDOW_SIZE", "ReplayWindow"]

DEFAULT_WINDOW_SIZE = 128
#: Caps the bitmap's memory (an int of at most this many bits) whatever the configuration says.
MAX_WINDOW_SIZE = 65536
MAX_PACKET_ID = 2**64 - 1


class ReplayWindow:
    """Remembers which of the last ``size`` packet ids (counting back from the highest) were seen.

    Bit ``i`` of the bitmap stands for packet id ``highest - i``.
    """

    __slots__ = ("_bitmap", "_highest", "_mask", "_size")

    def __init__(self, size: int = DEFAULT_WINDOW_SIZE) -> None:
        if not 1 <= size <= MAX_WINDOW_SIZE:
            raise LocalProtocolError(f"window size must be in 1..{MAX_WINDOW_SIZE}, got {size}")
        self._size = size
        self._mask = (1 << size) - 1
        self._highest: int | None = None
        self._bitmap = 0

    @property
    def size(self) -> int:
        return self._size

    @property
    def highest(self) -> int | None:
        """The highest packet id accepted so far (None before the first)."""
        return self._highest

    def check(self, packet_id: int) -> bool:
        """Whether ``packet_id`` may be accepted. Pure: call before decrypting."""
        if not 1 <= packet_id <= MAX_PACKET_ID:
            return False
        if self._highest is None or packet_id > self._highest:
            return True
        offset = self._highest - packet_id
        if offset >= self._size:
            return False
        return not (self._bitmap >> offset) & 1

    def update(self, packet_id: int) -> None:
        """Record ``packet_id`` as received; only after it passed ``check`` and authenticated."""
        if not self.check(packet_id):
            raise LocalProtocolError(
                f"packet id {packet_id} did not pass check(); it must be dropped, not recorded"
            )
        if self._highest is None:
            self._highest = packet_id
            self._bitmap = 1
            return
        if packet_id > self._highest:
            shift = packet_id - self._highest
            self._bitmap = 1 if shift >= self._size else ((self._bitmap << shift) | 1) & self._mask
            self._highest = packet_id
            return
        self._bitmap |= 1 << (self._highest - packet_id)

    def __repr__(self) -> str:
        return f"ReplayWindow(size={self._size}, highest={self._highest})"
