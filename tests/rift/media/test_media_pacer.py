from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.rift.errors import LocalProtocolError
from wavry.rift.media.pacer import DEFAULT_BURST_BYTES, DEFAULT_MIN_RATE_BPS, Pacer

DET = settings(derandomize=True, deadline=None, max_examples=100)


def test_burst_goes_at_once_then_pacing_at_rate() -> None:
    p = Pacer(rate_bps=8_000_000)  # 1 MB/s
    assert DEFAULT_BURST_BYTES == 4500
    for _ in range(3):
        assert p.time_until_send(1500, 0.0) == 0.0
        p.on_sent(1500, 0.0)
    assert p.time_until_send(1500, 0.0) == pytest.approx(0.0015)
    assert p.time_until_send(1500, 0.001) == pytest.approx(0.0005)
    assert p.time_until_send(1500, 0.0015) == 0.0


def test_bucket_never_exceeds_burst() -> None:
    p = Pacer(rate_bps=8_000_000, burst_bytes=3000)
    p.on_sent(3000, 0.0)
    assert p.tokens(100.0) == 3000


def test_datagram_larger_than_burst_is_not_blocked_forever() -> None:
    p = Pacer(rate_bps=8_000_000, burst_bytes=1000)
    assert p.time_until_send(1500, 0.0) == 0.0
    p.on_sent(1500, 0.0)
    assert p.tokens(0.0) == -500
    assert p.time_until_send(1500, 0.0) == pytest.approx(0.0015)


def test_rate_is_clamped_and_validated() -> None:
    p = Pacer(rate_bps=10)
    assert p.rate_bps == DEFAULT_MIN_RATE_BPS
    p.set_rate(2_000_000)
    assert p.rate_bps == 2_000_000
    with pytest.raises(LocalProtocolError):
        p.set_rate(math.nan)
    with pytest.raises(LocalProtocolError):
        Pacer(rate_bps=1e6, burst_bytes=0)


def test_set_rate_with_now_credits_the_old_rate_first() -> None:
    p = Pacer(rate_bps=8_000_000, burst_bytes=10_000)
    p.on_sent(10_000, 0.0)
    p.set_rate(800_000, now=0.005)  # 5000 bytes earned at 1 MB/s
    assert p.tokens(0.005) == pytest.approx(5000)
    assert p.tokens(0.01) == pytest.approx(5500)  # then 100 kB/s


def test_clock_going_backwards_earns_nothing() -> None:
    p = Pacer(rate_bps=8_000_000)
    p.on_sent(4500, 1.0)
    assert p.tokens(0.5) == 0
    assert p.tokens(1.0) == 0
    assert p.tokens(1.001) == pytest.approx(1000)


@DET
@given(
    rate=st.floats(200_000, 200_000_000),
    sizes=st.lists(st.integers(60, 1500), min_size=50, max_size=300),
)
def test_long_run_throughput_matches_rate(rate: float, sizes: list[int]) -> None:
    p = Pacer(rate_bps=rate)
    now = 0.0
    for size in sizes:
        wait = p.time_until_send(size, now)
        assert wait >= 0.0
        now += wait
        assert p.time_until_send(size, now) == 0.0  # the promised time is honoured
        p.on_sent(size, now)
    total = sum(sizes)
    # Everything beyond the initial burst went out at the configured rate.
    assert now == pytest.approx(
        max(0.0, total - DEFAULT_BURST_BYTES) * 8 / rate, rel=1e-6, abs=1500 * 8 / rate
    )
    assert now >= (total - DEFAULT_BURST_BYTES - 1500) * 8 / rate
