from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wavry.rift.crc import crc16_kermit
from wavry.rift.errors import DropReason, LocalProtocolError, RemoteProtocolError
from wavry.rift.header import (
    HANDSHAKE_HEADER_SIZE,
    TRANSPORT_HEADER_SIZE,
    HandshakeHeader,
    TransportHeader,
    parse_header,
)


def test_crc16_kermit_check_value() -> None:
    assert crc16_kermit(b"123456789") == 0x2189
    assert crc16_kermit(b"") == 0


def test_all_zero_handshake_header_vector() -> None:
    raw = HandshakeHeader(bytes(16), 0).encode()
    assert len(raw) == HANDSHAKE_HEADER_SIZE
    assert raw[:28] == b"RI\x00\x01" + bytes(24)
    assert raw[28:] == b"\xe6\x96"


def test_transport_header_vector() -> None:
    raw = TransportHeader(1, 1).encode()
    assert len(raw) == TRANSPORT_HEADER_SIZE
    assert raw.hex() == "52490001000000010000000000000001f888"


def test_detection_rule_handshake_vs_transport() -> None:
    hs = HandshakeHeader(bytes(4) + bytes(range(12)), 7).encode() + b"payload"
    header, size = parse_header(hs)
    assert header == HandshakeHeader(bytes(4) + bytes(range(12)), 7) and size == 30
    tr = TransportHeader(0xDEADBEEF, 2**64 - 1).encode() + b"x" * 40
    header, size = parse_header(tr)
    assert header == TransportHeader(0xDEADBEEF, 2**64 - 1) and size == 18


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"RI\x00\x01" + bytes(10), DropReason.TOO_SHORT),
        (b"XX\x00\x01" + bytes(30), DropReason.BAD_MAGIC),
        (b"RI\x00\x02" + bytes(30), DropReason.BAD_VERSION),
        (b"RI\x00\x01" + bytes(26) + b"\x00\x00", DropReason.BAD_CRC),
        (b"RI" + bytes(2000), DropReason.BAD_VERSION),
        (b"RI\x00\x01" + bytes(3000), DropReason.OVERSIZE),
    ],
)
def test_malformed_headers_are_typed_drops(data: bytes, reason: DropReason) -> None:
    with pytest.raises(RemoteProtocolError) as exc:
        parse_header(data)
    assert exc.value.reason is reason


def test_alias_zero_is_reserved() -> None:
    with pytest.raises(LocalProtocolError):
        TransportHeader(0, 1)
    # A 20-byte alias-0 datagram with a valid transport CRC is still refused.
    body = b"RI\x00\x01" + bytes(4) + (5).to_bytes(8, "big")
    datagram = body + crc16_kermit(body).to_bytes(2, "big") + b"xx"
    with pytest.raises(RemoteProtocolError) as exc:
        parse_header(datagram)
    assert exc.value.reason is DropReason.UNKNOWN_ALIAS


def test_single_bit_flip_in_header_is_detected() -> None:
    raw = TransportHeader(42, 1234).encode()
    for bit in range(8 * 16):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(RemoteProtocolError):
            parse_header(bytes(flipped))


@given(st.binary(max_size=3000))
def test_random_bytes_never_raise_untyped(data: bytes) -> None:
    try:
        parse_header(data)
    except RemoteProtocolError:
        pass


@given(st.integers(1, 2**32 - 1), st.integers(0, 2**64 - 1), st.binary(max_size=64))
def test_transport_roundtrip(alias: int, pid: int, payload: bytes) -> None:
    header, size = parse_header(TransportHeader(alias, pid).encode() + payload)
    assert header == TransportHeader(alias, pid)
    assert size == TRANSPORT_HEADER_SIZE


def test_handshake_id_must_start_with_four_zero_bytes() -> None:
    with pytest.raises(LocalProtocolError):
        HandshakeHeader(b"\x01" + bytes(15), 0)


@given(st.binary(min_size=12, max_size=12), st.integers(0, 2**64 - 1))
def test_handshake_roundtrip(tail: bytes, pid: int) -> None:
    sid = bytes(4) + tail
    header, _ = parse_header(HandshakeHeader(sid, pid).encode())
    assert header == HandshakeHeader(sid, pid)


@given(st.binary(max_size=64))
def test_fast_crc_equals_reference_table_crc(data: bytes) -> None:
    from wavry.rift.crc import crc16_kermit_table

    assert crc16_kermit(data) == crc16_kermit_table(data)
