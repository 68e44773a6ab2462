"""RIFT physical headers: byte layout, CRC and the receive-side detection rule.

Handshake header, 30 bytes::

    [0..2]  magic "RI" (0x52 0x49)
    [2..4]  version u16 = 1
    [4..20] session_id u128 (handshake id chosen by the client: 4 zero bytes + 12 random)
    [20..28] packet_id u64
    [28..30] crc16 (CRC-16/KERMIT over bytes 0..28), big-endian

Transport header, 18 bytes::

    [0..2]  magic, [2..4] version, [4..8] session_alias u32 (never 0),
    [8..16] packet_id u64, [16..18] crc16 over bytes 0..16

Detection: a datagram shorter than 18 bytes is dropped; magic and version are checked; if
bytes[4..8] are zero and the datagram has at least 30 bytes it carries a handshake header,
otherwise a transport header. Alias 0 is therefore reserved. All integers are big-endian.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from wavry.rift.crc import crc16_kermit
from wavry.rift.errors import DropReason, LocalProtocolError, RemoteProtocolError

__all__ = [
    "HANDSHAKE_HEADER_SIZE",
    "MAGIC",
    "MAX_DATAGRAM_SIZE",
    "TRANSPORT_HEADER_SIZE",
    "VERSION",
    "HandshakeHeader",
    "TransportHeader",
    "parse_header",
]

MAGIC = b"RI"
VERSION = 1
HANDSHAKE_HEADER_SIZE = 30
TRANSPORT_HEADER_SIZE = 18
# Larger datagrams are never produced (chunks are ~1.3 kB) and are refused before any work.
MAX_DATAGRAM_SIZE = 2048

_HS = struct.Struct(">2sH16sQ")
_TR = struct.Struct(">2sHIQ")
_CRC = struct.Struct(">H")
_U64_MAX = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class HandshakeHeader:
    session_id: bytes
    packet_id: int

    def __post_init__(self) -> None:
        if len(self.session_id) != 16:
            raise LocalProtocolError("handshake session_id must be 16 bytes")
        if self.session_id[:4] != b"\x00\x00\x00\x00":
            # The detection rule reads bytes[4..8] == 0 as "handshake header".
            raise LocalProtocolError("the first 4 bytes of a handshake session_id must be zero")
        if not 0 <= self.packet_id <= _U64_MAX:
            raise LocalProtocolError("packet_id out of u64 range")

    def encode(self) -> bytes:
        body = _HS.pack(MAGIC, VERSION, self.session_id, self.packet_id)
        return body + _CRC.pack(crc16_kermit(body))


@dataclass(frozen=True, slots=True)
class TransportHeader:
    session_alias: int
    packet_id: int

    def __post_init__(self) -> None:
        if not 1 <= self.session_alias <= 0xFFFFFFFF:
            raise LocalProtocolError("session_alias must be in 1..2^32-1 (0 is reserved)")
        if not 0 <= self.packet_id <= _U64_MAX:
            raise LocalProtocolError("packet_id out of u64 range")

    def encode(self) -> bytes:
        body = _TR.pack(MAGIC, VERSION, self.session_alias, self.packet_id)
        return body + _CRC.pack(crc16_kermit(body))


def parse_header(datagram: bytes) -> tuple[HandshakeHeader | TransportHeader, int]:
    """Parse and verify the physical header of ``datagram``.

    Returns the header and its size (the payload starts there). Raises ``RemoteProtocolError``
    with a ``DropReason`` for anything that is not a well-formed RIFT header.
    """
    n = len(datagram)
    if n < TRANSPORT_HEADER_SIZE:
        raise RemoteProtocolError(DropReason.TOO_SHORT, f"{n} bytes")
    if n > MAX_DATAGRAM_SIZE:
        raise RemoteProtocolError(DropReason.OVERSIZE, f"{n} bytes")
    if datagram[0:2] != MAGIC:
        raise RemoteProtocolError(DropReason.BAD_MAGIC)
    if datagram[2:4] != b"\x00\x01":
        raise RemoteProtocolError(DropReason.BAD_VERSION)
    if datagram[4:8] == b"\x00\x00\x00\x00" and n >= HANDSHAKE_HEADER_SIZE:
        (crc,) = _CRC.unpack_from(datagram, 28)
        if crc16_kermit(datagram[0:28]) != crc:
            raise RemoteProtocolError(DropReason.BAD_CRC)
        _, _, sid, pid = _HS.unpack_from(datagram, 0)
        return HandshakeHeader(sid, pid), HANDSHAKE_HEADER_SIZE
    (crc,) = _CRC.unpack_from(datagram, 16)
    if crc16_kermit(datagram[0:16]) != crc:
        raise RemoteProtocolError(DropReason.BAD_CRC)
    _, _, alias, pid = _TR.unpack_from(datagram, 0)
    if alias == 0:
        # Only reachable for an alias-0 datagram shorter than a handshake header.
        raise RemoteProtocolError(DropReason.UNKNOWN_ALIAS, "alias 0 is reserved")
    return TransportHeader(alias, pid), TRANSPORT_HEADER_SIZE
