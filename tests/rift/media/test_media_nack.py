from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.rift.errors import LocalProtocolError
from wavry.rift.media.nack import NackTracker, RetransmitHistory

DET = settings(derandomize=True, deadline=None, max_examples=150)


def test_in_order_packets_nack_nothing() -> None:
    t = NackTracker()
    assert [t.on_packet(pid, 0.0) for pid in range(100, 110)] == [[]] * 10
    assert t.highest == 109
    assert t.next_timer() is None


def test_gap_is_nacked_at_once_and_retried_then_abandoned() -> None:
    t = NackTracker(retry_interval=0.25, max_retries=2)
    t.on_packet(10, 0.0)
    assert t.on_packet(14, 1.0) == [11, 12, 13]
    assert t.nacks_sent == 3
    assert t.next_timer() == 1.25
    assert t.poll(1.24) == []
    t.on_packet(12, 1.1)  # late arrival resolves
    assert t.poll(1.25) == [11, 13]
    assert t.next_timer() == 1.5
    assert t.poll(1.5) == [11, 13]
    assert t.poll(1.75) == []  # 1 + max_retries NACKs each, then abandoned
    assert (t.gave_up, t.pending, t.nacks_sent) == (2, 0, 7)
    assert t.next_timer() is None


def test_retransmission_resolves_its_original() -> None:
    t = NackTracker()
    t.on_packet(1, 0.0)
    assert t.on_packet(3, 0.0) == [2]
    assert t.on_packet(4, 0.01, retransmit_of=2) == []
    assert not t.is_pending(2)
    assert t.resolved == 1
    assert t.poll(10.0) == []


def test_fec_recovery_resolves() -> None:
    t = NackTracker()
    t.on_packet(1, 0.0)
    t.on_packet(5, 0.0)
    t.on_recovered(3)
    t.on_recovered(99)  # unknown ids are ignored
    assert [pid for pid in (2, 3, 4) if t.is_pending(pid)] == [2, 4]


def test_big_gap_is_capped_to_newest_ids_and_window() -> None:
    t = NackTracker(window=100, max_ids_per_nack=8)
    t.on_packet(0, 0.0)
    assert t.on_packet(50, 0.0) == list(range(42, 50))
    t2 = NackTracker(window=10, max_ids_per_nack=64)
    t2.on_packet(0, 0.0)
    assert t2.on_packet(1000, 0.0) == list(range(990, 1000))


def test_ids_falling_out_of_the_window_are_abandoned() -> None:
    t = NackTracker(window=10)
    t.on_packet(0, 0.0)
    t.on_packet(3, 0.0)  # 1 and 2 pending
    t.on_packet(12, 0.0)  # floor 2: id 1 abandoned
    assert not t.is_pending(1)
    assert t.is_pending(2)
    assert t.gave_up == 1


def test_pending_is_bounded() -> None:
    t = NackTracker(max_pending=5, max_ids_per_nack=4)
    t.on_packet(0, 0.0)
    t.on_packet(5, 0.0)
    t.on_packet(10, 0.0)
    assert t.pending == 5
    assert [pid for pid in range(11) if t.is_pending(pid)] == [4, 6, 7, 8, 9]


def test_poll_returns_at_most_max_ids_and_keeps_the_rest_due() -> None:
    t = NackTracker(max_ids_per_nack=3, retry_interval=0.5)
    t.on_packet(0, 0.0)
    t.on_packet(4, 0.0)
    t.on_packet(8, 0.0)
    assert t.poll(0.5) == [1, 2, 3]
    assert t.next_timer() == 0.5
    assert t.poll(0.5) == [5, 6, 7]


def test_retry_interval_changes_apply_to_new_schedules() -> None:
    t = NackTracker(retry_interval=0.5)
    t.on_packet(0, 0.0)
    t.on_packet(2, 0.0)
    t.set_retry_interval(0.125)
    assert t.retry_interval == 0.125
    assert t.poll(0.25) == []
    assert t.poll(0.5) == [1]
    assert t.next_timer() == 0.625
    with pytest.raises(LocalProtocolError):
        t.set_retry_interval(0.0)


