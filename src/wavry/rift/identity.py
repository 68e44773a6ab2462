"""Ed25519 identities, Wavry IDs, and the binding of Noise static keys to identities.

A Wavry ID is the unpadded base64url encoding of a 32-byte Ed25519 public key (43 characters).

Identity binding follows the libp2p-Noise pattern: each peer puts an ``IdentityPayload`` in the
encrypted payload of the handshake message that carries its static key (XX message 2 for the
responder/host, message 3 for the initiator/client). The payload holds the Ed25519 identity key
and a signature over ``IDENTITY_SIGNATURE_CONTEXT || noise_static_public``. Because the Noise
handshake proves possession of the static key, and the signature proves the identity owner vouches
for that static key, a verified payload proves who is at the other end of the session. Other
fields of the payload (session alias, protocol version) are not signed: they are authenticated by
the Noise handshake transcript itself, which the payload travels inside.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf.message import DecodeError

from wavry.rift.errors import IdentityError, LocalProtocolError
from wavry.rift.proto import rift_pb2

__all__ = [
    "IDENTITY_PAYLOAD_MAX_SIZE",
    "IDENTITY_SIGNATURE_CONTEXT",
    "PUBLIC_KEY_SIZE",
    "SEED_SIZE",
    "SIGNATURE_SIZE",
    "WAVRY_ID_LENGTH",
    "Identity",
    "InvalidWavryIdError",
    "VerifiedIdentity",
    "make_identity_payload",
    "public_key_from_wavry_id",
    "verify_identity_payload",
    "verify_signature",
    "wavry_id_from_public_key",
]

SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
WAVRY_ID_LENGTH = 43
NOISE_STATIC_SIZE = 32

#: Domain separation for the signature over the Noise static key, so that the signature can never
#: be confused with (or replayed as) a signature made for any other purpose with the same key.
IDENTITY_SIGNATURE_CONTEXT = b"wavry-rift-v1 noise static key"

#: A well-formed payload is ~110 bytes (32 + 64 + two varints + tags); anything past this cap is
#: rejected before the protobuf parser sees it.
IDENTITY_PAYLOAD_MAX_SIZE = 256

_U32_MAX = 0xFFFF_FFFF
_WAVRY_ID_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_WAVRY_ID_HELP = (
    "a Wavry ID is 43 characters of unpadded base64url (A-Z a-z 0-9 - _) encoding a 32-byte "
    "Ed25519 public key, e.g. the output of `wavry id`"
)


class InvalidWavryIdError(ValueError):
    """A string is not a well-formed Wavry ID."""


def wavry_id_from_public_key(public_key: bytes) -> str:
    """Encode a raw 32-byte Ed25519 public key as a Wavry ID."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise LocalProtocolError(
            f"public key must be {PUBLIC_KEY_SIZE} bytes, got {len(public_key)}"
        )
    return base64.urlsafe_b64encode(public_key).rstrip(b"=").decode("ascii")


def public_key_from_wavry_id(wavry_id: str) -> bytes:
    """Decode a Wavry ID strictly; raise ``InvalidWavryIdError`` unless it is in canonical form.

    Strictness matters: the ID is compared as a string in allow lists and known-hosts files, so two
    spellings of the same key (e.g. with non-zero trailing bits or padding) must not both be valid.
    """
    if not isinstance(wavry_id, str) or _WAVRY_ID_RE.fullmatch(wavry_id) is None:
        raise InvalidWavryIdError(f"not a valid Wavry ID {_shorten(wavry_id)}: {_WAVRY_ID_HELP}")
    try:
        raw = base64.urlsafe_b64decode(wavry_id + "=")
    except (binascii.Error, ValueError):
        raise InvalidWavryIdError(
            f"not a valid Wavry ID {_shorten(wavry_id)}: {_WAVRY_ID_HELP}"
        ) from None
    if len(raw) != PUBLIC_KEY_SIZE or wavry_id_from_public_key(raw) != wavry_id:
        raise InvalidWavryIdError(
            f"not a canonical Wavry ID {_shorten(wavry_id)} (its last character has stray bits): "
            f"{_WAVRY_ID_HELP}"
        )
    return raw


