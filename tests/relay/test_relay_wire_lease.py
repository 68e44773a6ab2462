"""Relay wire format and lease parser: exact bytes, typed errors on anything."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.relay.conftest import RELAY_ID, WALL0, Master, wavry_id
from wavry.relay import wire
from wavry.relay.lease import LeaseClaims, LeaseRejected, LeaseVerifier, format_time, sign_lease
from wavry.relay.wire import MessageType, RejectCode, RelayWireError, Role

SID = uuid.UUID("12345678-1234-4678-9234-567812345678").bytes


def test_header_bytes_exact() -> None:
    data = wire.encode_forward(SID, b"payload")
    assert data[:4] == b"W\x01\x10\x00"
    assert data[4:20] == SID
    assert data[20:] == b"payload"
    assert wire.parse_header(data) == (MessageType.FORWARD, SID)


def test_lease_present_roundtrip_and_layout() -> None:
    data = wire.encode_lease_present(SID, Role.SERVER, "v4.public.abc")
    assert data[2] == 0x01
    assert data[20] == 1  # role server
    assert data[21:23] == (13).to_bytes(2, "big")
    msg = wire.parse_lease_present(data)
    assert msg == wire.LeasePresent(SID, Role.SERVER, "v4.public.abc")


def test_ack_reject_renew_layout() -> None:
    ack = wire.encode_lease_ack(SID, 123456789, 50_000, 100_000)
    assert len(ack) == 20 + 16
    assert ack[20:] == (123456789).to_bytes(8, "big") + (50_000).to_bytes(4, "big") + (
        100_000
    ).to_bytes(4, "big")
    assert wire.parse_lease_ack(ack) == wire.LeaseAck(SID, 123456789, 50_000, 100_000)
    rej = wire.encode_lease_reject(SID, RejectCode.RATE_LIMITED)
    assert rej[2] == 0x03 and rej[20:] == b"\x00\x06"
    assert wire.parse_lease_reject(rej).code is RejectCode.RATE_LIMITED
    assert wire.encode_lease_renew(SID) == b"W\x01\x04\x00" + SID


def test_reject_codes_match_original() -> None:
    assert [int(c) for c in RejectCode] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"W\x01\x10\x00" + b"\x01" * 15, "too_short"),
        (b"W\x01\x10\x00" + b"\x01" * 1497, "oversize"),
        (b"X\x01\x10\x00" + b"\x01" * 16, "bad_magic"),
        (b"W\x02\x10\x00" + b"\x01" * 16, "bad_version"),
        (b"W\x01\x10\x01" + b"\x01" * 16, "bad_flags"),
        (b"W\x01\x20\x00" + b"\x01" * 16, "unknown_type"),
        (b"W\x01\x10\x00" + bytes(16), "nil_session"),
    ],
)
def test_header_errors(data: bytes, reason: str) -> None:
    with pytest.raises(RelayWireError) as exc:
        wire.parse_header(data)
    assert exc.value.reason == reason


def test_present_payload_errors() -> None:
    base = b"W\x01\x01\x00" + SID
    for payload, reason in [
        (b"\x00", "truncated"),
        (b"\x02\x00\x01a", "bad_role"),
        (b"\x00\x00\x00", "bad_token_len"),
        (b"\x00\x00\x05abc", "bad_token_len"),
        (b"\x00\x00\x02\xff\xfe", "bad_token_utf8"),
    ]:
        with pytest.raises(RelayWireError) as exc:
            wire.parse_lease_present(base + payload)
        assert exc.value.reason == reason


@given(st.binary(max_size=1600))
def test_parsers_raise_only_typed_errors(data: bytes) -> None:
    for parse in (
        wire.parse_header,
        wire.parse_lease_present,
        wire.parse_lease_ack,
        wire.parse_lease_reject,
    ):
        try:
            parse(data)
        except RelayWireError:
            pass


@given(st.binary(min_size=16, max_size=16), st.sampled_from(list(Role)), st.text(min_size=1))
def test_present_roundtrip_property(sid: bytes, role: Role, token: str) -> None:
    if sid == bytes(16) or len(token.encode()) > 1477:
        return
    msg = wire.parse_lease_present(wire.encode_lease_present(sid, role, token))
    assert (msg.session_id, msg.role, msg.token) == (sid, role, token)


# -- leases ----------------------------------------------------------------------------------

MASTER = Master()


def verify(token: str, **kw: object) -> LeaseClaims:
    args: dict[str, object] = {
        "now": WALL0,
        "relay_id": RELAY_ID,
        "session_id": SID,
        "role": "client",
    }
    args.update(kw)
    return MASTER.verifier().verify(token, **args)  # type: ignore[arg-type]


def code_of(token: str, **kw: object) -> RejectCode:
    with pytest.raises(LeaseRejected) as exc:
        verify(token, **kw)
    return exc.value.code


def test_lease_valid() -> None:
    claims = verify(MASTER.lease(SID, "client"))
    assert claims.sub == wavry_id(1)
    assert claims.role == "client" and claims.rid == RELAY_ID and claims.kid == MASTER.kid
    assert claims.session_bytes == SID
    assert claims.exp == WALL0 + 900 and (claims.slimit, claims.hlimit) == (50_000, 100_000)


def test_lease_token_shape() -> None:
    token = MASTER.lease(SID, "client")
    assert token.startswith("v4.public.") and token.count(".") == 2  # no footer
    body = base64.urlsafe_b64decode(token.split(".")[2] + "==")
    claims = json.loads(body[:-64])
    assert set(claims) == {
        "sub", "sid", "role", "rid", "kid", "iat", "nbf", "exp", "slimit", "hlimit"
    }  # fmt: skip
    assert claims["exp"] == format_time(WALL0 + 900) and claims["exp"].endswith("Z")


def test_lease_time_window_with_skew() -> None:
    token = MASTER.lease(SID, "client", ttl=100)
    assert verify(token, now=WALL0 + 100 + 29).sub  # within the 30 s skew
    assert code_of(token, now=WALL0 + 100 + 30) is RejectCode.EXPIRED
    future = MASTER.lease(SID, "client", now=WALL0 + 60)
    assert code_of(future, now=WALL0) is RejectCode.EXPIRED  # not yet valid
    assert verify(future, now=WALL0 + 31).sub


def test_lease_binding_checks() -> None:
    token = MASTER.lease(SID, "client")
    assert code_of(token, role="server") is RejectCode.INVALID_SIGNATURE
    assert code_of(token, relay_id="other") is RejectCode.WRONG_RELAY
    other_sid = uuid.uuid4().bytes
    assert code_of(token, session_id=other_sid) is RejectCode.INVALID_SIGNATURE


def test_lease_foreign_key_and_forgery() -> None:
    foreign = Master(seed=b"\x07" * 32)  # same kid, other key
    assert code_of(foreign.lease(SID, "client")) is RejectCode.INVALID_SIGNATURE
    unknown_kid = Master(kid="k-other")
    assert code_of(unknown_kid.lease(SID, "client")) is RejectCode.INVALID_SIGNATURE
    token = MASTER.lease(SID, "client")
    prefix, body = token[:10], token[10:]
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims = json.loads(bytes(raw[:-64]))
    claims["hlimit"] = 10**9
    forged = json.dumps(claims, separators=(",", ":")).encode() + bytes(raw[-64:])
    forged_token = prefix + base64.urlsafe_b64encode(forged).decode().rstrip("=")
    assert code_of(forged_token) is RejectCode.INVALID_SIGNATURE


def test_lease_rotation_accepts_both_keys() -> None:
    old, new = Master(seed=b"\x01" * 32, kid="k1"), Master(seed=b"\x02" * 32, kid="k2")
    verifier = LeaseVerifier({"k1": old.public_key, "k2": new.public_key})
    for m in (old, new):
        args = {"now": WALL0, "relay_id": RELAY_ID, "session_id": SID, "role": "server"}
        assert verifier.verify(m.lease(SID, "server"), **args).kid == m.kid  # type: ignore[arg-type]
    verifier.remove_key("k1")
    with pytest.raises(LeaseRejected):
        verifier.verify(old.lease(SID, "server"), now=WALL0, relay_id=RELAY_ID, session_id=SID,
                        role="server")  # fmt: skip


def test_lease_ttl_too_long() -> None:
    assert code_of(MASTER.lease(SID, "client", ttl=3601)) is RejectCode.INVALID_SIGNATURE


def test_sign_rejects_bad_claims() -> None:
    with pytest.raises(ValueError):
        LeaseClaims(sub="", sid=str(uuid.UUID(bytes=SID)), role="client", rid="r", iat=0,
                    nbf=0, exp=1)  # fmt: skip
    with pytest.raises(ValueError):
        LeaseClaims(sub="a", sid="not-a-uuid", role="client", rid="r", iat=0, nbf=0, exp=1)
    with pytest.raises(ValueError):
        LeaseClaims(sub="a", sid=str(uuid.UUID(bytes=SID)), role="host", rid="r", iat=0,
                    nbf=0, exp=1)  # fmt: skip


@given(st.text(max_size=300))
def test_verify_arbitrary_text_only_typed_errors(text: str) -> None:
    try:
        verify(text)
    except LeaseRejected as exc:
        assert exc.code is RejectCode.INVALID_SIGNATURE


@given(st.binary(max_size=400))
def test_verify_arbitrary_v4_bodies_only_typed_errors(body: bytes) -> None:
    token = "v4.public." + base64.urlsafe_b64encode(body).decode().rstrip("=")
    with pytest.raises(LeaseRejected):
        verify(token)


@given(
    st.dictionaries(
        st.sampled_from(
            ["sub", "sid", "role", "rid", "kid", "iat", "nbf", "exp", "slimit", "hlimit"]
        ),  # fmt: skip
        st.one_of(st.none(), st.integers(), st.text(max_size=40), st.floats(), st.booleans()),
    )
)
def test_verify_signed_garbage_claims_only_typed_errors(doc: dict[str, object]) -> None:
    """Correctly signed but malformed claims: still only LeaseRejected."""
    import pyseto

    doc = {**doc, "kid": MASTER.kid}
    key = pyseto.Key.from_asymmetric_key_params(4, d=MASTER.seed)
    token = pyseto.encode(key, json.dumps(doc).encode()).decode()
    try:
        verify(token)
    except LeaseRejected:
        pass


def test_sign_lease_sets_kid() -> None:
    claims = LeaseClaims(sub="a", sid=str(uuid.UUID(bytes=SID)), role="client", rid=RELAY_ID,
                         iat=WALL0, nbf=WALL0, exp=WALL0 + 60, kid="ignored")  # fmt: skip
    token = sign_lease(claims, MASTER.seed, MASTER.kid)
    assert verify(token).kid == MASTER.kid


def test_deeply_nested_unauthenticated_claims_are_a_reject_not_a_crash() -> None:
    """Found by the fuzz smoke: json.loads on ~1000 '[' raised RecursionError before the
    signature was checked, so one datagram could take the relay's receive path down."""
    nested = b"[" * 5000 + b"]" * 5000
    token = "v4.public." + base64.urlsafe_b64encode(nested + b"\x00" * 64).decode().rstrip("=")
    assert code_of(token) is RejectCode.INVALID_SIGNATURE
