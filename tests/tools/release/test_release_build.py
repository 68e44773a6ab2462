"""``build`` / ``dry-run``: reproducible bytes, commit-only sources, contents, refusals."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tools.release.assets import AssetKind, classify, find_wheel, wheel_name
from tools.release.build import (
    BuildError,
    BuildResult,
    build_release,
    docker_available,
    migration_head,
    tree_digest,
)
from tools.release.manifest import MANIFEST, format_epoch, verify
from tools.release.versioning import ReleaseVersion

REPO = Path(__file__).resolve().parents[3]


def wheel_path(out: Path, result: BuildResult) -> Path:
    """The release's one wheel: platform-tagged when the relay fast path compiled."""
    name = find_wheel(result.files, result.version)
    assert name is not None, result.files
    return out / name


def test_wheel_names() -> None:
    v = ReleaseVersion.parse("0.2.0-canary.1")
    pure = wheel_name(v)
    assert pure == "wavry-0.2.0rc1-py3-none-any.whl"
    assert classify(pure, v) == AssetKind("wavry", "any", "any", "python-wheel")
    x86 = wheel_name(v, "cp311-cp311-linux_x86_64")
    assert classify(x86, v) == AssetKind("wavry", "linux", "amd64", "python-wheel")
    arm = "wavry-0.2.0rc1-cp312-cp312-linux_aarch64.whl"
    assert classify(arm, v) == AssetKind("wavry", "linux", "arm64", "python-wheel")
    for bad in (
        "wavry-0.2.0rc1-cp311-cp312-linux_x86_64.whl",
        "wavry-0.2.0rc1-cp311-cp311-win_amd64.whl",
        "wavry-0.2.0-py3-none-any.whl",
        "wavry-0.2.0rc1-py3-none-any.whl.sig",
    ):
        assert classify(bad, v) is None, bad
    assert find_wheel(["a.txt", x86], v) == x86
    assert find_wheel(["a.txt"], v) is None
    with pytest.raises(ValueError):
        find_wheel([pure, x86], v)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_two_builds_are_byte_identical(
    built_release: tuple[Path, BuildResult], tmp_path: Path
) -> None:
    first, result = built_release
    second = tmp_path / "again"
    again = build_release(REPO, second, ref=result.commit, images="never")
    assert again.files == result.files
    for name in result.files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert tree_digest(first) == tree_digest(second)


def test_source_date_epoch_is_the_commit_time(built_release: tuple[Path, BuildResult]) -> None:
    out, result = built_release
    commit_time = int(_git(REPO, "log", "-1", "--format=%ct", result.commit))
    assert result.source_date_epoch == commit_time
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["generated_at"] == format_epoch(commit_time)
    assert manifest["commit"] == result.commit
    wheel = wheel_path(out, result)
    with zipfile.ZipFile(wheel) as zf:
        stamps = {info.date_time for info in zf.infolist()}
    assert len(stamps) == 1  # every entry carries the same (source) date
    for name in result.files:
        if name.endswith(".tar.gz"):  # sdist (hatchling), contexts and docs (ours)
            with tarfile.open(out / name) as tar:
                assert {m.mtime for m in tar.getmembers()} == {commit_time}, name
                if "-any.context." in name or name.startswith("wavry-docs-"):
                    owners = {(m.uid, m.gid, m.uname, m.gname) for m in tar.getmembers()}
                    assert owners == {(0, 0, "", "")}, name


def test_explicit_epoch_changes_the_bytes(
    built_release: tuple[Path, BuildResult], tmp_path: Path
) -> None:
    out, result = built_release
    other = build_release(
        REPO, tmp_path / "o", ref=result.commit, images="never", source_date_epoch=1_700_000_000
    )
    assert other.source_date_epoch == 1_700_000_000
    assert tree_digest(tmp_path / "o") != tree_digest(out)
    assert verify(tmp_path / "o") == []


