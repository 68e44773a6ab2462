from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wavry.rift.proto import rift_pb2
from wavry.rift.rx_stats import (
    MAX_GAP_RANGES,
    REORDER_TRACK_WINDOW,
    ReceiveStats,
    StatsSnapshot,
)

OFFSET_US = 987_654_321_000  # the sender's clock has an arbitrary offset


def feed(stats: ReceiveStats, ids: list[int], *, start: float = 0.0, gap: float = 0.001) -> None:
    for i, pid in enumerate(ids):
        stats.on_packet(pid, 1000, start + i * gap)


def test_in_order_packets_rate_and_reset() -> None:
    stats = ReceiveStats(start=0.0)
    feed(stats, list(range(1, 101)), gap=0.0005)
    snap = stats.snapshot(0.1)
    assert snap.period_ms == 100
    assert snap.received_packets == 100
    assert snap.lost_packets == 0
    assert snap.loss_fraction == 0.0
    assert snap.received_bytes == 100_000
    assert snap.receive_rate_kbps == pytest.approx(8000.0)
    assert snap.queue_delay_us is None  # no sender timestamps
    empty = stats.snapshot(0.2)
    assert (empty.received_packets, empty.received_bytes, empty.period_ms) == (0, 0, 100)
    assert empty.receive_rate_kbps == 0.0


def test_gaps_count_as_loss() -> None:
    stats = ReceiveStats(start=0.0)
    feed(stats, [1, 2, 5, 6, 10])
    snap = stats.snapshot(1.0)
    assert snap.lost_packets == 5  # 3, 4, 7, 8, 9
    assert snap.loss_fraction == pytest.approx(5 / 10)


def test_late_packets_are_uncounted() -> None:
    stats = ReceiveStats(start=0.0)
    feed(stats, [1, 2, 5, 3, 6, 4, 7])
    snap = stats.snapshot(1.0)
    assert snap.lost_packets == 0
    assert snap.received_packets == 7
    assert stats.reordered == 2


def test_reordering_across_periods_is_carried() -> None:
    stats = ReceiveStats(start=0.0)
    feed(stats, [1, 2, 6])
    assert stats.snapshot(1.0).lost_packets == 3  # 3, 4, 5 missing so far
    stats.on_packet(3, 1000, 1.1)
    stats.on_packet(4, 1000, 1.2)
    stats.on_packet(7, 1000, 1.3)
    assert stats.snapshot(2.0).lost_packets == 0  # never negative...
    stats.on_packet(10, 1000, 2.1)  # 8, 9 lost, 2 late arrivals credited earlier
    assert stats.snapshot(3.0).lost_packets == 0  # ...the deficit absorbs later losses
    stats.on_packet(12, 1000, 3.1)
    assert stats.snapshot(4.0).lost_packets == 1  # cumulative: 3+0+0+1 = 4 = ids 5, 8, 9, 11


def test_duplicates_and_very_late_packets_do_not_change_loss() -> None:
    stats = ReceiveStats(start=0.0)
    feed(stats, [1, 2, 3, 3, 2])
    assert stats.snapshot(1.0).lost_packets == 0
    stats.on_packet(10 + REORDER_TRACK_WINDOW * 2, 1000, 1.1)
    lost = stats.snapshot(2.0).lost_packets
    assert lost == 6 + REORDER_TRACK_WINDOW * 2
    stats.on_packet(5, 1000, 2.1)  # far outside the tracking window: stays lost
    assert stats.snapshot(3.0).lost_packets == 0
    assert stats.reordered == 0


def test_gap_tracking_is_bounded() -> None:
    stats = ReceiveStats(start=0.0)
    pid = 1
    for i in range(5 * MAX_GAP_RANGES):
        stats.on_packet(pid, 100, i * 0.001)
        pid += 2  # a gap of one after every packet
    assert len(stats._gap_starts) <= MAX_GAP_RANGES
    assert stats.snapshot(10.0).lost_packets == 5 * MAX_GAP_RANGES - 1
    # Splitting a wide gap many times stays bounded too.
    stats.on_packet(pid + 3 * MAX_GAP_RANGES, 100, 10.1)
    for k in range(1, 3 * MAX_GAP_RANGES, 2):
        stats.on_packet(pid + k, 100, 10.2)
    assert len(stats._gap_starts) <= MAX_GAP_RANGES + 1


def test_jitter_is_rfc3550() -> None:
    stats = ReceiveStats(start=0.0)
    # Sent every 10 ms, arrivals alternate between +0 and +2 ms transit: |D| = 2000 us always.
    for i in range(400):
        send_us = OFFSET_US + i * 10_000
        now = i * 0.010 + (0.002 if i % 2 else 0.0) + 5.0
        stats.on_packet(i + 1, 500, now, send_us)
    assert stats.jitter_us == pytest.approx(2000, abs=5)
    steady = ReceiveStats(start=0.0)
    for i in range(100):
        steady.on_packet(i + 1, 500, i * 0.010, OFFSET_US + i * 10_000)
    assert steady.snapshot(1.0).jitter_us == 0


def test_queue_delay_is_relative_one_way_delay_above_its_minimum() -> None:
    stats = ReceiveStats(start=0.0)
    base = 0.040  # propagation: cancels out, as does the sender's clock offset
    for i in range(100):  # an empty queue
        t = i * 0.001
        stats.on_packet(i + 1, 1000, t + base, OFFSET_US + round(t * 1e6))
    assert stats.snapshot(0.2).queue_delay_us == 0
    queue = [0.0, 0.005, 0.010, 0.015]  # then a queue builds up: 0, 5, 10, 15 ms
    for j, q in enumerate(queue):
        t = 0.2 + j * 0.001
        stats.on_packet(200 + j, 1000, t + base + q, OFFSET_US + round(t * 1e6))
    assert stats.snapshot(0.3).queue_delay_us == pytest.approx(7500, abs=2)


