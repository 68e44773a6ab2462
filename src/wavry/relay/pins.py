"""Persisted trust-on-first-use pins of the master's lease keys.

A relay started without ``WAVRY_RELAY_MASTER_PUBLIC_KEY`` trusts the keys the master returns at
its first registration. Pinning only for the process lifetime (the original, and this relay
until now) re-opens the trust-on-first-use window at every restart: whoever answers at the master
URL after a restart gets their key trusted. The pin is therefore written to a small JSON file,
one entry per master URL, and loaded at start; a restarted relay trusts exactly the keys it
pinned before, even before it reaches the master again::

    {"version": 1, "masters": {"http://127.0.0.1:8080": {"k0123...": "<hex32>"}}}

Default path ``$WAVRY_DATA_DIR/relay_master_pins.json`` (``WAVRY_RELAY_PIN_FILE`` overrides).
To accept a new master key: configure it (``WAVRY_RELAY_MASTER_PUBLIC_KEY``) or delete the
file's entry (or the file). A file that cannot be parsed stops the relay at start rather than
silently trusting whatever answers next (fail closed). Writes are atomic (temp file + rename) and
the file is created ``0600``. Public keys are not secret; the file's integrity is what matters.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

__all__ = ["PIN_FILENAME", "PinFileError", "load_pins", "save_pins"]

PIN_FILENAME = "relay_master_pins.json"
#: a pin file larger than this is not ours (a handful of 32-byte keys per master)
MAX_PIN_FILE_BYTES = 64 * 1024
_VERSION = 1


class PinFileError(ValueError):
    """The pin file exists but cannot be trusted (unreadable, malformed, too large)."""


def _normalise(master_url: str) -> str:
    return master_url.strip().rstrip("/")


def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PIN_FILE_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise PinFileError(f"cannot read the key pin file {path}: {exc}") from None
    if len(raw) > MAX_PIN_FILE_BYTES:
        raise PinFileError(f"key pin file {path} is larger than {MAX_PIN_FILE_BYTES} bytes")
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("version") != _VERSION:
            raise ValueError("not a version 1 pin file")
        masters = doc["masters"]
        if not isinstance(masters, dict):
            raise ValueError("'masters' is not an object")
        out: dict[str, dict[str, str]] = {}
        for url, keys in masters.items():
            if not isinstance(keys, dict) or not keys:
                raise ValueError(f"no keys for {url!r}")
            for kid, hexkey in keys.items():
                if not isinstance(kid, str) or not kid or len(bytes.fromhex(hexkey)) != 32:
                    raise ValueError(f"bad key {kid!r} for {url!r}")
            out[str(url)] = {str(k): str(v) for k, v in keys.items()}
        return out
    except (ValueError, KeyError, TypeError) as exc:
        raise PinFileError(
            f"key pin file {path} is malformed ({exc}); fix or delete it to pin again"
        ) from None


def load_pins(path: Path, master_url: str) -> dict[str, bytes]:
    """The keys pinned for ``master_url`` ({} when none); raises PinFileError on a bad file."""
    keys = _read(path).get(_normalise(master_url), {})
    return {kid: bytes.fromhex(hexkey) for kid, hexkey in keys.items()}


def save_pins(path: Path, master_url: str, keys: dict[str, bytes]) -> None:
    """Record ``keys`` as the pin for ``master_url`` (other masters' pins are kept).

    Raises OSError or PinFileError; the caller decides whether that is fatal."""
    if not keys or any(len(k) != 32 for k in keys.values()):
        raise ValueError("a pin is one or more 32-byte public keys")
    masters = _read(path)
    masters[_normalise(master_url)] = {kid: key.hex() for kid, key in sorted(keys.items())}
    body = json.dumps({"version": _VERSION, "masters": masters}, indent=1, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".pins-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)  # mkstemp created it 0600
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
