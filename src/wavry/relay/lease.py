"""Relay leases: PASETO v4.public tokens signed by the master, checked by relays.

Shared by both sides: the master calls ``sign_lease``; the relay builds a ``LeaseVerifier`` with
the master's public keys (several at once during a key rotation) and calls ``verify``.

Token: ``v4.public.`` + base64url(message ‖ Ed25519 signature), no footer, no implicit assertion.
Claims (JSON object, every one required):

==========  ============================================================================
``sub``     Wavry ID of the peer the lease is for
``sid``     session UUID (string form); must equal the relay header's session id
``role``    ``"client"`` or ``"server"``: the role *that peer* presents (the original gave the
            requester the other peer's role; each peer now gets its own)
``rid``     relay id the lease is valid on
``kid``     id of the master key that signed it; must name a trusted key, and that key must verify
``iat``     issued at, RFC 3339 (UTC, ``Z``, whole seconds)
``nbf``     not before, RFC 3339
``exp``     expiry, RFC 3339
``slimit``  soft bitrate limit, kbit/s
``hlimit``  hard bitrate limit, kbit/s
==========  ============================================================================

Unlike the original there is one set of time claims (it had two, one of them checked without
any clock skew), and every failure is a ``LeaseRejected`` carrying the wire reject code — never a
silent drop, never another exception type.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

import pyseto
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from wavry.relay.wire import MAX_TOKEN_SIZE, RejectCode

__all__ = [
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_MAX_TTL",
    "LeaseClaims",
    "LeaseRejected",
    "LeaseVerifier",
    "format_time",
    "key_id_for",
    "public_key_from_private",
    "sign_lease",
]

DEFAULT_CLOCK_SKEW = 30.0
DEFAULT_MAX_TTL = 3600.0
_PREFIX = "v4.public."
_SIG_SIZE = 64
_MAX_SUB = 256
_U32_MAX = 0xFFFFFFFF


class LeaseRejected(Exception):
    """The lease is not acceptable. ``code`` is the LEASE_REJECT reason to answer with."""

    def __init__(self, code: RejectCode, reason: str) -> None:
        super().__init__(f"{code.name}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LeaseClaims:
    """Lease contents. Times are unix seconds (UTC); tokens carry them as RFC 3339 strings."""

    sub: str
    sid: str
    role: str
    rid: str
    iat: float
    nbf: float
    exp: float
    slimit: int = 50_000
    hlimit: int = 100_000
    kid: str = ""

    def __post_init__(self) -> None:
        if not self.sub or len(self.sub) > _MAX_SUB:
            raise ValueError("sub must be a non-empty Wavry ID")
        try:
            parsed = uuid.UUID(self.sid)
        except (ValueError, TypeError, AttributeError):
            raise ValueError(f"sid must be a UUID string, got {self.sid!r}") from None
        if parsed.int == 0:
            raise ValueError("sid must not be the nil UUID")
        if self.role not in ("client", "server"):
            raise ValueError("role must be 'client' or 'server'")
        if not self.rid:
            raise ValueError("rid must be non-empty")
        for name in ("iat", "nbf", "exp"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite unix time")
        if not (0 <= self.slimit <= _U32_MAX and 0 <= self.hlimit <= _U32_MAX):
            raise ValueError("slimit/hlimit must be within u32")

    @property
    def session_bytes(self) -> bytes:
        """The 16 raw bytes of ``sid`` (what the relay header carries)."""
        return uuid.UUID(self.sid).bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "sid": str(uuid.UUID(self.sid)),
            "role": self.role,
            "rid": self.rid,
            "kid": self.kid,
            "iat": format_time(self.iat),
            "nbf": format_time(self.nbf),
            "exp": format_time(self.exp),
            "slimit": self.slimit,
            "hlimit": self.hlimit,
        }


def format_time(unix: float) -> str:
    """RFC 3339, UTC, whole seconds (rounded down)."""
    return datetime.fromtimestamp(math.floor(unix), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: object, name: str) -> float:
    if not isinstance(value, str) or len(value) > 40:
        raise LeaseRejected(RejectCode.INVALID_SIGNATURE, f"{name} must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise LeaseRejected(RejectCode.INVALID_SIGNATURE, f"{name} is not RFC 3339") from None
    if parsed.tzinfo is None:
        raise LeaseRejected(RejectCode.INVALID_SIGNATURE, f"{name} has no time zone")
    return parsed.timestamp()


def public_key_from_private(private_key: bytes) -> bytes:
    """The 32-byte Ed25519 public key of a 32-byte seed."""
    key = Ed25519PrivateKey.from_private_bytes(private_key)
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id_for(public_key: bytes) -> str:
    """Default key id of a master key: ``k`` + hex of its first 8 bytes (as the original)."""
    return "k" + public_key[:8].hex()


def sign_lease(claims: LeaseClaims, private_key: bytes, kid: str) -> str:
    """Sign ``claims`` (its ``kid`` is set to ``kid``) with the master's 32-byte Ed25519 seed."""
    if len(private_key) != 32:
        raise ValueError("private key must be the 32-byte Ed25519 seed")
    if not kid:
        raise ValueError("kid must be non-empty")
    claims = replace(claims, kid=kid)
    key = pyseto.Key.from_asymmetric_key_params(4, d=private_key)
    payload = json.dumps(claims.to_json(), separators=(",", ":")).encode()
    token = pyseto.encode(key, payload).decode("ascii")
    if len(token) > MAX_TOKEN_SIZE:
        raise ValueError("lease token exceeds the wire limit")
    return token


