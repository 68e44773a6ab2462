from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st
from noise.connection import Keypair, NoiseConnection

from wavry.rift.errors import HandshakeError, LocalProtocolError, RemoteProtocolError
from wavry.rift.noise import MAX_MESSAGE_SIZE, PROLOGUE, PROTOCOL_NAME, NoiseXX, x25519_public_key

# noiseprotocol warns whenever an ephemeral key is injected, which is exactly what these tests do.
pytestmark = pytest.mark.filterwarnings("ignore:One of ephemeral keypairs:UserWarning")

h = bytes.fromhex

# Official test vector for Noise_XX_25519_ChaChaPoly_BLAKE2s from the cacophony suite (the
# cacophony.txt vector file distributed with the reference implementations). Keys are private keys.
VEC_PROLOGUE = h("4a6f686e2047616c74")  # "John Galt"
VEC_INIT_STATIC = h("e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1")
VEC_INIT_EPHEMERAL = h("893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a")
VEC_RESP_STATIC = h("4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893")
VEC_RESP_EPHEMERAL = h("bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b")
VEC_HANDSHAKE_HASH = h("6c4c56cf71612f72d05ceb96c0155e6f4ea54a26b504c93de632a2db4a49d200")
VEC_MESSAGES = [
    (
        "4c756477696720766f6e204d69736573",
        "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944"
        "4c756477696720766f6e204d69736573",
    ),
    (
        "4d757272617920526f746862617264",
        "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088437c365eb362a1c991b0557fe8"
        "a7fb187d99346765d93ec63db6c1b01504ebeec55a2298d2dbff80eff034d20595153f63a196a6cead1e11b2"
        "bb13e336fa13616dd3e8b0a070c882ed3f1a78c7c06c93",
    ),
    (
        "462e20412e20486179656b",
        "46c3307de83b014258717d97781c1f50936d8b7d50c0722a1739654d10392d415b670c114f79b9a4f805415"
        "70f77ce88802efa4220cff733e7b5668ba38059ec904b4b8eef9448085faf51",
    ),
    # Transport messages alternate responder -> initiator, initiator -> responder, ...
    ("4361726c204d656e676572", "d5e83adfaac5dc324a68f1862df54549e56d209fba707205f328b2"),
    (
        "4a65616e2d426170746973746520536179",
        "d102c9029b1f55c788f561ba7737afbccef9c9f1bf2f238167fd40ba9c1c134867",
    ),
    (
        "457567656e2042f6686d20766f6e2042617765726b",
        "cb1ce80960382c6d5d5e740ffb724d1432f0310b200fb6f8424120f506092744baa415e155",
    ),
]

I_STATIC = bytes(range(32))
R_STATIC = bytes(range(100, 132))
I_EPH = bytes(range(200, 232))
R_EPH = bytes(range(50, 82))


