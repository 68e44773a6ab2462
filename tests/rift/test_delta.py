from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wavry.rift.delta import (
    DeltaConfig,
    DeltaController,
    DeltaDecision,
    DeltaSample,
    DeltaState,
)
from wavry.rift.proto import rift_pb2

CFG = DeltaConfig()
STEP = CFG.report_interval_s


class Feed:
    """Feeds a controller one report every 50 ms."""

    def __init__(self, kbps: int = 8000, fps: int = 60, max_fps: int = 60, **cfg: object) -> None:
        config = DeltaConfig(**cfg) if cfg else CFG  # type: ignore[arg-type]
        self.ctl = DeltaController(
            config, initial_bitrate_kbps=kbps, initial_fps=fps, max_fps=max_fps
        )
        self.now = 0.0
        self.last: DeltaDecision | None = None

    def __call__(
        self,
        queue_us: int | None = 1000,
        *,
        rate: float | None = None,
        loss: float = 0.0,
        jitter: int = 500,
        rtt: int = 20_000,
        n: int = 1,
    ) -> DeltaDecision:
        for _ in range(n):
            self.now += STEP
            self.last = self.ctl.on_sample(DeltaSample(rtt, loss, jitter, queue_us, rate, self.now))
        assert self.last is not None
        return self.last


# -- states ---------------------------------------------------------------------------------


def test_stable_increases_and_respects_max() -> None:
    f = Feed(kbps=8000, max_bitrate_kbps=9000)
    first = f(rate=8000)
    assert first.state is DeltaState.STABLE and first.changed
    d = f(rate=8000, n=20)
    assert 8000 < d.bitrate_kbps
    grown = d.bitrate_kbps
    d = f(rate=20_000, n=400)
    assert d.bitrate_kbps == 9000
    assert grown < 9000


def test_growth_accelerates_with_time_in_stable() -> None:
    f = Feed(kbps=5000)
    before = f(rate=5000).bitrate_kbps
    after_1s = f(rate=20_000, n=20).bitrate_kbps
    after_2s = f(rate=20_000, n=20).bitrate_kbps
    assert after_2s - after_1s > after_1s - before


def test_increase_is_bounded_by_the_receive_rate() -> None:
    f = Feed(kbps=4000)
    d = f(rate=2000, n=200)  # the encoder only fills half its budget
    assert d.bitrate_kbps == 4000  # never raised beyond 1.5 x 2000 = 3000, never lowered either


def test_stable_to_rising_after_k_rising_samples_with_one_mild_cut() -> None:
    f = Feed(kbps=10_000)
    f(1000, rate=10_000, n=5)
    states = [f(q, rate=10_000).state for q in (2000, 3000)]
    assert states == [DeltaState.STABLE, DeltaState.STABLE]  # k = 3: not yet
    d = f(4000, rate=10_000)
    assert d.state is DeltaState.RISING
    assert d.bitrate_kbps == pytest.approx(0.95 * 10_000, abs=2)
    assert f.ctl.rising_cuts == 1
    d = f(4500, rate=10_000)  # still rising: no further cut
    assert d.state is DeltaState.RISING and f.ctl.rising_cuts == 1


def test_rising_back_to_stable_after_k_calm_samples() -> None:
    f = Feed(kbps=10_000)
    f(1000, rate=10_000, n=5)
    for q in (2000, 3000, 4000):
        f(q, rate=10_000)
    assert f.ctl.state is DeltaState.RISING
    held = f(3000, rate=10_000).bitrate_kbps
    assert f(2500, rate=10_000).bitrate_kbps == held  # RISING holds
    assert f(2000, rate=10_000).state is DeltaState.STABLE  # third sample with Δ <= 0


def test_noise_below_epsilon_does_not_make_rising() -> None:
    f = Feed()
    for i in range(40):
        d = f(1000 + (i % 2) * 200, rate=8000)  # ±200 us < ε = 250 us
        assert d.state is DeltaState.STABLE


def test_congestion_cuts_once_per_episode_to_beta_times_receive_rate() -> None:
    f = Feed(kbps=10_000)
    f(1000, rate=10_000, n=5)
    d = f(15_000, rate=6000)  # queue over T_limit; the path delivered 6 Mbit/s
    assert d.state is DeltaState.CONGESTED
    assert d.bitrate_kbps == pytest.approx(0.85 * 6000, abs=2)
    assert f.ctl.decreases == 1
    # The queue stays long for a second (same capacity): no further decrease of R.
    for _ in range(20):
        d = f(15_000, rate=6000)
        assert f.ctl.decreases == 1
    assert f.ctl._rate == pytest.approx(0.85 * 6000, abs=2)


