from __future__ import annotations

import base64
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.rift.errors import IdentityError, LocalProtocolError
from wavry.rift.identity import (
    IDENTITY_PAYLOAD_MAX_SIZE,
    IDENTITY_SIGNATURE_CONTEXT,
    Identity,
    InvalidWavryIdError,
    VerifiedIdentity,
    make_identity_payload,
    public_key_from_wavry_id,
    verify_identity_payload,
    verify_signature,
    wavry_id_from_public_key,
)
from wavry.rift.noise import x25519_public_key
from wavry.rift.proto import rift_pb2

# RFC 8032 section 7.1, TEST 1 (empty message).
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
    "d25bf5f0595bbe24655141438e7a100b"
)


def rng_bytes(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


STATIC_PUB = x25519_public_key(bytes(range(32)))


def test_rfc8032_vector() -> None:
    ident = Identity.from_seed(RFC8032_SEED)
    assert ident.public_key == RFC8032_PUBLIC
    assert ident.sign(b"") == RFC8032_SIG
    assert verify_signature(RFC8032_PUBLIC, RFC8032_SIG, b"")
    assert not verify_signature(RFC8032_PUBLIC, RFC8032_SIG, b"x")


def test_generate_is_deterministic_with_injected_rng() -> None:
    a = Identity.generate(rng_bytes(7))
    b = Identity.generate(rng_bytes(7))
    c = Identity.generate(rng_bytes(8))
    assert a.seed == b.seed and a.public_key == b.public_key and a == b
    assert a != c
    assert len(a.seed) == 32 and len(a.public_key) == 32
    assert Identity.from_seed(a.seed) == a


def test_generate_with_default_rng_gives_distinct_identities() -> None:
    assert Identity.generate() != Identity.generate()


def test_repr_does_not_leak_seed() -> None:
    ident = Identity.from_seed(RFC8032_SEED)
    text = repr(ident)
    assert ident.wavry_id in text
    assert RFC8032_SEED.hex() not in text
    assert base64.urlsafe_b64encode(RFC8032_SEED).decode().rstrip("=") not in text


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33)])
def test_from_seed_rejects_wrong_length(seed: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        Identity.from_seed(seed)


def test_wavry_id_format() -> None:
    ident = Identity.from_seed(RFC8032_SEED)
    wid = ident.wavry_id
    assert len(wid) == 43
    assert "=" not in wid
    assert wid == base64.urlsafe_b64encode(RFC8032_PUBLIC).decode().rstrip("=")
    assert public_key_from_wavry_id(wid) == RFC8032_PUBLIC


@given(st.binary(min_size=32, max_size=32))
def test_wavry_id_round_trip(pk: bytes) -> None:
    wid = wavry_id_from_public_key(pk)
    assert len(wid) == 43
    assert public_key_from_wavry_id(wid) == pk


def test_wavry_id_from_wrong_length_key() -> None:
    with pytest.raises(LocalProtocolError):
        wavry_id_from_public_key(bytes(31))


VALID_ID = wavry_id_from_public_key(RFC8032_PUBLIC)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        VALID_ID[:-1],
        VALID_ID + "A",
        VALID_ID + "=",
        VALID_ID[:-1] + "=",
        VALID_ID[:-1] + "+",  # standard base64 alphabet, not base64url
        VALID_ID[:-1] + "/",
        " " + VALID_ID[1:],
        VALID_ID[:-1] + "\u00e9",
        RFC8032_PUBLIC.hex(),
    ],
)
def test_public_key_from_wavry_id_rejects(bad: str) -> None:
    with pytest.raises(InvalidWavryIdError, match="43 characters"):
        public_key_from_wavry_id(bad)


def test_non_canonical_trailing_bits_rejected() -> None:
    # 43 chars carry 258 bits; the last char's two low bits must be zero in the canonical form.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(VALID_ID[-1])
    assert last & 0b11 == 0
    tweaked = VALID_ID[:-1] + alphabet[last | 0b01]
    with pytest.raises(InvalidWavryIdError, match="canonical"):
        public_key_from_wavry_id(tweaked)


def test_invalid_wavry_id_is_value_error() -> None:
    assert issubclass(InvalidWavryIdError, ValueError)
    with pytest.raises(ValueError):
        public_key_from_wavry_id(123)  # type: ignore[arg-type]


@given(st.text(max_size=60))
def test_public_key_from_wavry_id_never_raises_other(text: str) -> None:
    try:
        pk = public_key_from_wavry_id(text)
    except InvalidWavryIdError:
        return
    assert len(pk) == 32
    assert wavry_id_from_public_key(pk) == text


@given(st.binary(max_size=80), st.binary(max_size=80), st.binary(max_size=64))
def test_verify_signature_never_raises(pk: bytes, sig: bytes, data: bytes) -> None:
    assert verify_signature(pk, sig, data) in (True, False)