def test_constructor_rejects_nonsense() -> None:
    with pytest.raises(LocalProtocolError):
        NackTracker(window=0)
    with pytest.raises(LocalProtocolError):
        RetransmitHistory(capacity=0)


@DET
@given(seed=st.integers(0, 2**32), loss=st.floats(0.0, 0.6), reorder=st.floats(0.0, 0.3))
def test_never_nacks_a_received_id_and_stays_bounded(
    seed: int, loss: float, reorder: float
) -> None:
    rnd = random.Random(seed)
    t = NackTracker(window=64, max_pending=32, max_ids_per_nack=16, retry_interval=0.01)
    arrivals = [pid for pid in range(1, 400) if rnd.random() >= loss]
    for i in range(len(arrivals) - 1):
        if rnd.random() < reorder:
            arrivals[i], arrivals[i + 1] = arrivals[i + 1], arrivals[i]
    received: set[int] = set()
    now = 0.0
    for pid in arrivals:
        now += 0.002
        received.add(pid)
        for nacked in t.on_packet(pid, now) + t.poll(now):
            assert nacked not in received
            assert t.highest is not None and t.highest - 64 <= nacked < t.highest
        assert t.pending <= 32
    for _ in range(10):
        now += 0.01
        assert not set(t.poll(now)) & received
    assert t.pending == 0


def test_history_take_returns_once() -> None:
    h = RetransmitHistory()
    h.store(7, b"msg", 0.0)
    assert h.take(7, 0.5) == b"msg"
    assert h.take(7, 0.5) is None
    assert h.take(8, 0.5) is None


def test_history_refuses_stale_entries() -> None:
    h = RetransmitHistory(max_age=0.25)
    h.store(1, b"a", 0.0)
    h.store(2, b"b", 0.0)
    assert h.take(1, 0.25) == b"a"
    assert h.take(2, 0.5) is None


def test_history_capacity_evicts_oldest_and_expire_drops_old() -> None:
    h = RetransmitHistory(capacity=3, max_age=1.0)
    for pid in range(5):
        h.store(pid, bytes([pid]), float(pid))
    assert len(h) == 3 and h.evicted == 2
    assert h.take(0, 4.0) is None
    assert h.take(1, 4.0) is None
    h.expire(4.0)  # entries at 2.0 are older than 1 s
    assert len(h) == 2
    assert h.take(3, 4.0) == b"\x03"
    h.store(10, b"re", 4.0)  # the caller re-stores a retransmission under its new id
    assert h.take(10, 4.5) == b"re"


def test_reorder_window_grows_on_late_arrival_and_defers_nacks() -> None:
    from wavry.rift.media.nack import DEFAULT_MAX_REORDER_WINDOW, NackTracker

    t = NackTracker(retry_interval=0.05)
    t.on_packet(1, 0.0)
    assert t.on_packet(3, 0.001) == [2]  # no reordering seen yet: immediate NACK
    t.on_packet(2, 0.011)  # 10 ms late: the network reorders
    assert t.late_arrivals == 1
    assert t.reorder_window == pytest.approx(0.0125)
    assert t.on_packet(5, 0.020) == []  # gap 4 now waits out the reorder window
    assert t.poll(0.025) == []
    assert t.next_timer() == pytest.approx(0.0325)
    assert t.poll(0.033) == [4]
    # A huge observed reordering is capped.
    t.on_packet(7, 0.040)
    t.on_packet(6, 0.500)
    assert t.reorder_window == DEFAULT_MAX_REORDER_WINDOW


def test_reorder_window_decays_without_reordering() -> None:
    from wavry.rift.media.nack import NackTracker

    t = NackTracker()
    t.on_packet(1, 0.0)
    t.on_packet(3, 0.0)
    t.on_packet(2, 0.008)
    assert t.reorder_window > 0
    pid, now = 4, 0.01
    while t.reorder_window > 0 and now < 30:
        t.on_packet(pid, now)
        pid += 1
        now += 0.1
    assert t.reorder_window == 0.0
    assert t.on_packet(pid + 1, now) == [pid]  # immediate again
