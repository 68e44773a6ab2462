"""STUN (RFC 5389 / RFC 8489): a sans-IO message codec and Binding transactions.

The codec (``encode_request``, ``parse_message``) is shared with the TURN client of the relay
benchmark (``wavry.bench.turn_client``). ``parse_message`` raises only ``StunError`` on any
input (hypothesis-tested), never reads past the declared length, and checks FINGERPRINT when the
message carries one.

``BindingTransaction`` is one Binding request/response exchange without I/O: it says what to send
and when its timer fires, and consumes responses whose transaction id is its own. The asyncio
integration lives in ``wavry.net.udp`` (``UdpDriver.stun_binding``): it runs on the **streaming
socket itself**, so the reflexive address is the mapping the peers will see, and the driver tells
STUN responses from RIFT datagrams by their first two bits (00; RIFT starts with "RI"), the magic
cookie and a pending transaction id.

Retransmission (``RetransmitPolicy``): RFC 5389 §7.2.1 sends at 0, RTO, 3·RTO, ... (RTO 500 ms,
doubling) up to Rc = 7 times and then waits Rm·RTO (Rm = 16): 39.5 s before giving up. That is far
too long for "connect in about a second", so the default keeps RTO = 500 ms and doubling but caps
Rc at 4 and Rm at 4: requests at 0, 0.5, 1.5 and 3.5 s, failure at 5.5 s. One lost request costs
500 ms; an absent server costs 5.5 s, which candidate gathering bounds further with its own
deadline.

Configuration: ``WAVRY_STUN_SERVERS`` is a comma-separated list of ``host[:port]`` or
``[v6]:port`` (default port 3478). Unset or empty: no STUN (loopback and LAN need none).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import ipaddress
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_PORT",
    "ENV_STUN_SERVERS",
    "FINGERPRINT_XOR",
    "HEADER_SIZE",
    "MAGIC_COOKIE",
    "MAX_MESSAGE_SIZE",
    "Attr",
    "BindingTransaction",
    "Method",
    "RetransmitPolicy",
    "StunClientError",
    "StunError",
    "StunErrorResponse",
    "StunMessage",
    "StunTimeoutError",
    "decode_address",
    "decode_xor_address",
    "encode_address",
    "encode_indication",
    "encode_request",
    "encode_response",
    "encode_xor_address",
    "is_binding_indication",
    "looks_like_stun",
    "parse_message",
    "parse_server",
    "stun_servers_from_env",
]

MAGIC_COOKIE = 0x2112A442
_COOKIE_BYTES = struct.pack(">I", MAGIC_COOKIE)
HEADER = struct.Struct(">HHI12s")
HEADER_SIZE = 20
MAX_MESSAGE_SIZE = 1500
MAX_ATTRIBUTES = 64
FINGERPRINT_XOR = 0x5354554E
DEFAULT_PORT = 3478
ENV_STUN_SERVERS = "WAVRY_STUN_SERVERS"
MAX_SERVERS = 8
_ATTR = struct.Struct(">HH")
_CLASS_MASK = 0x0110
_REQUEST = 0x0000
_INDICATION = 0x0010
_SUCCESS = 0x0100
_ERROR = 0x0110
_MAX_REASON = 256

Address = tuple[str, int]


class Method:
    BINDING = 0x001
    ALLOCATE = 0x003
    REFRESH = 0x004
    CREATE_PERMISSION = 0x008
    CHANNEL_BIND = 0x009


class Attr:
    MAPPED_ADDRESS = 0x0001
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
    SOFTWARE = 0x8022
    FINGERPRINT = 0x8028


class StunError(Exception):
    """Not a well-formed STUN message (or not one we asked for)."""


class StunClientError(Exception):
    """A STUN Binding transaction failed."""


class StunTimeoutError(StunClientError):
    """No answer after every retransmission."""


class StunErrorResponse(StunClientError):
    """The server answered with an error response (or a success without an address)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"STUN error {code}: {reason}" if code is not None else reason)
        self.code = code
        self.reason = reason


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
    def is_error(self) -> bool:
        return self.cls == _ERROR

    @property
    def is_indication(self) -> bool:
        return self.cls == _INDICATION

    @property
    def error_code(self) -> int | None:
        raw = self.get(Attr.ERROR_CODE)
        if raw is None or len(raw) < 4:
            return None
        return (raw[2] & 0x07) * 100 + raw[3]

    @property
    def error_reason(self) -> str:
        raw = self.get(Attr.ERROR_CODE)
        if raw is None or len(raw) < 4:
            return ""
        return raw[4 : 4 + _MAX_REASON].decode("utf-8", "replace")

    def mapped_address(self) -> Address | None:
        """XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS (RFC 3489 servers); None if neither.

        Raises ``StunError`` when the attribute is present but malformed."""
        xor = self.get(Attr.XOR_MAPPED_ADDRESS)
        if xor is not None:
            return decode_xor_address(xor, self.txid)
        plain = self.get(Attr.MAPPED_ADDRESS)
        if plain is not None:
            return decode_address(plain)
        return None


