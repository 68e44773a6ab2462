"""A minimal TURN client (RFC 8656 / RFC 5766 over UDP) for ``wavry bench relay``.

Only what the relay benchmark needs to drive coturn the way our relay is driven: Allocate with
the long-term credential mechanism (401 → REALM + NONCE → MESSAGE-INTEGRITY), CreatePermission,
ChannelBind, Refresh (lifetime 0 to release), a Binding request to see that the server is up,
and ChannelData frames (4-byte header: channel number, length), TURN's fast path and the fair
counterpart of our FORWARD.

Messages are built and parsed here without I/O (``encode_request``, ``parse_message``);
``TurnClient`` runs the request/response exchanges on a blocking UDP socket with a timeout and
a bounded number of retransmissions. ``parse_message`` raises only ``StunError`` on any input
(hypothesis-tested) and never reads past the declared length.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass

__all__ = [
    "CHANNEL_MIN",
    "MAGIC_COOKIE",
    "Attr",
    "Method",
    "StunError",
    "StunMessage",
    "TurnClient",
    "TurnError",
    "channel_data_header",
    "decode_xor_address",
    "encode_request",
    "encode_xor_address",
    "long_term_key",
    "parse_message",
]

MAGIC_COOKIE = 0x2112A442
HEADER = struct.Struct(">HHI12s")
HEADER_SIZE = 20
MAX_MESSAGE_SIZE = 1500
MAX_ATTRIBUTES = 64
CHANNEL_MIN = 0x4000
CHANNEL_MAX = 0x7FFF
_ATTR = struct.Struct(">HH")
_CLASS_MASK = 0x0110
_SUCCESS = 0x0100
_ERROR = 0x0110
_TRANSPORT_UDP = 17


class Method:
    BINDING = 0x001
    ALLOCATE = 0x003
    REFRESH = 0x004
    CREATE_PERMISSION = 0x008
    CHANNEL_BIND = 0x009


class Attr:
    USERNAME = 0x0006
    MESSAGE_INTEGRITY = 0x0008
    ERROR_CODE = 0x0009
    CHANNEL_NUMBER = 0x000C
    LIFETIME = 0x000D
    XOR_PEER_ADDRESS = 0x0012
    REALM = 0x0014
    NONCE = 0x0015
    XOR_RELAYED_ADDRESS = 0x0016
    REQUESTED_TRANSPORT = 0x0019
    XOR_MAPPED_ADDRESS = 0x0020


class StunError(Exception):
    """Not a well-formed STUN message (or not one we asked for)."""


class TurnError(Exception):
    """A TURN exchange failed (error response, no answer, unexpected answer)."""


@dataclass(frozen=True, slots=True)
class StunMessage:
    method: int
    cls: int  # 0 request, 0x10 indication, 0x100 success, 0x110 error
    txid: bytes
    attrs: tuple[tuple[int, bytes], ...]

    def get(self, attr: int) -> bytes | None:
        for kind, value in self.attrs:
            if kind == attr:
                return value
        return None

    @property
    def is_success(self) -> bool:
        return self.cls == _SUCCESS

    @property
    def error_code(self) -> int | None:
        raw = self.get(Attr.ERROR_CODE)
        if raw is None or len(raw) < 4:
            return None
        return (raw[2] & 0x07) * 100 + raw[3]


def _msg_type(method: int, cls: int) -> int:
    # Method bits M0-M11 are interleaved with the class bits C0 (bit 4) and C1 (bit 8).
    return (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | cls


def _split_type(msg_type: int) -> tuple[int, int]:
    method = (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2)
    return method, msg_type & _CLASS_MASK


def _attr(kind: int, value: bytes) -> bytes:
    pad = -len(value) % 4
    return _ATTR.pack(kind, len(value)) + value + bytes(pad)


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """RFC 8489 §9.2.2 long-term key, MD5(username ":" realm ":" password) (no SASLprep)."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode(), usedforsecurity=False).digest()


