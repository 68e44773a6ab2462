"""The master's lease-signing keys: the active key plus keys still trusted during a rotation."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from wavry.master.settings import MasterSettings
from wavry.relay.lease import key_id_for, public_key_from_private

__all__ = ["GENERATED_KEY_FILENAME", "KeyConfigError", "MasterKeys", "load_keys", "parse_key_hex"]

log = logging.getLogger(__name__)

GENERATED_KEY_FILENAME = "master_signing.key"


class KeyConfigError(ValueError):
    """The configured signing key or trusted-key list is unusable."""


@dataclass(frozen=True, slots=True)
class MasterKeys:
    seed: bytes
    public_key: bytes
    kid: str
    #: "env", "file" or "generated"
    source: str
    #: every key relays should accept, the active one included (kid -> public key)
    trusted: dict[str, bytes] = field(default_factory=dict)

    @property
    def provisioned(self) -> bool:
        return self.source != "generated"


def parse_key_hex(text: str, *, what: str) -> bytes:
    """A 32-byte seed from hex of the seed, or of seed‖public key (checked against the seed)."""
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raise KeyConfigError(f"{what} is not hex") from None
    if len(raw) == 64:
        seed, pub = raw[:32], raw[32:]
        if public_key_from_private(seed) != pub:
            raise KeyConfigError(f"{what}: the public half does not belong to the seed")
        return seed
    if len(raw) != 32:
        raise KeyConfigError(f"{what} must be 32 (seed) or 64 (seed+public) bytes of hex")
    return raw


def _parse_trusted(text: str) -> dict[str, bytes]:
    trusted: dict[str, bytes] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        kid, sep, hexkey = item.partition(":")
        try:
            pub = bytes.fromhex(hexkey.strip())
        except ValueError:
            pub = b""
        if not sep or not kid.strip() or len(pub) != 32:
            raise KeyConfigError(
                f"WAVRY_MASTER_TRUSTED_PUBLIC_KEYS: {item!r} is not kid:hex32 (64 hex chars)"
            )
        trusted[kid.strip()] = pub
    return trusted


def _generated_seed(data_dir: Path) -> bytes:
    path = data_dir / GENERATED_KEY_FILENAME
    if path.exists():
        return parse_key_hex(path.read_text(), what=str(path))
    data_dir.mkdir(parents=True, exist_ok=True)
    seed = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(seed.hex() + "\n")
    log.warning(
        "generated a lease-signing key at %s (dev only; provision one for production)", path
    )
    return seed


def load_keys(settings: MasterSettings) -> MasterKeys:
    if settings.signing_key is not None:
        seed = parse_key_hex(
            settings.signing_key.get_secret_value(), what="WAVRY_MASTER_SIGNING_KEY"
        )
        source = "env"
    elif settings.key_file is not None:
        try:
            text = settings.key_file.read_text()
        except OSError as exc:
            raise KeyConfigError(f"WAVRY_MASTER_KEY_FILE {settings.key_file}: {exc}") from None
        seed = parse_key_hex(text, what=f"WAVRY_MASTER_KEY_FILE {settings.key_file}")
        source = "file"
    else:
        seed = _generated_seed(settings.data_dir)
        source = "generated"
    public_key = public_key_from_private(seed)
    kid = settings.key_id or key_id_for(public_key)
    trusted = _parse_trusted(settings.trusted_public_keys)
    if kid in trusted and trusted[kid] != public_key:
        raise KeyConfigError(f"key id {kid!r} names two different keys")
    trusted[kid] = public_key
    return MasterKeys(seed=seed, public_key=public_key, kid=kid, source=source, trusted=trusted)
