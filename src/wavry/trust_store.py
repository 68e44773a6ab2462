"""Files behind the trust lists: the host's allow-list and the client's known-hosts.

Both live in the data dir, are written atomically with mode 0600, and a malformed file is an
error that names the line (never silently ignored: a half-read allow-list would be a hole).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from wavry.rift.trust import AllowList, KnownHosts, TrustFileError

__all__ = ["load_allow_list", "load_known_hosts", "save_allow_list", "save_known_hosts"]

T = TypeVar("T")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _load(path: Path, parse: Callable[[str], T], empty: Callable[[], T]) -> T:
    text = _read(path)
    if text is None:
        return empty()
    try:
        return parse(text)
    except TrustFileError as exc:
        raise TrustFileError(f"{path}: {exc}", exc.line) from None


def load_allow_list(path: Path) -> AllowList:
    return _load(path, AllowList.parse, AllowList)


def save_allow_list(path: Path, allow: AllowList) -> None:
    header = "# Wavry IDs allowed to connect to this host (one per line, optional label).\n"
    _write_atomic(path, header + allow.dumps())


def load_known_hosts(path: Path) -> KnownHosts:
    return _load(path, KnownHosts.parse, KnownHosts)


def save_known_hosts(path: Path, known: KnownHosts) -> None:
    header = "# Hosts this client has trusted: <host:port> <wavry-id>\n"
    _write_atomic(path, header + known.dumps())
