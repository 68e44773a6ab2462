"""``docs/release-checklist.md``: every box ticked, for the version being released.

The checklist names the release it was filled in for on a ``Release: X.Y.Z`` line, so a
checklist ticked for the previous release does not pass for the next one.
"""

from __future__ import annotations

import re

__all__ = ["CHECKLIST", "checklist_problems"]

CHECKLIST = "docs/release-checklist.md"
_ITEM_RE = re.compile(r"^\s*[-*] \[(?P<mark>[ xX])\] (?P<text>.*)$")
_RELEASE_RE = re.compile(r"^Release:\s*`?(?P<v>[^`\s]+)`?\s*$", re.MULTILINE)


def checklist_problems(text: str, release: str) -> list[str]:
    problems = []
    m = _RELEASE_RE.search(text)
    if m is None:
        problems.append(f"{CHECKLIST}: no 'Release: {release}' line")
    elif m["v"] != release:
        problems.append(f"{CHECKLIST}: filled in for release {m['v']!r}, not {release}")
    items = [m for line in text.splitlines() if (m := _ITEM_RE.match(line))]
    if not items:
        problems.append(f"{CHECKLIST}: no checklist items")
    open_items = [m["text"].strip() for m in items if m["mark"] == " "]
    if open_items:
        shown = "; ".join(t[:60] for t in open_items[:3])
        more = f" (+{len(open_items) - 3} more)" if len(open_items) > 3 else ""
        problems.append(f"{CHECKLIST}: {len(open_items)} unticked item(s): {shown}{more}")
    return problems
