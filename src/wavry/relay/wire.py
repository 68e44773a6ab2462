"""Relay wire format (reference §5.1), byte for byte.

Every relay datagram starts with a 20-byte header::

    [0]     magic 0x57 ('W')
    [1]     version 1
    [2]     type
    [3]     flags, 0
    [4..20] session id (raw 16 bytes of the session UUID; the nil UUID is invalid)

Payloads by type (integers big-endian):

=========  ==============  =====================================================
0x01       LEASE_PRESENT   ``u8 role`` (0 client, 1 server), ``u16 token_len``, token (UTF-8
                           PASETO, 1..8192 bytes)
0x02       LEASE_ACK       ``u64 expires_unix_ms``, ``u32 soft_kbps``, ``u32 hard_kbps``
0x03       LEASE_REJECT    ``u16 reason`` (see ``RejectCode``)
0x04       LEASE_RENEW     none (any payload is ignored)
0x10       FORWARD         opaque; forwarded byte-identical, header included
=========  ==============  =====================================================

Datagrams are at most 1500 bytes. Parsers raise only ``RelayWireError`` (with a reason) on any
input; encoders raise ``ValueError`` on our own misuse.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

__all__ = [
    "HEADER",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_DATAGRAM_SIZE",
    "MAX_TOKEN_SIZE",
    "NIL_SESSION",
    "VERSION",
    "LeaseAck",
    "LeasePresent",
    "LeaseReject",
    "MessageType",
    "RejectCode",
    "RelayWireError",
    "Role",
    "encode_forward",
    "encode_lease_ack",
    "encode_lease_present",
    "encode_lease_reject",
    "encode_lease_renew",
    "parse_header",
    "parse_lease_ack",
    "parse_lease_present",
    "parse_lease_reject",
]

MAGIC = 0x57
VERSION = 1
HEADER_SIZE = 20
MAX_DATAGRAM_SIZE = 1500
MAX_TOKEN_SIZE = 8192
NIL_SESSION = bytes(16)

#: magic, version, type, flags, session id
HEADER = struct.Struct(">BBBB16s")
_PRESENT = struct.Struct(">BH")
_ACK = struct.Struct(">QII")
_REJECT = struct.Struct(">H")
_U32_MAX = 0xFFFFFFFF
_U64_MAX = (1 << 64) - 1


class MessageType(enum.IntEnum):
    LEASE_PRESENT = 0x01
    LEASE_ACK = 0x02
    LEASE_REJECT = 0x03
    LEASE_RENEW = 0x04
    FORWARD = 0x10


class RejectCode(enum.IntEnum):
    """LEASE_REJECT reasons, the same codes as the original."""

    EXPIRED = 1
    INVALID_SIGNATURE = 2
    WRONG_RELAY = 3
    SESSION_FULL = 4
    BANNED = 5
    RATE_LIMITED = 6


class Role(enum.IntEnum):
    """The role a peer presents (the wire byte of LEASE_PRESENT)."""

    CLIENT = 0
    SERVER = 1

    @property
    def claim(self) -> str:
        """The lease's ``role`` claim for this role."""
        return "client" if self is Role.CLIENT else "server"

    @classmethod
    def from_claim(cls, text: str) -> Role:
        if text == "client":
            return cls.CLIENT
        if text == "server":
            return cls.SERVER
        raise ValueError(f"role must be 'client' or 'server', got {text!r}")