def test_original_bug_no_compounding_cut_without_receive_rate() -> None:
    f = Feed(kbps=10_000)
    f(1000, n=5)
    f(60_000)
    assert f.ctl.decreases == 1
    cut = f.ctl._rate
    for _ in range(20):  # a long but draining queue: left to drain, no cut per sample
        f(int(f.ctl.queue_delay_us) - 500)
        assert f.ctl.state is DeltaState.CONGESTED
        assert f.ctl._rate == cut
    assert f.ctl.decreases == 1


def test_congested_without_receive_rate_recuts_if_the_queue_keeps_growing() -> None:
    f = Feed(kbps=10_000)
    f(1000, n=5)
    before = f.ctl._rate
    f(30_000)
    q = 30_000
    for _ in range(10):  # growing for 500 ms: well past the hold (RTT + 50 ms)
        q += 3000
        f(q)
    assert 2 <= f.ctl.decreases <= 10 // 2  # at most one per hold (RTT + 50 ms = 2 samples)
    assert f.ctl._rate == pytest.approx(before * 0.85**f.ctl.decreases)


def test_long_queue_drains_below_r_then_returns_to_r() -> None:
    f = Feed(kbps=10_000)
    f(1000, rate=10_000, n=5)
    d = f(15_000, rate=6000)
    r = d.bitrate_kbps
    d = f(100_000, rate=6000)  # 100 ms of queue: drain at max(0.5, 1 - 0.1/0.2) x 6000
    assert d.bitrate_kbps == 3000
    d = f(5000, rate=6000)
    assert d.bitrate_kbps == r


def test_congested_back_to_stable_after_k_clear_samples() -> None:
    f = Feed(kbps=10_000)
    f(1000, rate=10_000, n=5)
    f(15_000, rate=6000)
    f(500, rate=5000, n=2)
    assert f.ctl.state is DeltaState.CONGESTED  # within the hold
    states = [f(500, rate=5000).state for _ in range(4)]
    assert DeltaState.STABLE in states
    assert states[-1] is DeltaState.STABLE


def test_overuse_reacts_before_t_limit() -> None:
    f = Feed(kbps=10_000)
    f(1000, rate=10_000, n=5)
    d = f(4500, rate=6000)  # queue growing fast, delivery far below R, still under T_limit
    assert d.state is DeltaState.CONGESTED
    assert d.bitrate_kbps == pytest.approx(0.85 * 6000, abs=2)


def test_heavy_loss_is_congestion_but_one_unlucky_period_is_not() -> None:
    f = Feed(kbps=10_000)
    f(1000, rate=10_000, n=5)
    assert f(1000, rate=9000, loss=0.3).state is DeltaState.STABLE  # one bad period
    d = f(1000, rate=7000, loss=0.3, n=4)  # persistent: a policer
    assert d.state is DeltaState.CONGESTED
    assert f.ctl.decreases == 1


def test_rtt_fallback_when_no_queue_delay_is_reported() -> None:
    f = Feed(kbps=10_000)
    f(None, rtt=20_000, n=20)
    assert f.ctl.queue_delay_us == 0
    d = f(None, rtt=200_000, n=20)  # RTT 180 ms above its minimum: a queue
    assert d.state is DeltaState.CONGESTED
    assert f.ctl.queue_delay_us > CFG.t_limit_us


def test_jitter_raises_the_effective_limit() -> None:
    f = Feed(kbps=10_000)
    d = f(14_000, rate=10_000, jitter=7000, n=40)  # a jittery idle path reads ~14 ms
    assert d.state is not DeltaState.CONGESTED
    g = Feed(kbps=10_000)
    assert g(14_000, rate=10_000, jitter=500, n=3).state is DeltaState.CONGESTED


# -- frame rate -----------------------------------------------------------------------------


