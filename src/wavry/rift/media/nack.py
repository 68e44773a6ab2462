"""Selective retransmission: receiver-side NACK tracking and sender-side retransmit history.

Normative rules (docs/protocol.md, NACK):

* Packet ids are never reused: a retransmission is a new packet (new id) whose ``Message``
  carries ``retransmit_of`` = the id it replaces. The receiver resolves a NACKed id when that id
  arrives late, when a packet with ``retransmit_of`` equal to it arrives, or when FEC rebuilds it.
* **Gap detection** (receiver): when packet ``p`` arrives above the highest id seen ``h``, the ids
  ``max(h + 1, p - window) .. p - 1`` are missing; the newest :data:`DEFAULT_MAX_IDS_PER_NACK`
  (64) of them are NACKed at once. Ids more than ``window`` (:data:`DEFAULT_WINDOW` = 512) below
  the highest id are never NACKed and pending ones that fall that far behind are abandoned.
* **Reordering tolerance** (RACK-like): a gap is NACKed once it has been open for the current
  reorder window. The window starts at 0 (a gap is NACKed the moment it is seen) and grows to
  the largest gap-to-late-arrival time observed (a late arrival proves the network reorders),
  capped at :data:`DEFAULT_MAX_REORDER_WINDOW` (30 ms); it halves after each
  :data:`REORDER_DECAY_INTERVAL` (1 s) without a late arrival. On a network that does not
  reorder NACKs stay immediate; on one that does, spurious retransmissions stop.
* **Retries:** a NACKed id still unresolved ``retry_interval`` (default 50 ms; the connection sets
  it from the RTT) after its last NACK is NACKed again, at most ``max_retries`` (default 3) more
  times; ``retry_interval`` after the last NACK it is abandoned (counted in ``gave_up``). So one
  id costs at most ``1 + max_retries`` NACK entries. At most :data:`DEFAULT_MAX_PENDING` (256)
  ids are tracked; beyond that the oldest are abandoned.
* **History** (sender): the serialized ``Message`` of each sent media packet is kept for
  ``max_age`` (default 1 s), at most ``capacity`` (default 1024) entries, oldest evicted first.
  ``take`` removes the entry, so one NACK entry triggers at most one retransmission; the sender
  stores the retransmission under its new id, so if it is lost the receiver's gap detection
  NACKs the new id.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from wavry.rift.errors import LocalProtocolError
from wavry.rift.packet_crypto import EPOCH_BITS

__all__ = [
    "DEFAULT_HISTORY_CAPACITY",
    "DEFAULT_HISTORY_MAX_AGE",
    "DEFAULT_MAX_IDS_PER_NACK",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_MAX_REORDER_WINDOW",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RETRY_INTERVAL",
    "DEFAULT_WINDOW",
    "NackTracker",
    "RetransmitHistory",
]

DEFAULT_WINDOW = 512
DEFAULT_MAX_PENDING = 256
DEFAULT_RETRY_INTERVAL = 0.05
DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_IDS_PER_NACK = 64
DEFAULT_HISTORY_CAPACITY = 1024
DEFAULT_HISTORY_MAX_AGE = 1.0
DEFAULT_MAX_REORDER_WINDOW = 0.030
REORDER_DECAY_INTERVAL = 1.0


@dataclass(slots=True)
class _Pending:
    due: float  # when to NACK (first time or again), or give up
    retries: int  # re-NACKs already sent after the first NACK
    detected: float = 0.0  # when the gap was seen
    nacked: bool = True  # False while waiting out the reorder window


class NackTracker:
    """Receiver side: detects missing packet ids and schedules NACKs and their retries."""

    def __init__(
        self,
        *,
        window: int = DEFAULT_WINDOW,
        max_pending: int = DEFAULT_MAX_PENDING,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_ids_per_nack: int = DEFAULT_MAX_IDS_PER_NACK,
        max_reorder_window: float = DEFAULT_MAX_REORDER_WINDOW,
    ) -> None:
        if window < 1 or max_pending < 1 or max_ids_per_nack < 1 or max_retries < 0:
            raise LocalProtocolError("NACK tracker bounds must be positive")
        self._window = window
        self._max_pending = max_pending
        self._max_retries = max_retries
        self._max_ids = max_ids_per_nack
        self._retry_interval = 0.0
        self.set_retry_interval(retry_interval)
        self._highest: int | None = None
        self._max_reorder = max_reorder_window
        self._reorder_window = 0.0
        self._last_reorder = 0.0
        self.late_arrivals = 0
        # Insertion order is ascending packet id, which makes abandoning the oldest O(1).
        self._pending: OrderedDict[int, _Pending] = OrderedDict()
        self.nacks_sent = 0
        self.gave_up = 0
        self.resolved = 0

    @property
    def highest(self) -> int | None:
        return self._highest

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def retry_interval(self) -> float:
        return self._retry_interval

    def set_retry_interval(self, seconds: float) -> None:
        """Applies to retries scheduled from now on."""
        if not seconds > 0.0:
            raise LocalProtocolError(f"retry interval must be > 0, got {seconds}")
        self._retry_interval = seconds

    @property
    def reorder_window(self) -> float:
        return self._reorder_window

    def is_pending(self, packet_id: int) -> bool:
        return packet_id in self._pending

    def on_packet(self, packet_id: int, now: float, retransmit_of: int = 0) -> list[int]:
        """Record an authenticated packet; returns newly missing ids to NACK now (ascending)."""
        if retransmit_of:
            self.on_recovered(retransmit_of)
        highest = self._highest
        if highest is None:
            self._highest = packet_id
            return []
        if packet_id <= highest:
            entry = self._pending.get(packet_id)
            if entry is not None:
                self._on_late_arrival(now - entry.detected, now)
            self.on_recovered(packet_id)
            return []
        self._highest = packet_id
        if packet_id >> EPOCH_BITS != highest >> EPOCH_BITS:
            return []  # a re-key jumped to the next key epoch: the skipped ids never existed
        if self._reorder_window and now - self._last_reorder >= REORDER_DECAY_INTERVAL:
            self._reorder_window /= 2
            self._last_reorder = now
            if self._reorder_window < 0.0005:
                self._reorder_window = 0.0
        first = max(highest + 1, packet_id - self._window, packet_id - self._max_ids)
        missing = list(range(first, packet_id))
        if self._reorder_window > 0.0:
            due = now + self._reorder_window
            for pid in missing:
                self._pending[pid] = _Pending(due=due, retries=0, detected=now, nacked=False)
            self._trim(packet_id)
            return []
        due = now + self._retry_interval
        for pid in missing:
            self._pending[pid] = _Pending(due=due, retries=0, detected=now)
        self._trim(packet_id)
        self.nacks_sent += len(missing)
        return missing

    def _on_late_arrival(self, waited: float, now: float) -> None:
        self.late_arrivals += 1
        self._last_reorder = now
        grown = min(self._max_reorder, waited * 1.25)
        if grown > self._reorder_window:
            self._reorder_window = grown

    def on_recovered(self, packet_id: int) -> None:
        """The id arrived late, was retransmitted, or FEC rebuilt it: stop asking for it."""
        if self._pending.pop(packet_id, None) is not None:
            self.resolved += 1

    def poll(self, now: float) -> list[int]:
        """Ids whose retry is due (at most ``max_ids_per_nack``, ascending); abandons spent ids."""
        out: list[int] = []
        expired: list[int] = []
        for pid, entry in self._pending.items():
            if entry.due > now:
                continue
            if not entry.nacked:
                if len(out) < self._max_ids:
                    entry.nacked = True
                    entry.due = now + self._retry_interval
                    out.append(pid)
                continue
            if entry.retries >= self._max_retries:
                expired.append(pid)
            elif len(out) < self._max_ids:
                entry.retries += 1
                entry.due = now + self._retry_interval
                out.append(pid)
        for pid in expired:
            del self._pending[pid]
        self.gave_up += len(expired)
        self.nacks_sent += len(out)
        return out

    def next_timer(self) -> float | None:
        """Earliest time :meth:`poll` has work, or None."""
        if not self._pending:
            return None
        return min(entry.due for entry in self._pending.values())

    def _trim(self, highest: int) -> None:
        floor = highest - self._window
        while self._pending:
            oldest = next(iter(self._pending))
            if oldest >= floor and len(self._pending) <= self._max_pending:
                break
            del self._pending[oldest]
            self.gave_up += 1


class RetransmitHistory:
    """Sender side: the plaintext of recently sent packets, by packet id, for retransmission."""

    def __init__(
        self, *, capacity: int = DEFAULT_HISTORY_CAPACITY, max_age: float = DEFAULT_HISTORY_MAX_AGE
    ) -> None:
        if capacity < 1 or not max_age > 0.0:
            raise LocalProtocolError("history capacity and max_age must be positive")
        self._capacity = capacity
        self._max_age = max_age
        self._entries: OrderedDict[int, tuple[bytes, float]] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def store(self, packet_id: int, plaintext: bytes, now: float) -> None:
        """Remember what packet ``packet_id`` carried (the serialized ``Message``)."""
        self._entries.pop(packet_id, None)
        self._entries[packet_id] = (plaintext, now)
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
            self.evicted += 1

    def take(self, packet_id: int, now: float) -> bytes | None:
        """Remove and return the plaintext of ``packet_id``; None if unknown, evicted or stale."""
        entry = self._entries.pop(packet_id, None)
        if entry is None or now - entry[1] > self._max_age:
            return None
        return entry[0]

    def expire(self, now: float) -> None:
        """Drop entries older than ``max_age`` (optional; ``take`` checks age anyway)."""
        limit = now - self._max_age
        while self._entries:
            pid, (_, at) = next(iter(self._entries.items()))
            if at >= limit:
                break
            del self._entries[pid]
