from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.rift.errors import LocalProtocolError
from wavry.rift.media.jitter import DECAY_PER_FRAME, JitterBuffer

DET = settings(derandomize=True, deadline=None, max_examples=100)
INTERVAL = 1 / 64  # exact in binary floating point


@dataclass(frozen=True)
class Frame:
    frame_id: int


def test_without_jitter_frames_go_out_at_arrival() -> None:
    jb: JitterBuffer[Frame] = JitterBuffer()
    for i in range(200):
        now = 10.0 + i * INTERVAL
        jb.push(Frame(i), now, timestamp=i * INTERVAL)
        assert jb.next_release_time() == now
        assert jb.pop_ready(now) == [Frame(i)]
    assert jb.target_delay == 0.0


def test_jitter_raises_target_fast_and_it_decays_to_exactly_zero() -> None:
    rnd = random.Random(5)
    jb: JitterBuffer[Frame] = JitterBuffer(max_delay=0.010)
    for i in range(200):
        jb.push(Frame(i), i * INTERVAL + rnd.uniform(0.0, 0.008), timestamp=i * INTERVAL)
        jb.pop_ready(1e9)
    jittery = jb.target_delay
    assert 0.002 < jittery <= 0.010
    calm = 0
    for i in range(200, 1000):
        jb.push(Frame(i), i * INTERVAL + 1.0, timestamp=i * INTERVAL)
        jb.pop_ready(1e9)
        if jb.target_delay > 0:
            calm += 1
    assert jb.target_delay == 0.0
    assert calm >= jittery / DECAY_PER_FRAME - 1  # never faster than the decay step


def test_target_is_clamped_to_max_delay() -> None:
    jb: JitterBuffer[Frame] = JitterBuffer(max_delay=0.004)
    for i in range(100):
        jb.push(Frame(i), i * INTERVAL + (0.05 if i % 2 else 0.0), timestamp=i * INTERVAL)
        assert jb.target_delay <= 0.004
    assert jb.target_delay == 0.004
    jb2: JitterBuffer[Frame] = JitterBuffer(min_delay=0.002, max_delay=0.004)
    jb2.push(Frame(0), 0.0)
    assert jb2.target_delay == 0.002


def test_early_frames_wait_for_their_slot_and_late_ones_go_at_once() -> None:
    jb: JitterBuffer[Frame] = JitterBuffer()
    # Manufacture a 4 ms target, then deliver two frames with different transit.
    for i in range(50):
        jb.push(Frame(i), i * INTERVAL + (0.003 if i % 2 else 0.0), timestamp=i * INTERVAL)
        jb.pop_ready(1e9)
    target = jb.target_delay
    assert target > 0.001
    base = 50 * INTERVAL
    jb.push(Frame(50), base, timestamp=base)  # fastest transit: waits the whole target
    assert jb.next_release_time() == pytest.approx(base + jb.target_delay)
    assert jb.pop_ready(base) == []
    jb.pop_ready(1e9)
    late = 51 * INTERVAL + 0.02
    jb.push(Frame(51), late, timestamp=51 * INTERVAL)  # later than its slot: no extra wait
    assert jb.pop_ready(late) == [Frame(51)]


def test_release_order_is_push_order() -> None:
    jb: JitterBuffer[Frame] = JitterBuffer()
    for i in range(40):
        jb.push(Frame(i), i * INTERVAL + (0.006 if i % 3 == 0 else 0.0), timestamp=i * INTERVAL)
    out = jb.pop_ready(1e9)
    assert [f.frame_id for f in out] == list(range(40))


def test_overflow_releases_oldest_and_hard_cap_drops() -> None:
    jb: JitterBuffer[Frame] = JitterBuffer(min_delay=0.010, max_delay=0.010, max_frames=4)
    for i in range(6):
        jb.push(Frame(i), 0.0)
    assert len(jb) == 6
    assert jb.next_release_time() == 0.0
    assert jb.pop_ready(0.0) == [Frame(0), Frame(1)]
    for i in range(6, 30):
        jb.push(Frame(i), 0.0)
    assert len(jb) == 16 and jb.dropped == 12
    assert jb.pop_ready(0.0)[0] == Frame(14)


def test_without_timestamps_source_pauses_are_not_jitter() -> None:
    jb: JitterBuffer[Frame] = JitterBuffer()
    now = 0.0
    for i in range(100):
        now += 2.0 if i % 10 == 0 else INTERVAL  # static screen: long pauses, steady bursts
        jb.push(Frame(i), now)
        assert jb.pop_ready(now) == [Frame(i)]
    assert jb.target_delay == 0.0
    assert jb.jitter == 0.0


def test_without_timestamps_irregular_arrival_raises_target() -> None:
    rnd = random.Random(3)
    jb: JitterBuffer[Frame] = JitterBuffer()
    now = 0.0
    for i in range(100):
        now += INTERVAL + rnd.uniform(-0.006, 0.006)
        jb.push(Frame(i), now)
        assert jb.next_release_time() == pytest.approx(now + jb.target_delay)
        jb.pop_ready(now + 1.0)
    assert jb.target_delay > 0.002


def test_empty_and_bad_config() -> None:
    jb: JitterBuffer[Frame] = JitterBuffer()
    assert jb.next_release_time() is None
    assert jb.pop_ready(5.0) == []
    with pytest.raises(LocalProtocolError):
        JitterBuffer(min_delay=0.02, max_delay=0.01)


@DET
@given(
    seed=st.integers(0, 2**32),
    spread=st.floats(0.0, 0.03),
    with_ts=st.booleans(),
)
def test_property_order_bounds_and_max_hold(seed: int, spread: float, with_ts: bool) -> None:
    rnd = random.Random(seed)
    jb: JitterBuffer[Frame] = JitterBuffer(max_delay=0.010)
    arrivals = sorted(i * INTERVAL + rnd.uniform(0.0, spread) for i in range(120))
    released: list[int] = []
    for i, arrival in enumerate(arrivals):
        due = jb.next_release_time()
        while due is not None and due <= arrival:
            for f in jb.pop_ready(due):
                assert due <= arrivals[f.frame_id] + 0.010 + 1e-12  # held at most max_delay
                released.append(f.frame_id)
            due = jb.next_release_time()
        jb.push(Frame(i), arrival, timestamp=i * INTERVAL if with_ts else None)
        assert 0.0 <= jb.target_delay <= 0.010
    released += [f.frame_id for f in jb.pop_ready(1e9)]
    assert released == list(range(120))
