from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wavry.net.impairment import ImpairmentConfig, ImpairmentLink


def link(seed: int = 1, **kwargs: object) -> ImpairmentLink:
    return ImpairmentLink(ImpairmentConfig(**kwargs), random.Random(seed))  # type: ignore[arg-type]


# -- the link model ---------------------------------------------------------------------------


def test_unimpaired_link_delivers_at_once() -> None:
    lk = link()
    assert lk.transmit(1200, 3.5) == [3.5]
    assert lk.counters == {
        "sent": 1,
        "delivered": 1,
        "dropped_loss": 0,
        "dropped_queue": 0,
        "duplicated": 0,
    }


def test_delay_and_uniform_jitter_stay_within_bounds() -> None:
    lk = link(delay=0.020, jitter=0.005)
    times = [lk.transmit(100, 1.0)[0] - 1.0 for _ in range(2000)]
    assert min(times) >= 0.015 - 1e-12
    assert max(times) <= 0.025 + 1e-12
    assert abs(sum(times) / len(times) - 0.020) < 0.0005
    assert max(times) - min(times) > 0.009  # the jitter really spans its range


def test_normal_jitter_never_delivers_before_sending() -> None:
    lk = link(delay=0.001, jitter=0.010, jitter_distribution="normal")
    times = [lk.transmit(100, 0.0)[0] for _ in range(2000)]
    assert min(times) >= 0.0
    assert any(t == 0.0 for t in times)  # clamped at zero, not negative
    assert max(times) > 0.015


def test_random_loss_rate_is_close_to_configured() -> None:
    lk = link(loss=0.1)
    delivered = sum(1 for _ in range(20_000) if lk.transmit(100, 0.0))
    assert lk.dropped_loss == 20_000 - delivered
    assert 0.09 < lk.dropped_loss / 20_000 < 0.11


def test_gilbert_elliott_losses_come_in_bursts() -> None:
    lk = link(burst_p_good_to_bad=0.01, burst_p_bad_to_good=0.25, burst_loss_in_bad=1.0)
    pattern = [bool(lk.transmit(100, 0.0)) for _ in range(50_000)]
    runs: list[int] = []
    current = 0
    for ok in pattern:
        if not ok:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    mean_burst = sum(runs) / len(runs)
    assert 3.0 < mean_burst < 5.0  # geometric with mean 1 / p_bad_to_good = 4
    stationary_loss = 0.01 / (0.01 + 0.25)
    assert abs(pattern.count(False) / len(pattern) - stationary_loss) < 0.01


def test_duplicates_are_counted_and_delivered_twice() -> None:
    lk = link(duplicate=0.2, delay=0.01)
    copies = [len(lk.transmit(100, 0.0)) for _ in range(5000)]
    assert set(copies) == {1, 2}
    assert lk.duplicated == copies.count(2)
    assert lk.delivered == sum(copies)
    assert 0.17 < lk.duplicated / 5000 < 0.23


def test_reordering_delivers_some_packets_after_later_ones() -> None:
    lk = link(delay=0.01, reorder=0.1, reorder_delay=0.02)
    deliveries = [lk.transmit(100, i * 0.001)[0] for i in range(2000)]
    inversions = sum(1 for a, b in zip(deliveries, deliveries[1:], strict=False) if b < a)
    assert inversions > 50
    plain = link(delay=0.01)
    ordered = [plain.transmit(100, i * 0.001)[0] for i in range(100)]
    assert ordered == sorted(ordered)


def test_bottleneck_serialises_and_queues() -> None:
    lk = link(bandwidth_bps=1_000_000)  # 1250 bytes = 10 ms
    times = [lk.transmit(1250, 0.0)[0] for _ in range(5)]
    assert times == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05])
    assert [d for _, d in lk.queue_delay_samples] == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04])
    assert lk.queue_delay_at(0.0) == pytest.approx(0.05)
    # Sending slower than the capacity: no queue builds up.
    assert lk.transmit(1250, 1.0) == pytest.approx([1.01])
    assert lk.last_queue_delay == 0.0


def test_queue_limit_in_seconds_drops_tail() -> None:
    lk = link(bandwidth_bps=1_000_000, queue_limit_s=0.025)
    results = [lk.transmit(1250, 0.0) for _ in range(6)]
    # Waits 0, 10, 20 ms are accepted; 30 ms and more exceed the 25 ms limit.
    assert [bool(r) for r in results] == [True, True, True, False, False, False]
    assert lk.dropped_queue == 3


