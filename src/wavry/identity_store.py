"""Identity key files: create with mode 0600, load with clear errors.

Format (text, one line)::

    wavry-ed25519-v1:<base64url of the 32-byte Ed25519 seed, no padding>

A text format with a version tag lets a later release change the key type without guessing.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path

from wavry.rift.identity import Identity

__all__ = ["IdentityFileError", "create_identity_file", "load_identity", "load_or_create_identity"]

_TAG = "wavry-ed25519-v1:"


class IdentityFileError(Exception):
    """An identity file is missing, unreadable, malformed or too widely readable."""


def _encode(identity: Identity) -> str:
    return _TAG + base64.urlsafe_b64encode(identity.seed).rstrip(b"=").decode() + "\n"


def create_identity_file(path: Path, *, overwrite: bool = False) -> Identity:
    """Generate a new identity and write it to ``path`` with mode 0600 (never wider)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise IdentityFileError(
            f"{path} already exists; refusing to replace an identity (peers that paired with it "
            f"would no longer recognise you). Pass --force to replace it anyway."
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    identity = Identity.generate()
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, _encode(identity).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return identity


def load_identity(path: Path) -> Identity:
    path = Path(path)
    try:
        st = path.stat()
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise IdentityFileError(
            f"no identity at {path}; create one with `wavry keygen` (or set WAVRY_DATA_DIR)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IdentityFileError(f"cannot read identity file {path}: {exc}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise IdentityFileError(
            f"identity file {path} is readable by other users (mode {stat.S_IMODE(st.st_mode):o});"
            f" fix it with `chmod 600 {path}`"
        )
    if not text.startswith(_TAG):
        raise IdentityFileError(f"{path} is not a Wavry identity file (expected '{_TAG}...')")
    b64 = text[len(_TAG) :]
    try:
        seed = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
    except (binascii.Error, ValueError):
        raise IdentityFileError(f"{path}: the key is not valid base64url") from None
    if len(seed) != 32:
        raise IdentityFileError(f"{path}: the key must be 32 bytes, found {len(seed)}")
    return Identity.from_seed(seed)


def load_or_create_identity(path: Path) -> tuple[Identity, bool]:
    """Load the identity at ``path``, creating it first if absent. Returns (identity, created)."""
    if Path(path).exists():
        return load_identity(path), False
    return create_identity_file(path), True