def test_container_contexts(built_release: tuple[Path, BuildResult]) -> None:
    out, result = built_release
    v = result.version
    wheel = wheel_path(out, result).name
    for service in ("gateway", "master", "relay"):
        with tarfile.open(out / f"wavry-{service}-{v.release}-linux-any.context.tar.gz") as tar:
            assert sorted(tar.getnames()) == ["Dockerfile", "requirements.txt", wheel]
            dockerfile = tar.extractfile("Dockerfile").read().decode()  # type: ignore[union-attr]
            reqs = tar.extractfile("requirements.txt").read().decode()  # type: ignore[union-attr]
            packed = tar.extractfile(wheel).read()  # type: ignore[union-attr]
        assert dockerfile == (REPO / f"docker/{service}.Dockerfile").read_text()
        assert packed == (out / wheel).read_bytes()
        assert f"wavry @ file:///src/{wheel}" in reqs
        # every requirement is pinned with hashes (pip --require-hashes in the Dockerfile)
        for block in reqs.split("\n"):
            if block and not block.startswith((" ", "#")):
                assert "==" in block or block.startswith("wavry @"), block
        assert reqs.count("--hash=sha256:") > 50


def test_docs_bundle(built_release: tuple[Path, BuildResult]) -> None:
    out, result = built_release
    prefix = f"wavry-docs-{result.version.release}"
    with tarfile.open(out / f"{prefix}-any-any.tar.gz") as tar:
        names = set(tar.getnames())
    assert {f"{prefix}/README.md", f"{prefix}/CHANGELOG.md", f"{prefix}/docs/release.md"} <= names


def test_wheel_is_the_package(built_release: tuple[Path, BuildResult]) -> None:
    out, result = built_release
    with zipfile.ZipFile(wheel_path(out, result)) as zf:
        names = zf.namelist()
        meta = zf.read(f"wavry-{result.version.pep440}.dist-info/METADATA").decode()
    assert (
        "wavry/cli.py" in names
        and "wavry/storage/migrations/versions/0001_master_initial.py" in names
    )
    # the relay fast path is compiled in (a C compiler is part of the build environment)
    assert any(n.startswith("wavry/relay/_fastpath.") and n.endswith(".so") for n in names)
    assert not wheel_path(out, result).name.endswith("-py3-none-any.whl")
    assert f"Version: {result.version.pep440}\n" in meta


def test_only_committed_files_are_built(clone: Callable[[], Path], tmp_path: Path) -> None:
    repo = clone()
    (repo / "src/wavry/uncommitted_secret.py").write_text("TOKEN = 'x'\n")
    (repo / "README.md").write_text("modified, not committed\n")
    out = tmp_path / "o"
    result = build_release(repo, out, images="never")
    with zipfile.ZipFile(wheel_path(out, result)) as zf:
        assert "wavry/uncommitted_secret.py" not in zf.namelist()
    with tarfile.open(out / f"wavry-{result.version.pep440}.tar.gz") as tar:
        readme = next(m for m in tar.getmembers() if m.name.endswith("/README.md"))
        assert b"not committed" not in tar.extractfile(readme).read()  # type: ignore[union-attr]


def test_version_override(built_release: tuple[Path, BuildResult], tmp_path: Path) -> None:
    result = build_release(
        REPO, tmp_path / "o", ref=built_release[1].commit, images="never", version="0.0.9-canary.2"
    )
    assert result.version.pep440 == "0.0.9rc2"
    assert find_wheel(result.files, result.version) is not None
    assert "wavry-master-0.0.9-canary.2-linux-any.context.tar.gz" in result.files
    assert verify(tmp_path / "o", expect_version="0.0.9-canary.2") == []


def test_lint_failure_refuses_the_build(clone: Callable[[], Path], tmp_path: Path) -> None:
    repo = clone()
    path = repo / "docker/relay.Dockerfile"
    path.write_text(path.read_text().replace("USER 10001:10001\n", ""))
    _git(repo, "commit", "-q", "-am", "test: root relay image")
    with pytest.raises(BuildError, match=r"relay\.Dockerfile.*\[user\]"):
        build_release(repo, tmp_path / "o", images="never")
    assert not (tmp_path / "o").exists()


