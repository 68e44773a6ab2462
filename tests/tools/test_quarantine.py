"""The quarantine tool: QUARANTINE.md parsing, streak counting, and the results hook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from tools import quarantine
from tools.quarantine import EXIT_STREAK, QuarantineFileError, fold_results, parse_quarantine_md

ROOT = Path(__file__).resolve().parents[2]
HEADER = "| Test | Reason | Since | What would fix it |\n|---|---|---|---|\n"


def test_committed_quarantine_file_parses() -> None:
    parse_quarantine_md((ROOT / "QUARANTINE.md").read_text())


def test_rows_parse() -> None:
    text = (
        HEADER
        + "| `tests/a/test_x.py::test_y` | Xvfb start race | 2026-11-27 | wait for socket |\n"
    )
    [entry] = parse_quarantine_md(text)
    assert entry.test_id == "tests/a/test_x.py::test_y"
    assert entry.since == date(2026, 11, 27)


@pytest.mark.parametrize(
    ("row", "complaint"),
    [
        ("| tests/a.py::t | reason | 2026-11-27 |", "need 4 non-empty cells"),
        ("| tests/a.py::t |  | 2026-11-27 | fix |", "need 4 non-empty cells"),
        ("| test_name_only | reason | 2026-11-27 | fix |", "not a pytest node id"),
        ("| tests/a.py::t | reason | yesterday | fix |", "not YYYY-MM-DD"),
    ],
)
def test_malformed_rows_are_refused(row: str, complaint: str) -> None:
    with pytest.raises(QuarantineFileError, match=complaint):
        parse_quarantine_md(HEADER + row + "\n")


def test_duplicate_rows_are_refused() -> None:
    row = "| tests/a.py::t | r | 2026-11-27 | f |\n"
    with pytest.raises(QuarantineFileError, match="twice"):
        parse_quarantine_md(HEADER + row + row)


def test_streak_counts_and_resets() -> None:
    history: dict[str, object] = {}
    for _ in range(EXIT_STREAK):
        history = fold_results(history, [{"nodeid": "t::a", "when": "call", "outcome": "passed"}])
    assert history["tests"]["t::a"]["streak"] == EXIT_STREAK  # type: ignore[index]
    failed_teardown = [
        {"nodeid": "t::a", "when": "call", "outcome": "passed"},
        {"nodeid": "t::a", "when": "teardown", "outcome": "failed"},
    ]
    history = fold_results(history, failed_teardown)
    assert history["tests"]["t::a"]["streak"] == 0  # type: ignore[index]
    assert history["tests"]["t::a"]["runs"][-1] == "failed"  # type: ignore[index]


def test_status_names_ready_tests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    qfile = tmp_path / "Q.md"
    qfile.write_text(HEADER + "| t::a | r | 2026-11-27 | f |\n| t::b | r | 2026-11-27 | f |\n")
    history = tmp_path / "h.json"
    history.write_text(
        json.dumps({"tests": {"t::a": {"streak": EXIT_STREAK, "runs": []}, "t::b": {"streak": 3}}})
    )
    assert quarantine.main(["--file", str(qfile), "--history", str(history), "status"]) == 0
    out = capsys.readouterr().out
    assert f"t::a: {EXIT_STREAK}/{EXIT_STREAK} consecutive passes — READY" in out
    assert "t::b: 3/50 consecutive passes — stays" in out


def test_results_hook_records_a_real_quarantined_run(tmp_path: Path) -> None:
    """A real pytest run of a marked test writes result lines that `record` folds in."""
    test_dir = tmp_path / "suite"
    test_dir.mkdir()
    (test_dir / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (test_dir / "test_flaky.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.quarantine\ndef test_sometimes():\n    assert True\n\n"
        "@pytest.mark.quarantine\ndef test_broken():\n    assert False\n\n"
        "def test_normal():\n    assert True\n"
    )
    (test_dir / "pytest.ini").write_text("[pytest]\nmarkers =\n    quarantine: q\n")
    results = tmp_path / "results.jsonl"
    env = {
        **os.environ,
        "WAVRY_QUARANTINE_RESULTS": str(results),
        "CI": "",
        # the copied conftest loads the `tests.services` plugin from the repository
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "quarantine", "-p", "no:cacheprovider"],
        cwd=test_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout  # one quarantined test fails
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert {(row["nodeid"], row["outcome"]) for row in lines} == {
        ("test_flaky.py::test_sometimes", "passed"),
        ("test_flaky.py::test_broken", "failed"),
    }
    history = tmp_path / "h.json"
    assert quarantine.main(["--history", str(history), "record", str(results)]) == 0
    tests = json.loads(history.read_text())["tests"]
    assert tests["test_flaky.py::test_sometimes"]["streak"] == 1
    assert tests["test_flaky.py::test_broken"]["streak"] == 0


def test_check_agrees_with_the_repository() -> None:
    """Marked tests in this repository and QUARANTINE.md rows are the same set."""
    assert quarantine.main(["check"]) == 0
