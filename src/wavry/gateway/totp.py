"""TOTP (RFC 6238 over RFC 4226 HOTP), written here and checked against the RFCs' test vectors,
plus encryption of the shared secrets at rest.

Codes: SHA-1, 6 digits, 30 s steps, one step of clock skew either way. A code is accepted only
for a step later than the last accepted one, so a code cannot be replayed (not even within its
own 30 s window).

At rest: ``enc:v2:`` + base64(12-byte nonce || AES-256-GCM(secret)), with the user id as
associated data (a ciphertext copied to another row does not decrypt). The key is
``WAVRY_TOTP_KEY_B64``. Without a key, enabling 2FA fails, unless ``WAVRY_ALLOW_INSECURE_TOTP=1``
outside production, which stores ``plain:`` + base32.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import struct
from collections.abc import Callable, Sequence
from urllib.parse import quote, urlencode

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "DIGITS",
    "SKEW_STEPS",
    "STEP_SECS",
    "TotpSecretBox",
    "TotpUnavailable",
    "b32decode",
    "b32encode",
    "generate_secret",
    "hotp",
    "otpauth_uri",
    "time_step",
    "totp",
    "verify",
]

STEP_SECS = 30
DIGITS = 6
SKEW_STEPS = 1
SECRET_BYTES = 20
_ALGORITHMS: dict[str, Callable[[], hashlib._Hash]] = {
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA512": hashlib.sha512,
}


def hotp(key: bytes, counter: int, *, digits: int = DIGITS, algorithm: str = "SHA1") -> str:
    """RFC 4226 §5.3: dynamic truncation of HMAC(key, counter as 8-byte big-endian)."""
    mac = hmac.new(key, struct.pack(">Q", counter), _ALGORITHMS[algorithm]).digest()
    offset = mac[-1] & 0x0F
    (binary,) = struct.unpack(">I", mac[offset : offset + 4])
    return str((binary & 0x7FFFFFFF) % (10**digits)).zfill(digits)


def time_step(now: float, *, step: int = STEP_SECS, t0: int = 0) -> int:
    return int((now - t0) // step)


def totp(
    key: bytes, now: float, *, digits: int = DIGITS, step: int = STEP_SECS, algorithm: str = "SHA1"
) -> str:
    """RFC 6238 §4: HOTP with the counter ``floor((now - T0) / step)``."""
    return hotp(key, time_step(now, step=step), digits=digits, algorithm=algorithm)


def verify(key: bytes, code: str, now: float, *, last_step: int | None) -> int | None:
    """The step ``code`` matches (now ± ``SKEW_STEPS``), if later than ``last_step``; else None.

    Every candidate step is compared (constant time) so timing does not tell which matched.
    """
    current = time_step(now)
    matched: int | None = None
    for candidate in range(current - SKEW_STEPS, current + SKEW_STEPS + 1):
        if candidate < 0:
            continue
        if hmac.compare_digest(hotp(key, candidate).encode(), code.encode()) and matched is None:
            matched = candidate
    if matched is None or (last_step is not None and matched <= last_step):
        return None
    return matched


def generate_secret(rng: Callable[[int], bytes] = secrets.token_bytes) -> bytes:
    return rng(SECRET_BYTES)


def b32encode(secret: bytes) -> str:
    """Base32 without padding, as authenticator apps expect."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def b32decode(text: str) -> bytes:
    clean = text.strip().replace(" ", "").upper()
    return base64.b32decode(clean + "=" * (-len(clean) % 8))


def otpauth_uri(secret: bytes, *, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app imports (render it as a QR code)."""
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode(
        {
            "secret": b32encode(secret),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_SECS,
        }  # fmt: skip
    )
    return f"otpauth://totp/{label}?{query}"


class TotpUnavailable(Exception):
    """No encryption key and plaintext storage not allowed."""


class TotpSecretBox:
    """Seal and open TOTP secrets for storage."""

    PREFIX = "enc:v2:"
    PLAIN = "plain:"

    def __init__(
        self,
        key: bytes | None,
        *,
        allow_plaintext: bool,
        nonce: Callable[[int], bytes] = os.urandom,
        previous_keys: Sequence[bytes] = (),
    ) -> None:
        self._aead = AESGCM(key) if key is not None else None
        # Rotation: secrets sealed under a previous key still open; `wavry gateway db
        # rekey-totp` re-seals them under the current key, after which the old key is dropped.
        self._previous = [AESGCM(k) for k in previous_keys]
        self._allow_plaintext = allow_plaintext
        self._nonce = nonce

    def needs_reseal(self, stored: str, user_id: str) -> bool:
        """True when ``stored`` is plaintext or sealed under a previous key (and a key is set)."""
        if self._aead is None:
            return False
        if not stored.startswith(self.PREFIX):
            return True
        try:
            blob = base64.b64decode(stored[len(self.PREFIX) :], validate=True)
            self._aead.decrypt(blob[:12], blob[12:], user_id.encode())
        except (binascii.Error, InvalidTag, ValueError):
            return True
        return False

    @property
    def available(self) -> bool:
        return self._aead is not None or self._allow_plaintext

    def seal(self, secret: bytes, user_id: str) -> str:
        if self._aead is None:
            if not self._allow_plaintext:
                raise TotpUnavailable(
                    "2FA is not available: the server has no WAVRY_TOTP_KEY_B64 configured"
                )
            return self.PLAIN + b32encode(secret)
        nonce = self._nonce(12)
        sealed = self._aead.encrypt(nonce, secret, user_id.encode())
        return self.PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, stored: str, user_id: str) -> bytes:
        """The secret, or ``ValueError`` if it cannot be read (wrong key, tampered, unknown)."""
        if stored.startswith(self.PREFIX):
            if self._aead is None:
                raise ValueError("encrypted TOTP secret but no WAVRY_TOTP_KEY_B64 configured")
            try:
                blob = base64.b64decode(stored[len(self.PREFIX) :], validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("stored TOTP secret is malformed") from None
            for aead in (self._aead, *self._previous):
                try:
                    return aead.decrypt(blob[:12], blob[12:], user_id.encode())
                except (InvalidTag, ValueError):
                    continue
            raise ValueError("TOTP secret does not decrypt (wrong key or tampered)")
        if stored.startswith(self.PLAIN):
            try:
                return b32decode(stored[len(self.PLAIN) :])
            except (binascii.Error, ValueError):
                raise ValueError("stored TOTP secret is malformed") from None
        raise ValueError("unknown TOTP secret encoding")
