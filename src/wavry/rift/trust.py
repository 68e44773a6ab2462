"""Who may connect to whom: the host's allow list and the client's known hosts (TOFU pinning).

Pure data structures with a text format; reading and writing files is the caller's job.

Allow list format (one entry per line)::

    # comment
    <wavry-id> [label]

Known-hosts format::

    # comment
    <host> <wavry-id>

Blank lines and lines whose first non-blank character is ``#`` are ignored. Labels keep their
words; runs of whitespace inside a label are folded to one space. Both structures hold at most
``MAX_ENTRIES`` entries.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator

from wavry.rift.errors import HostKeyChangedError
from wavry.rift.identity import InvalidWavryIdError, public_key_from_wavry_id

__all__ = [
    "MAX_ENTRIES",
    "MAX_HOST_LENGTH",
    "MAX_LABEL_LENGTH",
    "AllowList",
    "KnownHosts",
    "TrustDecision",
    "TrustFileError",
]

MAX_ENTRIES = 10_000
MAX_LABEL_LENGTH = 200
MAX_HOST_LENGTH = 300  # a 253-char DNS name plus ":port", or a bracketed IPv6 literal with port
_BOM = "\ufeff"


class TrustFileError(ValueError):
    """A trust file (or an entry added to one) is invalid. ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


class TrustDecision(enum.Enum):
    TRUSTED = "trusted"  # the host presented the identity recorded for it
    NEW = "new"  # nothing recorded for this host yet (trust on first use)
    CHANGED = "changed"  # the host presented a different identity: refuse, warn loudly