def test_queue_limit_in_bytes_drops_tail() -> None:
    lk = link(bandwidth_bps=1_000_000, queue_limit_bytes=3000)
    results = [bool(lk.transmit(1000, 0.0)) for _ in range(5)]
    assert results == [True, True, True, False, False]
    assert lk.dropped_queue == 2


def test_bandwidth_change_applies_to_bits_already_queued() -> None:
    lk = link(bandwidth_bps=1_000_000, bandwidth_schedule=((0.015, 500_000.0),))
    first, second = lk.transmit(1250, 0.0)[0], lk.transmit(1250, 0.0)[0]
    assert first == pytest.approx(0.010)
    # 5 kbit at 1 Mbit/s until 15 ms, the other 5 kbit at 0.5 Mbit/s: done at 25 ms.
    assert second == pytest.approx(0.025)
    assert lk.bandwidth_at(0.0) == 1_000_000
    assert lk.bandwidth_at(0.015) == 500_000


def test_unlimited_segment_flushes_the_queue() -> None:
    lk = link(bandwidth_bps=1_000_000, bandwidth_schedule=((0.005, None),))
    assert lk.transmit(1250, 0.0) == pytest.approx([0.005])
    assert lk.transmit(1250, 0.006) == pytest.approx([0.006])


def test_loss_episode_only_applies_inside_its_window() -> None:
    lk = link(loss_episodes=((1.0, 2.0, 1.0),))
    assert lk.transmit(100, 0.999)
    assert lk.transmit(100, 1.0) == []
    assert lk.transmit(100, 1.999) == []
    assert lk.transmit(100, 2.0)
    assert lk.dropped_loss == 2


def test_same_seed_same_outcome() -> None:
    cfg = ImpairmentConfig.parse("loss=5%,delay=20ms,jitter=10ms,reorder=1%,dup=0.5%")
    a = ImpairmentLink(cfg, random.Random(7))
    b = ImpairmentLink(cfg, random.Random(7))
    assert [a.transmit(500, i / 100) for i in range(500)] == [
        b.transmit(500, i / 100) for i in range(500)
    ]


# -- configuration and the CLI string --------------------------------------------------------


def test_parse_the_documented_example() -> None:
    cfg = ImpairmentConfig.parse(
        "loss=5%,delay=20ms,jitter=10ms,reorder=1%,dup=0.5%,rate=10mbit,queue=50ms,burst=0.01/0.3/0.5"
    )
    assert cfg == ImpairmentConfig(
        loss=0.05,
        delay=0.02,
        jitter=0.01,
        reorder=0.01,
        duplicate=0.005,
        bandwidth_bps=10_000_000,
        queue_limit_s=0.05,
        burst_p_good_to_bad=0.01,
        burst_p_bad_to_good=0.3,
        burst_loss_in_bad=0.5,
    )


def test_parse_schedules_units_and_whitespace() -> None:
    cfg = ImpairmentConfig.parse(
        " rate_at=20s/10mbit , rate_at = 10s/5000kbit, loss_episode=1s/1500ms/20%,"
        "queue=64kib,jitter_dist=normal,jitter=500us, Bandwidth=1gbps"
    )
    assert cfg.bandwidth_schedule == ((10.0, 5_000_000.0), (20.0, 10_000_000.0))
    assert cfg.loss_episodes == ((1.0, 1.5, 0.2),)
    assert cfg.queue_limit_bytes == 65536
    assert cfg.jitter_distribution == "normal"
    assert cfg.jitter == pytest.approx(0.0005)
    assert cfg.bandwidth_bps == 1e9
    assert ImpairmentConfig.parse("") == ImpairmentConfig()
    assert ImpairmentConfig.parse("rate=unlimited").bandwidth_bps is None


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("loss", "not key=value"),
        ("colour=red", "unknown impairment key"),
        ("loss=5", "probability"),
        ("loss=150%", "0..1"),
        ("loss=5%,loss=6%", "given twice"),
        ("delay=20", "unit"),
        ("delay=-5ms", "cannot read a number"),
        ("delay=nanms", "cannot read a number"),
        ("rate=10 furlongs", "expected a rate"),
        ("rate=1e999bit", "out of range"),
        ("rate=10mbit,bandwidth=5mbit", "twice"),
        ("queue=10", "duration"),
        ("queue=0.5b", "whole number"),
        ("queue=1e308mb", "whole number"),
        ("burst=0.1/0.2", "p_good_to_bad"),
        ("rate_at=10s", "time/rate"),
        ("loss_episode=5s/1s/10%", "ends before"),
        ("jitter_dist=cauchy", "uniform or normal"),
        ("rate=0.5bit", "at least 1"),
    ],
)
def test_parse_rejects_bad_input_with_a_clear_message(spec: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        ImpairmentConfig.parse(spec)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"loss": 1.5},
        {"loss": math.nan},
        {"delay": -1.0},
        {"jitter": math.inf},
        {"bandwidth_bps": 0.0},
        {"queue_limit_bytes": 0},
        {"jitter_distribution": "cauchy"},
        {"loss_episodes": ((2.0, 1.0, 0.5),)},
        {"bandwidth_schedule": ((2.0, 1e6), (1.0, 1e6))},
    ],
)
def test_config_validates_on_construction(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ImpairmentConfig(**kwargs)  # type: ignore[arg-type]


@given(st.text(max_size=80))
def test_parse_raises_only_value_error(spec: str) -> None:
    try:
        cfg = ImpairmentConfig.parse(spec)
    except ValueError:
        return
    assert isinstance(cfg, ImpairmentConfig)


_ALPHABET = "=,%/.0123456789eE+-_ abcdefghijklmnopqrstuvwxyz"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["loss", "delay", "jitter", "rate", "queue", "burst", "dup", "rate_at", "x"]
            ),
            st.text(alphabet=_ALPHABET, max_size=12),
        ),
        max_size=5,
    )
)
def test_parse_of_near_valid_items_raises_only_value_error(items: list[tuple[str, str]]) -> None:
    spec = ",".join(f"{key}={value}" for key, value in items)
    try:
        ImpairmentConfig.parse(spec)
    except ValueError:
        pass


