"""Transport AEAD of RIFT: per-packet ChaCha20-Poly1305 with key epochs.

Normative rules (see docs/protocol.md):

- AEAD is ChaCha20-Poly1305 (RFC 8439). Nonce = 4 zero bytes || packet_id as u64 little-endian
  (Noise's ChaChaPoly nonce). Associated data = the packet's full physical header bytes, so no
  header field can be changed in flight. Ciphertext = encrypted payload || 16-byte tag.
- Packet ids are allocated strictly increasing from 1 and never reused (a retransmission is a new
  packet), so every (key, nonce) pair is used once.
- Key epochs: ``epoch(packet_id) = packet_id >> 40``. Epoch 0 uses the Noise ``Split()`` key for
  this direction; the key of epoch e+1 is Noise REKEY of the key of epoch e:
  ``k' = ChaCha20-Poly1305-Encrypt(k, nonce = 4 zero bytes || 8 bytes 0xFF, ad = "", 32 zero
  bytes)[:32]``. The sender moves to the next epoch (first id ``(e+1) << 40``) after
  ``rekey_interval`` seconds or when the epoch's ids run out. Packet id ``2**64 - 1`` is never
  used: its nonce is the one REKEY uses.
- The receiver keeps the current and the previous epoch's key. A packet of a newer epoch (at most
  ``max_epoch_jump`` ahead) is opened with a tentatively derived key, which becomes current only
  once the packet authenticates, so forged packets cannot move the receiver's epoch.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wavry.rift.errors import DropReason, LocalProtocolError, RemoteProtocolError

__all__ = [
    "DEFAULT_MAX_EPOCH_JUMP",
    "DEFAULT_REKEY_INTERVAL",
    "EPOCH_BITS",
    "KEY_SIZE",
    "MAX_PACKET_ID",
    "TAG_SIZE",
    "KeysExhaustedError",
    "PacketOpener",
    "PacketSealer",
    "packet_nonce",
    "rekey",
]

KEY_SIZE = 32
TAG_SIZE = 16
EPOCH_BITS = 40
#: The highest usable packet id; 2**64 - 1 is reserved because its nonce is the REKEY nonce.
MAX_PACKET_ID = 2**64 - 2
DEFAULT_REKEY_INTERVAL = 86400.0  # seconds: one key per day even on an idle-but-open session
DEFAULT_MAX_EPOCH_JUMP = 4

_U64_MAX = 2**64 - 1
_REKEY_NONCE = b"\x00\x00\x00\x00" + b"\xff" * 8
_ZERO_KEY_BLOCK = bytes(KEY_SIZE)


class KeysExhaustedError(LocalProtocolError):
    """Every packet id of the session has been used; the session must be re-established."""


def packet_nonce(packet_id: int) -> bytes:
    """The 12-byte AEAD nonce of a packet: 4 zero bytes || packet_id as u64 little-endian."""
    return b"\x00\x00\x00\x00" + packet_id.to_bytes(8, "little")


def rekey(key: bytes) -> bytes:
    """Noise REKEY: the first 32 bytes of ENCRYPT(k, 2**64 - 1, "", 32 zero bytes)."""
    return ChaCha20Poly1305(key).encrypt(_REKEY_NONCE, _ZERO_KEY_BLOCK, b"")[:KEY_SIZE]


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
        raise LocalProtocolError(f"transport key must be {KEY_SIZE} bytes")
    return bytes(key)


def _check_epoch_bits(epoch_bits: int) -> int:
    # 40 is the protocol value; other values exist so tests can reach epoch boundaries.
    if not 1 <= epoch_bits <= 63:
        raise LocalProtocolError(f"epoch_bits must be in 1..63, got {epoch_bits}")
    return epoch_bits


class PacketSealer:
    """Allocates packet ids and encrypts outgoing packets for one direction of a session.

    Usage per packet: ``pid = sealer.next_packet_id(now)``, build the header holding ``pid``, then
    ``sealer.seal(header, pid, plaintext)``. ``seal`` only accepts the id just allocated, once.
    """

    def __init__(
        self,
        send_key: bytes,
        *,
        start_time: float,
        rekey_interval: float = DEFAULT_REKEY_INTERVAL,
        epoch_bits: int = EPOCH_BITS,
    ) -> None:
        if not rekey_interval > 0:
            raise LocalProtocolError(f"rekey_interval must be positive, got {rekey_interval}")
        self._key = _check_key(send_key)
        self._aead = ChaCha20Poly1305(self._key)
        self._bits = _check_epoch_bits(epoch_bits)
        self._interval = rekey_interval
        self._epoch = 0
        self._epoch_start = start_time
        self._last_id = 0  # the most recently allocated id (0: none yet)
        self._pending: int | None = None  # allocated, not yet sealed
        self._sealed = 0

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def packets_sealed(self) -> int:
        return self._sealed

    @property
    def last_packet_id(self) -> int:
        """The most recently allocated packet id (0 before the first)."""
        return self._last_id

    def next_packet_id(self, now: float) -> int:
        """Allocate the next packet id, moving to a new key epoch when one is due."""
        candidate = self._last_id + 1
        due_by_time = now - self._epoch_start >= self._interval
        if due_by_time or candidate >> self._bits > self._epoch:
            candidate = (self._epoch + 1) << self._bits
            if candidate > MAX_PACKET_ID:
                raise KeysExhaustedError("all packet ids of this session are used; reconnect")
            self._epoch += 1
            self._key = rekey(self._key)
            self._aead = ChaCha20Poly1305(self._key)
            self._epoch_start = now
        elif candidate > MAX_PACKET_ID:
            raise KeysExhaustedError("all packet ids of this session are used; reconnect")
        self._last_id = candidate
        self._pending = candidate
        return candidate

    def seal(self, header: bytes, packet_id: int, plaintext: bytes) -> bytes:
        """Encrypt ``plaintext`` with ``header`` as associated data; returns ciphertext || tag."""
        if packet_id != self._pending:
            if packet_id >> self._bits < self._epoch:
                raise LocalProtocolError(
                    f"packet id {packet_id} belongs to a past key epoch (now {self._epoch})"
                )
            raise LocalProtocolError(
                f"packet id {packet_id} was not just allocated by next_packet_id() or was "
                "already sealed; ids must never be reused"
            )
        self._pending = None
        self._sealed += 1
        return self._aead.encrypt(packet_nonce(packet_id), bytes(plaintext), bytes(header))


class PacketOpener:
    """Authenticates and decrypts incoming packets for one direction of a session.

    Replay protection is not done here: check a ``ReplayWindow`` before ``open`` and update it
    after ``open`` succeeds.
    """

    def __init__(
        self,
        recv_key: bytes,
        *,
        max_epoch_jump: int = DEFAULT_MAX_EPOCH_JUMP,
        epoch_bits: int = EPOCH_BITS,
    ) -> None:
        if max_epoch_jump < 1:
            raise LocalProtocolError(f"max_epoch_jump must be at least 1, got {max_epoch_jump}")
        self._bits = _check_epoch_bits(epoch_bits)
        self._max_jump = max_epoch_jump
        self._epoch = 0
        self._current = ChaCha20Poly1305(_check_key(recv_key))
        self._current_key = bytes(recv_key)
        self._previous: ChaCha20Poly1305 | None = None
        # Keys of epochs current+1, current+2, ... derived so far; pure function of the current
        # key, so caching them cannot be influenced by forged packets. Bounded by max_epoch_jump.
        self._future_keys: list[bytes] = []

    @property
    def epoch(self) -> int:
        """The newest key epoch a packet has authenticated in."""
        return self._epoch

    def open(self, header: bytes, packet_id: int, ciphertext: bytes) -> bytes:
        """Return the plaintext; raise ``RemoteProtocolError`` if the packet is not acceptable."""
        if not isinstance(packet_id, int) or not 0 <= packet_id <= _U64_MAX:
            raise LocalProtocolError(f"packet id must be a u64, got {packet_id!r}")
        if packet_id > MAX_PACKET_ID:
            raise RemoteProtocolError(DropReason.DECRYPT_FAILED, "reserved packet id")
        if len(ciphertext) < TAG_SIZE:
            raise RemoteProtocolError(DropReason.DECRYPT_FAILED, "ciphertext shorter than the tag")
        packet_epoch = packet_id >> self._bits
        jump = packet_epoch - self._epoch
        if jump < -1:
            raise RemoteProtocolError(
                DropReason.STALE_KEY_EPOCH, f"epoch {packet_epoch} is older than {self._epoch - 1}"
            )
        if jump > self._max_jump:
            raise RemoteProtocolError(
                DropReason.STALE_KEY_EPOCH,
                f"epoch {packet_epoch} is more than {self._max_jump} ahead of {self._epoch}",
            )
        if jump == 0:
            return self._decrypt(self._current, header, packet_id, ciphertext)
        if jump == -1:
            if self._previous is None:
                raise RemoteProtocolError(DropReason.STALE_KEY_EPOCH, "no previous epoch")
            return self._decrypt(self._previous, header, packet_id, ciphertext)
        return self._open_future(jump, header, packet_id, ciphertext)

    def _open_future(self, jump: int, header: bytes, packet_id: int, ciphertext: bytes) -> bytes:
        while len(self._future_keys) < jump:
            base = self._future_keys[-1] if self._future_keys else self._current_key
            self._future_keys.append(rekey(base))
        candidate = ChaCha20Poly1305(self._future_keys[jump - 1])
        plaintext = self._decrypt(candidate, header, packet_id, ciphertext)
        # Authenticated: commit. The epoch just before the new one becomes "previous".
        previous_key = self._future_keys[jump - 2] if jump >= 2 else self._current_key
        self._previous = ChaCha20Poly1305(previous_key)
        self._current_key = self._future_keys[jump - 1]
        self._current = candidate
        self._epoch += jump
        self._future_keys = self._future_keys[jump:]
        return plaintext

    @staticmethod
    def _decrypt(aead: ChaCha20Poly1305, header: bytes, packet_id: int, ciphertext: bytes) -> bytes:
        try:
            return aead.decrypt(packet_nonce(packet_id), bytes(ciphertext), bytes(header))
        except InvalidTag:
            raise RemoteProtocolError(DropReason.DECRYPT_FAILED, "authentication failed") from None