def test_out_must_be_empty(tmp_path: Path) -> None:
    (tmp_path / "stale.txt").write_text("x")
    with pytest.raises(BuildError, match="not an empty directory"):
        build_release(REPO, tmp_path, images="never")


FAKE_DOCKER = """#!/bin/sh
# A Docker CLI stand-in: `info` answers (or not), `build` and `save` are recorded.
case "$1" in
  info)
    [ "$FAKE_DOCKER_DAEMON" = 1 ] || { echo "Cannot connect to the Docker daemon" >&2; exit 1; }
    case "$3" in *Architecture*) echo x86_64 ;; *) echo 99.0.0 ;; esac ;;
  build)
    for last; do :; done
    test -f "$last/Dockerfile" || exit 3
    echo "$@" >> "$FAKE_DOCKER_LOG" ;;
  save) printf 'saved %s\n' "$4" > "$3" ;;
  *) exit 2 ;;
esac
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    log = tmp_path / "docker.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    return log


def test_images_require_without_a_daemon(
    fake_docker: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_DOCKER_DAEMON", "0")  # a docker client without a daemon, as here
    assert not docker_available()
    with pytest.raises(BuildError, match="no Docker daemon"):
        build_release(REPO, tmp_path / "o", images="require")
    result = build_release(REPO, tmp_path / "auto", images="auto")
    assert not result.images_built and not fake_docker.exists()


def test_images_with_a_daemon(
    fake_docker: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Where a daemon answers, each context is built and saved as a listed, verified asset."""
    monkeypatch.setenv("FAKE_DOCKER_DAEMON", "1")
    out = tmp_path / "o"
    result = build_release(REPO, out, images="auto")
    assert result.images_built
    v = result.version
    for service in ("gateway", "master", "relay"):
        assert f"wavry-{service}-{v.release}-linux-amd64.image.tar" in result.files
    builds = fake_docker.read_text().splitlines()
    assert len(builds) == 3
    assert all(f"WAVRY_VERSION={v.release}" in b and f":{v.release} " in b for b in builds)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["images_built"] is True
    assert verify(out) == []
    (out / f"wavry-relay-{v.release}-linux-amd64.image.tar").unlink()
    assert any("missing" in p for p in verify(out))


def test_migration_head(tmp_path: Path) -> None:
    versions = tmp_path / "src/wavry/storage/migrations/versions"
    assert migration_head(tmp_path) is None
    versions.mkdir(parents=True)
    (versions / "a.py").write_text('revision = "0001"\ndown_revision = None\n')
    (versions / "b.py").write_text('revision: str = "0002"\ndown_revision: str | None = "0001"\n')
    assert migration_head(tmp_path) == "0002"
    (versions / "c.py").write_text('revision = "0003"\ndown_revision = "0001"\n')
    with pytest.raises(BuildError, match="2 heads"):
        migration_head(tmp_path)
    assert migration_head(REPO) is not None


def test_dry_run_from_the_repository_root(tmp_path: Path) -> None:
    """The documented command, as CI runs it: build everything, verify, nothing else in DIR."""
    out = tmp_path / "dist"
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tools.release", "dry-run", "--out", str(out), "--images", "auto"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert "verify OK" in proc.stderr and "dry-run passed" in proc.stderr
    if not docker_available():
        assert "images NOT built" in proc.stderr
    assert verify(out) == []
    assert {p.name for p in out.iterdir()} >= {"SHA256SUMS", "release-manifest.json"}
    assert elapsed < 60


def test_sums_file_checks_with_sha256sum(built_release: tuple[Path, BuildResult]) -> None:
    out, _ = built_release
    proc = subprocess.run(
        ["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=out, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert io.StringIO(proc.stdout).read().count(": OK") == len(
        (out / "SHA256SUMS").read_text().splitlines()
    )
