"""The signaling dialect: strict parsing, typed errors, round trips, schema drift."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools import gen_signaling_schema
from wavry.gateway.signaling import messages as m
from wavry.rift.identity import Identity
from wavry.rift.proto import rift_pb2

usernames = st.from_regex(r"[a-z0-9_.\-]{3,32}", fullmatch=True)
tokens = st.from_regex(r"[A-Za-z0-9_.\-]{32,256}", fullmatch=True)
session_ids = st.uuids().map(str)
wavry_ids = st.binary(min_size=32, max_size=32).map(lambda s: Identity.from_seed(s).wavry_id)
material = st.binary(min_size=1, max_size=2000).map(lambda b: base64.b64encode(b).decode())
ports = st.integers(1, 65535)
addresses = st.one_of(
    st.builds(lambda ip, p: f"{ip}:{p}", st.ip_addresses(v=4), ports),
    st.builds(lambda ip, p: f"[{ip}]:{p}", st.ip_addresses(v=6), ports),
)
entries = st.builds(
    m.CandidateEntry, addr=addresses, type=st.sampled_from(["host", "srflx", "relay"])
)
opt = st.none
client_messages: st.SearchStrategy[m.SignalingMessage] = st.one_of(
    st.builds(m.Bind, token=tokens, role=st.sampled_from(["host", "client"])),
    st.builds(m.Watch, usernames=st.lists(usernames, max_size=m.MAX_WATCH)),
    st.builds(
        m.OfferRift,
        target_username=usernames,
        hello_b64=material,
        wavry_id=opt() | wavry_ids,
        session_id=opt() | session_ids,
    ),
    st.builds(
        m.AnswerRift,
        target_username=usernames,
        ack_b64=material,
        wavry_id=opt() | wavry_ids,
        session_id=opt() | session_ids,
    ),
    st.builds(
        m.Candidate,
        target_username=usernames,
        candidates=st.lists(entries, min_size=1, max_size=m.MAX_CANDIDATES),
        session_id=opt() | session_ids,
    ),
    st.builds(
        m.RequestRelay,
        target_username=usernames,
        region=opt() | st.from_regex(r"[a-z0-9][a-z0-9\-]{0,20}", fullmatch=True),
        session_id=opt() | session_ids,
    ),
)
server_messages: st.SearchStrategy[m.SignalingMessage] = st.one_of(
    st.builds(
        m.Bound,
        user=st.text(min_size=1, max_size=64),
        username=usernames,
        role=st.sampled_from(["host", "client"]),
    ),
    st.builds(
        m.ErrorMsg,
        code=st.sampled_from(list(m.ErrorCode)),
        message=st.text(max_size=m.MAX_ERROR_MESSAGE),
        target_username=opt() | usernames,
        session_id=opt() | session_ids,
    ),
    st.builds(m.Presence, username=usernames, online=st.booleans()),
    st.builds(m.Watching, usernames=st.lists(usernames, max_size=m.MAX_WATCH)),
    st.builds(
        m.RelayCredentials,
        target_username=usernames,
        relay_id=st.from_regex(r"[A-Za-z0-9_.:\-]{1,64}", fullmatch=True),
        addr=addresses,
        session_id=session_ids,
        lease=st.text(min_size=1, max_size=500),
        role=st.sampled_from(["client", "server"]),
        expires_at=st.floats(min_value=0, max_value=4e9, allow_nan=False),
        rendezvous_id=opt() | session_ids,
    ),
)


@given(client_messages)
def test_client_messages_round_trip(msg: m.SignalingMessage) -> None:
    text = m.dump(msg)
    assert m.parse_client(text) == msg
    assert m.parse_client(text.encode()) == msg


FORWARDED = (m.OfferRift, m.AnswerRift, m.Candidate)


@given(server_messages | client_messages.filter(lambda x: isinstance(x, FORWARDED)))
def test_server_messages_round_trip(msg: m.SignalingMessage) -> None:
    assert m.parse_server(m.dump(msg)) == msg


@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    for parse in (m.parse_client, m.parse_server):
        try:
            parse(data)
        except m.SignalingError as exc:
            assert exc.code in m.ErrorCode


@given(st.text(max_size=2048))
def test_arbitrary_text_never_crashes(text: str) -> None:
    for parse in (m.parse_client, m.parse_server):
        try:
            parse(text)
        except m.SignalingError:
            pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
known_types = st.sampled_from(
    ["BIND", "WATCH", "OFFER_RIFT", "ANSWER_RIFT", "CANDIDATE", "REQUEST_RELAY", "ERROR"]
)
field_names = st.sampled_from(
    ["token", "role", "usernames", "target_username", "hello_b64", "ack_b64", "wavry_id",
     "session_id", "candidates", "region", "code", "message", "addr", "type"]
)  # fmt: skip


@given(known_types, st.dictionaries(field_names, json_values, max_size=6))
def test_structured_garbage_is_refused_cleanly(kind: str, fields: dict[str, Any]) -> None:
    doc = {"type": kind, **fields}
    try:
        text = json.dumps(doc)
    except ValueError:
        return
    for parse in (m.parse_client, m.parse_server):
        try:
            msg = parse(text)
        except m.SignalingError:
            continue
        # anything accepted must survive a round trip unchanged
        assert parse(m.dump(msg)) == msg


@given(client_messages, field_names, json_values)
def test_mutated_valid_messages_never_crash(msg: m.SignalingMessage, name: str, value: Any) -> None:
    doc = json.loads(m.dump(msg))
    doc[name] = value
    try:
        m.parse_client(json.dumps(doc))
    except (m.SignalingError, ValueError):
        pass


TOKEN = "t" * 64


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("[]", m.MalformedJson),
        ("", m.MalformedJson),
        ("nul", m.MalformedJson),
        ('{"type":"BIND","token":"' + TOKEN + '","token":"' + TOKEN + '"}', m.MalformedJson),
        ('{"type":"BIND","token":NaN}', m.MalformedJson),
        ('{"type":"BIND","token":Infinity}', m.MalformedJson),
        ("[" * 30_000 + "]" * 30_000, m.MalformedJson),
        (b"\xff\xfe{}", m.MalformedJson),
        ("{}", m.InvalidMessage),
        ('{"type":5}', m.InvalidMessage),
        ('{"type":"Bind","token":"' + TOKEN + '"}', m.InvalidMessage),  # original dialect B
        ('{"type":"BIND","payload":{"token":"' + TOKEN + '"}}', m.InvalidMessage),
        ('{"type":"BIND","token":"' + TOKEN + '","extra":1}', m.InvalidMessage),
        ('{"type":"BIND","token":"short"}', m.InvalidMessage),
        ('{"type":"BIND","token":"' + TOKEN + '","role":"admin"}', m.InvalidMessage),
        ('{"type":"BIND","token":"' + "x" * 257 + '"}', m.InvalidMessage),
        ('{"type":"OFFER_RIFT","target_username":"Bob","hello_b64":"AAAA"}', m.InvalidMessage),
        ('{"type":"OFFER_RIFT","target_username":"bob","hello_b64":"AAA"}', m.InvalidMessage),
        ('{"type":"OFFER_RIFT","target_username":"bob","hello_b64":"AA-_"}', m.InvalidMessage),
        (
            '{"type":"OFFER_RIFT","target_username":"bob","hello_b64":"' + "A" * 8196 + '"}',
            m.InvalidMessage,
        ),
        (
            '{"type":"OFFER_RIFT","target_username":"bob","hello_b64":"AAAA","wavry_id":"'
            + "A" * 42
            + 'B"}',  # stray bits in the last character: not canonical
            m.InvalidMessage,
        ),
        (
            '{"type":"WATCH","usernames":' + json.dumps([f"u{i:02d}" for i in range(65)]) + "}",
            m.InvalidMessage,
        ),  # fmt: skip
        ('{"type":"CANDIDATE","target_username":"bob","candidates":[]}', m.InvalidMessage),
        (
            '{"type":"CANDIDATE","target_username":"bob","candidates":'
            '[{"addr":"example.com:5","type":"host"}]}',
            m.InvalidMessage,
        ),
        (
            '{"type":"CANDIDATE","target_username":"bob","candidates":'
            '[{"addr":"1.2.3.4:0","type":"host"}]}',
            m.InvalidMessage,
        ),
        (
            '{"type":"CANDIDATE","target_username":"bob","candidates":'
            '[{"addr":"1.2.3.4:5","type":"prflx"}]}',
            m.InvalidMessage,
        ),
        (
            '{"type":"REQUEST_RELAY","target_username":"bob","session_id":"not-a-uuid"}',
            m.InvalidMessage,
        ),
        ('{"type":"REQUEST_RELAY","target_username":"bob","region":"EU WEST"}', m.InvalidMessage),
        ('{"type":"BOUND","user":"1","username":"bob","role":"host"}', m.InvalidMessage),
        ("x" * (m.MAX_FRAME_BYTES + 1), m.MessageTooLarge),
        ("é" * (m.MAX_FRAME_BYTES // 2 + 1), m.MessageTooLarge),
        (b"x" * (m.MAX_FRAME_BYTES + 1), m.MessageTooLarge),
    ],
)
def test_refusals_are_typed(frame: str | bytes, error: type[m.SignalingError]) -> None:
    with pytest.raises(error) as info:
        m.parse_client(frame)
    assert info.value.code == error.code
    assert len(info.value.message) <= m.MAX_ERROR_MESSAGE


def test_no_coercion() -> None:
    ok = {"type": "PRESENCE", "username": "bob", "online": True}
    assert m.parse_server(json.dumps(ok)) == m.Presence(username="bob", online=True)
    for bad in ("true", 1, None):
        with pytest.raises(m.InvalidMessage):
            m.parse_server(json.dumps({**ok, "online": bad}))


def test_hello_material_round_trip() -> None:
    hello = rift_pb2.Hello(
        client_name="laptop",
        supported_codecs=[rift_pb2.H264, rift_pb2.HEVC],
        max_resolution=rift_pb2.Resolution(width=1920, height=1080),
        max_fps=60,
        protocol_version=1,
    )
    text = m.encode_hello(hello)
    offer = m.OfferRift(target_username="bob", hello_b64=text)
    parsed = m.parse_client(m.dump(offer))
    assert isinstance(parsed, m.OfferRift)
    assert m.decode_hello(parsed.hello_b64) == hello

    ack = rift_pb2.HelloAck(accepted=True, selected_codec=rift_pb2.H264, fps=60)
    assert m.decode_ack(m.encode_ack(ack)) == ack


@given(st.text(max_size=200) | material)
def test_hello_material_decoding_is_total(text: str) -> None:
    for decode in (m.decode_hello, m.decode_ack):
        try:
            decode(text)
        except m.HelloMaterialError:
            pass


def test_hello_material_refusals() -> None:
    with pytest.raises(m.HelloMaterialError):
        m.decode_hello("not base64!")
    with pytest.raises(m.HelloMaterialError):
        m.decode_hello(base64.b64encode(b"\xff\xff\xff").decode())  # truncated varint
    with pytest.raises(m.HelloMaterialError):
        m.encode_hello(rift_pb2.Hello(client_name="x" * 7000))


def test_schema_is_current() -> None:
    assert gen_signaling_schema.main(["--check"]) == 0, (
        "docs/signaling.schema.json is stale: run python -m tools.gen_signaling_schema"
    )


def test_schema_documents_every_message() -> None:
    doc = json.loads(gen_signaling_schema.render())
    defs = doc["$defs"]
    for name in ("Bind", "Watch", "OfferRift", "AnswerRift", "Candidate", "RequestRelay",
                 "Bound", "ErrorMsg", "Presence", "Watching", "RelayCredentials"):  # fmt: skip
        assert defs[name]["additionalProperties"] is False
        assert defs[name]["required"][0] == "type"
        assert "default" not in defs[name]["properties"]["type"]
