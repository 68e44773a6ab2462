"""Byte-reproducible ``.tar.gz`` archives and hashing helpers.

Entries are sorted, owned by 0:0 with empty user/group names, stamped with ``SOURCE_DATE_EPOCH``,
modes normalised to 0644/0755 (executable bit kept), PAX headers avoided (USTAR/GNU format), and
the gzip header carries mtime 0 and no file name. Same inputs and the same zlib give the same
bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["sha256_file", "write_tar_gz"]

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_tar_gz(dest: Path, members: Iterable[tuple[str, Path]], *, mtime: int) -> None:
    """Write ``dest`` from (archive name, source file) pairs; directories are implied."""
    entries = sorted(members)
    names = [name for name, _ in entries]
    if len(set(names)) != len(names):
        raise ValueError("duplicate archive member names")
    dirs: set[str] = set()
    for name in names:
        if name.startswith("/") or ".." in Path(name).parts:
            raise ValueError(f"unsafe archive member name {name!r}")
        parts = name.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for d in sorted(dirs):
            info = _info(d, mtime)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, src in entries:
            info = _info(name, mtime)
            data = src.read_bytes()
            info.size = len(data)
            info.mode = 0o755 if src.stat().st_mode & 0o111 else 0o644
            tar.addfile(info, io.BytesIO(data))
    with (
        dest.open("wb") as out,
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(raw.getvalue())


def _info(name: str, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