def test_queue_delay_baseline_follows_a_longer_path_within_the_window() -> None:
    stats = ReceiveStats(start=0.0)
    pid = 0

    def send(t: float, owd: float) -> None:
        nonlocal pid
        pid += 1
        stats.on_packet(pid, 1000, t + owd, OFFSET_US + round(t * 1e6))

    for i in range(50):
        send(i * 0.02, 0.010)
    stats.snapshot(1.0)
    # The route gets 30 ms longer: first read as queuing...
    for i in range(50):
        send(1.0 + i * 0.02, 0.040)
    snap = stats.snapshot(2.0)
    assert snap.queue_delay_us == pytest.approx(30_000, abs=2)
    # ...and forgotten once the old minimum leaves the 10 s window.
    t = 2.0
    while t < 14.0:
        send(t, 0.040)
        t += 0.05
    stats.snapshot(14.0)
    send(14.0, 0.040)
    assert stats.snapshot(14.1).queue_delay_us == 0
    assert len(stats._min_buckets) <= 11


def test_fec_and_frame_counters_and_proto() -> None:
    stats = ReceiveStats(start=0.0)
    stats.on_packet(1, 1200, 0.01, OFFSET_US)
    stats.on_packet(3, 1200, 0.02, OFFSET_US + 10_000)
    stats.on_recovered()
    stats.on_recovered(2)
    stats.on_frame_dropped()
    snap = stats.snapshot(0.05)
    assert (snap.fec_recovered, snap.frames_dropped) == (3, 1)
    report = snap.to_proto(rtt_us=21_000)
    assert isinstance(report, rift_pb2.StatsReport)
    assert report.period_ms == 50
    assert report.received_packets == 2
    assert report.lost_packets == 1
    assert report.rtt_us == 21_000
    assert report.received_bytes == 2400
    assert report.fec_recovered == 3
    assert report.frames_dropped == 1
    assert report.queue_delay_us == snap.queue_delay_us == 0
    after = stats.snapshot(0.1)
    assert (after.fec_recovered, after.frames_dropped) == (0, 0)


def test_to_proto_clamps_to_field_widths() -> None:
    snap = StatsSnapshot(
        period_ms=2**40,
        received_packets=2**33,
        lost_packets=2**33,
        loss_fraction=0.5,
        jitter_us=2**33,
        queue_delay_us=2**40,
        received_bytes=2**70,
        receive_rate_kbps=1.0,
        fec_recovered=2**33,
        frames_dropped=2**33,
    )
    report = snap.to_proto(rtt_us=2**70)
    assert report.period_ms == report.lost_packets == report.queue_delay_us == 2**32 - 1
    assert report.received_bytes == report.rtt_us == 2**64 - 1


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**64 - 1),
            st.integers(0, 10_000),
            st.floats(0.0, 1e6, allow_nan=False),
            st.none() | st.integers(0, 2**64 - 1),
        ),
        max_size=60,
    )
)
def test_any_input_keeps_snapshots_sane(
    packets: list[tuple[int, int, float, int | None]],
) -> None:
    stats = ReceiveStats()
    for pid, size, now, ts in packets:
        stats.on_packet(pid, size, now, ts)
    snap = stats.snapshot(max((p[2] for p in packets), default=0.0) + 1.0)
    assert snap.lost_packets >= 0
    assert 0.0 <= snap.loss_fraction <= 1.0
    assert snap.queue_delay_us is None or snap.queue_delay_us >= 0
    assert snap.jitter_us >= 0
    snap.to_proto()  # always encodable
    assert len(stats._gap_starts) <= MAX_GAP_RANGES
    assert len(stats._min_buckets) <= 11


@given(st.integers(0, 2**32), st.integers(1, 400), st.integers(0, 30), st.integers(0, 10))
def test_loss_is_exact_for_drops_with_bounded_reordering(
    seed: int, n: int, drops: int, displacement: int
) -> None:
    rng = random.Random(seed)
    ids = list(range(1, n + 1))
    dropped = set(rng.sample(ids[1:-1], min(drops, max(0, n - 2))))
    kept = [i for i in ids if i not in dropped]
    # Shuffle locally (each packet moves at most `displacement` places), keep the first in place.
    keys = [i + rng.uniform(0, displacement) for i in range(len(kept))]
    order = [kept[0]] + [p for _, p in sorted(zip(keys[1:], kept[1:], strict=True))]
    expected = sum(1 for d in dropped if d < max(order))
    # One period: exact.
    whole = ReceiveStats(start=0.0)
    for k, pid in enumerate(order):
        whole.on_packet(pid, 100, k * 0.001)
    assert whole.snapshot(1e3).lost_packets == expected
    # Many periods: a loss already reported cannot be taken back, but the correction is carried,
    # so reported minus the outstanding correction is exact.
    stats = ReceiveStats(start=0.0)
    total_lost = 0
    for k, pid in enumerate(order):
        stats.on_packet(pid, 100, k * 0.001)
        if k % 37 == 36:
            total_lost += stats.snapshot(k * 0.001).lost_packets
    total_lost += stats.snapshot(1e3).lost_packets
    assert total_lost >= expected
    assert total_lost + stats._lost == expected
