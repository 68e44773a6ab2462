"""The minimal TURN client of ``wavry bench relay``: parser robustness and encodings.

Interoperability with a real TURN server (Allocate with long-term auth, CreatePermission,
ChannelBind, ChannelData) is exercised against coturn by tests/bench/test_relay_bench.py.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wavry.bench.turn_client import (
    MAGIC_COOKIE,
    Attr,
    Method,
    StunError,
    StunMessage,
    channel_data_header,
    decode_xor_address,
    encode_request,
    encode_xor_address,
    long_term_key,
    parse_message,
)

METHODS = [Method.BINDING, Method.ALLOCATE, Method.REFRESH, Method.CREATE_PERMISSION,
           Method.CHANNEL_BIND]  # fmt: skip


@given(st.binary(max_size=1600))
def test_parse_message_raises_only_stun_error(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except StunError:
        return
    assert isinstance(msg, StunMessage)
    assert len(msg.attrs) <= 64


@given(
    st.binary(min_size=20, max_size=200),
    st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=8),
)
def test_parse_message_of_a_valid_header_with_garbage(
    head: bytes, attrs: list[tuple[int, bytes]]
) -> None:
    body = b"".join(struct.pack(">HH", k, len(v)) + v + bytes(-len(v) % 4) for k, v in attrs)
    data = struct.pack(">HHI", 0x0101, len(body), MAGIC_COOKIE) + head[:12].ljust(12, b"\0") + body
    msg = parse_message(data)
    assert list(msg.attrs) == attrs


@given(
    st.sampled_from(METHODS),
    st.lists(st.tuples(st.integers(0, 0x7FFF), st.binary(max_size=64)), max_size=6),
    st.binary(min_size=12, max_size=12),
)
def test_encode_parse_roundtrip(method: int, attrs: list[tuple[int, bytes]], txid: bytes) -> None:
    msg = parse_message(encode_request(method, attrs, txid=txid))
    assert (msg.method, msg.cls, msg.txid) == (method, 0, txid)
    assert list(msg.attrs) == attrs


def test_message_integrity_covers_the_header_with_its_own_length() -> None:
    key = long_term_key("user", "realm", "pass")
    assert key == hashlib.md5(b"user:realm:pass").digest()
    txid = bytes(range(12))
    raw = encode_request(Method.ALLOCATE, [(Attr.REQUESTED_TRANSPORT, bytes([17, 0, 0, 0]))],
                         txid=txid, key=key)  # fmt: skip
    msg = parse_message(raw)
    assert msg.attrs[-1][0] == Attr.MESSAGE_INTEGRITY
    # RFC 8489 §14.5: HMAC over the message up to MI, length field counting MI itself
    assert struct.unpack_from(">H", raw, 2)[0] == len(raw) - 20
    expected = hmac.new(key, raw[:-24], hashlib.sha1).digest()
    assert msg.attrs[-1][1] == expected


@given(st.ip_addresses(), st.integers(0, 65535), st.binary(min_size=12, max_size=12))
def test_xor_address_roundtrip(addr: object, port: int, txid: bytes) -> None:
    raw = encode_xor_address(str(addr), port, txid)
    assert decode_xor_address(raw, txid) == (str(addr), port)


def test_error_response_code_and_channel_header() -> None:
    txid = bytes(12)
    err = struct.pack(">HHI", 0x0113, 8, MAGIC_COOKIE) + txid
    err += struct.pack(">HH", Attr.ERROR_CODE, 4) + bytes([0, 0, 4, 1])
    msg = parse_message(err)
    assert (msg.method, msg.cls, msg.error_code, msg.is_success) == (
        Method.ALLOCATE,
        0x110,
        401,
        False,
    )
    assert channel_data_header(0x4000, 1196) == b"\x40\x00\x04\xac"
    for bad in ((0x3FFF, 1), (0x8000, 1), (0x4000, 0x10000)):
        with pytest.raises(ValueError):
            channel_data_header(*bad)