def test_verify_signature_rejects_malformed() -> None:
    assert not verify_signature(RFC8032_PUBLIC[:31], RFC8032_SIG, b"")
    assert not verify_signature(RFC8032_PUBLIC, RFC8032_SIG[:63], b"")
    assert not verify_signature(RFC8032_PUBLIC, bytes(64), b"")
    assert not verify_signature(b"\xff" * 32, RFC8032_SIG, b"")


# -- identity payload ----------------------------------------------------------------------------


def test_identity_payload_round_trip() -> None:
    ident = Identity.generate(rng_bytes(1))
    payload = make_identity_payload(ident, STATIC_PUB, session_alias=0xDEADBEEF, protocol_version=1)
    verified = verify_identity_payload(payload, STATIC_PUB)
    assert verified == VerifiedIdentity(
        public_key=ident.public_key,
        wavry_id=ident.wavry_id,
        session_alias=0xDEADBEEF,
        protocol_version=1,
    )
    assert len(payload) <= IDENTITY_PAYLOAD_MAX_SIZE


def test_identity_payload_format_is_pinned() -> None:
    ident = Identity.from_seed(RFC8032_SEED)
    payload = make_identity_payload(ident, STATIC_PUB, session_alias=5, protocol_version=1)
    msg = rift_pb2.IdentityPayload()
    msg.ParseFromString(payload)
    assert msg.identity_key == RFC8032_PUBLIC
    assert msg.session_alias == 5 and msg.protocol_version == 1
    # The signature covers exactly context || noise static public key.
    assert verify_signature(RFC8032_PUBLIC, msg.signature, IDENTITY_SIGNATURE_CONTEXT + STATIC_PUB)
    assert IDENTITY_SIGNATURE_CONTEXT == b"wavry-rift-v1 noise static key"


def test_identity_payload_bound_to_static_key() -> None:
    ident = Identity.generate(rng_bytes(2))
    payload = make_identity_payload(ident, STATIC_PUB)
    other_static = x25519_public_key(bytes(range(1, 33)))
    with pytest.raises(IdentityError, match="does not verify"):
        verify_identity_payload(payload, other_static)


def test_identity_payload_swapped_identity_key_fails() -> None:
    a = Identity.generate(rng_bytes(3))
    b = Identity.generate(rng_bytes(4))
    msg = rift_pb2.IdentityPayload()
    msg.ParseFromString(make_identity_payload(a, STATIC_PUB))
    msg.identity_key = b.public_key  # claim to be b with a's signature
    with pytest.raises(IdentityError):
        verify_identity_payload(msg.SerializeToString(), STATIC_PUB)


@pytest.mark.parametrize(
    ("key", "sig", "match"),
    [
        (b"", b"", "missing"),
        (bytes(31), bytes(64), "identity key"),
        (bytes(32), bytes(63), "signature must be"),
        (bytes(32), bytes(64), "does not verify"),
    ],
)
def test_identity_payload_malformed(key: bytes, sig: bytes, match: str) -> None:
    payload = rift_pb2.IdentityPayload(identity_key=key, signature=sig).SerializeToString()
    with pytest.raises(IdentityError, match=match):
        verify_identity_payload(payload, STATIC_PUB)


def test_identity_payload_oversize_and_garbage() -> None:
    with pytest.raises(IdentityError, match="exceeds"):
        verify_identity_payload(bytes(IDENTITY_PAYLOAD_MAX_SIZE + 1), STATIC_PUB)
    with pytest.raises(IdentityError, match="parse"):
        verify_identity_payload(b"\x0a\xff", STATIC_PUB)  # truncated length-delimited field


def test_identity_payload_local_misuse() -> None:
    ident = Identity.generate(rng_bytes(5))
    with pytest.raises(LocalProtocolError):
        make_identity_payload(ident, bytes(31))
    with pytest.raises(LocalProtocolError):
        make_identity_payload(ident, STATIC_PUB, session_alias=2**32)
    with pytest.raises(LocalProtocolError):
        verify_identity_payload(make_identity_payload(ident, STATIC_PUB), bytes(31))


@settings(max_examples=300)
@given(st.binary(max_size=IDENTITY_PAYLOAD_MAX_SIZE + 40))
def test_identity_payload_garbage_only_identity_error(data: bytes) -> None:
    with pytest.raises(IdentityError):
        verify_identity_payload(data, STATIC_PUB)


@settings(max_examples=200)
@given(st.data())
def test_identity_payload_bit_flips_rejected(data: st.DataObject) -> None:
    ident = Identity.from_seed(RFC8032_SEED)
    payload = bytearray(make_identity_payload(ident, STATIC_PUB, session_alias=9))
    msg = rift_pb2.IdentityPayload()
    msg.ParseFromString(bytes(payload))
    # Flip a bit inside the key or signature bytes: always fatal (alias/version are not signed;
    # they are authenticated by the Noise transcript instead).
    signed_region = payload.index(msg.identity_key), payload.index(msg.signature) + 64
    pos = data.draw(st.integers(signed_region[0], signed_region[1] - 1))
    bit = data.draw(st.integers(0, 7))
    payload[pos] ^= 1 << bit
    with pytest.raises(IdentityError):
        verify_identity_payload(bytes(payload), STATIC_PUB)