def _shorten(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def verify_signature(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """Return whether ``signature`` is a valid Ed25519 signature of ``data`` by ``public_key``.

    Never raises: malformed keys or signatures simply do not verify.
    """
    if not isinstance(public_key, bytes | bytearray) or len(public_key) != PUBLIC_KEY_SIZE:
        return False
    if not isinstance(signature, bytes | bytearray) or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes(public_key))
        key.verify(bytes(signature), bytes(data))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


class Identity:
    """An Ed25519 identity (the private half). Its public key, as a Wavry ID, names the peer."""

    __slots__ = ("_key", "_public_key", "_seed")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._seed = private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        self._public_key = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def generate(cls, rng: Callable[[int], bytes] = os.urandom) -> Identity:
        """Create a new identity from a 32-byte seed drawn from ``rng``."""
        return cls.from_seed(rng(SEED_SIZE))

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """Rebuild an identity from its 32-byte seed (the RFC 8032 private key)."""
        if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_SIZE:
            got = len(seed) if isinstance(seed, bytes | bytearray) else type(seed).__name__
            raise LocalProtocolError(f"identity seed must be {SEED_SIZE} bytes, got {got}")
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    @property
    def seed(self) -> bytes:
        """The 32-byte secret seed. Store it with care (mode 0600); never log it."""
        return self._seed

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self._public_key

    @property
    def wavry_id(self) -> str:
        return wavry_id_from_public_key(self._public_key)

    def sign(self, data: bytes) -> bytes:
        """Sign ``data``; returns a 64-byte Ed25519 signature."""
        return self._key.sign(bytes(data))

    def __repr__(self) -> str:
        # Never include the seed: identities end up in logs via repr().
        return f"Identity(wavry_id={self.wavry_id!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identity):
            return NotImplemented
        return self._public_key == other._public_key

    def __hash__(self) -> int:
        return hash(self._public_key)


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """The peer's identity, proven by a verified ``IdentityPayload``."""

    public_key: bytes
    wavry_id: str
    session_alias: int
    protocol_version: int


def make_identity_payload(
    identity: Identity,
    noise_static_public: bytes,
    *,
    session_alias: int = 0,
    protocol_version: int = 1,
) -> bytes:
    """Serialize the ``IdentityPayload`` that binds ``noise_static_public`` to ``identity``."""
    if len(noise_static_public) != NOISE_STATIC_SIZE:
        raise LocalProtocolError(
            f"Noise static key must be {NOISE_STATIC_SIZE} bytes, got {len(noise_static_public)}"
        )
    for name, value in (("session_alias", session_alias), ("protocol_version", protocol_version)):
        if not 0 <= value <= _U32_MAX:
            raise LocalProtocolError(f"{name} must fit in a u32, got {value}")
    message = rift_pb2.IdentityPayload(
        identity_key=identity.public_key,
        signature=identity.sign(IDENTITY_SIGNATURE_CONTEXT + bytes(noise_static_public)),
        session_alias=session_alias,
        protocol_version=protocol_version,
    )
    return message.SerializeToString()


def verify_identity_payload(payload: bytes, remote_noise_static: bytes) -> VerifiedIdentity:
    """Parse and verify the peer's ``IdentityPayload`` against its Noise static key.

    ``remote_noise_static`` must be the static key the Noise handshake authenticated
    (``NoiseXX.remote_static``). Raises ``IdentityError`` for anything the peer got wrong.
    """
    if len(remote_noise_static) != NOISE_STATIC_SIZE:
        raise LocalProtocolError(
            f"Noise static key must be {NOISE_STATIC_SIZE} bytes, got {len(remote_noise_static)}"
        )
    if len(payload) == 0:
        raise IdentityError("identity payload missing")
    if len(payload) > IDENTITY_PAYLOAD_MAX_SIZE:
        raise IdentityError(
            f"identity payload of {len(payload)} bytes exceeds {IDENTITY_PAYLOAD_MAX_SIZE}"
        )
    message = rift_pb2.IdentityPayload()
    try:
        message.ParseFromString(bytes(payload))
    except (DecodeError, ValueError) as exc:
        raise IdentityError(f"identity payload does not parse: {exc}") from None
    if len(message.identity_key) != PUBLIC_KEY_SIZE:
        raise IdentityError(
            f"identity key must be {PUBLIC_KEY_SIZE} bytes, got {len(message.identity_key)}"
        )
    if len(message.signature) != SIGNATURE_SIZE:
        raise IdentityError(
            f"identity signature must be {SIGNATURE_SIZE} bytes, got {len(message.signature)}"
        )
    signed = IDENTITY_SIGNATURE_CONTEXT + bytes(remote_noise_static)
    if not verify_signature(message.identity_key, message.signature, signed):
        raise IdentityError("identity signature over the Noise static key does not verify")
    return VerifiedIdentity(
        public_key=message.identity_key,
        wavry_id=wavry_id_from_public_key(message.identity_key),
        session_alias=message.session_alias,
        protocol_version=message.protocol_version,
    )