def _unverified_kid(token: str) -> str:
    """The ``kid`` claim, read before verification only to pick the key that must verify it."""
    parts = token.split(".")
    if len(parts) != 3 or f"{parts[0]}.{parts[1]}." != _PREFIX:
        raise LeaseRejected(RejectCode.INVALID_SIGNATURE, "not a v4.public token without footer")
    body = parts[2]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise LeaseRejected(RejectCode.INVALID_SIGNATURE, "bad base64") from None
    if len(raw) <= _SIG_SIZE:
        raise LeaseRejected(RejectCode.INVALID_SIGNATURE, "token too short")
    try:
        doc = json.loads(raw[:-_SIG_SIZE])
    except (ValueError, RecursionError):
        # unauthenticated bytes: deeply nested JSON must be a reject, not a crash (fuzz smoke)
        raise LeaseRejected(RejectCode.INVALID_SIGNATURE, "claims are not JSON") from None
    kid = doc.get("kid") if isinstance(doc, dict) else None
    if not isinstance(kid, str) or not kid:
        raise LeaseRejected(RejectCode.INVALID_SIGNATURE, "no kid claim")
    return kid


class LeaseVerifier:
    """Checks lease tokens against the trusted master keys (``kid`` → 32-byte public key)."""

    def __init__(
        self,
        trusted_keys: Mapping[str, bytes],
        *,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        max_ttl: float = DEFAULT_MAX_TTL,
    ) -> None:
        if clock_skew < 0 or max_ttl <= 0:
            raise ValueError("clock_skew must be >= 0 and max_ttl > 0")
        self._keys: dict[str, Any] = {}
        for kid, pub in trusted_keys.items():
            self.add_key(kid, pub)
        self.clock_skew = clock_skew
        self.max_ttl = max_ttl

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def add_key(self, kid: str, public_key: bytes) -> None:
        if not kid or len(public_key) != 32:
            raise ValueError("a trusted key needs a kid and 32 public-key bytes")
        self._keys[kid] = pyseto.Key.from_asymmetric_key_params(4, x=public_key)

    def remove_key(self, kid: str) -> None:
        self._keys.pop(kid, None)

    def verify(
        self, token: str, *, now: float, relay_id: str, session_id: bytes, role: str
    ) -> LeaseClaims:
        """Return the claims of a lease valid at ``now`` (unix seconds) for this relay, session
        (16 raw bytes) and role, or raise ``LeaseRejected`` with the code to answer."""
        bad = RejectCode.INVALID_SIGNATURE
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_SIZE:
            raise LeaseRejected(bad, "token size")
        kid = _unverified_kid(token)
        key = self._keys.get(kid)
        if key is None:
            raise LeaseRejected(bad, f"unknown key id {kid[:32]!r}")
        try:
            payload = pyseto.decode(key, token).payload
            if not isinstance(payload, bytes):
                raise TypeError("payload")
            doc = json.loads(payload)
        except (pyseto.PysetoError, ValueError, TypeError, RecursionError):
            raise LeaseRejected(bad, "signature does not verify") from None
        if not isinstance(doc, dict):
            raise LeaseRejected(bad, "claims are not an object")
        claims = self._claims(doc)
        if claims.kid != kid:  # the verified kid is the one we picked the key by
            raise LeaseRejected(bad, "kid changed")
        skew = self.clock_skew
        if claims.exp <= claims.iat or claims.exp - claims.iat > self.max_ttl:
            raise LeaseRejected(bad, "validity window is empty or longer than allowed")
        if now >= claims.exp + skew:
            raise LeaseRejected(RejectCode.EXPIRED, "lease expired")
        if claims.nbf > now + skew or claims.iat > now + skew:
            raise LeaseRejected(RejectCode.EXPIRED, "lease not yet valid")
        if claims.session_bytes != session_id:
            raise LeaseRejected(bad, "lease is for another session")
        if claims.role != role:
            raise LeaseRejected(bad, f"lease is for role {claims.role}")
        if claims.rid != relay_id:
            raise LeaseRejected(RejectCode.WRONG_RELAY, "lease is for another relay")
        return claims

    def _claims(self, doc: dict[str, Any]) -> LeaseClaims:
        bad = RejectCode.INVALID_SIGNATURE
        s = {name: doc.get(name) for name in ("sub", "sid", "role", "rid", "kid")}
        for name, value in s.items():
            if not isinstance(value, str):
                raise LeaseRejected(bad, f"claim {name} missing or not a string")
        limits = {name: doc.get(name) for name in ("slimit", "hlimit")}
        for name, value in limits.items():
            if type(value) is not int:
                raise LeaseRejected(bad, f"claim {name} missing or not an integer")
        times = {name: _parse_time(doc.get(name), name) for name in ("iat", "nbf", "exp")}
        try:
            return LeaseClaims(
                sub=cast(str, s["sub"]),
                sid=cast(str, s["sid"]),
                role=cast(str, s["role"]),
                rid=cast(str, s["rid"]),
                kid=cast(str, s["kid"]),
                iat=times["iat"],
                nbf=times["nbf"],
                exp=times["exp"],
                slimit=cast(int, limits["slimit"]),
                hlimit=cast(int, limits["hlimit"]),
            )
        except (ValueError, OverflowError) as exc:
            raise LeaseRejected(bad, str(exc)) from None
