"""Benchmark tracking: direction-aware ratios, normalisation by the same-run reference,
regressions flagged, improvements not, missing metrics reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tools import benchtrack
from tools.benchtrack import SCHEMA, SUITES, Metric, Suite, compare, main, normalise, run

ROOT = Path(__file__).resolve().parents[2]

TOY = Suite(
    "toy",
    ("true",),
    {
        "pps": Metric("higher", "rate"),
        "us_per_frame": Metric("lower", "time"),
        "sim_loss_pct": Metric("lower"),
        "complete_pct": Metric("higher"),
        "noisy_us": Metric("lower", "time", tolerance=0.5),
    },
)
CATALOG = {"toy": TOY}
RAW = {"pps": 1000.0, "us_per_frame": 50.0, "sim_loss_pct": 1.0, "complete_pct": 99.0}


def doc(raw: dict[str, Any], ref: float = 10.0) -> dict[str, Any]:
    return {"schema": SCHEMA, "suites": {"toy": {"metrics": normalise(raw, TOY.metrics, ref)}}}


def statuses(base: dict[str, Any], cur: dict[str, Any], **kw: float) -> dict[str, str]:
    comp = compare(base, cur, catalog=CATALOG, **kw)
    return {r.metric: r.status for r in comp.rows}


def test_identical_runs_pass() -> None:
    comp = compare(doc(RAW), doc(RAW), catalog=CATALOG)
    assert comp.passed
    assert {r.status for r in comp.rows} == {"ok"}
    assert all(r.ratio == pytest.approx(1.0) for r in comp.rows)


def test_regression_is_flagged_in_both_directions() -> None:
    worse = dict(RAW, pps=700.0, us_per_frame=70.0)  # rate down 30%, time up 40%
    comp = compare(doc(RAW), doc(worse), catalog=CATALOG)
    assert not comp.passed
    got = {r.metric: r for r in comp.rows}
    assert got["pps"].status == "regression" and got["pps"].ratio == pytest.approx(0.7)
    assert got["us_per_frame"].status == "regression"
    assert got["us_per_frame"].ratio == pytest.approx(50 / 70)
    assert {f"toy.{m}" for m in ("pps", "us_per_frame")} == set(comp.as_dict()["regressions"])


def test_improvement_is_not_a_regression() -> None:
    better = dict(RAW, pps=2000.0, us_per_frame=20.0, sim_loss_pct=0.5, complete_pct=100.0)
    comp = compare(doc(RAW), doc(better), catalog=CATALOG)
    assert comp.passed
    got = statuses(doc(RAW), doc(better))
    assert got["pps"] == got["us_per_frame"] == got["sim_loss_pct"] == "improved"
    assert got["complete_pct"] == "ok"  # +1% is inside the tolerance


def test_direction_decides_what_worse_means() -> None:
    # the same numeric change is a regression for one direction and an improvement for the other
    up = dict(RAW, sim_loss_pct=2.0, complete_pct=198.0)
    got = statuses(doc(RAW), doc(up))
    assert got["sim_loss_pct"] == "regression"  # lower is better and it doubled
    assert got["complete_pct"] == "improved"  # higher is better and it doubled


def test_within_tolerance_is_ok_and_tolerance_is_configurable() -> None:
    slightly = dict(RAW, pps=900.0)  # -10%
    assert statuses(doc(RAW), doc(slightly))["pps"] == "ok"
    assert statuses(doc(RAW), doc(slightly), tolerance=0.05)["pps"] == "regression"


def test_per_metric_tolerance_overrides_the_default() -> None:
    base = doc(dict(RAW, noisy_us=10.0))
    cur = doc(dict(RAW, noisy_us=14.0))  # 40% slower, but this metric allows 50%
    assert statuses(base, cur)["noisy_us"] == "ok"


def test_missing_metric_is_reported_and_fails_new_metric_only_reported() -> None:
    base = doc(RAW)
    cur_raw = {k: v for k, v in RAW.items() if k != "complete_pct"}
    cur_raw["noisy_us"] = 3.0
    comp = compare(base, doc(cur_raw), catalog=CATALOG)
    got = {r.metric: r.status for r in comp.rows}
    assert got["complete_pct"] == "missing"
    assert got["noisy_us"] == "new"
    assert not comp.passed and comp.as_dict()["regressions"] == ["toy.complete_pct"]


def test_normalisation_cancels_a_slower_machine() -> None:
    # everything machine-dependent twice as slow, and so is the reference measured in the run
    slow = dict(RAW, pps=500.0, us_per_frame=100.0)
    comp = compare(doc(RAW, ref=10.0), doc(slow, ref=5.0), catalog=CATALOG)
    assert comp.passed
    assert all(r.ratio == pytest.approx(1.0) for r in comp.rows)
    # without the reference shift it would have been two regressions
    assert not compare(doc(RAW, ref=10.0), doc(slow, ref=10.0), catalog=CATALOG).passed


def test_non_numeric_and_untracked_values_are_ignored() -> None:
    out = normalise({"pps": "fast", "complete_pct": True, "other": 3.0}, TOY.metrics, 1.0)
    assert out == {}


def test_metric_declaration_is_checked() -> None:
    with pytest.raises(ValueError):
        Metric("up")
    with pytest.raises(ValueError):
        Metric("higher", "speed")


def test_run_normalises_by_the_reference_measured_around_each_repetition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(SUITES, "toy", TOY)
    refs = iter([8.0, 12.5])  # before and after: geometric mean 10
    out = run(["toy"], repeats=1, runner=lambda _s: (dict(RAW), 1.0), reference=lambda: next(refs))
    assert out["reference"]["measurements"] == [8.0, 12.5]
    metrics = out["suites"]["toy"]["metrics"]
    assert metrics["pps"]["normalised"] == pytest.approx(100.0)
    assert metrics["us_per_frame"]["normalised"] == pytest.approx(500.0)
    assert metrics["complete_pct"]["normalised"] == 99.0


def test_cpu_share_turns_waiting_for_a_core_into_no_slowdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the suite got half a CPU: its wall-clock rate halved and its times doubled
    monkeypatch.setitem(SUITES, "toy", TOY)
    contended = dict(RAW, pps=500.0, us_per_frame=100.0)
    a = run(["toy"], repeats=1, runner=lambda _s: (dict(RAW), 1.0), reference=lambda: 10.0)
    b = run(["toy"], repeats=1, runner=lambda _s: (contended, 0.5), reference=lambda: 10.0)
    assert compare(a, b, catalog=CATALOG).passed
    assert all(r.ratio == pytest.approx(1.0) for r in compare(a, b, catalog=CATALOG).rows)


def test_best_repetition_is_kept_for_timings_median_for_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(SUITES, "toy", TOY)
    outputs = iter(
        [
            dict(RAW, pps=900.0, us_per_frame=60.0, complete_pct=97.0),
            dict(RAW, pps=1000.0, us_per_frame=50.0, complete_pct=99.0),
            dict(RAW, pps=400.0, us_per_frame=90.0, complete_pct=98.0),  # an interfered run
        ]
    )
    out = run(["toy"], repeats=3, runner=lambda _s: (next(outputs), 1.0), reference=lambda: 1.0)
    m = out["suites"]["toy"]["metrics"]
    assert m["pps"]["value"] == 1000.0 and m["us_per_frame"]["value"] == 50.0
    assert m["complete_pct"]["value"] == 98.0  # median: a fixed metric
    assert m["pps"]["worst_vs_best"] == pytest.approx(0.4)


def test_a_baseline_keeps_each_metrics_median_round() -> None:
    rounds = [doc(dict(RAW, pps=p)) for p in (900.0, 1300.0, 1000.0)]
    for d in rounds:
        d["reference"] = {"units_per_s": 10.0}
    merged = benchtrack.merge_rounds(rounds)
    assert merged["suites"]["toy"]["metrics"]["pps"]["value"] == 1000.0
    assert merged["rounds"] == 3


def test_cli_compare_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SUITES, "toy", TOY)
    base, good, bad = tmp_path / "b.json", tmp_path / "g.json", tmp_path / "x.json"
    base.write_text(json.dumps(doc(RAW)))
    good.write_text(json.dumps(doc(dict(RAW, pps=1100.0))))
    bad.write_text(json.dumps(doc(dict(RAW, pps=500.0))))
    assert main(["compare", "--baseline", str(base), "--current", str(good)]) == 0
    assert main(["compare", "--baseline", str(base), "--current", str(bad)]) == 1
    assert main(["compare", "--baseline", str(base), "--current", str(tmp_path / "no")]) == 2


def test_reference_workload_is_a_positive_rate() -> None:
    assert benchtrack.reference_rate(repeats=1) > 0


def test_committed_baseline_is_well_formed() -> None:
    baseline = json.loads((ROOT / "benchmarks" / "baseline.json").read_text())
    assert baseline["schema"] == SCHEMA
    assert baseline["command"].startswith("python -m tools.benchtrack run --write-baseline")
    assert baseline["reference"]["units_per_s"] > 0
    for name, suite in baseline["suites"].items():
        tracked = SUITES[name].metrics
        assert set(suite["metrics"]) == {m for m in tracked if m in suite["metrics"]}
        assert len(suite["metrics"]) >= len(tracked) - 2, "the baseline lost tracked metrics"
        for metric, entry in suite["metrics"].items():
            assert entry["direction"] == tracked[metric].direction, metric
    # it compares cleanly with itself
    assert compare(baseline, baseline).passed


def test_the_real_rift_suite_writes_json_with_every_tracked_metric() -> None:
    # `wavry bench rift --quick --json PATH` end to end: the file is written and the catalog's
    # metric names still exist in the bench's output (a rename would otherwise read "missing")
    raw, share = benchtrack.run_suite(SUITES["rift"])
    assert set(SUITES["rift"].metrics) <= set(raw)
    assert 0 < share <= 1