def test_fps_steps_down_under_sustained_congestion_and_back_up_after_stability() -> None:
    f = Feed(kbps=10_000, fps=60, max_fps=60)
    f(1000, rate=10_000, n=5)
    d = f(30_000, rate=3000, n=19)  # 0.95 s congested
    assert d.fps == 60
    d = f(30_000, rate=3000, n=2)  # 1 s
    assert d.fps == 45
    d = f(30_000, rate=3000, n=21)
    assert d.fps == 30
    d = f(30_000, rate=3000, n=39)
    assert d.fps == 30  # bottom of the ladder
    d = f(500, rate=3000, n=60)  # 3 s calm: not yet
    assert d.state is DeltaState.STABLE and d.fps == 30
    d = f(500, rate=3000, n=45)  # > 5 s without congestion
    assert d.fps == 45
    d = f(500, rate=3000, n=60)
    assert d.fps == 45  # next step only 5 s after the previous change
    d = f(500, rate=3000, n=50)
    assert d.fps == 60
    d = f(500, rate=3000, n=200)
    assert d.fps == 60  # never above max_fps


def test_fps_up_stops_at_max_fps_between_rungs() -> None:
    f = Feed(fps=30, max_fps=50)
    d = f(500, rate=8000, n=120)
    assert d.fps == 45
    d = f(500, rate=8000, n=120)
    assert d.fps == 50


# -- FEC ------------------------------------------------------------------------------------


def test_fec_follows_loss_and_decays_slowly() -> None:
    f = Feed()
    assert f(rate=8000).fec_ratio == CFG.fec_min
    d = f(rate=8000, loss=0.05, n=40)
    assert d.fec_ratio == pytest.approx(0.10, abs=0.011)  # gain 2 x 5 %
    d = f(rate=8000, loss=0.0, n=20)  # 1 s later: at most 0.01 lower
    assert d.fec_ratio >= 0.08


def test_jitter_cap_never_undoes_a_loss_driven_raise() -> None:
    f = Feed(loss_congestion=0.5)  # random (non-congestion) loss of 20 %
    d = f(rate=8000, loss=0.2, n=60)
    assert d.state is DeltaState.STABLE
    raised = d.fec_ratio
    assert raised >= 0.35
    # Now heavy jitter (its part ramps towards 0.25) with no loss: the loss part only decays.
    d = f(rate=8000, loss=0.0, jitter=12_000, n=2)
    assert d.fec_ratio >= raised - 0.01
    assert d.fec_ratio > CFG.fec_jitter_high


def test_jitter_alone_ramps_fec_to_its_cap() -> None:
    f = Feed()
    d = f(rate=8000, jitter=12_000, n=20 * 20)  # 20 s
    assert d.fec_ratio == pytest.approx(CFG.fec_jitter_high, abs=0.011)
    d = f(rate=8000, jitter=6000, n=20 * 10)
    assert d.fec_ratio == pytest.approx(CFG.fec_jitter_mid, abs=0.011)


def test_fec_ignores_loss_while_congested() -> None:
    f = Feed(kbps=10_000)
    f(1000, rate=10_000, n=5)
    d = f(60_000, rate=5000, loss=0.3, n=10)
    assert d.state is DeltaState.CONGESTED
    assert d.fec_ratio == CFG.fec_min


# -- bounds and helpers ---------------------------------------------------------------------


def test_bitrate_never_below_min() -> None:
    f = Feed(kbps=1500, min_bitrate_kbps=1000)
    d = f(90_000, rate=100, loss=0.5, n=200)
    assert d.bitrate_kbps == 1000


def test_initial_values_are_clamped() -> None:
    ctl = DeltaController(CFG, initial_bitrate_kbps=10**9, initial_fps=240, max_fps=120)
    d = ctl.on_sample(DeltaSample(0, 0.0, 0, None, None, 0.0))
    assert d.bitrate_kbps == CFG.max_bitrate_kbps
    assert d.fps == 120
    with pytest.raises(ValueError):
        DeltaController(CFG, initial_bitrate_kbps=1000, initial_fps=0, max_fps=60)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"beta": 0.0},
        {"beta": 1.5},
        {"t_limit_us": 0},
        {"min_bitrate_kbps": 5000, "max_bitrate_kbps": 1000},
        {"fec_min": 0.6, "fec_max": 0.5},
        {"persistence_k": 0},
        {"fps_ladder": (60, 30)},
        {"fps_ladder": ()},
    ],
)
def test_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DeltaConfig(**kwargs)  # type: ignore[arg-type]


def test_changed_flag() -> None:
    f = Feed(kbps=CFG.max_bitrate_kbps)
    assert f(rate=10**6).changed
    assert not f(rate=10**6).changed  # pinned at max, nothing moves
    assert f(60_000, rate=10**6).changed


