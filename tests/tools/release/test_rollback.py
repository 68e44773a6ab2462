"""Rollback drill end to end: N-1 built by the tool -> N (migrations up) -> N-1 (down).

Real builds, real venvs (offline, from the uv cache), real ``wavry master``/``wavry gateway``
processes on loopback and a real SQLite database. About 45 s on the 2-core CI machine.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools.release.rollback import (
    DrillError,
    _kept,
    _pick_old_version,
    default_old_ref,
    run_drill,
)
from tools.release.versioning import ReleaseVersion

REPO = Path(__file__).resolve().parents[3]


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.slow
def test_rollback_drill_end_to_end(tmp_path: Path) -> None:
    report = run_drill(REPO, workdir=tmp_path / "drill")
    # N-1 is a real older commit with an older schema
    assert report.old_head != report.new_head
    assert _git("merge-base", "--is-ancestor", report.old_ref, report.new_ref) == ""
    assert (
        ReleaseVersion.parse(report.old_version).sort_key()
        < ReleaseVersion.parse(report.new_version).sort_key()
    )
    assert "master" in report.components
    assert len(report.checks) == 3
    assert "rows intact" in report.checks[2] and "same signing key" in report.checks[2]
    # the whole rollback (schema down + N-1 healthy) is far inside the 15-minute goal
    assert 0 < report.rollback_seconds < 120
    assert report.phases["total"] < 600
    logs = list((tmp_path / "drill/logs").iterdir())
    assert logs and not any("Traceback" in p.read_text(errors="replace") for p in logs)


def test_default_old_ref_is_before_the_newest_migration() -> None:
    old = default_old_ref(REPO)
    added = _git("log", "-1", "--diff-filter=A", "--format=%H", "HEAD", "--",
                 "src/wavry/storage/migrations/versions")  # fmt: skip
    assert _git("rev-parse", f"{added}^") == old


def test_old_version_numbering() -> None:
    v = ReleaseVersion.parse
    assert _pick_old_version(v("0.1.0"), v("0.2.0")) is None  # already older: keep it
    assert _pick_old_version(v("0.2.0"), v("0.2.0")) == v("0.2.0-unstable1")
    assert _pick_old_version(v("0.2.0"), v("0.2.0-canary.3")) == v("0.2.0-unstable1")
    assert _pick_old_version(v("0.2.0"), v("0.2.0-unstable4")) == v("0.2.0-unstable3")
    with pytest.raises(DrillError):
        _pick_old_version(v("0.2.0"), v("0.2.0-unstable1"))


def test_data_check_detects_loss() -> None:
    before = {
        "relays": (["id", "state"], {("a", "active"), ("b", "active")}),
        "empty": (["x"], set()),
    }
    same_plus = {
        "relays": (["id", "state", "n"], {("a", "active", 1), ("b", "active", 2), ("c", "x", 3)}),
        "empty": (["x"], set()),
    }  # fmt: skip
    assert _kept(before, same_plus) == []
    assert _kept(before, {"relays": (["id", "state"], {("a", "active")})}) == [
        "relays: 1 of 2 rows missing or changed"
    ]
    assert _kept(before, {"relays": (["id", "state"], {("a", "active"), ("b", "banned")})})
    assert _kept(before, {"relays": (["id"], {("a",), ("b",)})}) == [
        "relays: columns ['state'] are gone"
    ]
    assert _kept(before, {}) == ["table relays (2 rows) is gone"]  # empty tables may go


def test_refuses_a_pair_without_a_schema_change(tmp_path: Path) -> None:
    with pytest.raises(DrillError, match="same schema head"):
        run_drill(REPO, old_ref="HEAD", new_ref="HEAD", workdir=tmp_path / "w")
