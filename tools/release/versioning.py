"""Release versions: channels, the PEP 440 mapping, and the one source of truth.

The single source of truth is ``[project].version`` in ``pyproject.toml`` (PEP 440). The wheel,
``wavry.__version__`` (read from the installed metadata) and ``uv.lock`` follow it; the release
tool derives the *release version* (channel form, used for tags, artifact names and the
changelog) from it, and the bump rewrites every copy at once.

=========  =====================  ==================  =============
channel    release version        PEP 440 (pyproject)  tag
=========  =====================  ==================  =============
stable     ``X.Y.Z``              ``X.Y.Z``           ``vX.Y.Z``
canary     ``X.Y.Z-canary.N``     ``X.Y.ZrcN``        ``vX.Y.Z-canary.N``
unstable   ``X.Y.Z-unstableN``    ``X.Y.ZaN``         ``vX.Y.Z-unstableN``
=========  =====================  ==================  =============

N >= 1, no leading zeros anywhere. The mapping keeps PEP 440 ordering meaningful:
``X.Y.Z-unstableN < X.Y.Z-canary.N < X.Y.Z``. Any other form (``b``, ``.dev``, ``.post``,
local versions, epochs, ``-canary`` without a number, ``-beta``...) is refused by the policy.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CHANNELS",
    "ReleaseVersion",
    "VersionError",
    "read_lock_version",
    "read_project_version",
    "set_lock_version",
    "set_project_version",
]

CHANNELS = ("stable", "canary", "unstable")

_NUM = r"(?:0|[1-9][0-9]*)"
_POS = r"[1-9][0-9]*"
_RELEASE_RE = re.compile(
    rf"^(?P<base>{_NUM}\.{_NUM}\.{_NUM})"
    rf"(?:-canary\.(?P<canary>{_POS})|-unstable(?P<unstable>{_POS}))?$"
)
_PEP440_RE = re.compile(rf"^(?P<base>{_NUM}\.{_NUM}\.{_NUM})(?:rc(?P<rc>{_POS})|a(?P<a>{_POS}))?$")


class VersionError(ValueError):
    """A version that the release policy refuses (the message says why and what is allowed)."""


@dataclass(frozen=True, slots=True)
class ReleaseVersion:
    major: int
    minor: int
    patch: int
    channel: str  # one of CHANNELS
    number: int | None  # N for canary/unstable, None for stable

    @classmethod
    def parse(cls, text: str) -> ReleaseVersion:
        """A release version in channel form: ``0.2.0``, ``0.2.0-canary.3``, ``0.2.0-unstable1``."""
        m = _RELEASE_RE.fullmatch(text)
        if m is None:
            raise VersionError(
                f"{text!r} is not a release version: use X.Y.Z (stable), X.Y.Z-canary.N (canary) "
                "or X.Y.Z-unstableN (unstable), numbers without leading zeros, N >= 1"
            )
        if m["canary"]:
            return cls._make(m["base"], "canary", int(m["canary"]))
        if m["unstable"]:
            return cls._make(m["base"], "unstable", int(m["unstable"]))
        return cls._make(m["base"], "stable", None)

    @classmethod
    def from_pep440(cls, text: str) -> ReleaseVersion:
        """The release version a ``pyproject.toml`` version maps to (``0.2.0rc3`` -> canary.3)."""
        m = _PEP440_RE.fullmatch(text)
        if m is None:
            raise VersionError(
                f"pyproject version {text!r} is outside the release policy: use X.Y.Z, X.Y.ZrcN "
                "(canary N) or X.Y.ZaN (unstable N) (see docs/release.md)"
            )
        if m["rc"]:
            return cls._make(m["base"], "canary", int(m["rc"]))
        if m["a"]:
            return cls._make(m["base"], "unstable", int(m["a"]))
        return cls._make(m["base"], "stable", None)

    @classmethod
    def _make(cls, base: str, channel: str, number: int | None) -> ReleaseVersion:
        major, minor, patch = (int(x) for x in base.split("."))
        return cls(major, minor, patch, channel, number)

    @property
    def base(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def release(self) -> str:
        """Channel form: tags, artifact names, changelog headings."""
        if self.channel == "canary":
            return f"{self.base}-canary.{self.number}"
        if self.channel == "unstable":
            return f"{self.base}-unstable{self.number}"
        return self.base

    @property
    def pep440(self) -> str:
        """What ``pyproject.toml``, the wheel and the sdist carry."""
        if self.channel == "canary":
            return f"{self.base}rc{self.number}"
        if self.channel == "unstable":
            return f"{self.base}a{self.number}"
        return self.base

    @property
    def tag(self) -> str:
        return f"v{self.release}"

    @property
    def prerelease(self) -> bool:
        return self.channel != "stable"

    def sort_key(self) -> tuple[int, int, int, int, int]:
        rank = {"unstable": 0, "canary": 1, "stable": 2}[self.channel]
        return (self.major, self.minor, self.patch, rank, self.number or 0)

    def __str__(self) -> str:
        return self.release


# --- the files that carry the version -------------------------------------------------------

_PROJECT_VERSION_RE = re.compile(r'^(version\s*=\s*")([^"]*)(")', re.MULTILINE)


def read_project_version(root: Path) -> str:
    """``[project].version`` of ``root/pyproject.toml`` (PEP 440 text, unvalidated)."""
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    version = data.get("project", {}).get("version")
    if not isinstance(version, str):
        raise VersionError("pyproject.toml has no static [project].version (the source of truth)")
    return version


def set_project_version(text: str, new: str) -> str:
    """``pyproject.toml`` text with ``[project].version`` replaced (the first ``version =`` line
    inside the ``[project]`` table; formatting and everything else kept byte for byte)."""
    start = text.find("[project]")
    if start < 0:
        raise VersionError("pyproject.toml has no [project] table")
    end = text.find("\n[", start + 1)
    end = len(text) if end < 0 else end
    section = text[start:end]
    new_section, count = _PROJECT_VERSION_RE.subn(rf"\g<1>{new}\g<3>", section, count=1)
    if count != 1:
        raise VersionError("pyproject.toml [project] has no version = line")
    return text[:start] + new_section + text[end:]


_LOCK_BLOCK_RE = re.compile(
    r'(\[\[package\]\]\nname = "wavry"\nversion = ")([^"]*)("\nsource = \{ editable = "\." \})'
)


def read_lock_version(root: Path) -> str:
    m = _LOCK_BLOCK_RE.search((root / "uv.lock").read_text(encoding="utf-8"))
    if m is None:
        raise VersionError("uv.lock has no editable wavry package entry")
    return m.group(2)


def set_lock_version(text: str, new: str) -> str:
    """``uv.lock`` text with the project's own version replaced (what ``uv lock`` would write)."""
    new_text, count = _LOCK_BLOCK_RE.subn(rf"\g<1>{new}\g<3>", text, count=1)
    if count != 1:
        raise VersionError("uv.lock has no editable wavry package entry")
    return new_text