def rng_bytes(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def nonce(n: int) -> bytes:
    return bytes(4) + n.to_bytes(8, "little")


def make_pair(
    *, i_prologue: bytes = PROLOGUE, r_prologue: bytes = PROLOGUE
) -> tuple[NoiseXX, NoiseXX]:
    i = NoiseXX(
        initiator=True, static_private=I_STATIC, prologue=i_prologue, ephemeral_private=I_EPH
    )
    r = NoiseXX(
        initiator=False, static_private=R_STATIC, prologue=r_prologue, ephemeral_private=R_EPH
    )
    return i, r


def handshake(
    i: NoiseXX, r: NoiseXX, payloads: tuple[bytes, bytes, bytes] = (b"", b"", b"")
) -> tuple[bytes, bytes, bytes]:
    m1 = i.write_message(payloads[0])
    assert r.read_message(m1) == payloads[0]
    m2 = r.write_message(payloads[1])
    assert i.read_message(m2) == payloads[1]
    m3 = i.write_message(payloads[2])
    assert r.read_message(m3) == payloads[2]
    return m1, m2, m3


def reference(*, initiator: bool, static: bytes, ephemeral: bytes | None) -> NoiseConnection:
    conn = NoiseConnection.from_name(PROTOCOL_NAME)
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    conn.set_prologue(PROLOGUE)
    conn.set_keypair_from_private_bytes(Keypair.STATIC, static)
    if ephemeral is not None:
        conn.set_keypair_from_private_bytes(Keypair.EPHEMERAL, ephemeral)
    conn.start_handshake()
    return conn


# -- official vector ---------------------------------------------------------------------------


def test_cacophony_vector() -> None:
    i = NoiseXX(
        initiator=True,
        static_private=VEC_INIT_STATIC,
        prologue=VEC_PROLOGUE,
        ephemeral_private=VEC_INIT_EPHEMERAL,
    )
    r = NoiseXX(
        initiator=False,
        static_private=VEC_RESP_STATIC,
        prologue=VEC_PROLOGUE,
        ephemeral_private=VEC_RESP_EPHEMERAL,
    )
    writers = [i, r, i]
    readers = [r, i, r]
    for (payload_hex, ct_hex), writer, reader in zip(
        VEC_MESSAGES[:3], writers, readers, strict=True
    ):
        message = writer.write_message(h(payload_hex))
        assert message.hex() == ct_hex
        assert reader.read_message(message) == h(payload_hex)
    assert i.complete and r.complete
    assert i.handshake_hash == r.handshake_hash == VEC_HANDSHAKE_HASH
    assert i.remote_static == x25519_public_key(VEC_RESP_STATIC)
    assert r.remote_static == x25519_public_key(VEC_INIT_STATIC)

    # Transport messages, with the Noise nonce format (4 zero bytes || LE64 counter).
    i_send, i_recv = i.transport_keys()
    r_send, r_recv = r.transport_keys()
    assert (i_send, i_recv) == (r_recv, r_send)
    counters = {"i": 0, "r": 0}
    for index, (payload_hex, ct_hex) in enumerate(VEC_MESSAGES[3:]):
        sender = "r" if index % 2 == 0 else "i"
        key = r_send if sender == "r" else i_send
        n = counters[sender]
        counters[sender] += 1
        assert ChaCha20Poly1305(key).encrypt(nonce(n), h(payload_hex), b"").hex() == ct_hex


# -- interoperability with the reference library -----------------------------------------------


@pytest.mark.parametrize("fixed_ephemerals", [True, False])
def test_interop_our_initiator_their_responder(fixed_ephemerals: bool) -> None:
    ours = NoiseXX(
        initiator=True,
        static_private=I_STATIC,
        ephemeral_private=I_EPH if fixed_ephemerals else None,
        rng=rng_bytes(11),
    )
    theirs = reference(
        initiator=False, static=R_STATIC, ephemeral=R_EPH if fixed_ephemerals else None
    )
    assert bytes(theirs.read_message(ours.write_message(b"hello"))) == b"hello"
    assert ours.read_message(bytes(theirs.write_message(b"host identity"))) == b"host identity"
    assert bytes(theirs.read_message(ours.write_message(b"client identity"))) == b"client identity"
    assert ours.complete and theirs.handshake_finished
    assert ours.handshake_hash == theirs.get_handshake_hash()
    assert ours.remote_static == x25519_public_key(R_STATIC)

    send, recv = ours.transport_keys()
    assert send == ours.split()[0]  # initiator sends with k1
    assert theirs.decrypt(ChaCha20Poly1305(send).encrypt(nonce(0), b"up", b"")) == b"up"
    assert ChaCha20Poly1305(recv).decrypt(nonce(0), theirs.encrypt(b"down"), b"") == b"down"


@pytest.mark.parametrize("fixed_ephemerals", [True, False])
def test_interop_their_initiator_our_responder(fixed_ephemerals: bool) -> None:
    theirs = reference(
        initiator=True, static=I_STATIC, ephemeral=I_EPH if fixed_ephemerals else None
    )
    ours = NoiseXX(
        initiator=False,
        static_private=R_STATIC,
        ephemeral_private=R_EPH if fixed_ephemerals else None,
        rng=rng_bytes(12),
    )
    assert ours.read_message(bytes(theirs.write_message(b"m1"))) == b"m1"
    assert bytes(theirs.read_message(ours.write_message(b"m2"))) == b"m2"
    assert ours.read_message(bytes(theirs.write_message(b"m3"))) == b"m3"
    assert ours.complete and theirs.handshake_finished
    assert ours.handshake_hash == theirs.get_handshake_hash()
    assert ours.remote_static == x25519_public_key(I_STATIC)

    send, recv = ours.transport_keys()
    assert send == ours.split()[1]  # responder sends with k2
    assert theirs.decrypt(ChaCha20Poly1305(send).encrypt(nonce(0), b"down", b"")) == b"down"
    assert ChaCha20Poly1305(recv).decrypt(nonce(0), theirs.encrypt(b"up"), b"") == b"up"


def test_fixed_ephemerals_give_identical_messages_to_reference() -> None:
    ours_i, ours_r = make_pair()
    ours = handshake(ours_i, ours_r, (b"a", b"b", b"c"))
    ref_i = reference(initiator=True, static=I_STATIC, ephemeral=I_EPH)
    ref_r = reference(initiator=False, static=R_STATIC, ephemeral=R_EPH)
    r1 = bytes(ref_i.write_message(b"a"))
    ref_r.read_message(r1)
    r2 = bytes(ref_r.write_message(b"b"))
    ref_i.read_message(r2)
    r3 = bytes(ref_i.write_message(b"c"))
    assert ours == (r1, r2, r3)


# -- behaviour ---------------------------------------------------------------------------------


def test_constants() -> None:
    assert PROTOCOL_NAME == b"Noise_XX_25519_ChaChaPoly_BLAKE2s"
    assert PROLOGUE == b"wavry-rift/1"
    assert MAX_MESSAGE_SIZE == 65535


@pytest.mark.parametrize("n", [0, 1, 100, 1000])
def test_message_lengths(n: int) -> None:
    i, r = make_pair()
    payload = bytes(n)
    m1 = i.write_message(payload)
    r.read_message(m1)
    m2 = r.write_message(payload)
    i.read_message(m2)
    m3 = i.write_message(payload)
    r.read_message(m3)
    assert len(m1) == 32 + n
    assert len(m2) == 32 + 48 + n + 16
    assert len(m3) == 48 + n + 16


def test_split_keys_mirror_and_differ() -> None:
    i, r = make_pair()
    handshake(i, r)
    assert i.split() == r.split()
    k1, k2 = i.split()
    assert len(k1) == len(k2) == 32 and k1 != k2
    assert i.transport_keys() == (k1, k2)
    assert r.transport_keys() == (k2, k1)
    assert i.static_public == x25519_public_key(I_STATIC)
    assert r.remote_static == i.static_public and i.remote_static == r.static_public


def test_rng_is_used_for_ephemerals_deterministically() -> None:
    calls: list[int] = []

    def rng(n: int) -> bytes:
        calls.append(n)
        return bytes([7]) * n

    a = NoiseXX(initiator=True, static_private=I_STATIC, rng=rng).write_message()
    b = NoiseXX(initiator=True, static_private=I_STATIC, ephemeral_private=bytes([7]) * 32)
    assert a == b.write_message()
    assert calls == [32]


def test_bad_rng_output_is_local_error() -> None:
    i = NoiseXX(initiator=True, static_private=I_STATIC, rng=lambda n: b"short")
    with pytest.raises(LocalProtocolError):
        i.write_message()


@pytest.mark.parametrize("key", [b"", bytes(31), bytes(33)])
def test_bad_key_lengths(key: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        NoiseXX(initiator=True, static_private=key)
    with pytest.raises(LocalProtocolError):
        NoiseXX(initiator=True, static_private=I_STATIC, ephemeral_private=key)


def test_out_of_turn_calls() -> None:
    i, r = make_pair()
    assert i.writes_next and not r.writes_next
    with pytest.raises(LocalProtocolError):
        r.write_message()
    with pytest.raises(LocalProtocolError):
        i.read_message(bytes(32))
    with pytest.raises(LocalProtocolError):
        i.split()
    with pytest.raises(LocalProtocolError):
        i.transport_keys()
    m1 = i.write_message()
    with pytest.raises(LocalProtocolError):
        i.write_message()
    r.read_message(m1)
    with pytest.raises(LocalProtocolError):
        r.read_message(m1)
    i.read_message(r.write_message())
    r.read_message(i.write_message())
    assert i.complete and r.complete
    assert not i.writes_next and not r.writes_next
    for side in (i, r):
        with pytest.raises(LocalProtocolError):
            side.write_message()
        with pytest.raises(LocalProtocolError):
            side.read_message(bytes(64))


def test_prologue_mismatch_fails_at_message_2() -> None:
    i, r = make_pair(r_prologue=b"wavry-rift/2")
    r.read_message(i.write_message())  # message 1 is unauthenticated
    with pytest.raises(HandshakeError):
        i.read_message(r.write_message())
    assert i.failed


def test_failed_handshake_is_unusable() -> None:
    i, r = make_pair()
    r.read_message(i.write_message())
    m2 = bytearray(r.write_message())
    m2[-1] ^= 1
    with pytest.raises(HandshakeError):
        i.read_message(bytes(m2))
    assert i.failed and not i.complete
    with pytest.raises(LocalProtocolError, match="discarded"):
        i.read_message(bytes(m2))
    with pytest.raises(LocalProtocolError):
        i.write_message()


def test_handshake_error_is_remote_protocol_error() -> None:
    assert issubclass(HandshakeError, RemoteProtocolError)


def test_oversize_messages() -> None:
    i, r = make_pair()
    with pytest.raises(LocalProtocolError):
        i.write_message(bytes(MAX_MESSAGE_SIZE - 32 + 1))
    assert len(i.write_message(bytes(MAX_MESSAGE_SIZE - 32))) == MAX_MESSAGE_SIZE
    with pytest.raises(HandshakeError, match="oversize"):
        r.read_message(bytes(MAX_MESSAGE_SIZE + 1))


def test_message_must_be_bytes() -> None:
    _, r = make_pair()
    with pytest.raises(LocalProtocolError):
        r.read_message("not bytes")  # type: ignore[arg-type]


LOW_ORDER_POINTS = [
    bytes(32),
    (1).to_bytes(32, "little"),
    h("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
]


@pytest.mark.parametrize("point", LOW_ORDER_POINTS)
def test_low_order_ephemeral_rejected_when_read(point: bytes) -> None:
    _, r = make_pair()
    with pytest.raises(HandshakeError, match="low-order"):
        r.read_message(point)
    assert r.failed


def test_short_messages() -> None:
    i, r = make_pair()
    with pytest.raises(HandshakeError):
        r.read_message(bytes(31))
    i, r = make_pair()
    r.read_message(i.write_message())
    m2 = r.write_message()
    with pytest.raises(HandshakeError, match="at least"):
        i.read_message(m2[:95])
    i, r = make_pair()
    r.read_message(i.write_message())
    i.read_message(r.write_message())
    m3 = i.write_message()
    with pytest.raises(HandshakeError, match="at least"):
        r.read_message(m3[:63])


# -- properties: hostile input only ever yields HandshakeError --------------------------------


def _corrupt(data: st.DataObject, message: bytes) -> bytes:
    kind = data.draw(st.sampled_from(["random", "truncate", "flip", "extend"]))
    if kind == "random":
        return data.draw(st.binary(max_size=len(message) + 40))
    if kind == "truncate":
        return message[: data.draw(st.integers(0, len(message) - 1))]
    if kind == "extend":
        return message + data.draw(st.binary(min_size=1, max_size=40))
    corrupted = bytearray(message)
    pos = data.draw(st.integers(0, len(message) - 1))
    corrupted[pos] ^= 1 << data.draw(st.integers(0, 7))
    return bytes(corrupted)


@settings(max_examples=200)
@given(st.data())
def test_corrupted_message_2_rejected(data: st.DataObject) -> None:
    i, r = make_pair()
    r.read_message(i.write_message(b"p1"))
    m2 = r.write_message(b"payload two")
    bad = _corrupt(data, m2)
    if bad == m2:
        return
    with pytest.raises(HandshakeError):
        i.read_message(bad)
    assert i.failed


@settings(max_examples=200)
@given(st.data())
def test_corrupted_message_3_rejected(data: st.DataObject) -> None:
    i, r = make_pair()
    r.read_message(i.write_message())
    i.read_message(r.write_message())
    m3 = i.write_message(b"payload three")
    bad = _corrupt(data, m3)
    if bad == m3:
        return
    with pytest.raises(HandshakeError):
        r.read_message(bad)
    assert r.failed and not r.complete


@settings(max_examples=200)
@given(st.data())
def test_corrupted_message_1_breaks_handshake(data: st.DataObject) -> None:
    # Message 1 is unauthenticated; a changed one is either refused at once or makes the
    # initiator reject message 2, because both sides then hash different transcripts.
    i, r = make_pair()
    m1 = i.write_message(b"p1")
    bad = _corrupt(data, m1)
    if bad == m1:
        return
    try:
        r.read_message(bad)
    except HandshakeError:
        assert r.failed
        return
    with pytest.raises(HandshakeError):
        i.read_message(r.write_message())


@settings(max_examples=300)
@given(st.binary(max_size=200), st.integers(0, 2))
def test_random_bytes_at_any_stage(garbage: bytes, stage: int) -> None:
    i, r = make_pair()
    reader = r
    if stage >= 1:
        r.read_message(i.write_message())
        reader = i
    if stage == 2:
        i.read_message(r.write_message())
        i.write_message()
        reader = r
    try:
        reader.read_message(garbage)
    except HandshakeError:
        assert reader.failed
    else:
        assert stage == 0 and len(garbage) >= 32  # only message 1 can be accepted blindly