class RelayWireError(Exception):
    """A datagram that is not a well-formed relay message. ``reason`` is a short token."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LeasePresent:
    session_id: bytes
    role: Role
    token: str


@dataclass(frozen=True, slots=True)
class LeaseAck:
    session_id: bytes
    expires_unix_ms: int
    soft_kbps: int
    hard_kbps: int


@dataclass(frozen=True, slots=True)
class LeaseReject:
    session_id: bytes
    code: RejectCode


def _check_sid(session_id: bytes) -> None:
    if len(session_id) != 16:
        raise ValueError("session id must be 16 bytes")
    if session_id == NIL_SESSION:
        raise ValueError("the nil session id is invalid")


def _header(msg_type: MessageType, session_id: bytes) -> bytes:
    _check_sid(session_id)
    return HEADER.pack(MAGIC, VERSION, msg_type, 0, session_id)


def parse_header(data: bytes) -> tuple[MessageType, bytes]:
    """Check length, magic, version, flags, type and session id. Returns (type, session id)."""
    n = len(data)
    if n < HEADER_SIZE:
        raise RelayWireError("too_short", f"{n} bytes")
    if n > MAX_DATAGRAM_SIZE:
        raise RelayWireError("oversize", f"{n} bytes")
    magic, version, msg_type, flags, sid = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise RelayWireError("bad_magic")
    if version != VERSION:
        raise RelayWireError("bad_version", str(version))
    if flags != 0:
        raise RelayWireError("bad_flags", str(flags))
    try:
        kind = MessageType(msg_type)
    except ValueError:
        raise RelayWireError("unknown_type", hex(msg_type)) from None
    if sid == NIL_SESSION:
        raise RelayWireError("nil_session")
    return kind, sid


def _expect(data: bytes, kind: MessageType) -> bytes:
    got, sid = parse_header(data)
    if got is not kind:
        raise RelayWireError("wrong_type", f"expected {kind.name}, got {got.name}")
    return sid


def encode_lease_present(session_id: bytes, role: Role, token: str) -> bytes:
    raw = token.encode("utf-8")
    if not 1 <= len(raw) <= MAX_TOKEN_SIZE:
        raise ValueError(f"token must be 1..{MAX_TOKEN_SIZE} bytes")
    out = _header(MessageType.LEASE_PRESENT, session_id) + _PRESENT.pack(Role(role), len(raw)) + raw
    if len(out) > MAX_DATAGRAM_SIZE:
        raise ValueError(f"LEASE_PRESENT of {len(out)} bytes exceeds {MAX_DATAGRAM_SIZE}")
    return out


def parse_lease_present(data: bytes) -> LeasePresent:
    sid = _expect(data, MessageType.LEASE_PRESENT)
    if len(data) < HEADER_SIZE + _PRESENT.size:
        raise RelayWireError("truncated", "LEASE_PRESENT payload")
    role_byte, token_len = _PRESENT.unpack_from(data, HEADER_SIZE)
    if role_byte not in (0, 1):
        raise RelayWireError("bad_role", str(role_byte))
    if not 1 <= token_len <= MAX_TOKEN_SIZE:
        raise RelayWireError("bad_token_len", str(token_len))
    start = HEADER_SIZE + _PRESENT.size
    if len(data) != start + token_len:
        raise RelayWireError("bad_token_len", f"declared {token_len}, have {len(data) - start}")
    try:
        token = data[start:].decode("utf-8")
    except UnicodeDecodeError:
        raise RelayWireError("bad_token_utf8") from None
    return LeasePresent(sid, Role(role_byte), token)


def encode_lease_ack(
    session_id: bytes, expires_unix_ms: int, soft_kbps: int, hard_kbps: int
) -> bytes:
    if not 0 <= expires_unix_ms <= _U64_MAX:
        raise ValueError("expires_unix_ms out of u64 range")
    if not (0 <= soft_kbps <= _U32_MAX and 0 <= hard_kbps <= _U32_MAX):
        raise ValueError("kbps out of u32 range")
    return _header(MessageType.LEASE_ACK, session_id) + _ACK.pack(
        expires_unix_ms, soft_kbps, hard_kbps
    )


def parse_lease_ack(data: bytes) -> LeaseAck:
    sid = _expect(data, MessageType.LEASE_ACK)
    if len(data) < HEADER_SIZE + _ACK.size:
        raise RelayWireError("truncated", "LEASE_ACK payload")
    exp, soft, hard = _ACK.unpack_from(data, HEADER_SIZE)
    return LeaseAck(sid, exp, soft, hard)


def encode_lease_reject(session_id: bytes, code: RejectCode) -> bytes:
    return _header(MessageType.LEASE_REJECT, session_id) + _REJECT.pack(RejectCode(code))


def parse_lease_reject(data: bytes) -> LeaseReject:
    sid = _expect(data, MessageType.LEASE_REJECT)
    if len(data) < HEADER_SIZE + _REJECT.size:
        raise RelayWireError("truncated", "LEASE_REJECT payload")
    (code,) = _REJECT.unpack_from(data, HEADER_SIZE)
    try:
        return LeaseReject(sid, RejectCode(code))
    except ValueError:
        raise RelayWireError("unknown_reject_code", str(code)) from None


def encode_lease_renew(session_id: bytes) -> bytes:
    return _header(MessageType.LEASE_RENEW, session_id)


def encode_forward(session_id: bytes, payload: bytes) -> bytes:
    out = _header(MessageType.FORWARD, session_id) + payload
    if len(out) > MAX_DATAGRAM_SIZE:
        raise ValueError(f"FORWARD of {len(out)} bytes exceeds {MAX_DATAGRAM_SIZE}")
    return out