def _shorten(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "..."


def _validate_id(wavry_id: str, line: int | None = None) -> str:
    try:
        public_key_from_wavry_id(wavry_id)
    except InvalidWavryIdError as exc:
        raise TrustFileError(str(exc), line) from None
    return wavry_id


def _normalize_label(label: str | None, line: int | None = None) -> str | None:
    if label is None:
        return None
    folded = " ".join(label.split())
    if not folded:
        return None
    if len(folded) > MAX_LABEL_LENGTH:
        raise TrustFileError(f"label longer than {MAX_LABEL_LENGTH} characters", line)
    if not folded.isprintable():
        raise TrustFileError(f"label {_shorten(folded)} contains control characters", line)
    return folded


def _validate_host(host: str, line: int | None = None) -> str:
    if not isinstance(host, str) or not host:
        raise TrustFileError("host must be a non-empty string", line)
    if len(host) > MAX_HOST_LENGTH:
        raise TrustFileError(f"host longer than {MAX_HOST_LENGTH} characters", line)
    # Printable ASCII without spaces: IDN names belong here in their punycode form.
    if not all("!" <= ch <= "~" for ch in host) or host.startswith("#"):
        raise TrustFileError(
            f"host {_shorten(host)} must be printable ASCII without spaces and not start with '#'",
            line,
        )
    # Host names and IPv6 literals are case-insensitive; one spelling avoids duplicate entries.
    return host.lower()


def _content_lines(text: str) -> Iterator[tuple[int, list[str], str]]:
    """Yield (line number, whitespace-split fields, stripped line) for non-comment lines."""
    if text.startswith(_BOM):
        text = text[1:]
    # Only "\n" ends a line (CRLF is handled by strip); str.splitlines would also split on
    # \r, \v, \x1c... and misnumber the line an error message points at.
    for number, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        yield number, stripped.split(), stripped


class AllowList:
    """The set of Wavry IDs allowed to connect (optionally with a human label each)."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[str, str | None] = {}

    @classmethod
    def parse(cls, text: str) -> AllowList:
        allow = cls()
        for number, fields, stripped in _content_lines(text):
            wavry_id = fields[0]
            label = stripped[len(wavry_id) :] if len(fields) > 1 else None
            allow._add(wavry_id, label, number)
        return allow

    def dumps(self) -> str:
        lines = [wid if label is None else f"{wid} {label}" for wid, label in self._entries.items()]
        return "".join(line + "\n" for line in lines)

    def allows(self, wavry_id: str) -> bool:
        return wavry_id in self._entries

    def add(self, wavry_id: str, label: str | None = None) -> None:
        """Allow ``wavry_id`` (re-adding replaces the label); ``TrustFileError`` if invalid."""
        self._add(wavry_id, label, None)

    def _add(self, wavry_id: str, label: str | None, line: int | None) -> None:
        _validate_id(wavry_id, line)
        normalized = _normalize_label(label, line)
        if wavry_id not in self._entries and len(self._entries) >= MAX_ENTRIES:
            raise TrustFileError(f"the allow list is full ({MAX_ENTRIES} entries)", line)
        self._entries[wavry_id] = normalized

    def remove(self, wavry_id: str) -> bool:
        """Remove ``wavry_id``; returns whether it was present."""
        return self._entries.pop(wavry_id, _MISSING) is not _MISSING

    def label(self, wavry_id: str) -> str | None:
        return self._entries.get(wavry_id)

    def items(self) -> list[tuple[str, str | None]]:
        return list(self._entries.items())

    def __contains__(self, wavry_id: object) -> bool:
        return wavry_id in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AllowList):
            return NotImplemented
        return self._entries == other._entries

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"AllowList({len(self._entries)} entries)"


_MISSING = object()


class KnownHosts:
    """Host (``"192.0.2.1:4444"``, ``"[2001:db8::1]:4444"`` or a host name) -> pinned Wavry ID.

    Host keys are compared case-insensitively (stored lower-case).
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[str, str] = {}

    @classmethod
    def parse(cls, text: str) -> KnownHosts:
        known = cls()
        for number, fields, _ in _content_lines(text):
            if len(fields) != 2:
                raise TrustFileError(
                    f"expected '<host> <wavry-id>', found {len(fields)} field(s)", number
                )
            host = _validate_host(fields[0], number)
            wavry_id = _validate_id(fields[1], number)
            existing = known._entries.get(host)
            if existing is not None and existing != wavry_id:
                raise TrustFileError(f"host {host!r} is listed twice with different IDs", number)
            known._remember(host, wavry_id, number)
        return known

    def dumps(self) -> str:
        return "".join(f"{host} {wid}\n" for host, wid in self._entries.items())

    def expected(self, host: str) -> str | None:
        """The Wavry ID pinned for ``host``, if any."""
        return self._entries.get(_validate_host(host))

    def check(self, host: str, presented_wavry_id: str) -> TrustDecision:
        """Compare the identity ``host`` presented with its pin.

        Raises ``InvalidWavryIdError`` if ``presented_wavry_id`` is malformed and
        ``TrustFileError`` if ``host`` is not a valid host key.
        """
        public_key_from_wavry_id(presented_wavry_id)
        expected = self.expected(host)
        if expected is None:
            return TrustDecision.NEW
        return TrustDecision.TRUSTED if expected == presented_wavry_id else TrustDecision.CHANGED

    def verify_or_raise(self, host: str, presented_wavry_id: str) -> TrustDecision:
        """Like ``check`` but raises ``HostKeyChangedError`` on CHANGED. NEW is not remembered:
        the caller decides (after asking the user, or by policy) whether to ``remember`` it."""
        public_key_from_wavry_id(presented_wavry_id)
        expected = self.expected(host)
        if expected is None:
            return TrustDecision.NEW
        if expected != presented_wavry_id:
            raise HostKeyChangedError(_validate_host(host), expected, presented_wavry_id)
        return TrustDecision.TRUSTED

    def remember(self, host: str, wavry_id: str) -> None:
        """Pin ``host`` to ``wavry_id`` (replacing any previous pin)."""
        self._remember(_validate_host(host), _validate_id(wavry_id), None)

    def _remember(self, host: str, wavry_id: str, line: int | None) -> None:
        if host not in self._entries and len(self._entries) >= MAX_ENTRIES:
            raise TrustFileError(f"known hosts is full ({MAX_ENTRIES} entries)", line)
        self._entries[host] = wavry_id

    def forget(self, host: str) -> bool:
        """Remove the pin of ``host``; returns whether there was one."""
        return self._entries.pop(_validate_host(host), None) is not None

    def items(self) -> list[tuple[str, str]]:
        return list(self._entries.items())

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str):
            return False
        try:
            return _validate_host(host) in self._entries
        except TrustFileError:
            return False

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KnownHosts):
            return NotImplemented
        return self._entries == other._entries

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"KnownHosts({len(self._entries)} entries)"
