"""Noise_XX_25519_ChaChaPoly_BLAKE2s, written from the Noise Protocol Framework spec (rev 34).

Only what RIFT needs is implemented: the XX pattern with X25519, ChaCha20-Poly1305 and BLAKE2s,
no PSK, no fallback. Writing it here (rather than wrapping a library) keeps it fully typed,
sans-IO and lets tests inject ephemeral keys; it is cross-checked against the reference library
``noiseprotocol`` and the cacophony test vectors.

XX message flow::

    -> e                  (message 1: 32 + len(payload) bytes; the payload is NOT encrypted)
    <- e, ee, s, es       (message 2: 32 + 48 + len(payload) + 16 bytes)
    -> s, se              (message 3: 48 + len(payload) + 16 bytes)

Message 1's payload travels in clear text (no key exists yet), so RIFT sends nothing secret in it;
identity payloads go in messages 2 (host) and 3 (client).

A handshake that fails (``HandshakeError`` from ``read_message``) is left unusable: every later
call raises ``LocalProtocolError``. The caller must discard it and, if it wants, start a new one
with fresh ephemeral keys.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wavry.rift.errors import HandshakeError, LocalProtocolError

__all__ = [
    "DHLEN",
    "HASHLEN",
    "MAX_MESSAGE_SIZE",
    "PROLOGUE",
    "PROTOCOL_NAME",
    "TAGLEN",
    "NoiseXX",
    "x25519_public_key",
]

PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_BLAKE2s"
#: Mixed into the handshake hash before any message, so a peer speaking another RIFT version (or
#: any other protocol built on the same Noise suite) fails the handshake instead of misparsing.
PROLOGUE = b"wavry-rift/1"

DHLEN = 32
HASHLEN = 32
TAGLEN = 16
MAX_MESSAGE_SIZE = 65535  # Noise spec §3: no message may exceed this

_KEYLEN = 32
_MAX_NONCE = 2**64 - 1  # reserved by the spec (used by REKEY), never used for a message

# Token lists of the XX pattern, one per handshake message.
_PATTERN: tuple[tuple[str, ...], ...] = (
    ("e",),
    ("e", "ee", "s", "es"),
    ("s", "se"),
)
# Fixed bytes each message adds to its payload (keys, encrypted keys, tags).
_OVERHEAD = (DHLEN, DHLEN + DHLEN + TAGLEN + TAGLEN, DHLEN + TAGLEN + TAGLEN)


def _hash(data: bytes) -> bytes:
    return hashlib.blake2s(data).digest()


def _hmac(key: bytes, data: bytes) -> bytes:
    # hmac with blake2s uses BLOCKLEN = 64, as the Noise spec requires for HMAC-BLAKE2s.
    return hmac.new(key, data, hashlib.blake2s).digest()


def _hkdf2(chaining_key: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    temp_key = _hmac(chaining_key, ikm)
    out1 = _hmac(temp_key, b"\x01")
    out2 = _hmac(temp_key, out1 + b"\x02")
    return out1, out2


def _nonce(n: int) -> bytes:
    # The Noise ChaChaPoly nonce: 32 zero bits, then the 64-bit counter little-endian.
    return b"\x00\x00\x00\x00" + n.to_bytes(8, "little")


def x25519_public_key(private_key: bytes) -> bytes:
    """The X25519 public key of a 32-byte private key."""
    return (
        X25519PrivateKey.from_private_bytes(_check_key("private_key", private_key))
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def _dh(private_key: X25519PrivateKey, public_key: bytes) -> bytes:
    try:
        return private_key.exchange(X25519PublicKey.from_public_bytes(public_key))
    except ValueError:
        # cryptography refuses low-order points (all-zero shared secret): a malicious peer.
        raise HandshakeError("peer sent an invalid (low-order) X25519 public key") from None


class _CipherState:
    __slots__ = ("_aead", "n")

    def __init__(self) -> None:
        self._aead: ChaCha20Poly1305 | None = None
        self.n = 0

    def initialize_key(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)
        self.n = 0

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self._aead is None:
            return plaintext
        if self.n >= _MAX_NONCE:
            raise LocalProtocolError("Noise cipher nonce exhausted")
        ciphertext = self._aead.encrypt(_nonce(self.n), plaintext, ad)
        self.n += 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self._aead is None:
            return ciphertext
        if self.n >= _MAX_NONCE:
            raise HandshakeError("Noise cipher nonce exhausted")
        try:
            plaintext = self._aead.decrypt(_nonce(self.n), ciphertext, ad)
        except InvalidTag:
            raise HandshakeError("handshake message failed authentication") from None
        self.n += 1
        return plaintext


class _SymmetricState:
    __slots__ = ("ck", "cipher", "h")

    def __init__(self, protocol_name: bytes) -> None:
        if len(protocol_name) <= HASHLEN:
            self.h = protocol_name.ljust(HASHLEN, b"\x00")
        else:
            self.h = _hash(protocol_name)
        self.ck = self.h
        self.cipher = _CipherState()

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp_k = _hkdf2(self.ck, ikm)
        self.cipher.initialize_key(temp_k[:_KEYLEN])

    def mix_hash(self, data: bytes) -> None:
        self.h = _hash(self.h + data)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[bytes, bytes]:
        k1, k2 = _hkdf2(self.ck, b"")
        return k1[:_KEYLEN], k2[:_KEYLEN]


def _check_key(name: str, key: bytes) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != DHLEN:
        raise LocalProtocolError(f"{name} must be {DHLEN} bytes")
    return bytes(key)


class NoiseXX:
    """One side of a Noise_XX_25519_ChaChaPoly_BLAKE2s handshake.

    The initiator writes messages 1 and 3 and reads message 2; the responder the opposite. After
    message 3, ``complete`` is true and ``split()`` / ``transport_keys()`` give the transport keys.
    """

    def __init__(
        self,
        *,
        initiator: bool,
        static_private: bytes,
        prologue: bytes = PROLOGUE,
        ephemeral_private: bytes | None = None,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._initiator = initiator
        self._s = X25519PrivateKey.from_private_bytes(_check_key("static_private", static_private))
        self._s_pub = self._s.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._e_seed = (
            None
            if ephemeral_private is None
            else _check_key("ephemeral_private", ephemeral_private)
        )
        self._e: X25519PrivateKey | None = None
        self._rng = rng
        self._re: bytes | None = None
        self._rs: bytes | None = None
        self._ss = _SymmetricState(PROTOCOL_NAME)
        self._ss.mix_hash(bytes(prologue))
        self._index = 0  # next handshake message (0..2); 3 once complete
        self._failed = False
        self._keys: tuple[bytes, bytes] | None = None

    # -- state ------------------------------------------------------------------------------------

    @property
    def initiator(self) -> bool:
        return self._initiator

    @property
    def complete(self) -> bool:
        return self._keys is not None

    @property
    def failed(self) -> bool:
        """True once a received message failed; the handshake must then be discarded."""
        return self._failed

    @property
    def writes_next(self) -> bool:
        """Whether the next step is ``write_message`` (False: ``read_message`` or finished)."""
        return not self.complete and (self._index % 2 == 0) == self._initiator

    @property
    def static_public(self) -> bytes:
        return self._s_pub

    @property
    def remote_static(self) -> bytes | None:
        """The peer's static public key, once received (authenticated only once complete)."""
        return self._rs

    @property
    def handshake_hash(self) -> bytes:
        """Noise's ``h``; final (and equal on both sides) once the handshake is complete."""
        return self._ss.h

    def split(self) -> tuple[bytes, bytes]:
        """The (k1, k2) keys of Noise's Split(); the initiator sends with k1, the responder k2."""
        if self._keys is None:
            raise LocalProtocolError("the handshake is not complete")
        return self._keys

    def transport_keys(self) -> tuple[bytes, bytes]:
        """``(send_key, recv_key)`` for this side."""
        k1, k2 = self.split()
        return (k1, k2) if self._initiator else (k2, k1)

    # -- messages ---------------------------------------------------------------------------------

    def _check_turn(self, writing: bool) -> None:
        if self._failed:
            raise LocalProtocolError("this handshake failed and must be discarded")
        if self.complete:
            raise LocalProtocolError("the handshake is already complete")
        if self.writes_next != writing:
            verb = "write" if writing else "read"
            raise LocalProtocolError(f"not our turn to {verb} handshake message {self._index + 1}")

    def write_message(self, payload: bytes = b"") -> bytes:
        """Produce the next handshake message carrying ``payload``."""
        self._check_turn(writing=True)
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise LocalProtocolError(
                f"handshake payload must be bytes, not {type(payload).__name__}"
            )
        payload = bytes(payload)
        if _OVERHEAD[self._index] + len(payload) > MAX_MESSAGE_SIZE:
            raise LocalProtocolError(
                f"handshake payload of {len(payload)} bytes makes the message exceed "
                f"{MAX_MESSAGE_SIZE} bytes"
            )
        out = bytearray()
        for token in _PATTERN[self._index]:
            if token == "e":
                self._e = self._make_ephemeral()
                e_pub = self._e.public_key().public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw
                )
                out += e_pub
                self._ss.mix_hash(e_pub)
            elif token == "s":
                out += self._ss.encrypt_and_hash(self._s_pub)
            else:
                self._mix_dh(token)
        out += self._ss.encrypt_and_hash(payload)
        self._advance()
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        """Consume the peer's next handshake message; return its decrypted payload.

        Raises ``HandshakeError`` if the message is malformed or does not authenticate; the
        handshake is then unusable.
        """
        self._check_turn(writing=False)
        if not isinstance(message, bytes | bytearray | memoryview):
            raise LocalProtocolError(
                f"handshake message must be bytes, not {type(message).__name__}"
            )
        try:
            return self._read(bytes(message))
        except HandshakeError:
            self._failed = True
            self._e = None
            raise

    def _read(self, message: bytes) -> bytes:
        if len(message) > MAX_MESSAGE_SIZE:
            raise HandshakeError(f"handshake message of {len(message)} bytes is oversize")
        if len(message) < _OVERHEAD[self._index]:
            raise HandshakeError(
                f"handshake message {self._index + 1} is {len(message)} bytes, "
                f"needs at least {_OVERHEAD[self._index]}"
            )
        offset = 0
        for token in _PATTERN[self._index]:
            if token == "e":
                self._re = message[offset : offset + DHLEN]
                offset += DHLEN
                # Refuse a low-order key now, not in our next write_message (which would then
                # have to raise a remote error): a trial DH fails exactly for such keys.
                _dh(self._s, self._re)
                self._ss.mix_hash(self._re)
            elif token == "s":
                # The cipher has a key whenever "s" appears in XX, so the key is encrypted.
                encrypted = message[offset : offset + DHLEN + TAGLEN]
                offset += DHLEN + TAGLEN
                self._rs = self._ss.decrypt_and_hash(encrypted)
            else:
                self._mix_dh(token)
        payload = self._ss.decrypt_and_hash(message[offset:])
        self._advance()
        return payload

    def _make_ephemeral(self) -> X25519PrivateKey:
        seed = self._e_seed if self._e_seed is not None else self._rng(DHLEN)
        self._e_seed = None
        return X25519PrivateKey.from_private_bytes(_check_key("rng output", seed))

    def _mix_dh(self, token: str) -> None:
        # "es" is DH(initiator's e, responder's s); "se" is DH(initiator's s, responder's e).
        local_ephemeral = (token[0] == "e") if self._initiator else (token[1] == "e")
        remote_ephemeral = (token[1] == "e") if self._initiator else (token[0] == "e")
        local = self._e if local_ephemeral else self._s
        remote = self._re if remote_ephemeral else self._rs
        if local is None or remote is None:  # unreachable for the fixed XX pattern
            raise LocalProtocolError(f"missing key for DH token {token!r}")
        self._ss.mix_key(_dh(local, remote))

    def _advance(self) -> None:
        self._index += 1
        if self._index == len(_PATTERN):
            self._keys = self._ss.split()
            self._e = None  # forward secrecy: the ephemeral key is not needed any more