def test_sample_from_stats_report() -> None:
    report = rift_pb2.StatsReport(
        period_ms=50,
        received_packets=45,
        lost_packets=5,
        rtt_us=30_000,
        jitter_us=700,
        queue_delay_us=2500,
        received_bytes=50_000,
    )
    s = DeltaSample.from_stats_report(report, now=3.0)
    assert s == DeltaSample(30_000, 0.1, 700, 2500, 8000.0, 3.0, packets=50, pre_fec_loss=0.1)
    assert DeltaSample.from_stats_report(report, now=3.0, rtt_us=10).rtt_us == 10
    old_peer = rift_pb2.StatsReport(period_ms=1000, received_packets=10, rtt_us=5)
    s = DeltaSample.from_stats_report(old_peer, now=1.0)
    assert s.queue_delay_us is None and s.receive_rate_kbps is None and s.loss == 0.0
    assert DeltaSample.from_stats_report(rift_pb2.StatsReport(), now=0.0).loss == 0.0


numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
samples = st.builds(
    DeltaSample,
    rtt_us=numbers,
    loss=numbers,
    jitter_us=numbers,
    queue_delay_us=st.none() | numbers,
    receive_rate_kbps=st.none() | numbers,
    now=numbers,
)


@given(
    st.lists(samples, max_size=60),
    st.integers(1, 10**6),
    st.integers(1, 300),
    st.integers(1, 300),
)
def test_outputs_always_within_bounds(
    seq: list[DeltaSample], kbps: int, fps: int, max_fps: int
) -> None:
    ctl = DeltaController(CFG, initial_bitrate_kbps=kbps, initial_fps=fps, max_fps=max_fps)
    allowed_fps = {min(fps, max_fps), max_fps, *CFG.fps_ladder}
    for sample in seq:
        d = ctl.on_sample(sample)
        assert CFG.min_bitrate_kbps <= d.bitrate_kbps <= CFG.max_bitrate_kbps
        assert 1 <= d.fps <= max_fps and d.fps in allowed_fps
        assert CFG.fec_min <= d.fec_ratio <= CFG.fec_max
        assert not math.isnan(d.fec_ratio)
        assert isinstance(d.state, DeltaState)
        assert math.isfinite(ctl.queue_delay_us)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 200_000),
            st.floats(0.0, 1.0),
            st.integers(0, 50_000),
            st.none() | st.integers(0, 200_000),
            st.none() | st.floats(0.0, 200_000.0),
        ),
        min_size=1,
        max_size=80,
    )
)
def test_at_most_one_decrease_per_episode_with_a_receive_rate(
    seq: list[tuple[int, float, int, int | None, float | None]],
) -> None:
    ctl = DeltaController(CFG, initial_bitrate_kbps=8000, initial_fps=60, max_fps=60)
    episodes = 0
    previous = ctl.state
    now = 0.0
    for rtt, loss, jitter, queue, _rate in seq:
        now += STEP
        ctl.on_sample(DeltaSample(rtt, loss, jitter, queue, 5000.0, now))
        if ctl.state is DeltaState.CONGESTED and previous is not DeltaState.CONGESTED:
            episodes += 1
        previous = ctl.state
    assert ctl.decreases == episodes


def test_loss_smoothing_is_weighted_by_packet_count() -> None:
    """Tiny report periods (a few packets, one of them lost) must not look like a policer."""
    ctrl = DeltaController(initial_bitrate_kbps=5000, initial_fps=60, max_fps=60)
    now = 0.0
    for i in range(200):
        now += 0.05
        lost = 1 if i % 4 == 0 else 0  # 1 of 12 packets every 4th period: ~2% loss overall
        sample = DeltaSample(20_000, lost / 3, 500, 1000, 5000.0, now, packets=3)
        decision = ctrl.on_sample(sample)
        assert decision.state is not DeltaState.CONGESTED
    # The same loss fraction on many packets is a real signal.
    for _ in range(40):
        now += 0.05
        decision = ctrl.on_sample(DeltaSample(20_000, 0.3, 500, 1000, 5000.0, now, packets=300))
    assert decision.state is DeltaState.CONGESTED


def test_fec_is_sized_from_pre_fec_loss() -> None:
    ctrl = DeltaController(initial_bitrate_kbps=5000, initial_fps=60, max_fps=60)
    now = 0.0
    for _ in range(100):
        now += 0.05
        decision = ctrl.on_sample(
            DeltaSample(20_000, 0.0, 500, 1000, 5000.0, now, packets=50, pre_fec_loss=0.05)
        )
    assert decision.fec_ratio >= 0.09  # ~2 x 5% even though FEC left no loss
