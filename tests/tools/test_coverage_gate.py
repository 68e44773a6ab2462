"""The coverage gate fails when it must, and names what fell short."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import coverage_gate
from tools.coverage_gate import CoverageReportError, evaluate, load_floors, summarise


def _report(files: dict[str, tuple[int, int]]) -> dict[str, object]:
    return {
        "files": {
            path: {"summary": {"num_statements": s, "covered_lines": c}}
            for path, (s, c) in files.items()
        }
    }


REPORT = _report(
    {
        "src/wavry/rift/header.py": (100, 95),
        "src/wavry/rift/noise.py": (100, 85),
        "src/wavry/relay/core.py": (200, 150),
        "src/wavry/cli.py": (50, 10),
    }
)


def test_summarise_groups_by_package() -> None:
    packages, total = summarise(REPORT)
    assert packages["rift"].statements == 200 and packages["rift"].covered == 180
    assert packages["relay"].percent == pytest.approx(75.0)
    assert packages["(top-level modules)"].covered == 10
    assert total.statements == 450 and total.covered == 340


def test_gate_passes_when_every_floor_is_met() -> None:
    result = evaluate(REPORT, {"rift": 85.0}, 70.0)
    assert result.passed, result.failures


def test_gate_names_each_package_under_its_floor() -> None:
    result = evaluate(REPORT, {"rift": 85.0, "relay": 85.0}, 80.0)
    assert not result.passed
    assert any(f.startswith("relay: 75.0% < 85%") for f in result.failures)
    assert any(f.startswith("whole project: 75.6% < 80%") for f in result.failures)
    assert not any(f.startswith("rift") for f in result.failures)


def test_floor_for_unmeasured_package_fails() -> None:
    result = evaluate(REPORT, {"gateway": 85.0}, 0.0)
    assert result.failures == ["gateway: no measured statements (floor 85%)"]


def test_malformed_report_is_a_typed_error() -> None:
    with pytest.raises(CoverageReportError):
        summarise({"totals": {}})
    with pytest.raises(CoverageReportError):
        summarise({"files": {"src/wavry/x.py": "nope"}})


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        "[tool.wavry.coverage-gate]\ntotal = 70\n[tool.wavry.coverage-gate.packages]\nrift = 85\n"
    )
    report = tmp_path / "coverage.json"
    report.write_text(json.dumps(REPORT))
    assert coverage_gate.main([str(report), "--pyproject", str(pyproject)]) == 0
    pyproject.write_text(
        "[tool.wavry.coverage-gate]\ntotal = 70\n[tool.wavry.coverage-gate.packages]\nrelay = 90\n"
    )
    assert coverage_gate.main([str(report), "--pyproject", str(pyproject)]) == 1
    assert "relay: 75.0% < 90%" in capsys.readouterr().err
    assert coverage_gate.main([str(tmp_path / "missing.json"), "--pyproject", str(pyproject)]) == 2


def test_committed_floors_match_the_issue() -> None:
    floors, total = load_floors()
    for package in ("rift", "net", "relay", "master", "gateway"):
        assert floors[package] >= 85.0
    assert total >= 75.0
