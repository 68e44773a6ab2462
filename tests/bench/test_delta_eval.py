"""DELTA's acceptance targets on the packet-level model (seeded, deterministic, virtual time)."""

from __future__ import annotations

import json

import pytest

from wavry.bench.delta_eval import (
    CAPACITY_BPS,
    ScenarioSpec,
    format_results,
    run_delta_scenarios,
    run_scenario,
)


@pytest.fixture(scope="module")
def report() -> dict[str, object]:
    return run_delta_scenarios(seed=1)


def result(report: dict[str, object], name: str, rtt_ms: int) -> dict[str, object]:
    results = report["results"]
    assert isinstance(results, list)
    (match,) = [r for r in results if r["scenario"] == name and r["rtt_ms"] == rtt_ms]
    assert isinstance(match, dict)
    return match


def test_report_is_json_and_complete(report: dict[str, object]) -> None:
    again = json.loads(json.dumps(report))
    assert again == report
    results = report["results"]
    assert isinstance(results, list) and len(results) == 6
    assert {(r["scenario"], r["rtt_ms"]) for r in results} == {
        (name, rtt) for name in ("steady", "halving") for rtt in (20, 50, 150)
    }
    table = format_results(report)
    assert table.count("\n") == 6 and "halving" in table


def test_deterministic() -> None:
    spec = ScenarioSpec("steady", 20, duration_s=8.0)
    assert run_scenario(spec, seed=5) == run_scenario(spec, seed=5)


def test_steady_20ms_utilisation_and_queuing_delay(report: dict[str, object]) -> None:
    steady = result(report, "steady", 20)
    assert steady["utilisation_pct"] >= 85.0  # type: ignore[operator]
    assert steady["queue_delay_p95_ms"] <= 10.0  # type: ignore[operator]
    assert steady["loss_pct"] == 0.0


def test_halving_20ms_adapts_within_a_second_without_loss(report: dict[str, object]) -> None:
    halving = result(report, "halving", 20)
    assert halving["time_to_adapt_s"] is not None
    assert halving["time_to_adapt_s"] <= 1.0  # type: ignore[operator]
    assert halving["loss_after_drop_pct"] <= 2.0  # type: ignore[operator]
    assert halving["utilisation_pct"] >= 85.0  # type: ignore[operator]
    assert halving["queue_delay_p95_ms"] <= 10.0  # type: ignore[operator]


@pytest.mark.parametrize("drop_at", [10.13, 10.29, 10.57, 10.77])
def test_halving_20ms_targets_hold_whatever_the_phase_of_the_drop(drop_at: float) -> None:
    spec = ScenarioSpec(
        "halving",
        20,
        schedule=((drop_at, CAPACITY_BPS / 2), (drop_at + 10.0, CAPACITY_BPS)),
        drop_at_s=drop_at,
    )
    r = run_scenario(spec, seed=1)
    assert r["time_to_adapt_s"] is not None and r["time_to_adapt_s"] <= 1.0  # type: ignore[operator]
    assert r["loss_after_drop_pct"] <= 2.0  # type: ignore[operator]


def test_longer_rtts_still_adapt_within_a_second(report: dict[str, object]) -> None:
    for rtt in (50, 150):
        halving = result(report, "halving", rtt)
        assert halving["time_to_adapt_s"] is not None
        assert halving["time_to_adapt_s"] <= 1.0  # type: ignore[operator]
        assert result(report, "steady", rtt)["utilisation_pct"] >= 85.0  # type: ignore[operator]
