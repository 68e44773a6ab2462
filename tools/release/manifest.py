"""``SHA256SUMS`` and ``release-manifest.json``: write them, and verify a release directory.

``SHA256SUMS`` is ``sha256sum`` output (``<64 hex>  <file>``, sorted by file name) over every
asset; ``sha256sum -c SHA256SUMS`` works on it. ``release-manifest.json``::

    {"schema": 1, "version": "0.2.0-canary.1", "python_version": "0.2.0rc1",
     "channel": "canary", "tag": "v0.2.0-canary.1", "commit": "<sha1>",
     "source_date_epoch": 1767225600, "generated_at": "2026-01-01T00:00:00Z",
     "migration_head": "0002", "images_built": false,
     "assets": [{"file", "component", "platform", "arch", "sha256", "size", "category"}...]}

``generated_at`` is ``SOURCE_DATE_EPOCH`` (the release commit's time), not the wall clock, so two
builds of one commit give identical manifests. Assets are sorted by file name.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.release.assets import SERVICES, AssetKind, classify, required_files, wheel_name
from tools.release.reproducible import sha256_file
from tools.release.versioning import ReleaseVersion, VersionError

__all__ = [
    "MANIFEST",
    "SUMS",
    "Asset",
    "ReleaseInfo",
    "format_epoch",
    "verify",
    "write_metadata",
]

SUMS = "SHA256SUMS"
MANIFEST = "release-manifest.json"
SCHEMA = 1
_MAX_METADATA_BYTES = 4 << 20
_SUMS_LINE_RE = re.compile(r"^([0-9a-f]{64})  ([^/\\\s][^/\\\n]*)$")
_ASSET_KEYS = {"file", "component", "platform", "arch", "sha256", "size", "category"}
_TOP_KEYS = {
    "schema", "version", "python_version", "channel", "tag", "commit", "source_date_epoch",
    "generated_at", "migration_head", "images_built", "assets",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Asset:
    file: str
    kind: AssetKind
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "component": self.kind.component,
            "platform": self.kind.platform,
            "arch": self.kind.arch,
            "sha256": self.sha256,
            "size": self.size,
            "category": self.kind.category,
        }


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    version: ReleaseVersion
    commit: str
    source_date_epoch: int
    migration_head: str | None
    images_built: bool


def format_epoch(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_metadata(out: Path, info: ReleaseInfo) -> list[Asset]:
    """Hash every file in ``out`` and write ``SHA256SUMS`` and ``release-manifest.json``."""
    assets = []
    for path in sorted(out.iterdir()):
        if path.name in (SUMS, MANIFEST):
            raise ValueError(f"{out} already holds {path.name}")
        kind = classify(path.name, info.version)
        if kind is None or not path.is_file() or path.is_symlink():
            raise ValueError(f"{path.name}: not a release asset name for {info.version}")
        assets.append(Asset(path.name, kind, sha256_file(path), path.stat().st_size))
    (out / SUMS).write_text("".join(f"{a.sha256}  {a.file}\n" for a in assets), encoding="utf-8")
    v = info.version
    manifest = {
        "schema": SCHEMA,
        "version": v.release,
        "python_version": v.pep440,
        "channel": v.channel,
        "tag": v.tag,
        "commit": info.commit,
        "source_date_epoch": info.source_date_epoch,
        "generated_at": format_epoch(info.source_date_epoch),
        "migration_head": info.migration_head,
        "images_built": info.images_built,
        "assets": [a.to_json() for a in assets],
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return assets


# --- verify ------------------------------------------------------------------------------------


def _read_small(path: Path) -> str:
    if path.stat().st_size > _MAX_METADATA_BYTES:
        raise ValueError(f"{path.name} is larger than {_MAX_METADATA_BYTES} bytes")
    return path.read_text(encoding="utf-8")


def _parse_sums(text: str, problems: list[str]) -> dict[str, str]:
    sums: dict[str, str] = {}
    names: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        m = _SUMS_LINE_RE.match(line)
        if m is None:
            problems.append(
                f"{SUMS} line {n}: not '<64 lowercase hex>  <file name>': {line[:100]!r}"
            )
            continue
        digest, name = m.groups()
        names.append(name)
        if name in sums:
            problems.append(f"{name}: listed twice in {SUMS} (duplicate)")
            continue
        sums[name] = digest
    if names != sorted(names):
        problems.append(f"{SUMS} is not sorted by file name")
    if not text.endswith("\n") and text:
        problems.append(f"{SUMS} does not end with a newline")
    return sums


def _check_top(manifest: Any, problems: list[str]) -> ReleaseVersion | None:
    if not isinstance(manifest, dict):
        problems.append(f"{MANIFEST}: not a JSON object")
        return None
    keys = set(manifest)
    if keys != _TOP_KEYS:
        missing, extra = sorted(_TOP_KEYS - keys), sorted(keys - _TOP_KEYS)
        problems.append(f"{MANIFEST}: keys differ (missing {missing}, unexpected {extra})")
    if manifest.get("schema") != SCHEMA:
        problems.append(f"{MANIFEST}: schema {manifest.get('schema')!r}, expected {SCHEMA}")
    try:
        v = ReleaseVersion.parse(str(manifest.get("version")))
    except VersionError as exc:
        problems.append(f"{MANIFEST}: version: {exc}")
        return None
    for key, want in (("python_version", v.pep440), ("channel", v.channel), ("tag", v.tag)):
        if manifest.get(key) != want:
            problems.append(f"{MANIFEST}: {key} {manifest.get(key)!r} disagrees with {v} ({want})")
    epoch = manifest.get("source_date_epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        problems.append(f"{MANIFEST}: source_date_epoch must be a non-negative integer")
    elif manifest.get("generated_at") != format_epoch(epoch):
        problems.append(
            f"{MANIFEST}: generated_at {manifest.get('generated_at')!r} is not "
            f"SOURCE_DATE_EPOCH {epoch} ({format_epoch(epoch)})"
        )
    if not isinstance(manifest.get("commit"), str) or not re.fullmatch(
        r"[0-9a-f]{40}", manifest.get("commit", "")
    ):
        problems.append(f"{MANIFEST}: commit must be a 40-hex git commit id")
    if not isinstance(manifest.get("images_built"), bool):
        problems.append(f"{MANIFEST}: images_built must be true or false")
    return v


def _check_assets(raw: Any, v: ReleaseVersion, problems: list[str]) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, list):
        problems.append(f"{MANIFEST}: assets must be a list")
        return {}
    out: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or set(entry) != _ASSET_KEYS:
            problems.append(f"{MANIFEST}: asset #{i} must have exactly {sorted(_ASSET_KEYS)}")
            continue
        name = entry["file"]
        if not isinstance(name, str):
            problems.append(f"{MANIFEST}: asset #{i} file is not a string")
            continue
        if name in out:
            problems.append(f"{name}: listed twice in {MANIFEST} (duplicate)")
            continue
        out[name] = entry
        kind = classify(name, v)
        if kind is None:
            problems.append(f"{name}: not an allowed release file name for version {v}")
            continue
        for key in ("component", "platform", "arch", "category"):
            if entry[key] != getattr(kind, key):
                problems.append(
                    f"{name}: manifest {key} {entry[key]!r} does not match the file name "
                    f"({getattr(kind, key)!r})"
                )
        if not isinstance(entry["sha256"], str) or not re.fullmatch(
            r"[0-9a-f]{64}", entry["sha256"]
        ):
            problems.append(f"{name}: manifest sha256 is not 64 lowercase hex")
        if (
            not isinstance(entry["size"], int)
            or isinstance(entry["size"], bool)
            or entry["size"] < 0
        ):
            problems.append(f"{name}: manifest size is not a non-negative integer")
    names = [e["file"] for e in raw if isinstance(e, dict) and isinstance(e.get("file"), str)]
    if names != sorted(names):
        problems.append(f"{MANIFEST}: assets are not sorted by file name")
    return out


def verify(directory: Path, *, expect_version: str | None = None) -> list[str]:
    """Every problem with the release in ``directory`` (empty list: the release verifies).

    Each message names the file it is about.
    """
    problems: list[str] = []
    if not directory.is_dir():
        return [f"{directory}: not a directory"]
    for meta in (SUMS, MANIFEST):
        p = directory / meta
        if not p.is_file() or p.is_symlink():
            problems.append(f"{meta}: missing (or not a regular file)")
    if problems:
        return problems
    try:
        sums = _parse_sums(_read_small(directory / SUMS), problems)
        manifest = json.loads(_read_small(directory / MANIFEST))
    except (ValueError, OSError) as exc:
        return problems + [f"{MANIFEST}/{SUMS}: unreadable: {exc}"]
    v = _check_top(manifest, problems)
    if v is None:
        return problems
    if expect_version is not None and v.release != expect_version:
        problems.append(f"{MANIFEST}: version {v} but {expect_version} was expected")
    listed = _check_assets(manifest.get("assets"), v, problems)

    for name in sorted(set(sums) - set(listed)):
        problems.append(f"{name}: in {SUMS} but not in {MANIFEST} (manifest mismatch)")
    for name in sorted(set(listed) - set(sums)):
        problems.append(f"{name}: in {MANIFEST} but not in {SUMS} (manifest mismatch)")
    for name in sorted(set(listed) & set(sums)):
        if listed[name]["sha256"] != sums[name]:
            problems.append(f"{name}: {MANIFEST} and {SUMS} give different checksums")
    for name in required_files(v):
        if name not in listed:
            problems.append(f"{name}: required asset absent from the release")
    wheels = sorted(n for n, e in listed.items() if e.get("category") == "python-wheel")
    if not wheels:
        problems.append(f"{wheel_name(v)}: required asset (the wheel) absent from the release")
    elif len(wheels) > 1:
        problems.append(f"{wheels[1]}: a release holds one wheel, {MANIFEST} lists {len(wheels)}")
    images = [n for n, e in listed.items() if e.get("category") == "container-image"]
    if manifest.get("images_built") is True:
        per_service = Counter(listed[n]["component"] for n in images)
        for service in SERVICES:
            if per_service[service] == 0:
                problems.append(f"images_built is true but no image of {service} is listed")
    elif images:
        problems.append(f"{images[0]}: image listed although images_built is false")

    on_disk: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if path.name in (SUMS, MANIFEST):
            continue
        if path.is_symlink() or not path.is_file():
            problems.append(f"{path.name}: not a regular file (directories and links not allowed)")
            continue
        on_disk[path.name] = path
    expected = set(listed) | set(sums)
    extra = sorted(set(on_disk) - expected)
    missing = sorted(expected - set(on_disk))
    actual: dict[str, str] = {}
    for name, path in on_disk.items():
        actual[name] = sha256_file(path)
    wanted_by_hash = {sums.get(n) or listed[n]["sha256"]: n for n in missing}
    for name in extra:
        renamed_from = wanted_by_hash.get(actual[name])
        hint = f" (it is {renamed_from} renamed)" if renamed_from else ""
        problems.append(f"{name}: extra file, not listed in {SUMS}/{MANIFEST}{hint}")
    for name in missing:
        problems.append(f"{name}: missing from {directory}")
    for name in sorted(expected & set(on_disk)):
        want = sums.get(name)
        if want is not None and actual[name] != want:
            problems.append(
                f"{name}: checksum mismatch (SHA256SUMS {want[:16]}..., "
                f"file {actual[name][:16]}...)"
            )
        entry = listed.get(name)
        if entry is not None:
            size = on_disk[name].stat().st_size
            if entry["size"] != size:
                problems.append(f"{name}: size {size} but the manifest says {entry['size']}")
            if entry["sha256"] != actual[name] and (want is None or want == actual[name]):
                problems.append(f"{name}: checksum differs from {MANIFEST}")
    return problems
