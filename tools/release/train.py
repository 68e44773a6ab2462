"""The release train: explicit go/no-go gates, then the release prepared locally.

Gates, in order (all are reported; the expensive two run only when the cheap ones pass):

``version``     the version is in policy, matches ``--channel``, is newer than the current one,
                and its tag does not exist yet
``clean-tree``  no modified or staged tracked files, HEAD on a branch
``changelog``   ``CHANGELOG.md`` has entries for the version (a section, or Unreleased)
``checklist``   ``docs/release-checklist.md`` is filled in for this release, every box ticked
``tests``       the test command exits 0 (default: the README's ``./scripts/test.sh``), or a
                recorded result (``record-tests``) says the tests passed on this very commit
``dry-run``     the release commit builds (``build``) and the result verifies (``verify``)

The release commit (version bump in ``pyproject.toml`` and ``uv.lock``, the changelog section)
is first created as a dangling commit object, so the dry-run builds exactly what will be tagged
(same tree, same commit time as ``SOURCE_DATE_EPOCH``). Only when every gate passes is the branch
fast-forwarded to it and the annotated tag ``vX.Y.Z[...]`` created. Nothing is pushed.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tools.release.build import BuildError, build_release
from tools.release.changelog import ChangelogError, cut_release
from tools.release.checklist import CHECKLIST, checklist_problems
from tools.release.manifest import verify
from tools.release.versioning import (
    ReleaseVersion,
    VersionError,
    read_project_version,
    set_lock_version,
    set_project_version,
)

__all__ = ["DEFAULT_TESTS_CMD", "Gate", "TrainResult", "read_tests_result", "run_train"]

DEFAULT_TESTS_CMD = "./scripts/test.sh"
Log = Callable[[str], None]


@dataclass(slots=True)
class Gate:
    name: str
    ok: bool | None = None  # None: not run
    detail: str = ""

    def line(self) -> str:
        status = {True: "PASS", False: "FAIL", None: "SKIP"}[self.ok]
        return f"  [{status}] {self.name}" + (f": {self.detail}" if self.detail else "")


@dataclass(slots=True)
class TrainResult:
    version: str
    gates: list[Gate] = field(default_factory=list)
    commit: str | None = None
    tag: str | None = None

    @property
    def ok(self) -> bool:
        return all(g.ok for g in self.gates)

    @property
    def failed(self) -> list[str]:
        return [g.name for g in self.gates if g.ok is False]


def _git(
    repo: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env=env,
        input=input,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args[:3])}: {proc.stderr.strip()[-400:]}")
    return proc.stdout.strip()


def read_tests_result(path: Path, head: str) -> tuple[bool, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return False, f"cannot read {path}: {exc}"
    if not isinstance(data, dict):
        return False, f"{path}: not a JSON object"
    if data.get("commit") != head:
        return False, f"{path} records commit {str(data.get('commit'))[:12]}, HEAD is {head[:12]}"
    if data.get("passed") is not True:
        return False, f"{path} records a failing run of {data.get('command')!r}"
    return True, f"recorded pass of {data.get('command')!r} on {head[:12]}"


def _version_gate(
    repo: Path, version: str, channel: str | None
) -> tuple[Gate, ReleaseVersion | None]:
    gate = Gate("version")
    try:
        v = ReleaseVersion.parse(version)
        current = ReleaseVersion.from_pep440(read_project_version(repo))
    except (VersionError, OSError) as exc:
        gate.ok, gate.detail = False, str(exc)
        return gate, None
    problems = []
    if channel is not None and channel != v.channel:
        problems.append(f"{v} is a {v.channel} version, not {channel}")
    if v.sort_key() <= current.sort_key():
        problems.append(f"{v} is not newer than the current version {current}")
    if _git(repo, "tag", "--list", v.tag):
        problems.append(f"tag {v.tag} already exists")
    gate.ok = not problems
    gate.detail = "; ".join(problems) or f"{current} -> {v} ({v.channel}, tag {v.tag})"
    return gate, v


def _clean_gate(repo: Path) -> Gate:
    dirty = _git(repo, "status", "--porcelain", "--untracked-files=no")
    branch = subprocess.run(
        ["git", "-C", str(repo), "symbolic-ref", "--short", "-q", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if dirty:
        files = ", ".join(line[3:] for line in dirty.splitlines()[:5])
        return Gate("clean-tree", False, f"uncommitted changes to tracked files: {files}")
    if not branch:
        return Gate("clean-tree", False, "HEAD is detached; check out the release branch")
    return Gate("clean-tree", True, f"branch {branch}")


def _tests_gate(repo: Path, head: str, cmd: str | None, result: Path | None, log: Log) -> Gate:
    if result is not None:
        ok, detail = read_tests_result(result, head)
        return Gate("tests", ok, detail)
    command = cmd or DEFAULT_TESTS_CMD
    log(f"tests: running {command!r} in {repo}")
    proc = subprocess.run(command, shell=True, cwd=repo, check=False)  # noqa: S602 - operator's cmd
    if proc.returncode != 0:
        return Gate("tests", False, f"{command!r} exited {proc.returncode}")
    return Gate("tests", True, f"{command!r} passed")


def _release_commit(repo: Path, v: ReleaseVersion, changelog: str) -> str:
    """A commit object on top of HEAD with the bumped files; no ref moves."""
    files = {
        "pyproject.toml": set_project_version(
            (repo / "pyproject.toml").read_text(encoding="utf-8"), v.pep440
        ),
        "uv.lock": set_lock_version((repo / "uv.lock").read_text(encoding="utf-8"), v.pep440),
        "CHANGELOG.md": changelog,
    }
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, GIT_INDEX_FILE=str(Path(tmp) / "index"))
        _git(repo, "read-tree", "HEAD", env=env)
        for path, text in files.items():
            blob = _git(repo, "hash-object", "-w", "--stdin", input=text)
            _git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = _git(repo, "write-tree", env=env)
    message = f"chore(release): {v}\n\nVersion {v.pep440} (PEP 440), channel {v.channel}.\n"
    return _git(repo, "commit-tree", tree, "-p", "HEAD", "-m", message)


def run_train(
    repo: Path,
    version: str,
    *,
    channel: str | None = None,
    tests_cmd: str | None = None,
    tests_result: Path | None = None,
    out: Path | None = None,
    date: str | None = None,
    images: str = "auto",
    log: Log = lambda _: None,
) -> TrainResult:
    result = TrainResult(version)
    version_gate, v = _version_gate(repo, version, channel)
    result.gates.append(version_gate)
    result.gates.append(_clean_gate(repo))
    changelog_gate = Gate("changelog")
    new_changelog = ""
    release = v.release if v else version
    try:
        text = (repo / "CHANGELOG.md").read_text(encoding="utf-8")
        day = date or datetime.now(UTC).strftime("%Y-%m-%d")
        new_changelog = cut_release(text, release, day)
        changelog_gate.ok, changelog_gate.detail = True, f"section [{release}] - {day}"
    except (ChangelogError, OSError) as exc:
        changelog_gate.ok, changelog_gate.detail = False, str(exc)
    result.gates.append(changelog_gate)
    try:
        problems = checklist_problems((repo / CHECKLIST).read_text(encoding="utf-8"), release)
    except OSError as exc:
        problems = [f"{CHECKLIST}: {exc}"]
    result.gates.append(Gate("checklist", not problems, "; ".join(problems) or "all ticked"))

    tests_gate, dry_gate = Gate("tests"), Gate("dry-run")
    result.gates += [tests_gate, dry_gate]
    if not all(g.ok for g in result.gates[:4]) or v is None:
        tests_gate.detail = dry_gate.detail = "not run: an earlier gate failed"
        return result
    head = _git(repo, "rev-parse", "HEAD")
    result.gates[4] = tests_gate = _tests_gate(repo, head, tests_cmd, tests_result, log)
    commit = _release_commit(repo, v, new_changelog)
    out = out or repo / "dist" / v.release
    try:
        build = build_release(repo, out, ref=commit, images=images, log=log)
        problems = verify(out, expect_version=v.release)
        dry_gate.ok = not problems
        dry_gate.detail = (
            "; ".join(problems[:5])
            if problems
            else f"{len(build.files)} files built and verified in {out}"
            + ("" if build.images_built else " (container images not built: no Docker daemon)")
        )
    except (BuildError, VersionError, OSError) as exc:
        dry_gate.ok, dry_gate.detail = False, str(exc)
    if not result.ok:
        return result
    _git(repo, "merge", "--ff-only", "--quiet", commit)
    _git(repo, "tag", "-a", v.tag, "-m", f"wavry {v}", commit)
    result.commit, result.tag = commit, v.tag
    return result
