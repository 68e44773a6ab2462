"""The version policy: one source of truth, channel forms, a changelog entry for the version."""

from __future__ import annotations

from pathlib import Path

from tools.release.changelog import ChangelogError, find_section
from tools.release.versioning import (
    ReleaseVersion,
    VersionError,
    read_lock_version,
    read_project_version,
)

__all__ = ["check_policy"]


def check_policy(root: Path, *, release: bool = False, tag: str | None = None) -> list[str]:
    """Problems with the version policy of the tree at ``root`` (empty: it complies).

    ``release``: the tree is a release (tag build): ``CHANGELOG.md`` must have a dated section
    for this version. Otherwise an Unreleased section with entries also counts (the release train
    turns it into the version's section). ``tag``: the git tag being built must match.
    """
    problems: list[str] = []
    try:
        pep440 = read_project_version(root)
        v = ReleaseVersion.from_pep440(pep440)
    except (VersionError, OSError) as exc:
        return [f"pyproject.toml: {exc}"]
    try:
        locked = read_lock_version(root)
        if locked != pep440:
            problems.append(
                f"uv.lock: wavry {locked} but pyproject.toml says {pep440} (bump both: "
                "python -m tools.release train, or `uv lock`)"
            )
    except (VersionError, OSError) as exc:
        problems.append(f"uv.lock: {exc}")
    if tag is not None and tag != v.tag:
        problems.append(f"tag {tag!r} does not match the version {v} (expected {v.tag})")
    try:
        text = (root / "CHANGELOG.md").read_text(encoding="utf-8")
        section = find_section(text, v.release)
        unreleased = find_section(text, "Unreleased")
    except (ChangelogError, OSError) as exc:
        return problems + [f"CHANGELOG.md: {exc}"]
    if section is not None:
        if section.entries == 0:
            problems.append(f"CHANGELOG.md: section [{v}] has no entries")
        if section.date is None:
            problems.append(f"CHANGELOG.md: section [{v}] has no date (## [{v}] - YYYY-MM-DD)")
    elif release:
        problems.append(f"CHANGELOG.md: no section ## [{v}] - YYYY-MM-DD for this release")
    elif unreleased is None or unreleased.entries == 0:
        problems.append(f"CHANGELOG.md: neither a [{v}] section nor Unreleased entries")
    return problems
