"""Flaky-test quarantine: which tests are quarantined, how they did, when they may leave.

A quarantined test carries ``@pytest.mark.quarantine`` and a row in ``QUARANTINE.md`` (test id,
reason, date, what would fix it). The gating run deselects it (``-m "not quarantine"``); a second,
non-gating step runs only quarantined tests with ``WAVRY_QUARANTINE_RESULTS=FILE`` set, and
``tests/conftest.py`` appends one JSON line per test outcome to FILE. This tool then:

- ``check``   — the marked tests and the rows of QUARANTINE.md are the same set (exit 1 if not);
- ``record``  — folds a results file into the history (default ``.quarantine/history.json``;
  CI keeps it between runs as a cache/artifact) and counts consecutive passes;
- ``status``  — prints each test's streak and names those that reached the exit streak (50).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

__all__ = [
    "EXIT_STREAK",
    "QuarantineEntry",
    "QuarantineFileError",
    "fold_results",
    "main",
    "parse_quarantine_md",
]

ROOT = Path(__file__).resolve().parent.parent
EXIT_STREAK = 50
HISTORY_KEEP = 200
DEFAULT_HISTORY = ROOT / ".quarantine" / "history.json"
_ROW = re.compile(r"^\|(?P<cells>.*)\|\s*$")


class QuarantineFileError(ValueError):
    """QUARANTINE.md has a malformed row (the message names the line)."""


@dataclass(frozen=True)
class QuarantineEntry:
    test_id: str
    reason: str
    since: date
    fix: str


def parse_quarantine_md(text: str) -> list[QuarantineEntry]:
    """Rows of the first Markdown table whose header starts with ``Test``."""
    entries: list[QuarantineEntry] = []
    in_table = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        match = _ROW.match(line.strip())
        if match is None:
            in_table = False
            continue
        cells = [c.strip() for c in match.group("cells").split("|")]
        if not in_table:
            in_table = bool(cells) and cells[0].lower() == "test"
            continue
        if all(set(c) <= set("-: ") for c in cells):
            continue  # the |---|---| separator
        if len(cells) != 4 or not all(cells):
            raise QuarantineFileError(
                f"QUARANTINE.md line {lineno}: need 4 non-empty cells "
                "(test | reason | since YYYY-MM-DD | what would fix it)"
            )
        test_id = cells[0].strip("`")
        if "::" not in test_id:
            raise QuarantineFileError(
                f"QUARANTINE.md line {lineno}: {test_id!r} is not a pytest node id (path::name)"
            )
        try:
            since = date.fromisoformat(cells[2])
        except ValueError as exc:
            raise QuarantineFileError(
                f"QUARANTINE.md line {lineno}: since {cells[2]!r} is not YYYY-MM-DD"
            ) from exc
        entries.append(QuarantineEntry(test_id, cells[1], since, cells[3]))
    ids = [e.test_id for e in entries]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise QuarantineFileError(f"QUARANTINE.md lists a test twice: {', '.join(dupes)}")
    return entries


def fold_results(history: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """History updated with one run's outcomes; a failure resets the streak to zero."""
    tests: dict[str, Any] = dict(history.get("tests", {}))
    per_test: dict[str, str] = {}
    for row in results:
        node, outcome = str(row["nodeid"]), str(row["outcome"])
        # A test's run is one outcome: any failed phase (setup/call/teardown) fails it.
        if per_test.get(node) != "failed":
            per_test[node] = outcome
    for node, outcome in sorted(per_test.items()):
        entry = dict(tests.get(node, {"streak": 0, "runs": []}))
        runs = [*entry.get("runs", []), outcome][-HISTORY_KEEP:]
        streak = int(entry.get("streak", 0))
        if outcome == "passed":
            streak += 1
        elif outcome == "failed":
            streak = 0
        tests[node] = {"streak": streak, "runs": runs}
    return {"version": 1, "tests": tests}


def _read_results(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if not isinstance(row, dict) or "nodeid" not in row or "outcome" not in row:
                raise ValueError(f"{path}: not a quarantine result line: {line[:80]!r}")
            rows.append(row)
    return rows


def _collect_marked() -> set[str]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-m",
            "quarantine",
            "-p",
            "no:randomly",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    # exit 5 = nothing collected, which is a valid (empty) quarantine
    if proc.returncode not in (0, 5):
        raise RuntimeError(f"pytest --collect-only failed:\n{proc.stdout}\n{proc.stderr}")
    return {line.strip() for line in proc.stdout.splitlines() if "::" in line}


def _cmd_check(args: argparse.Namespace) -> int:
    entries = parse_quarantine_md(Path(args.file).read_text())
    listed = {e.test_id for e in entries}
    marked = _collect_marked()
    ok = True
    for node in sorted(marked - listed):
        print(f"quarantine: {node} is marked but has no row in QUARANTINE.md", file=sys.stderr)
        ok = False
    for node in sorted(listed - marked):
        print(f"quarantine: {node} is in QUARANTINE.md but not marked (or gone)", file=sys.stderr)
        ok = False
    print(f"quarantine: {len(listed)} test(s) quarantined" + ("" if ok else " — MISMATCH"))
    return 0 if ok else 1


def _cmd_record(args: argparse.Namespace) -> int:
    history_path = Path(args.history)
    history = json.loads(history_path.read_text()) if history_path.exists() else {}
    results = _read_results(Path(args.results))
    history = fold_results(history, results)
    history_path.parent.mkdir(parents=True, exist_ok=True)
    history_path.write_text(json.dumps(history, indent=2, sort_keys=True) + "\n")
    print(f"quarantine: recorded {len(results)} result line(s) into {history_path}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    history_path = Path(args.history)
    history = json.loads(history_path.read_text()) if history_path.exists() else {}
    entries = parse_quarantine_md(Path(args.file).read_text())
    tests = history.get("tests", {})
    if not entries:
        print("quarantine: empty")
        return 0
    for entry in entries:
        streak = int(tests.get(entry.test_id, {}).get("streak", 0))
        verdict = "READY to leave quarantine" if streak >= EXIT_STREAK else "stays"
        print(f"{entry.test_id}: {streak}/{EXIT_STREAK} consecutive passes — {verdict}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.quarantine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--file", default=str(ROOT / "QUARANTINE.md"))
    parser.add_argument("--history", default=str(DEFAULT_HISTORY))
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="marked tests == QUARANTINE.md rows")
    rec = sub.add_parser("record", help="fold a results file into the history")
    rec.add_argument("results", help="JSON lines written by the WAVRY_QUARANTINE_RESULTS hook")
    sub.add_parser("status", help="streak of each quarantined test")
    args = parser.parse_args(argv)
    try:
        return {"check": _cmd_check, "record": _cmd_record, "status": _cmd_status}[args.cmd](args)
    except (QuarantineFileError, ValueError, OSError, RuntimeError) as exc:
        print(f"quarantine: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
