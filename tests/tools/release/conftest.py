"""Fixtures of the release-tool tests: the repository, one built release, throwaway clones."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tools.release.build import BuildResult, build_release

REPO = Path(__file__).resolve().parents[3]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="session")
def built_release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BuildResult]:
    """One release of HEAD, built once per session (never modify it: copy it)."""
    out = tmp_path_factory.mktemp("release") / "dist"
    return out, build_release(REPO, out, images="never")


@pytest.fixture
def release_copy(built_release: tuple[Path, BuildResult], tmp_path: Path) -> Path:
    """A private copy of the built release, free to break."""
    dest = tmp_path / "dist"
    shutil.copytree(built_release[0], dest)
    return dest


@pytest.fixture
def clone(tmp_path: Path) -> Callable[[], Path]:
    """``git clone`` of this repository into a temporary directory, with a committer set."""

    def make() -> Path:
        dest = tmp_path / "clone"
        subprocess.run(
            ["git", "clone", "--quiet", str(REPO), str(dest)], check=True, capture_output=True
        )
        git(dest, "config", "user.name", "Release Test")
        git(dest, "config", "user.email", "release-test@example.invalid")
        git(dest, "config", "commit.gpgsign", "false")
        git(dest, "config", "tag.gpgsign", "false")
        return dest

    return make