def encode_xor_address(host: str, port: int, txid: bytes) -> bytes:
    addr = ipaddress.ip_address(host)
    xport = port ^ (MAGIC_COOKIE >> 16)
    if addr.version == 4:
        raw = int(addr) ^ MAGIC_COOKIE
        return struct.pack(">BBHI", 0, 1, xport, raw)
    mask = int.from_bytes(struct.pack(">I", MAGIC_COOKIE) + txid, "big")
    return struct.pack(">BBH", 0, 2, xport) + (int(addr) ^ mask).to_bytes(16, "big")


def decode_xor_address(value: bytes, txid: bytes) -> tuple[str, int]:
    if len(value) < 8 or value[1] not in (1, 2):
        raise StunError("bad XOR address")
    port = struct.unpack_from(">H", value, 2)[0] ^ (MAGIC_COOKIE >> 16)
    if value[1] == 1:
        raw = struct.unpack_from(">I", value, 4)[0] ^ MAGIC_COOKIE
        return str(ipaddress.IPv4Address(raw)), port
    if len(value) < 20:
        raise StunError("bad XOR IPv6 address")
    mask = int.from_bytes(struct.pack(">I", MAGIC_COOKIE) + txid, "big")
    return str(ipaddress.IPv6Address(int.from_bytes(value[4:20], "big") ^ mask)), port


def encode_request(
    method: int,
    attrs: list[tuple[int, bytes]],
    *,
    txid: bytes | None = None,
    key: bytes | None = None,
) -> bytes:
    """A request with ``attrs``; with ``key``, MESSAGE-INTEGRITY (HMAC-SHA1) is appended."""
    txid = os.urandom(12) if txid is None else txid
    if len(txid) != 12:
        raise ValueError("a transaction id is 12 bytes")
    body = b"".join(_attr(kind, value) for kind, value in attrs)
    if key is None:
        return HEADER.pack(_msg_type(method, 0), len(body), MAGIC_COOKIE, txid) + body
    # The HMAC covers the header with a length that already counts the 24-byte MI attribute.
    head = HEADER.pack(_msg_type(method, 0), len(body) + 24, MAGIC_COOKIE, txid)
    mac = hmac.new(key, head + body, hashlib.sha1).digest()
    return head + body + _attr(Attr.MESSAGE_INTEGRITY, mac)


def parse_message(data: bytes) -> StunMessage:
    """Parse a STUN message; raises only ``StunError``."""
    if len(data) < HEADER_SIZE or len(data) > MAX_MESSAGE_SIZE:
        raise StunError(f"length {len(data)}")
    msg_type, length, cookie, txid = HEADER.unpack_from(data, 0)
    if msg_type & 0xC000 or cookie != MAGIC_COOKIE:
        raise StunError("not STUN")
    if length % 4 or HEADER_SIZE + length > len(data):
        raise StunError("bad length")
    attrs: list[tuple[int, bytes]] = []
    pos, end = HEADER_SIZE, HEADER_SIZE + length
    while pos < end:
        if pos + 4 > end or len(attrs) >= MAX_ATTRIBUTES:
            raise StunError("truncated attribute or too many")
        kind, alen = _ATTR.unpack_from(data, pos)
        pos += 4
        if pos + alen > end:
            raise StunError("attribute overruns the message")
        attrs.append((kind, bytes(data[pos : pos + alen])))
        pos += alen + (-alen % 4)
    method, cls = _split_type(msg_type)
    return StunMessage(method, cls, bytes(txid), tuple(attrs))


def channel_data_header(channel: int, length: int) -> bytes:
    """The 4-byte ChannelData header (RFC 8656 §12.4)."""
    if not CHANNEL_MIN <= channel <= CHANNEL_MAX or not 0 <= length <= 0xFFFF:
        raise ValueError("channel or length out of range")
    return struct.pack(">HH", channel, length)