_KEYS = ["loss", "delay", "jitter", "reorder_delay", "rate", "queue", "dup", "reorder"]
_UNITS = ["", "%", "s", "ms", "us", "b", "kb", "mib", "bit", "mbit", "gbps", "x"]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(_KEYS),
            st.floats(min_value=0.0, allow_nan=False, allow_infinity=False),
            st.sampled_from(_UNITS),
        ),
        max_size=4,
    )
)
def test_parse_of_extreme_numbers_raises_only_value_error(
    items: list[tuple[str, float, str]],
) -> None:
    spec = ",".join(f"{key}={value!r}{unit}" for key, value, unit in items)
    try:
        cfg = ImpairmentConfig.parse(spec)
    except ValueError:
        return
    assert ImpairmentConfig.parse(cfg.to_spec()) == cfg


fractions = st.floats(0.0, 1.0, allow_nan=False)
durations = st.floats(0.0, 100.0, allow_nan=False)
rates = st.floats(1.0, 1e11, allow_nan=False)


@st.composite
def configs(draw: st.DrawFn) -> ImpairmentConfig:
    times = sorted(draw(st.lists(durations, max_size=3)))
    return ImpairmentConfig(
        loss=draw(fractions),
        burst_p_good_to_bad=draw(fractions),
        burst_p_bad_to_good=draw(fractions),
        burst_loss_in_bad=draw(fractions),
        delay=draw(durations),
        jitter=draw(durations),
        jitter_distribution=draw(st.sampled_from(["uniform", "normal"])),
        reorder=draw(fractions),
        reorder_delay=draw(durations),
        duplicate=draw(fractions),
        bandwidth_bps=draw(st.none() | rates),
        queue_limit_s=draw(st.none() | durations),
        queue_limit_bytes=draw(st.none() | st.integers(1, 10**9)),
        loss_episodes=tuple(
            (start, start + length, loss)
            for start, length, loss in draw(
                st.lists(st.tuples(durations, durations, fractions), max_size=2)
            )
        ),
        bandwidth_schedule=tuple((t, draw(st.none() | rates)) for t in times),
    )


@given(configs())
def test_to_spec_round_trips(cfg: ImpairmentConfig) -> None:
    assert ImpairmentConfig.parse(cfg.to_spec()) == cfg


@given(configs(), st.lists(st.tuples(st.integers(1, 9000), st.floats(0, 50)), max_size=40))
def test_transmit_never_delivers_early_and_counters_add_up(
    cfg: ImpairmentConfig, sends: list[tuple[int, float]]
) -> None:
    lk = ImpairmentLink(cfg, random.Random(3))
    delivered = 0
    for size, now in sorted(sends, key=lambda s: s[1]):
        times = lk.transmit(size, now)
        assert len(times) <= 2
        assert all(t >= now for t in times)
        delivered += len(times)
    assert lk.sent == len(sends)
    assert lk.delivered == delivered
    assert lk.sent == lk.delivered - lk.duplicated + lk.dropped_loss + lk.dropped_queue
