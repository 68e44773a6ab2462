"""The release train in a throwaway clone: GO prepares commit + tag; each gate can say NO-GO."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tools.release.build import find_uv
from tools.release.cli import main as release_main
from tools.release.manifest import verify
from tools.release.policy import check_policy
from tools.release.train import run_train
from tools.release.versioning import read_lock_version, read_project_version

CHECKLIST = """\
# Release checklist

Release: {version}

- [x] CHANGELOG reviewed
- [{mark}] Rollback drill run
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def _ready(repo: Path, version: str, *, mark: str = "x", for_version: str | None = None) -> None:
    (repo / "docs/release-checklist.md").write_text(
        CHECKLIST.format(version=for_version or version, mark=mark)
    )
    _git(repo, "add", "docs/release-checklist.md")
    _git(repo, "commit", "-q", "-m", f"docs: release checklist for {version}")


def _state(repo: Path) -> tuple[str, str, str]:
    return (
        _git(repo, "rev-parse", "HEAD"),
        _git(repo, "tag", "--list"),
        _git(repo, "status", "--porcelain"),
    )


@pytest.fixture
def repo(clone: Callable[[], Path]) -> Path:
    return clone()


def test_go_prepares_the_release(repo: Path, tmp_path: Path) -> None:
    _ready(repo, "0.2.0")
    before = _git(repo, "rev-parse", "HEAD")
    out = tmp_path / "dist"
    result = run_train(repo, "0.2.0", channel="stable", tests_cmd="true", out=out,
                       date="2026-01-15", images="never")  # fmt: skip
    assert result.ok, [g.line() for g in result.gates]
    assert [g.name for g in result.gates] == [
        "version", "clean-tree", "changelog", "checklist", "tests", "dry-run"
    ]  # fmt: skip
    head = _git(repo, "rev-parse", "HEAD")
    assert head == result.commit and _git(repo, "rev-parse", "HEAD^") == before
    assert _git(repo, "rev-parse", "v0.2.0^{commit}") == head
    assert _git(repo, "cat-file", "-t", "v0.2.0") == "tag"  # annotated
    assert _git(repo, "log", "-1", "--format=%s") == "chore(release): 0.2.0"
    assert _git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    # version bumped everywhere
    assert read_project_version(repo) == "0.2.0" == read_lock_version(repo)
    changelog = (repo / "CHANGELOG.md").read_text()
    assert "## [Unreleased]\n\n## [0.2.0] - 2026-01-15\n" in changelog
    assert check_policy(repo, release=True, tag="v0.2.0") == []
    # the dry-run artifacts are the release of the tagged commit
    assert verify(out, expect_version="0.2.0") == []
    manifest = json.loads((out / "release-manifest.json").read_text())
    assert manifest["commit"] == head
    assert manifest["source_date_epoch"] == int(_git(repo, "log", "-1", "--format=%ct"))
    # the bumped lock file is what uv itself would write
    cmd = [find_uv(), "lock", "--check", "--offline"]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_canary_channel(repo: Path, tmp_path: Path) -> None:
    _ready(repo, "0.2.0-canary.1")
    result = run_train(repo, "0.2.0-canary.1", channel="canary", tests_cmd="true",
                       out=tmp_path / "d", date="2026-01-15", images="never")  # fmt: skip
    assert result.ok, [g.line() for g in result.gates]
    assert result.tag == "v0.2.0-canary.1"
    assert read_project_version(repo) == "0.2.0rc1"
    assert len(list((tmp_path / "d").glob("wavry-0.2.0rc1-*.whl"))) == 1
    assert (tmp_path / "d/wavry-relay-0.2.0-canary.1-linux-any.context.tar.gz").is_file()


def _refused(repo: Path, tmp_path: Path, version: str, gate: str, **kw: object) -> None:
    before = _state(repo)
    kwargs: dict = {"tests_cmd": "true", "out": tmp_path / "d", "date": "2026-01-15",  # type: ignore[type-arg]
                    "images": "never"}  # fmt: skip
    kwargs.update(kw)
    result = run_train(repo, version, **kwargs)
    assert not result.ok
    assert gate in result.failed, [g.line() for g in result.gates]
    assert _state(repo) == before  # nothing committed, tagged or modified


