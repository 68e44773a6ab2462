from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st
from noise.backends.default.ciphers import ChaCha20Cipher

from wavry.rift.errors import DropReason, LocalProtocolError, RemoteProtocolError
from wavry.rift.packet_crypto import (
    EPOCH_BITS,
    MAX_PACKET_ID,
    KeysExhaustedError,
    PacketOpener,
    PacketSealer,
    packet_nonce,
    rekey,
)

KEY = bytes(range(32))
HEADER = b"RI\x01\x02" + bytes(range(20))


def independent_encrypt(key: bytes, packet_id: int, header: bytes, plaintext: bytes) -> bytes:
    # The normative construction, spelled out without the module under test.
    nonce = b"\x00\x00\x00\x00" + packet_id.to_bytes(8, "little")
    return ChaCha20Poly1305(key).encrypt(nonce, plaintext, header)


def independent_rekey(key: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(b"\x00" * 4 + b"\xff" * 8, bytes(32), b"")[:32]


def pair(**kwargs: int) -> tuple[PacketSealer, PacketOpener]:
    bits = kwargs.get("epoch_bits", EPOCH_BITS)
    return (
        PacketSealer(KEY, start_time=0.0, rekey_interval=100.0, epoch_bits=bits),
        PacketOpener(KEY, epoch_bits=bits),
    )


def send(sealer: PacketSealer, now: float, plaintext: bytes) -> tuple[int, bytes]:
    pid = sealer.next_packet_id(now)
    return pid, sealer.seal(HEADER, pid, plaintext)


def test_constants() -> None:
    assert EPOCH_BITS == 40
    assert MAX_PACKET_ID == 2**64 - 2


def test_round_trip_and_ids() -> None:
    sealer, opener = pair()
    ids = []
    for n in range(50):
        plaintext = bytes([n]) * n
        pid, ct = send(sealer, float(n), plaintext)
        ids.append(pid)
        assert len(ct) == len(plaintext) + 16
        assert opener.open(HEADER, pid, ct) == plaintext
    assert ids == list(range(1, 51))
    assert sealer.packets_sealed == 50 and sealer.epoch == 0 and opener.epoch == 0


def test_out_of_order_open() -> None:
    sealer, opener = pair()
    packets = [send(sealer, 0.0, bytes([n])) for n in range(10)]
    for pid, ct in reversed(packets):
        assert opener.open(HEADER, pid, ct) == bytes([pid - 1])


def test_known_answer_nonce_and_ad() -> None:
    sealer, _ = pair()
    for _ in range(0x0102):
        pid = sealer.next_packet_id(0.0)
    assert pid == 0x0102
    ct = sealer.seal(HEADER, pid, b"frame data")
    assert ct == independent_encrypt(KEY, pid, HEADER, b"frame data")
    assert packet_nonce(0x0102) == bytes.fromhex("000000000201000000000000")
    # A big-endian nonce (as the header carries the id) would not match: the byte order is pinned.
    be_nonce = b"\x00" * 4 + pid.to_bytes(8, "big")
    assert ct != ChaCha20Poly1305(KEY).encrypt(be_nonce, b"frame data", HEADER)


def test_rekey_matches_noise_reference_and_spec() -> None:
    reference = ChaCha20Cipher()
    reference.initialize(KEY)
    assert rekey(KEY) == reference.rekey(KEY) == independent_rekey(KEY)
    assert rekey(KEY) != KEY and len(rekey(KEY)) == 32


@pytest.mark.parametrize("bit", [0, 7, 8 * 5 + 3, 8 * len(HEADER) - 1])
def test_header_is_authenticated(bit: int) -> None:
    sealer, opener = pair()
    pid, ct = send(sealer, 0.0, b"payload")
    header = bytearray(HEADER)
    header[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(RemoteProtocolError) as info:
        opener.open(bytes(header), pid, ct)
    assert info.value.reason is DropReason.DECRYPT_FAILED
    assert opener.open(HEADER, pid, ct) == b"payload"


def test_packet_id_is_authenticated() -> None:
    sealer, opener = pair()
    pid, ct = send(sealer, 0.0, b"payload")
    with pytest.raises(RemoteProtocolError) as info:
        opener.open(HEADER, pid + 1, ct)
    assert info.value.reason is DropReason.DECRYPT_FAILED


def test_short_ciphertext() -> None:
    _, opener = pair()
    with pytest.raises(RemoteProtocolError) as info:
        opener.open(HEADER, 1, bytes(15))
    assert info.value.reason is DropReason.DECRYPT_FAILED


def test_wrong_key_fails() -> None:
    sealer, _ = pair()
    opener = PacketOpener(bytes(32))
    pid, ct = send(sealer, 0.0, b"x")
    with pytest.raises(RemoteProtocolError):
        opener.open(HEADER, pid, ct)


def test_epoch_rollover_by_time() -> None:
    sealer, opener = pair()
    assert sealer.next_packet_id(99.9) == 1
    sealer.seal(HEADER, 1, b"a")
    pid = sealer.next_packet_id(100.0)
    assert pid == 1 << 40 and sealer.epoch == 1
    ct = sealer.seal(HEADER, pid, b"b")
    assert ct == independent_encrypt(independent_rekey(KEY), pid, HEADER, b"b")
    assert opener.open(HEADER, pid, ct) == b"b"
    assert opener.epoch == 1
    # The epoch start moved to 100.0: the next rekey is due at 200.0, not before.
    assert sealer.next_packet_id(199.0) == (1 << 40) + 1
    assert sealer.next_packet_id(200.0) == 2 << 40 and sealer.epoch == 2


def test_epoch_rollover_by_id_exhaustion() -> None:
    sealer, opener = pair(epoch_bits=3)
    ids = [sealer.next_packet_id(0.0) for _ in range(9)]
    assert ids == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert sealer.epoch == 1
    ct = sealer.seal(HEADER, 9, b"z")
    key1 = independent_rekey(KEY)
    assert ct == independent_encrypt(key1, 9, HEADER, b"z")
    assert opener.open(HEADER, 9, ct) == b"z" and opener.epoch == 1


def test_ids_never_reused_across_epochs() -> None:
    sealer, _ = pair(epoch_bits=2)
    seen = set()
    last = 0
    for step in range(200):
        pid = sealer.next_packet_id(float(step * 37 % 250))
        assert pid > last and pid not in seen
        seen.add(pid)
        last = pid


def test_seal_must_use_the_id_just_allocated() -> None:
    sealer, _ = pair(epoch_bits=3)
    with pytest.raises(LocalProtocolError):
        sealer.seal(HEADER, 1, b"never allocated")
    pid = sealer.next_packet_id(0.0)
    sealer.seal(HEADER, pid, b"once")
    with pytest.raises(LocalProtocolError, match="reused"):
        sealer.seal(HEADER, pid, b"twice")
    for _ in range(6):
        stale = sealer.next_packet_id(0.0)
    assert stale == 7
    assert sealer.next_packet_id(0.0) == 8  # epoch 1
    with pytest.raises(LocalProtocolError, match="past key epoch"):
        sealer.seal(HEADER, stale, b"late")
    assert sealer.packets_sealed == 1


def test_keys_exhausted_by_epochs() -> None:
    sealer = PacketSealer(KEY, start_time=0.0, rekey_interval=1.0, epoch_bits=62)
    assert [sealer.next_packet_id(float(t)) for t in range(4)] == [1, 1 << 62, 2 << 62, 3 << 62]
    with pytest.raises(KeysExhaustedError):
        sealer.next_packet_id(10.0)
    with pytest.raises(KeysExhaustedError):  # and it stays exhausted
        sealer.next_packet_id(10.0)
    assert issubclass(KeysExhaustedError, LocalProtocolError)


def test_keys_exhausted_by_ids() -> None:
    sealer = PacketSealer(KEY, start_time=0.0, rekey_interval=1e9)
    # Walking 2**64 ids is impossible in a test: jump the allocator to the end of the space.
    sealer._last_id = MAX_PACKET_ID - 1
    sealer._epoch = MAX_PACKET_ID >> EPOCH_BITS
    assert sealer.next_packet_id(0.0) == MAX_PACKET_ID
    with pytest.raises(KeysExhaustedError):
        sealer.next_packet_id(0.0)


def test_opener_keeps_previous_epoch_and_rejects_older() -> None:
    sealer, opener = pair(epoch_bits=3)
    packets = {}
    for _ in range(20):  # ids 1..20 cover epochs 0, 1 and 2
        pid, ct = send(sealer, 0.0, b"p")
        packets[pid] = ct
    assert opener.open(HEADER, 17, packets[17]) == b"p"  # epoch 2, a jump of 2
    assert opener.epoch == 2
    assert opener.open(HEADER, 9, packets[9]) == b"p"  # previous epoch still opens
    assert opener.open(HEADER, 18, packets[18]) == b"p"
    with pytest.raises(RemoteProtocolError) as info:
        opener.open(HEADER, 3, packets[3])  # epoch 0 < current - 1
    assert info.value.reason is DropReason.STALE_KEY_EPOCH


def test_opener_rejects_epoch_too_far_ahead() -> None:
    sealer = PacketSealer(KEY, start_time=0.0, rekey_interval=1.0, epoch_bits=3)
    opener = PacketOpener(KEY, epoch_bits=3, max_epoch_jump=2)
    packets = [send(sealer, float(t), b"q") for t in range(4)]  # epochs 0..3
    pid, ct = packets[3]
    with pytest.raises(RemoteProtocolError) as info:
        opener.open(HEADER, pid, ct)
    assert info.value.reason is DropReason.STALE_KEY_EPOCH
    assert opener.epoch == 0
    assert opener.open(HEADER, *packets[2]) == b"q"  # a jump of exactly 2 is fine
    assert opener.open(HEADER, pid, ct) == b"q"


def test_forged_future_epoch_does_not_advance() -> None:
    sealer, opener = pair(epoch_bits=3)
    genuine = [send(sealer, 0.0, bytes([n])) for n in range(12)]  # epochs 0 and 1
    forged_pid = 2 << 3
    for forged in (bytes(40), b"\xff" * 17, genuine[-1][1]):
        with pytest.raises(RemoteProtocolError) as info:
            opener.open(HEADER, forged_pid, forged)
        assert info.value.reason is DropReason.DECRYPT_FAILED
        assert opener.epoch == 0
    # Genuine traffic of epoch 0 still opens (it would be stale had the forgery advanced us).
    assert opener.open(HEADER, *genuine[0]) == bytes([0])
    assert opener.open(HEADER, *genuine[10]) == bytes([10])
    assert opener.epoch == 1
    assert opener.open(HEADER, *genuine[1]) == bytes([1])


def test_reserved_and_invalid_ids() -> None:
    _, opener = pair()
    with pytest.raises(RemoteProtocolError) as info:
        opener.open(HEADER, 2**64 - 1, bytes(32))
    assert info.value.reason is DropReason.DECRYPT_FAILED
    with pytest.raises(LocalProtocolError):
        opener.open(HEADER, 2**64, bytes(32))
    with pytest.raises(LocalProtocolError):
        opener.open(HEADER, -1, bytes(32))


def test_constructor_validation() -> None:
    with pytest.raises(LocalProtocolError):
        PacketSealer(bytes(31), start_time=0.0)
    with pytest.raises(LocalProtocolError):
        PacketSealer(KEY, start_time=0.0, rekey_interval=0.0)
    with pytest.raises(LocalProtocolError):
        PacketSealer(KEY, start_time=0.0, epoch_bits=64)
    with pytest.raises(LocalProtocolError):
        PacketOpener(bytes(33))
    with pytest.raises(LocalProtocolError):
        PacketOpener(KEY, max_epoch_jump=0)


@settings(max_examples=500)
@given(
    header=st.binary(max_size=40),
    packet_id=st.integers(0, 2**64 - 1),
    ciphertext=st.binary(max_size=100),
    bits=st.sampled_from([3, 8, 40]),
)
def test_random_packets_only_remote_errors(
    header: bytes, packet_id: int, ciphertext: bytes, bits: int
) -> None:
    opener = PacketOpener(KEY, epoch_bits=bits)
    with pytest.raises(RemoteProtocolError) as info:
        opener.open(header, packet_id, ciphertext)
    assert info.value.reason in (DropReason.DECRYPT_FAILED, DropReason.STALE_KEY_EPOCH)
    assert opener.epoch == 0


@settings(max_examples=100)
@given(st.permutations(list(range(24))), st.sampled_from([2, 3]))
def test_reordered_delivery_across_epochs(order: list[int], bits: int) -> None:
    # Ids 1..24 with small epochs; deliver in any order. Everything from the previous epoch up to
    # max_epoch_jump ahead opens; anything else is reported stale, never a crash or wrong plaintext.
    sealer, opener = pair(epoch_bits=bits)
    packets = [send(sealer, 0.0, pid.to_bytes(2, "big")) for pid in range(1, 25)]
    for index in order:
        pid, ct = packets[index]
        try:
            assert opener.open(HEADER, pid, ct) == pid.to_bytes(2, "big")
        except RemoteProtocolError as exc:
            assert exc.reason is DropReason.STALE_KEY_EPOCH
            epoch = pid >> bits
            assert epoch < opener.epoch - 1 or epoch > opener.epoch + 4
