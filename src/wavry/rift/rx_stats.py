"""Receiver-side statistics that feed ``StatsReport`` (sans-IO).

The media receiver calls ``ReceiveStats.on_packet`` for every *authenticated* datagram taken off
the network (not for packets rebuilt by FEC: those are reported with ``on_recovered`` and stay
counted as lost, because the sender sizes FEC from the raw network loss), ``on_recovered`` per
FEC-rebuilt packet and ``on_frame_dropped`` per frame abandoned at its reassembly deadline. Every
report interval it calls ``snapshot(now)``, which returns the period's figures and starts a new
period; ``StatsSnapshot.to_proto`` turns them into the wire ``StatsReport``.

Estimators:

- **Loss** from packet-id gaps: a jump from the highest id ``h`` to ``id > h + 1`` counts the
  ``id - h - 1`` missing ids as lost. Reordering is corrected: a late id that was counted lost is
  un-counted when it arrives (if it is still within ``REORDER_TRACK_WINDOW`` ids of the highest).
  If the late packet arrives in a later period, the correction is carried into that period: the
  reported count never goes below zero, and the deficit is carried until later losses absorb it,
  so the reported total minus the outstanding deficit is exactly the number of ids still missing.
- **Jitter** is the RFC 3550 interarrival jitter over the sender's send timestamps:
  ``D = (R_j - R_i) - (S_j - S_i)`` for consecutive arrivals, ``J += (|D| - J) / 16``. It is a
  running estimate (not reset per period) and is only updated by packets carrying a timestamp.
- **Queuing delay** (one-way): the relative one-way delay ``owd = now - sender_ts`` (in µs; the
  unknown clock offset between the two clocks is a constant inside it) minus its minimum over a
  sliding window of ``DELAY_MIN_WINDOW_S`` (10 s): the offset and the propagation delay cancel and
  what is left is the time the packet spent queued. The reported value is the **mean** of the
  period's per-packet samples (the mean responds to a standing queue within one period and, unlike
  a high percentile, is not dominated by the few packets of one burst). The window minimum is kept
  per ``DELAY_MIN_BUCKET_S`` bucket, so the state is at most 11 numbers; it follows a shorter path
  at once and a longer one (route change) within 10 s, and slow clock drift is absorbed the same
  way.

All state is bounded: two counters per period, at most ``MAX_GAP_RANGES`` tracked gaps, at most
``DELAY_MIN_WINDOW_S / DELAY_MIN_BUCKET_S + 1`` delay buckets.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

from wavry.rift.packet_crypto import EPOCH_BITS
from wavry.rift.proto import rift_pb2

__all__ = [
    "DELAY_MIN_BUCKET_S",
    "DELAY_MIN_WINDOW_S",
    "MAX_GAP_RANGES",
    "REORDER_TRACK_WINDOW",
    "ReceiveStats",
    "StatsSnapshot",
]

#: A late packet more than this many ids below the highest id stays counted as lost.
REORDER_TRACK_WINDOW = 4096
#: At most this many separate gaps (missing-id ranges) are remembered; the oldest go first.
MAX_GAP_RANGES = 256
#: Sliding window of the one-way-delay minimum (the queue-free baseline).
DELAY_MIN_WINDOW_S = 10.0
#: Granularity of that window.
DELAY_MIN_BUCKET_S = 1.0
#: RFC 3550 jitter gain.
JITTER_GAIN = 1.0 / 16.0

_U32_MAX = 0xFFFF_FFFF
_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF


def _u32(value: int) -> int:
    return max(0, min(_U32_MAX, value))


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """One report period's figures (the period ends at the ``snapshot`` call)."""

    period_ms: int
    received_packets: int
    lost_packets: int
    #: ``lost / (received + lost)``, 0.0 when nothing was expected.
    loss_fraction: float
    #: RFC 3550 interarrival jitter, µs (running estimate).
    jitter_us: int
    #: Mean one-way queuing delay of the period's packets, µs; ``None`` without sender timestamps.
    queue_delay_us: int | None
    received_bytes: int
    receive_rate_kbps: float
    fec_recovered: int
    frames_dropped: int

    def to_proto(self, *, rtt_us: int = 0) -> rift_pb2.StatsReport:
        """The wire ``StatsReport`` (``rtt_us`` is the reporter's own RTT measurement, if any).

        Values are clamped to the field widths; an absent queue delay is sent as 0.
        """
        return rift_pb2.StatsReport(
            period_ms=_u32(self.period_ms),
            received_packets=_u32(self.received_packets),
            lost_packets=_u32(self.lost_packets),
            rtt_us=max(0, min(_U64_MAX, rtt_us)),
            jitter_us=_u32(self.jitter_us),
            queue_delay_us=_u32(self.queue_delay_us or 0),
            received_bytes=max(0, min(_U64_MAX, self.received_bytes)),
            fec_recovered=_u32(self.fec_recovered),
            frames_dropped=_u32(self.frames_dropped),
        )


