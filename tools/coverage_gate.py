"""Per-package coverage gate: ``python -m tools.coverage_gate coverage.json``.

Reads the JSON report of coverage.py (``pytest --cov=wavry --cov-report=json:PATH``), sums
statements and covered lines per package (``src/wavry/<package>/``) and for the whole project,
and fails naming every package under its floor. Floors live in ``pyproject.toml`` under
``[tool.wavry.coverage-gate]`` so a change to a floor is a reviewed change to a committed file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["GateResult", "PackageCoverage", "evaluate", "load_floors", "main", "summarise"]

ROOT = Path(__file__).resolve().parent.parent
SOURCE_PREFIX = "src/wavry/"


@dataclass(frozen=True)
class PackageCoverage:
    name: str
    statements: int
    covered: int

    @property
    def percent(self) -> float:
        return 100.0 if self.statements == 0 else 100.0 * self.covered / self.statements


@dataclass(frozen=True)
class GateResult:
    packages: dict[str, PackageCoverage]
    total: PackageCoverage
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


class CoverageReportError(ValueError):
    """The coverage report is missing, unreadable or not coverage.py's JSON format."""


def _package_of(path: str) -> str:
    rel = path.replace("\\", "/")
    idx = rel.find(SOURCE_PREFIX)
    if idx < 0:
        return "(outside src/wavry)"
    rest = rel[idx + len(SOURCE_PREFIX) :]
    return rest.split("/", 1)[0] if "/" in rest else "(top-level modules)"


def summarise(report: dict[str, Any]) -> tuple[dict[str, PackageCoverage], PackageCoverage]:
    """Statements and covered statements per package and in total."""
    files = report.get("files")
    if not isinstance(files, dict):
        raise CoverageReportError("no 'files' object: is this coverage.py's JSON report?")
    sums: dict[str, list[int]] = {}
    for path, data in files.items():
        summary = data.get("summary") if isinstance(data, dict) else None
        if not isinstance(summary, dict):
            raise CoverageReportError(f"file entry {path!r} has no summary")
        statements = int(summary.get("num_statements", 0))
        covered = int(summary.get("covered_lines", 0))
        acc = sums.setdefault(_package_of(str(path)), [0, 0])
        acc[0] += statements
        acc[1] += covered
    packages = {name: PackageCoverage(name, s, c) for name, (s, c) in sorted(sums.items())}
    total = PackageCoverage(
        "TOTAL",
        sum(p.statements for p in packages.values()),
        sum(p.covered for p in packages.values()),
    )
    return packages, total


def load_floors(pyproject: Path = ROOT / "pyproject.toml") -> tuple[dict[str, float], float]:
    """(per-package floors, whole-project floor) from ``[tool.wavry.coverage-gate]``."""
    config = tomllib.loads(pyproject.read_text())
    gate = config.get("tool", {}).get("wavry", {}).get("coverage-gate", {})
    floors = {str(k): float(v) for k, v in gate.get("packages", {}).items()}
    return floors, float(gate.get("total", 0.0))


def evaluate(report: dict[str, Any], floors: dict[str, float], total_floor: float) -> GateResult:
    packages, total = summarise(report)
    failures: list[str] = []
    for name, floor in sorted(floors.items()):
        pkg = packages.get(name)
        if pkg is None or pkg.statements == 0:
            # A floor for a package nobody measured is a broken gate, not a pass.
            failures.append(f"{name}: no measured statements (floor {floor:.0f}%)")
        elif pkg.percent < floor:
            failures.append(
                f"{name}: {pkg.percent:.1f}% < {floor:.0f}% "
                f"({pkg.statements - pkg.covered} of {pkg.statements} statements not run)"
            )
    if total.percent < total_floor:
        failures.append(f"whole project: {total.percent:.1f}% < {total_floor:.0f}%")
    return GateResult(packages, total, failures)


def _table(result: GateResult, floors: dict[str, float], total_floor: float) -> str:
    lines = [f"{'package':<22}{'stmts':>8}{'miss':>8}{'cover':>8}{'floor':>8}"]
    for pkg in [*result.packages.values(), result.total]:
        floor = total_floor if pkg is result.total else floors.get(pkg.name)
        floor_txt = f"{floor:.0f}%" if floor is not None else "-"
        lines.append(
            f"{pkg.name:<22}{pkg.statements:>8}{pkg.statements - pkg.covered:>8}"
            f"{pkg.percent:>7.1f}%{floor_txt:>8}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.coverage_gate",
        description="Fail when a package's line coverage is under its floor in pyproject.toml.",
    )
    parser.add_argument(
        "report", type=Path, help="coverage.py JSON report (--cov-report=json:PATH)"
    )
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    args = parser.parse_args(argv)
    try:
        report = json.loads(args.report.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"coverage gate: cannot read {args.report}: {exc}", file=sys.stderr)
        return 2
    floors, total_floor = load_floors(args.pyproject)
    try:
        result = evaluate(report, floors, total_floor)
    except CoverageReportError as exc:
        print(f"coverage gate: {exc}", file=sys.stderr)
        return 2
    print(_table(result, floors, total_floor))
    if result.passed:
        print("coverage gate: pass")
        return 0
    for failure in result.failures:
        print(f"coverage gate: FAIL {failure}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
