"""CHANGELOG sections and the release checklist: parsing, cutting a release, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools.release.changelog import ChangelogError, cut_release, find_section, sections
from tools.release.checklist import checklist_problems

REPO = Path(__file__).resolve().parents[3]

LOG = """\
# Changelog

## [Unreleased]

### Added
- a thing

## [0.1.0] - 2026-01-01

### Fixed
- an old thing
"""


def test_sections() -> None:
    found = sections(LOG)
    assert [(s.name, s.date, s.entries) for s in found] == [
        ("Unreleased", None, 1),
        ("0.1.0", "2026-01-01", 1),
    ]


def test_cut_release_moves_unreleased_under_the_version() -> None:
    out = cut_release(LOG, "0.2.0-canary.1", "2026-02-03")
    assert "## [Unreleased]\n\n## [0.2.0-canary.1] - 2026-02-03\n\n### Added\n- a thing\n" in out
    assert find_section(out, "Unreleased").entries == 0  # type: ignore[union-attr]
    assert find_section(out, "0.2.0-canary.1").entries == 1  # type: ignore[union-attr]
    assert out.endswith("- an old thing\n")


def test_cut_release_keeps_a_hand_written_section() -> None:
    hand = LOG.replace("## [0.1.0]", "## [0.2.0] - 2026-02-01\n\n- done by hand\n\n## [0.1.0]")
    assert cut_release(hand, "0.2.0", "2026-02-03") == hand


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("# Changelog\n\n## [Unreleased]\n\n### Added\n", "no entry for 0.2.0"),
        ("# Changelog\n", "no entry for 0.2.0"),
        ("## [0.2.0] - 2026-01-01\n\nnothing\n", r"\[0.2.0\] has no entries"),
        ("## [0.2.0]\n- a\n## [0.2.0]\n- b\n", "2 sections"),
    ],
)
def test_cut_release_refusals(text: str, match: str) -> None:
    with pytest.raises(ChangelogError, match=match):
        cut_release(text, "0.2.0", "2026-02-03")


def test_bad_date() -> None:
    with pytest.raises(ChangelogError, match="bad date"):
        cut_release(LOG, "0.2.0", "03.02.2026")


def test_project_changelog_has_unreleased_entries() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    unreleased = find_section(text, "Unreleased")
    assert unreleased is not None and unreleased.entries > 0


@given(st.text(max_size=300), st.sampled_from(["0.2.0", "1.0.0-canary.1"]))
def test_changelog_parser_never_crashes(text: str, release: str) -> None:
    try:
        out = cut_release(text, release, "2026-01-01")
    except ChangelogError:
        return
    assert find_section(out, release) is not None


CHECKED = "# x\n\nRelease: 0.2.0\n\n- [x] one\n* [X] two\n"


def test_checklist_passes_when_ticked_for_the_release() -> None:
    assert checklist_problems(CHECKED, "0.2.0") == []
    assert checklist_problems(CHECKED.replace("Release: 0.2.0", "Release: `0.2.0`"), "0.2.0") == []


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (CHECKED + "- [ ] three\n", "1 unticked item(s): three"),
        (CHECKED + "  - [ ] nested\n", "unticked"),
        (CHECKED.replace("Release: 0.2.0", "Release: 0.1.9"), "filled in for release '0.1.9'"),
        (CHECKED.replace("Release: 0.2.0\n", ""), "no 'Release: 0.2.0' line"),
        ("Release: 0.2.0\n\nno boxes\n", "no checklist items"),
    ],
)
def test_checklist_refusals(text: str, match: str) -> None:
    problems = checklist_problems(text, "0.2.0")
    assert any(match in p for p in problems), problems


def test_many_open_items_are_summarised() -> None:
    text = CHECKED + "".join(f"- [ ] item {i}\n" for i in range(5))
    (problem,) = checklist_problems(text, "0.2.0")
    assert "5 unticked" in problem and "(+2 more)" in problem


def test_committed_checklist_is_a_template() -> None:
    """The repository's checklist is reset for the next release: it passes for no version."""
    text = (REPO / "docs/release-checklist.md").read_text()
    problems = checklist_problems(text, "0.2.0")
    assert any("unticked" in p for p in problems)
    assert any("'(next)'" in p for p in problems)


@given(st.text(max_size=300))
def test_checklist_parser_never_crashes(text: str) -> None:
    checklist_problems(text, "1.2.3")
