"""``CHANGELOG.md`` (Keep a Changelog): find a version's section, cut a release from Unreleased.

Headings are ``## [Unreleased]`` and ``## [X.Y.Z] - YYYY-MM-DD`` (release versions in channel
form, e.g. ``## [0.2.0-canary.1] - 2026-01-31``). A section counts as an entry when it holds at
least one list item (``- ...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ChangelogError", "Section", "cut_release", "find_section", "sections"]

_HEADING_RE = re.compile(r"^## \[(?P<name>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?\s*$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ChangelogError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    date: str | None
    start: int  # line index of the heading
    end: int  # line index after the last body line
    body: tuple[str, ...]

    @property
    def entries(self) -> int:
        return sum(1 for line in self.body if line.lstrip().startswith(("- ", "* ")))


def sections(text: str) -> list[Section]:
    lines = text.splitlines()
    heads = [(i, m) for i, line in enumerate(lines) if (m := _HEADING_RE.match(line))]
    out = []
    for k, (i, m) in enumerate(heads):
        end = heads[k + 1][0] if k + 1 < len(heads) else len(lines)
        out.append(Section(m["name"], m["date"], i, end, tuple(lines[i + 1 : end])))
    return out


def find_section(text: str, name: str) -> Section | None:
    matches = [s for s in sections(text) if s.name == name]
    if len(matches) > 1:
        raise ChangelogError(f"CHANGELOG.md has {len(matches)} sections for [{name}]")
    return matches[0] if matches else None


def cut_release(text: str, release: str, date: str) -> str:
    """Turn ``## [Unreleased]`` into ``## [release] - date`` under a fresh empty Unreleased.

    If a non-empty ``[release]`` section already exists (cut by hand), the text is returned
    unchanged. Refuses when there is nothing to release.
    """
    if not _DATE_RE.match(date):
        raise ChangelogError(f"bad date {date!r} (YYYY-MM-DD)")
    existing = find_section(text, release)
    if existing is not None:
        if existing.entries == 0:
            raise ChangelogError(f"CHANGELOG.md section [{release}] has no entries")
        return text
    unreleased = find_section(text, "Unreleased")
    if unreleased is None or unreleased.entries == 0:
        raise ChangelogError(
            f"CHANGELOG.md has no entry for {release}: add a [{release}] section or list the "
            "changes under ## [Unreleased]"
        )
    lines = text.splitlines(keepends=True)
    lines[unreleased.start] = f"## [Unreleased]\n\n## [{release}] - {date}\n"
    return "".join(lines)
