"""End-to-end media over the simulated network: the real stack, seeded, in virtual time."""

from __future__ import annotations

import statistics

import pytest

from wavry.bench.stream_sim import StreamScenario, run_stream
from wavry.net.impairment import ImpairmentConfig

JITTERY_LOSSY = ImpairmentConfig(loss=0.05, delay=0.020, jitter=0.010, reorder=0.02)


def test_clean_link_delivers_every_frame_intact_in_order() -> None:
    r = run_stream(StreamScenario(duration=5.0, downlink=ImpairmentConfig(delay=0.01)))
    assert r.frames_sent >= 295
    assert r.complete_fraction() == 1.0
    assert r.in_order and r.corrupt_frames == 0 and not r.lost
    # One-way 10 ms + pacing (a frame is spread over ~2/3 of a frame time at 1.5x the rate).
    lat = sorted(r.latencies_ms())
    assert lat[int(len(lat) * 0.95)] < 25 and lat[-1] < 40


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_five_percent_loss_with_jitter_and_reordering(seed: int) -> None:
    r = run_stream(
        StreamScenario(duration=20.0, downlink=JITTERY_LOSSY, uplink=JITTERY_LOSSY, seed=seed)
    )
    assert r.frames_sent > 1000
    assert r.complete_fraction(after=0.5) >= 0.99
    assert r.in_order and r.corrupt_frames == 0
    assert r.client_stats["fec_recovered"] > 0  # FEC did real work...
    assert r.host_stats["retransmits_sent"] > 0  # ...and so did NACK


def test_burst_of_30_percent_loss_for_200ms_recovers_within_500ms() -> None:
    burst_start, burst_end = 5.0, 5.2
    burst = ImpairmentConfig(
        delay=0.020, jitter=0.002, loss_episodes=((burst_start, burst_end, 0.30),)
    )
    r = run_stream(StreamScenario(duration=10.0, downlink=burst, uplink=burst, seed=4))
    baseline = [
        (t - r.frame_send_times[f]) * 1000
        for f, t in r.received
        if 1.0 <= r.frame_send_times[f] < burst_start
    ]
    normal = statistics.quantiles(baseline, n=100)[98]  # p99 before the burst
    late = {fid for fid, t in r.received if (t - r.frame_send_times[fid]) * 1000 > normal + 10}
    troubled = [r.frame_send_times[f] for f in set(r.lost) | late if f in r.frame_send_times]
    troubled += [r.frame_send_times[f] for f in r.frame_send_times if f not in r.received_ids]
    last_trouble = max(t for t in troubled if t >= burst_start - 0.2)
    assert last_trouble - burst_end <= 0.5
    # After recovery every frame arrives.
    assert r.complete_fraction(after=burst_end + 0.5) == 1.0
    assert r.in_order


def test_random_garbage_never_breaks_a_live_session() -> None:
    link = ImpairmentConfig(delay=0.01, loss=0.01)
    r = run_stream(StreamScenario(duration=5.0, downlink=link, uplink=link, garbage_per_second=400))
    assert r.garbage_sent >= 1900
    assert not r.closed
    assert r.complete_fraction(after=0.5) >= 0.99 and r.corrupt_frames == 0
    drops = r.client_stats["drops"]
    assert isinstance(drops, dict) and sum(drops.values()) > 0


def test_client_nat_rebinding_mid_stream_keeps_frames_flowing() -> None:
    link = ImpairmentConfig(delay=0.01)
    r = run_stream(StreamScenario(duration=6.0, downlink=link, uplink=link, rebind_client_at=3.0))
    assert not r.closed
    after = [f for f, t in r.received if t > 3.5]
    assert len(after) > 100
    assert r.complete_fraction(after=3.5) == 1.0


def test_simulation_is_deterministic() -> None:
    scenario = StreamScenario(duration=3.0, downlink=JITTERY_LOSSY, uplink=JITTERY_LOSSY, seed=9)
    a, b = run_stream(scenario), run_stream(scenario)
    assert a.received == b.received and a.lost == b.lost