def test_failing_tests_refuse(repo: Path, tmp_path: Path) -> None:
    _ready(repo, "0.2.0")
    _refused(repo, tmp_path, "0.2.0", "tests", tests_cmd="false")


def test_unticked_checklist_refuses(repo: Path, tmp_path: Path) -> None:
    _ready(repo, "0.2.0", mark=" ")
    _refused(repo, tmp_path, "0.2.0", "checklist")


def test_checklist_of_another_release_refuses(repo: Path, tmp_path: Path) -> None:
    _ready(repo, "0.2.0", for_version="0.1.9")
    _refused(repo, tmp_path, "0.2.0", "checklist")


def test_missing_changelog_entry_refuses(repo: Path, tmp_path: Path) -> None:
    _ready(repo, "0.2.0")
    (repo / "CHANGELOG.md").write_text("# Changelog\n\n## [Unreleased]\n\n### Added\n\n")
    _git(repo, "commit", "-q", "-am", "docs: empty changelog")
    _refused(repo, tmp_path, "0.2.0", "changelog")


def test_dirty_tree_refuses(repo: Path, tmp_path: Path) -> None:
    _ready(repo, "0.2.0")
    with (repo / "README.md").open("a") as fh:
        fh.write("local edit\n")
    _refused(repo, tmp_path, "0.2.0", "clean-tree")


@pytest.mark.parametrize(
    ("version", "channel"),
    [("0.2", None), ("0.2.0-beta.1", None), ("0.0.9", None), ("0.2.0", "canary")],
)
def test_bad_version_refuses(repo: Path, tmp_path: Path, version: str, channel: str | None) -> None:
    _ready(repo, version)
    _refused(repo, tmp_path, version, "version", channel=channel)


def test_existing_tag_refuses(repo: Path, tmp_path: Path) -> None:
    _ready(repo, "0.2.0")
    _git(repo, "tag", "v0.2.0")
    _refused(repo, tmp_path, "0.2.0", "version")


def test_failing_dry_run_refuses(repo: Path, tmp_path: Path) -> None:
    path = repo / "docker/master.Dockerfile"
    path.write_text(path.read_text().replace("USER 10001:10001", "USER root"))
    _git(repo, "commit", "-q", "-am", "build: master image as root")
    _ready(repo, "0.2.0")
    _refused(repo, tmp_path, "0.2.0", "dry-run")


def test_recorded_tests_result(repo: Path, tmp_path: Path) -> None:
    _ready(repo, "0.2.0")
    record = tmp_path / "tests.json"
    rc = release_main(["--repo", str(repo), "record-tests", "--out", str(record), "--cmd", "true"])
    assert rc == 0 and json.loads(record.read_text())["passed"] is True
    _git(repo, "commit", "-q", "--allow-empty", "-m", "later commit")
    _refused(repo, tmp_path, "0.2.0", "tests", tests_cmd=None, tests_result=record)  # stale
    record.write_text(json.dumps({"commit": _git(repo, "rev-parse", "HEAD"), "passed": False}))
    _refused(repo, tmp_path, "0.2.0", "tests", tests_cmd=None, tests_result=record)
    record.write_text(json.dumps({"commit": _git(repo, "rev-parse", "HEAD"), "passed": True}))
    result = run_train(repo, "0.2.0", tests_result=record, out=tmp_path / "ok", date="2026-01-15",
                       images="never")  # fmt: skip
    assert result.ok, [g.line() for g in result.gates]


def test_cli_names_the_failing_gate(repo: Path, tmp_path: Path) -> None:
    _ready(repo, "0.2.0")
    proc = subprocess.run(
        [sys.executable, "-m", "tools.release", "train", "--version", "0.2.0", "--tests-cmd",
         "false", "--out", str(tmp_path / "d"), "--images", "never"],
        cwd=repo, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "NO-GO" in proc.stderr and "failed gate(s): tests" in proc.stderr
    assert "[FAIL] tests" in proc.stderr and "[PASS] checklist" in proc.stderr