class ReceiveStats:
    """Accumulates one receiver's statistics; ``snapshot`` closes a period.

    ``start`` opens the first period; if omitted, the first ``on_packet`` (or ``snapshot``) does.
    """

    def __init__(self, *, start: float | None = None) -> None:
        self._period_start = start
        self._received = 0
        self._bytes = 0
        self._lost = 0  # signed: a late arrival of an id lost in an earlier period goes negative
        self._fec_recovered = 0
        self._frames_dropped = 0
        self._highest: int | None = None
        # Missing ids as sorted, disjoint half-open ranges [start, end).
        self._gap_starts: list[int] = []
        self._gap_ends: list[int] = []
        self._jitter = 0.0
        self._last_transit: float | None = None
        self._min_buckets: deque[tuple[int, float]] = deque()
        self._window_min = math.inf
        self._q_sum = 0.0
        self._q_count = 0
        #: Late packets that were un-counted from the loss (lifetime total).
        self.reordered = 0

    # -- inputs --

    def on_packet(
        self, packet_id: int, size: int, now: float, sender_timestamp_us: int | None = None
    ) -> None:
        """Record one authenticated datagram of ``size`` bytes received at ``now``."""
        if self._period_start is None:
            self._period_start = now
        self._received += 1
        self._bytes += max(0, size)
        self._track_loss(packet_id)
        if sender_timestamp_us is not None:
            self._track_delay(now, sender_timestamp_us)

    def on_recovered(self, count: int = 1) -> None:
        """``count`` packets were rebuilt by FEC."""
        self._fec_recovered += max(0, count)

    def on_frame_dropped(self, count: int = 1) -> None:
        """``count`` frames were abandoned at the reassembly deadline."""
        self._frames_dropped += max(0, count)

    # -- output --

    @property
    def jitter_us(self) -> int:
        return int(self._jitter)

    def snapshot(self, now: float) -> StatsSnapshot:
        """Close the current period at ``now``, return its figures and start the next one."""
        start = now if self._period_start is None else self._period_start
        period = max(0.0, now - start)
        lost = max(0, self._lost)
        expected = self._received + lost
        rate = self._bytes * 8.0 / period / 1000.0 if period > 0.0 else 0.0
        snap = StatsSnapshot(
            period_ms=round(period * 1000.0),
            received_packets=self._received,
            lost_packets=lost,
            loss_fraction=lost / expected if expected else 0.0,
            jitter_us=int(self._jitter),
            queue_delay_us=self._queue_delay(),
            received_bytes=self._bytes,
            receive_rate_kbps=rate,
            fec_recovered=self._fec_recovered,
            frames_dropped=self._frames_dropped,
        )
        self._period_start = now
        self._received = 0
        self._bytes = 0
        self._lost = min(0, self._lost)  # carry an un-absorbed reordering correction
        self._fec_recovered = 0
        self._frames_dropped = 0
        self._q_sum = 0.0
        self._q_count = 0
        return snap

    def _queue_delay(self) -> int | None:
        return round(self._q_sum / self._q_count) if self._q_count else None

    # -- estimators --

    def _track_loss(self, packet_id: int) -> None:
        highest = self._highest
        if highest is None:
            self._highest = packet_id
            return
        if packet_id > highest:
            if packet_id >> EPOCH_BITS != highest >> EPOCH_BITS:
                # A re-key jumps ids to the next epoch: skipped ids were never sent.
                self._highest = packet_id
                return
            if packet_id > highest + 1:
                self._lost += packet_id - highest - 1
                self._gap_starts.append(max(highest + 1, packet_id - REORDER_TRACK_WINDOW))
                self._gap_ends.append(packet_id)
            self._highest = packet_id
            self._evict_gaps(packet_id - REORDER_TRACK_WINDOW)
            return
        # A late (or duplicate) id: un-count it if it sits inside a remembered gap.
        i = bisect.bisect_right(self._gap_starts, packet_id) - 1
        if i < 0 or packet_id >= self._gap_ends[i]:
            return
        start, end = self._gap_starts[i], self._gap_ends[i]
        self._lost -= 1
        self.reordered += 1
        if start == packet_id and end == packet_id + 1:
            del self._gap_starts[i], self._gap_ends[i]
        elif start == packet_id:
            self._gap_starts[i] = packet_id + 1
        elif end == packet_id + 1:
            self._gap_ends[i] = packet_id
        else:
            self._gap_ends[i] = packet_id
            self._gap_starts.insert(i + 1, packet_id + 1)
            self._gap_ends.insert(i + 1, end)
        if len(self._gap_starts) > MAX_GAP_RANGES:
            del self._gap_starts[0], self._gap_ends[0]

    def _evict_gaps(self, floor: int) -> None:
        starts, ends = self._gap_starts, self._gap_ends
        while starts and (ends[0] <= floor or len(starts) > MAX_GAP_RANGES):
            del starts[0], ends[0]
        if starts and starts[0] < floor:
            starts[0] = floor

    def _track_delay(self, now: float, sender_timestamp_us: int) -> None:
        arrival_us = now * 1e6
        transit = arrival_us - float(sender_timestamp_us)
        if self._last_transit is not None:
            self._jitter += (abs(transit - self._last_transit) - self._jitter) * JITTER_GAIN
        self._last_transit = transit
        bucket = math.floor(now / DELAY_MIN_BUCKET_S)
        buckets = self._min_buckets
        if buckets and bucket < buckets[-1][0]:
            bucket = buckets[-1][0]  # a clock step backwards must not grow the window
        if buckets and buckets[-1][0] == bucket:
            if transit < buckets[-1][1]:
                buckets[-1] = (bucket, transit)
        else:
            buckets.append((bucket, transit))
        oldest = bucket - round(DELAY_MIN_WINDOW_S / DELAY_MIN_BUCKET_S)
        if buckets[0][0] < oldest:
            while buckets[0][0] < oldest:
                buckets.popleft()
            self._window_min = min(value for _, value in buckets)
        elif transit < self._window_min:
            self._window_min = transit
        q = transit - self._window_min
        self._q_sum += q
        self._q_count += 1
