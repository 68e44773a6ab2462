"""Version policy: channel forms, the PEP 440 mapping, one source of truth, changelog entry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version

import wavry
from tools.release.policy import check_policy
from tools.release.versioning import (
    ReleaseVersion,
    VersionError,
    read_lock_version,
    read_project_version,
    set_lock_version,
    set_project_version,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("text", "channel", "pep440", "tag"),
    [
        ("0.1.0", "stable", "0.1.0", "v0.1.0"),
        ("1.20.3", "stable", "1.20.3", "v1.20.3"),
        ("0.2.0-canary.1", "canary", "0.2.0rc1", "v0.2.0-canary.1"),
        ("0.2.0-canary.12", "canary", "0.2.0rc12", "v0.2.0-canary.12"),
        ("0.2.0-unstable3", "unstable", "0.2.0a3", "v0.2.0-unstable3"),
    ],
)
def test_channels_and_mapping(text: str, channel: str, pep440: str, tag: str) -> None:
    v = ReleaseVersion.parse(text)
    assert (v.channel, v.pep440, v.tag, v.release) == (channel, pep440, tag, text)
    assert ReleaseVersion.from_pep440(pep440) == v
    assert str(Version(pep440)) == pep440  # already normalised PEP 440


@pytest.mark.parametrize(
    "text",
    [
        "", "1", "1.2", "1.2.3.4", "v1.2.3", "01.2.3", "1.02.3", "1.2.03", "1.2.3-canary",
        "1.2.3-canary.0", "1.2.3-canary.01", "1.2.3-canary1", "1.2.3-unstable", "1.2.3-unstable.1",
        "1.2.3-unstable0", "1.2.3-beta.1", "1.2.3-rc.1", "1.2.3rc1", "1.2.3 ", " 1.2.3",
        "1.2.3-canary.1\n", "1.2.3+local",
    ],
)  # fmt: skip
def test_release_form_refused(text: str) -> None:
    with pytest.raises(VersionError, match="not a release version"):
        ReleaseVersion.parse(text)


@pytest.mark.parametrize(
    "text", ["1.2.3b1", "1.2.3.dev1", "1.2.3.post1", "1!1.2.3", "1.2.3+x", "1.2.3rc0", "1.2"]
)
def test_pep440_outside_policy_refused(text: str) -> None:
    with pytest.raises(VersionError, match="outside the release policy"):
        ReleaseVersion.from_pep440(text)


_versions = st.builds(
    lambda a, b, c, ch, n: (
        f"{a}.{b}.{c}" + {"stable": "", "canary": f"-canary.{n}", "unstable": f"-unstable{n}"}[ch]
    ),
    st.integers(0, 999),
    st.integers(0, 999),
    st.integers(0, 999),
    st.sampled_from(["stable", "canary", "unstable"]),
    st.integers(1, 10_000),
)


@given(_versions, _versions)
def test_order_agrees_with_pep440(a: str, b: str) -> None:
    va, vb = ReleaseVersion.parse(a), ReleaseVersion.parse(b)
    assert (va.sort_key() < vb.sort_key()) == (Version(va.pep440) < Version(vb.pep440))
    assert ReleaseVersion.parse(va.release) == va


@given(st.text(max_size=40))
def test_parsers_never_crash(text: str) -> None:
    for parse in (ReleaseVersion.parse, ReleaseVersion.from_pep440):
        try:
            parse(text)
        except VersionError:
            pass


def test_unstable_before_canary_before_stable() -> None:
    keys = [
        ReleaseVersion.parse(t).sort_key() for t in ("1.0.0-unstable9", "1.0.0-canary.1", "1.0.0")
    ]
    assert keys == sorted(keys)


def test_single_source_of_truth() -> None:
    """pyproject is the source; the installed package and uv.lock agree with it."""
    version = read_project_version(REPO)
    assert wavry.__version__ == version
    assert read_lock_version(REPO) == version
    ReleaseVersion.from_pep440(version)  # in policy


def test_set_versions_touch_only_the_version() -> None:
    text = (REPO / "pyproject.toml").read_text()
    new = set_project_version(text, "9.8.7rc6")
    old_lines = set(text.splitlines())
    assert [line for line in new.splitlines() if line not in old_lines] == ['version = "9.8.7rc6"']
    lock = (REPO / "uv.lock").read_text()
    new_lock = set_lock_version(lock, "9.8.7rc6")
    lock_lines = set(lock.splitlines())
    changed = [line for line in new_lock.splitlines() if line not in lock_lines]
    assert changed == ['version = "9.8.7rc6"']
    with pytest.raises(VersionError):
        set_lock_version("nothing here", "1.0.0")
    with pytest.raises(VersionError):
        set_project_version("[tool.x]\nversion = '1'\n", "1.0.0")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", "uv.lock", "CHANGELOG.md"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def _set(tree: Path, pep440: str, *, lock: bool = True) -> None:
    p = tree / "pyproject.toml"
    p.write_text(set_project_version(p.read_text(), pep440))
    if lock:
        u = tree / "uv.lock"
        u.write_text(set_lock_version(u.read_text(), pep440))


def test_policy_passes_on_this_tree(tree: Path) -> None:
    assert check_policy(tree) == []


def test_policy_refuses_a_version_outside_the_channels(tree: Path) -> None:
    _set(tree, "0.3.0b1")
    assert any("outside the release policy" in p for p in check_policy(tree))


def test_policy_refuses_a_stale_lock(tree: Path) -> None:
    _set(tree, "0.3.0", lock=False)
    assert any(p.startswith("uv.lock:") for p in check_policy(tree))


def test_policy_refuses_a_wrong_tag(tree: Path) -> None:
    _set(tree, "0.3.0rc2")
    assert check_policy(tree, tag="v0.3.0-canary.2") == []
    assert any("does not match" in p for p in check_policy(tree, tag="v0.3.0"))


def test_policy_requires_a_changelog_entry(tree: Path) -> None:
    _set(tree, "0.3.0")
    assert any("no section ## [0.3.0]" in p for p in check_policy(tree, release=True))
    (tree / "CHANGELOG.md").write_text("# Changelog\n\n## [Unreleased]\n\n")
    assert any("neither a [0.3.0] section" in p for p in check_policy(tree))
    (tree / "CHANGELOG.md").write_text("# Changelog\n\n## [0.3.0] - 2026-01-02\n\n- Fixed x.\n")
    assert check_policy(tree, release=True) == []
    (tree / "CHANGELOG.md").write_text("# Changelog\n\n## [0.3.0]\n\n- Fixed x.\n")
    assert any("no date" in p for p in check_policy(tree, release=True))