def _msg_type(method: int, cls: int) -> int:
    # Method bits M0-M11 are interleaved with the class bits C0 (bit 4) and C1 (bit 8).
    return (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | cls


def _split_type(msg_type: int) -> tuple[int, int]:
    method = (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2)
    return method, msg_type & _CLASS_MASK


def _attr(kind: int, value: bytes) -> bytes:
    pad = -len(value) % 4
    return _ATTR.pack(kind, len(value)) + value + bytes(pad)


def _fingerprint(data: bytes) -> int:
    return (binascii.crc32(data) ^ FINGERPRINT_XOR) & 0xFFFFFFFF


def encode_address(host: str, port: int) -> bytes:
    """MAPPED-ADDRESS value (family 1 = IPv4, 2 = IPv6)."""
    addr = ipaddress.ip_address(host)
    family = 1 if addr.version == 4 else 2
    return struct.pack(">BBH", 0, family, port) + addr.packed


def decode_address(value: bytes) -> Address:
    if len(value) < 8 or value[1] not in (1, 2):
        raise StunError("bad address")
    port = struct.unpack_from(">H", value, 2)[0]
    if value[1] == 1:
        return str(ipaddress.IPv4Address(value[4:8])), port
    if len(value) < 20:
        raise StunError("bad IPv6 address")
    return str(ipaddress.IPv6Address(value[4:20])), port


def encode_xor_address(host: str, port: int, txid: bytes) -> bytes:
    addr = ipaddress.ip_address(host)
    xport = port ^ (MAGIC_COOKIE >> 16)
    if addr.version == 4:
        raw = int(addr) ^ MAGIC_COOKIE
        return struct.pack(">BBHI", 0, 1, xport, raw)
    mask = int.from_bytes(_COOKIE_BYTES + txid, "big")
    return struct.pack(">BBH", 0, 2, xport) + (int(addr) ^ mask).to_bytes(16, "big")


def decode_xor_address(value: bytes, txid: bytes) -> Address:
    if len(value) < 8 or value[1] not in (1, 2):
        raise StunError("bad XOR address")
    port = struct.unpack_from(">H", value, 2)[0] ^ (MAGIC_COOKIE >> 16)
    if value[1] == 1:
        raw = struct.unpack_from(">I", value, 4)[0] ^ MAGIC_COOKIE
        return str(ipaddress.IPv4Address(raw)), port
    if len(value) < 20:
        raise StunError("bad XOR IPv6 address")
    mask = int.from_bytes(_COOKIE_BYTES + txid, "big")
    return str(ipaddress.IPv6Address(int.from_bytes(value[4:20], "big") ^ mask)), port


def _encode(
    msg_type: int,
    attrs: list[tuple[int, bytes]],
    txid: bytes,
    key: bytes | None,
    fingerprint: bool,
) -> bytes:
    if len(txid) != 12:
        raise ValueError("a transaction id is 12 bytes")
    body = b"".join(_attr(kind, value) for kind, value in attrs)
    if key is not None:
        # The HMAC covers the header with a length that already counts the 24-byte MI attribute.
        head = HEADER.pack(msg_type, len(body) + 24, MAGIC_COOKIE, txid)
        mac = hmac.new(key, head + body, hashlib.sha1).digest()
        body += _attr(Attr.MESSAGE_INTEGRITY, mac)
    if not fingerprint:
        return HEADER.pack(msg_type, len(body), MAGIC_COOKIE, txid) + body
    head = HEADER.pack(msg_type, len(body) + 8, MAGIC_COOKIE, txid)
    crc = _fingerprint(head + body)
    return head + body + _attr(Attr.FINGERPRINT, struct.pack(">I", crc))


def encode_request(
    method: int,
    attrs: list[tuple[int, bytes]],
    *,
    txid: bytes | None = None,
    key: bytes | None = None,
    fingerprint: bool = False,
) -> bytes:
    """A request with ``attrs`` and a random 96-bit transaction id unless ``txid`` is given;
    with ``key``, MESSAGE-INTEGRITY (HMAC-SHA1) is appended, then FINGERPRINT if asked."""
    txid = os.urandom(12) if txid is None else txid
    return _encode(_msg_type(method, _REQUEST), attrs, txid, key, fingerprint)


def encode_indication(
    method: int,
    attrs: list[tuple[int, bytes]],
    *,
    txid: bytes | None = None,
    fingerprint: bool = True,
) -> bytes:
    """An indication (RFC 5389 §6: class 01, never answered) with a random transaction id.

    A Binding indication with FINGERPRINT is the hole-punching datagram: it opens the NAT
    mapping towards the peer, and a STUN-aware receiver (``UdpDriver``) counts and drops it."""
    txid = os.urandom(12) if txid is None else txid
    return _encode(_msg_type(method, _INDICATION), attrs, txid, None, fingerprint)


def is_binding_indication(msg: StunMessage) -> bool:
    return msg.method == Method.BINDING and msg.cls == _INDICATION


def encode_response(
    method: int,
    txid: bytes,
    attrs: list[tuple[int, bytes]],
    *,
    error: bool = False,
    fingerprint: bool = False,
) -> bytes:
    """A success (or error) response; used by tests and a minimal responder."""
    return _encode(_msg_type(method, _ERROR if error else _SUCCESS), attrs, txid, None, fingerprint)


def looks_like_stun(data: bytes) -> bool:
    """The cheap demultiplexing test (RFC 5389 §6/§7.3): first two bits 00, magic cookie,
    a length that is a multiple of 4 and fits. RIFT datagrams start with "RI" (bits 01)."""
    return (
        len(data) >= HEADER_SIZE
        and data[0] & 0xC0 == 0
        and data[4:8] == _COOKIE_BYTES
        and (data[2] << 8 | data[3]) % 4 == 0
    )


def parse_message(data: bytes) -> StunMessage:
    """Parse a STUN message; raises only ``StunError``.

    When a FINGERPRINT attribute is present it must be the last one and match the CRC."""
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
        start = pos
        pos += 4
        if pos + alen > end:
            raise StunError("attribute overruns the message")
        value = bytes(data[pos : pos + alen])
        pos += alen + (-alen % 4)
        if kind == Attr.FINGERPRINT:
            if alen != 4 or pos != end:
                raise StunError("FINGERPRINT must be the last attribute, 4 bytes")
            if struct.unpack(">I", value)[0] != _fingerprint(bytes(data[:start])):
                raise StunError("FINGERPRINT mismatch")
        attrs.append((kind, value))
    method, cls = _split_type(msg_type)
    return StunMessage(method, cls, bytes(txid), tuple(attrs))


@dataclass(frozen=True, slots=True)
class RetransmitPolicy:
    """RFC 5389 §7.2.1 timing with our caps (see the module docstring).

    ``rto``: first retransmission timeout; doubles after each send. ``max_transmissions``: Rc.
    ``final_wait_rtos``: Rm, the wait after the last request in units of the initial RTO."""

    rto: float = 0.5
    max_transmissions: int = 4
    final_wait_rtos: float = 4.0

    def __post_init__(self) -> None:
        if not (0 < self.rto <= 10 and 1 <= self.max_transmissions <= 7):
            raise ValueError("rto must be in (0, 10] s and max_transmissions in 1..7")
        if not 0 < self.final_wait_rtos <= 16:
            raise ValueError("final_wait_rtos must be in (0, 16]")

    def send_times(self) -> list[float]:
        """Offsets of each transmission from the first one."""
        times, at, rto = [], 0.0, self.rto
        for _ in range(self.max_transmissions):
            times.append(at)
            at += rto
            rto *= 2
        return times

    def deadline(self) -> float:
        """Offset at which the transaction fails without an answer."""
        return self.send_times()[-1] + self.final_wait_rtos * self.rto


class BindingTransaction:
    """One Binding request to ``server``, sans-IO.

    Drive it with ``datagrams_to_send(now)`` (bytes for ``server``), ``get_timer()`` /
    ``handle_timer(now)``, and ``receive(msg, now)`` for each parsed message; it is ``done``
    when ``result`` (the mapped address) or ``error`` is set."""

    def __init__(
        self,
        server: Address,
        now: float,
        policy: RetransmitPolicy | None = None,
        *,
        txid: bytes | None = None,
    ) -> None:
        self.server = server
        self.policy = policy or RetransmitPolicy()
        self.txid = os.urandom(12) if txid is None else txid
        self.request = encode_request(Method.BINDING, [], txid=self.txid, fingerprint=True)
        self.started = now
        self._sends = [now + t for t in self.policy.send_times()]
        self._deadline = now + self.policy.deadline()
        self._next = 0  # index of the next transmission in _sends
        self.transmissions = 0
        self.result: Address | None = None
        self.error: StunClientError | None = None
        self.rtt: float | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None

    def datagrams_to_send(self, now: float) -> list[bytes]:
        if self.done:
            return []
        due = 0
        while self._next < len(self._sends) and self._sends[self._next] <= now:
            self._next += 1
            due += 1
        if not due:
            return []
        self.transmissions += 1  # a late timer sends one copy, never a burst
        return [self.request]

    def get_timer(self) -> float | None:
        if self.done:
            return None
        if self._next < len(self._sends):
            return self._sends[self._next]
        return self._deadline

    def handle_timer(self, now: float) -> None:
        if not self.done and self._next >= len(self._sends) and now >= self._deadline:
            self.error = StunTimeoutError(
                f"no STUN answer from {self.server[0]}:{self.server[1]} after "
                f"{self.transmissions} requests"
            )

    def receive(self, msg: StunMessage, now: float) -> bool:
        """Consume ``msg`` if it answers this transaction (same txid, Binding, a response).
        Returns whether it was consumed."""
        if self.done or msg.txid != self.txid or msg.method != Method.BINDING:
            return False
        if msg.is_error:
            self.error = StunErrorResponse(msg.error_code, msg.error_reason or "error response")
            return True
        if not msg.is_success:
            return False
        try:
            mapped = msg.mapped_address()
        except StunError as exc:
            self.error = StunErrorResponse(None, f"malformed mapped address: {exc}")
            return True
        if mapped is None:
            self.error = StunErrorResponse(None, "success response without a mapped address")
            return True
        self.result = mapped
        self.rtt = now - self.started
        return True


def parse_server(text: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``v4:port`` or ``[v6]:port`` (default port 3478)."""
    text = text.strip()
    if not text or len(text) > 260:
        raise ValueError("empty or overlong STUN server")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"{text!r}: missing ']'")
        ipaddress.IPv6Address(host)
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"{text!r}: expected ':PORT' after ']'")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif ":" in text:
        raise ValueError(f"{text!r}: bracket IPv6 addresses, e.g. [::1]:3478")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"{text!r}: empty host")
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"{text!r}: port must be 1..65535")
        return host, int(port_text)
    return host, DEFAULT_PORT


def stun_servers_from_env(env: Mapping[str, str] | None = None) -> list[tuple[str, int]]:
    """The servers of ``WAVRY_STUN_SERVERS`` (comma-separated); [] when unset or empty."""
    env = os.environ if env is None else env
    raw = env.get(ENV_STUN_SERVERS, "").strip()
    if not raw:
        return []
    servers = [parse_server(part) for part in raw.split(",") if part.strip()]
    if len(servers) > MAX_SERVERS:
        raise ValueError(f"{ENV_STUN_SERVERS}: at most {MAX_SERVERS} servers")
    return servers
