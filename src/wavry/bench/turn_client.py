"""A minimal TURN client (RFC 8656 / RFC 5766 over UDP) for ``wavry bench relay``.

Only what the relay benchmark needs to drive coturn the way our relay is driven: Allocate with
the long-term credential mechanism (401 → REALM + NONCE → MESSAGE-INTEGRITY), CreatePermission,
ChannelBind, Refresh (lifetime 0 to release), a Binding request to see that the server is up,
and ChannelData frames (4-byte header: channel number, length), TURN's fast path and the fair
counterpart of our FORWARD.

Messages are built and parsed without I/O by the shared STUN codec (``wavry.net.stun``:
``encode_request``, ``parse_message``, re-exported here);
``TurnClient`` runs the request/response exchanges on a blocking UDP socket with a timeout and
a bounded number of retransmissions. ``parse_message`` raises only ``StunError`` on any input
(hypothesis-tested) and never reads past the declared length.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import struct

from wavry.net.stun import (
    MAGIC_COOKIE,
    Attr,
    Method,
    StunError,
    StunMessage,
    decode_xor_address,
    encode_request,
    encode_xor_address,
    parse_message,
)

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

CHANNEL_MIN = 0x4000
CHANNEL_MAX = 0x7FFF
_TRANSPORT_UDP = 17


class TurnError(Exception):
    """A TURN exchange failed (error response, no answer, unexpected answer)."""


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """RFC 8489 §9.2.2 long-term key, MD5(username ":" realm ":" password) (no SASLprep)."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode(), usedforsecurity=False).digest()


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
