"""Memory soak: the leak-slope fit and verdict on synthetic series, RSS sampling, and a short
real run of the relay workload (a real ``wavry relay`` forwarding datagrams)."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys

import pytest

from tools.soak import RssSampler, Threshold, children_of, evaluate, fit, read_rss_mb
from tools.soak.__main__ import run_soak
from tools.soak.profiles import PROFILES, Profile


def series(
    seconds: int, *, base: float = 100.0, mb_per_h: float = 0.0, noise: float = 0.0, seed: int = 1
) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [
        (float(t), base + mb_per_h * t / 3600.0 + rng.gauss(0.0, noise)) for t in range(seconds)
    ]


def test_fit_recovers_an_exact_slope() -> None:
    f = fit(series(600, mb_per_h=12.0))
    assert f.slope_mb_per_h == pytest.approx(12.0)
    assert f.stderr_mb_per_h == pytest.approx(0.0, abs=1e-6)
    assert f.intercept_mb == pytest.approx(100.0)
    assert f.samples == 600 and f.span_s == 599


def test_a_leaking_series_fails() -> None:
    v = evaluate("p", series(600, mb_per_h=20.0, noise=0.05), warmup_s=60, threshold=Threshold())
    assert v.status == "fail" and not v.passed
    assert v.fit is not None and v.fit.slope_mb_per_h == pytest.approx(20.0, rel=0.1)
    assert "MB/h" in v.detail


def test_a_flat_noisy_series_passes() -> None:
    for seed in range(5):
        samples = series(600, noise=0.4, seed=seed)  # RSS jitter of +-0.4 MB, no trend
        v = evaluate("p", samples, warmup_s=60, threshold=Threshold())
        assert v.passed, v.as_dict()


def test_noise_alone_cannot_fail_but_a_clear_slope_over_the_limit_does() -> None:
    # the verdict needs slope - 2*stderr above the limit: a short, noisy window only passes
    short = series(120, mb_per_h=8.0, noise=0.5)
    assert evaluate("p", short, warmup_s=0, threshold=Threshold(5.0)).passed
    long = series(7200, mb_per_h=8.0, noise=0.5)
    assert not evaluate("p", long, warmup_s=600, threshold=Threshold(5.0)).passed


def test_warm_up_discards_the_start_up_ramp() -> None:
    ramp = [(float(t), 50.0 + min(t, 30) * 2.0) for t in range(300)]  # +60 MB in 30 s, then flat
    assert evaluate("p", ramp, warmup_s=60, threshold=Threshold()).passed
    assert not evaluate("p", ramp, warmup_s=0, threshold=Threshold()).passed


def test_too_few_samples_is_not_a_pass() -> None:
    v = evaluate("p", series(30), warmup_s=25, threshold=Threshold())
    assert v.status == "insufficient" and not v.passed
    assert evaluate("p", [], warmup_s=0, threshold=Threshold()).status == "insufficient"
    with pytest.raises(ValueError):
        fit([(1.0, 2.0)])


def test_per_process_threshold_is_reported_with_its_reason() -> None:
    limit = Threshold(50.0, "cache fills at start")
    d = evaluate("p", series(600, mb_per_h=20.0), warmup_s=0, threshold=limit).as_dict()
    assert d["status"] == "pass"
    assert (d["threshold_mb_per_h"], d["threshold_reason"]) == (50.0, "cache fills at start")
    assert d["slope_mb_per_h"] == pytest.approx(20.0)


def test_profiles_are_documented_sizes() -> None:
    assert 120 <= PROFILES["ci"].duration <= 200
    assert PROFILES["2h"].duration == 7200 and PROFILES["8h"].duration == 28800
    for p in PROFILES.values():
        assert 0 < p.warmup < p.duration
        assert all(t.reason for t in p.thresholds.values())


def test_rss_of_live_and_dead_processes() -> None:
    own = read_rss_mb(os.getpid())
    assert own is not None and own > 5
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert proc.pid in children_of(os.getpid())
        sampler = RssSampler()
        sampler.add("child", proc.pid)
        sampler.add("later", lambda: None)  # not known yet: no samples, no error
        sampler.sample_once()
        sampler.sample_once()
        assert len(sampler.samples["child"]) == 2 and sampler.samples["later"] == []
    finally:
        proc.kill()
        proc.wait()
    assert read_rss_mb(proc.pid) is None


def test_short_real_relay_soak_produces_samples() -> None:
    profile = Profile(
        "test",
        duration=13.0,
        warmup=1.0,
        relay_pps=300,
        # a seconds-long window measures start-up, not leaks: this test checks the machinery
        thresholds={"relay": Threshold(1e6, "test: machinery only")},
    )
    report = run_soak(profile, only=["relay"], log=io.StringIO())
    assert report["problems"] == [], report["problems"]
    (relay,) = report["processes"]
    assert relay["process"] == "relay" and relay["status"] == "pass"
    assert relay["samples"] >= 10 and relay["samples_fitted"] >= 10
    assert 10 < relay["end_mb"] < 1000
    work = relay["workload"]
    assert work["sent"] > 500 and work["forwarded_back"] >= work["sent"] // 2
    assert work["relay_metrics"]["packets_forwarded"] >= work["forwarded_back"]
    assert len(report["samples"]["relay"]) == relay["samples"]