class TurnClient:
    """Blocking TURN exchanges on one UDP socket connected to the server."""

    def __init__(
        self,
        sock: socket.socket,
        username: str,
        password: str,
        *,
        timeout: float = 1.0,
        attempts: int = 4,
    ) -> None:
        self.sock = sock
        self.username = username
        self.password = password
        self.timeout = timeout
        self.attempts = attempts
        self.realm: str | None = None
        self.nonce: bytes | None = None
        self.relayed: tuple[str, int] | None = None

    def _exchange(self, data: bytes, txid: bytes) -> StunMessage:
        old = self.sock.gettimeout()
        self.sock.settimeout(self.timeout)
        try:
            for _ in range(self.attempts):
                self.sock.send(data)
                try:
                    while True:
                        raw = self.sock.recv(2048)
                        try:
                            msg = parse_message(raw)
                        except StunError:
                            continue  # ChannelData or noise: not our answer
                        if msg.txid == txid:
                            return msg
                except TimeoutError:
                    continue
        finally:
            self.sock.settimeout(old)
        raise TurnError("no answer from the TURN server")

    def binding(self) -> StunMessage:
        txid = os.urandom(12)
        return self._exchange(encode_request(Method.BINDING, [], txid=txid), txid)

    def _auth_request(self, method: int, attrs: list[tuple[int, bytes]]) -> StunMessage:
        """A request with long-term credentials; learns realm/nonce from a 401 or 438."""
        for _ in range(3):
            txid = os.urandom(12)
            if self.realm is None or self.nonce is None:
                msg = self._exchange(encode_request(method, attrs, txid=txid), txid)
            else:
                key = long_term_key(self.username, self.realm, self.password)
                full = attrs + [
                    (Attr.USERNAME, self.username.encode()),
                    (Attr.REALM, self.realm.encode()),
                    (Attr.NONCE, self.nonce),
                ]
                msg = self._exchange(encode_request(method, full, txid=txid, key=key), txid)
            if msg.is_success:
                return msg
            if msg.error_code in (401, 438):
                realm, nonce = msg.get(Attr.REALM), msg.get(Attr.NONCE)
                if realm is None or nonce is None:
                    raise TurnError(f"error {msg.error_code} without REALM/NONCE")
                if msg.error_code == 401 and self.nonce is not None and self.realm is not None:
                    raise TurnError("credentials refused (401)")
                self.realm, self.nonce = realm.decode("utf-8", "replace"), nonce
                continue
            raise TurnError(f"method {method:#x} failed: error {msg.error_code}")
        raise TurnError(f"method {method:#x}: gave up after repeated 401/438")

    def allocate(self, lifetime: int = 600) -> tuple[str, int]:
        attrs = [
            (Attr.REQUESTED_TRANSPORT, bytes([_TRANSPORT_UDP, 0, 0, 0])),
            (Attr.LIFETIME, struct.pack(">I", lifetime)),
        ]
        msg = self._auth_request(Method.ALLOCATE, attrs)
        relayed = msg.get(Attr.XOR_RELAYED_ADDRESS)
        if relayed is None:
            raise TurnError("Allocate success without XOR-RELAYED-ADDRESS")
        try:
            self.relayed = decode_xor_address(relayed, msg.txid)
        except StunError as exc:
            raise TurnError(str(exc)) from None
        return self.relayed

    def _peer_attr(self, peer: tuple[str, int]) -> tuple[int, bytes]:
        # The XOR of an IPv4 address does not depend on the transaction id (IPv6's does).
        if ipaddress.ip_address(peer[0]).version != 4:
            raise ValueError("this client binds IPv4 peers only")
        return Attr.XOR_PEER_ADDRESS, encode_xor_address(peer[0], peer[1], bytes(12))

    def create_permission(self, peer: tuple[str, int]) -> None:
        self._auth_request(Method.CREATE_PERMISSION, [self._peer_attr(peer)])

    def channel_bind(self, channel: int, peer: tuple[str, int]) -> None:
        if not CHANNEL_MIN <= channel <= CHANNEL_MAX:
            raise ValueError("channel number out of range")
        attrs = [(Attr.CHANNEL_NUMBER, struct.pack(">HH", channel, 0)), self._peer_attr(peer)]
        self._auth_request(Method.CHANNEL_BIND, attrs)

    def release(self) -> None:
        """Refresh with lifetime 0: delete the allocation."""
        self._auth_request(Method.REFRESH, [(Attr.LIFETIME, struct.pack(">I", 0))])
