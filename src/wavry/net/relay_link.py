"""One peer's side of a relayed RIFT path: lease presentation, FORWARD wrapping, recovery.

Sans-IO like ``wavry.rift``: ``RelayLink`` never touches a socket or a clock it was not given.
The driver (``wavry.net.udp.UdpDriver.attach_relay``) sends what ``datagrams_to_send`` returns to
the relay, wraps every datagram the RIFT core sends to the link's virtual address with ``wrap``,
hands datagrams from the relay to ``receive`` and drives ``get_timer``/``handle_timer``.

Life of a link::

    PRESENTING --ACK--> BOUND --silence--> REBINDING --ACK or FORWARD--> BOUND
        |                 |                    |
        +-----REJECT------+--------------------+--> REJECTED (terminal, typed reason)
        +--no answer within present_timeout------> TIMED_OUT (terminal)

* **Presenting.** LEASE_PRESENT at once, then after 0.2, 0.4, 0.8, 1.6, 2, 2 ... s until a
  LEASE_ACK. RIFT datagrams wrapped meanwhile are held (a few, the newest) and sent on the ACK:
  the client's first handshake message then costs no RIFT retransmission (0.25 s).
* **Silence** (relay restart, NAT rebinding). The relay keeps no state we can query, and it
  silently drops FORWARDs for sessions it forgot (restart) or from addresses it does not know
  (our NAT mapping changed). Both look the same from here: nothing comes back. A bound RIFT
  session is never quiet for long (each side pings every 0.5 s, a media receiver reports every
  50 ms), so after ``silence_s`` without a datagram from the relay the link re-presents its
  lease, paced like the first presentation, until an ACK or a FORWARD arrives. To the relay a
  re-present from the bound address is just another ACK, from a new address it is a NAT rebind,
  and after a restart it recreates the session. The lease token stays valid across all three.
* **Renewal.** A LEASE_ACK grants the relay-side lease until ``expires_unix_ms`` (at most the
  token's ``exp``). At 80% of that the link sends LEASE_RENEW; a renew never extends past the
  token (plus the relay's clock-skew allowance), so once a renew's ACK stops moving the expiry
  forward the link stops renewing and ``lease_ending`` tells the owner to get a new lease
  (``token_expires_unix``: the token's own ``exp``, from ``expires_at_unix`` or read from it).
  A reject answering a renew (the relay restarted and forgot the session) falls back to
  re-presenting.
* **Rejects.** RATE_LIMITED is transient (keep presenting, paced). Any other code is terminal:
  ``state`` becomes REJECTED, ``reject_code`` and ``reject_message`` say why, nothing more is
  sent. LEASE_REJECT is unauthenticated, but it must come from the relay's address (the driver
  checks) and name our 128-bit random session id.

``receive`` never raises, whatever the input (hypothesis-tested); anything that is not a
well-formed message of this session for us is counted and dropped.
"""

from __future__ import annotations

import enum
import json
import time
from base64 import urlsafe_b64decode
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from wavry.relay.wire import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_DATAGRAM_SIZE,
    NIL_SESSION,
    VERSION,
    MessageType,
    RejectCode,
    Role,
    encode_lease_present,
    encode_lease_renew,
)

__all__ = [
    "MAX_PAYLOAD",
    "LinkState",
    "RelayCredentialsLike",
    "RelayLink",
    "RelayLinkClosedError",
    "RelayLinkError",
    "RelayLinkStats",
    "RelayPayloadTooLargeError",
    "parse_relay_addr",
    "reject_message",
]

#: The largest RIFT datagram that fits a FORWARD (1500 - 20 relay header bytes).
MAX_PAYLOAD = MAX_DATAGRAM_SIZE - HEADER_SIZE

_ACK_BODY_SIZE = 16  # u64 expires_unix_ms, u32 soft_kbps, u32 hard_kbps
_FORWARD = int(MessageType.FORWARD)
_ACK = int(MessageType.LEASE_ACK)
_REJECT = int(MessageType.LEASE_REJECT)
_FIRST_RETRY = 0.2
_MAX_RETRY = 2.0
#: RIFT datagrams held while the lease is not acknowledged yet (the newest win).
_HOLD_MAX = 16
#: Renew at this fraction of the relay-side lease; retry an unanswered renew after this long.
_RENEW_AT = 0.8
_RENEW_RETRY = 1.0

_MESSAGES = {
    RejectCode.EXPIRED: "the relay lease has expired: ask for a new relay",
    RejectCode.INVALID_SIGNATURE: (
        "the relay refused the lease (signature not trusted, or another identity holds this"
        " role): ask for a new relay"
    ),
    RejectCode.WRONG_RELAY: "the lease was issued for another relay: ask for a new relay",
    RejectCode.SESSION_FULL: "the relay is full: ask for another relay",
    RejectCode.BANNED: "this Wavry ID is banned on the relay",
    RejectCode.RATE_LIMITED: "the relay is rate limiting us",
}


def reject_message(code: RejectCode) -> str:
    """A human explanation of a LEASE_REJECT reason."""
    return _MESSAGES.get(code, f"the relay rejected the lease ({int(code)})")


class RelayLinkError(Exception):
    """Misuse of a relay link (the relay's own answers never raise; they change ``state``)."""


class RelayPayloadTooLargeError(RelayLinkError):
    """A RIFT datagram too large for a 1500-byte FORWARD."""

    def __init__(self, size: int) -> None:
        super().__init__(f"a {size}-byte datagram does not fit a FORWARD (max {MAX_PAYLOAD})")
        self.size = size
        self.limit = MAX_PAYLOAD


class RelayLinkClosedError(RelayLinkError):
    """The link was rejected, timed out or closed: nothing can be sent through it."""


class LinkState(enum.Enum):
    PRESENTING = "presenting"
    BOUND = "bound"
    #: bound, but the relay went silent: re-presenting the lease
    REBINDING = "rebinding"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    CLOSED = "closed"


_TERMINAL = frozenset({LinkState.REJECTED, LinkState.TIMED_OUT, LinkState.CLOSED})


@dataclass(frozen=True, slots=True)
class RelayLinkStats:
    state: str
    presents_sent: int
    renews_sent: int
    acks: int
    rejects: int
    #: re-presentations started because the relay went silent
    rebinds: int
    forwarded_in: int
    forwarded_out: int
    #: datagrams from the relay address that were not for this link (other session, garbage)
    dropped_in: int
    #: wrapped datagrams not sent (held past the bound while presenting, or too large)
    dropped_out: int
    #: present -> ack round trip of the last unambiguous exchange (Karn: one present only)
    last_rtt_ms: float | None
    soft_kbps: int | None
    hard_kbps: int | None
    #: relay-side lease expiry from the last ACK (unix seconds)
    lease_expires_unix: float | None


class RelayCredentialsLike(Protocol):
    """The fields of signaling's ``RelayCredentials`` a link needs (kept structural so this
    module does not import the gateway)."""

    @property
    def addr(self) -> str: ...
    @property
    def session_id(self) -> str: ...
    @property
    def lease(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def expires_at(self) -> float: ...


def parse_relay_addr(text: str) -> tuple[str, int]:
    """``IP:PORT`` or ``[v6]:PORT`` (signaling ``RelayCredentials.addr``) as an address tuple."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"relay address must be IP:PORT or [IPv6]:PORT, got {text[:80]!r}")
    return host, int(port)


def _token_exp(token: str) -> float | None:
    """The lease's ``exp`` claim, read unverified (only to schedule renewals; the relay
    verifies). None when the token cannot be read."""
    try:
        body = token.split(".")[2]
        raw = urlsafe_b64decode(body + "=" * (-len(body) % 4))
        doc = json.loads(raw[:-64])
        exp = doc["exp"]
        return datetime.fromisoformat(exp.replace("Z", "+00:00")).timestamp()
    except (IndexError, KeyError, TypeError, AttributeError, ValueError, RecursionError):
        return None  # an unreadable token: no hint, the ACKs still drive renewals


class RelayLink:
    """One leased session on one relay, seen from one peer (see the module docstring)."""

    def __init__(
        self,
        relay_addr: tuple[str, int],
        session_id: bytes,
        role: Role,
        lease: str,
        now: float,
        *,
        expires_at_unix: float | None = None,
        silence_s: float = 0.6,
        present_timeout: float | None = 10.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if len(session_id) != 16 or session_id == NIL_SESSION:
            raise ValueError("session_id must be 16 bytes and not the nil UUID")
        if silence_s <= 0:
            raise ValueError("silence_s must be positive")
        self.relay_addr = relay_addr
        self.session_id = session_id
        self.role = Role(role)
        self.silence_s = silence_s
        self.present_timeout = present_timeout
        self._wall = wall
        self._present = encode_lease_present(session_id, self.role, lease)  # validates the token
        self._renew = encode_lease_renew(session_id)
        self._forward_head = HEADER.pack(MAGIC, VERSION, _FORWARD, 0, session_id)
        token_exp = _token_exp(lease)
        self.token_expires_unix = expires_at_unix if expires_at_unix is not None else token_exp
        self.state = LinkState.PRESENTING
        self.reject_code: RejectCode | None = None
        self.reject_message: str | None = None
        self._started = now
        self._out: list[bytes] = []
        self._held: deque[bytes] = deque(maxlen=_HOLD_MAX)
        self._last_rx = now
        # presentation round (first or after silence)
        self._present_at: float | None = now
        self._present_gap = _FIRST_RETRY
        self._round_presents = 0
        self._last_present_sent = now
        # renewal
        self._renew_at: float | None = None
        self._renew_pending = False
        self.lease_expires_unix: float | None = None
        self.lease_ending = False
        # stats
        self.presents_sent = 0
        self.renews_sent = 0
        self.acks = 0
        self.rejects = 0
        self.rebinds = 0
        self.forwarded_in = 0
        self.forwarded_out = 0
        self.dropped_in = 0
        self.dropped_out = 0
        self.last_rtt: float | None = None
        self.soft_kbps: int | None = None
        self.hard_kbps: int | None = None

    @classmethod
    def from_credentials(
        cls,
        creds: RelayCredentialsLike,
        now: float,
        *,
        silence_s: float = 0.6,
        present_timeout: float | None = 10.0,
        wall: Callable[[], float] = time.time,
    ) -> RelayLink:
        """A link from signaling ``RelayCredentials`` (``addr`` "IP:PORT", UUID session id,
        role "client"|"server"). Raises ``ValueError`` on malformed fields."""
        return cls(
            parse_relay_addr(creds.addr),
            UUID(creds.session_id).bytes,
            Role.from_claim(creds.role),
            creds.lease,
            now,
            expires_at_unix=creds.expires_at,
            silence_s=silence_s,
            present_timeout=present_timeout,
            wall=wall,
        )

    # -- sending ---------------------------------------------------------------------------

    def wrap(self, datagram: bytes) -> bytes | None:
        """The FORWARD carrying ``datagram`` to send to the relay now, or None when it is held
        until the lease is acknowledged.

        Raises ``RelayPayloadTooLargeError`` past ``MAX_PAYLOAD`` bytes and
        ``RelayLinkClosedError`` once the link is rejected, timed out or closed."""
        if len(datagram) > MAX_PAYLOAD:
            self.dropped_out += 1
            raise RelayPayloadTooLargeError(len(datagram))
        if self.state in _TERMINAL:
            self.dropped_out += 1
            raise RelayLinkClosedError(self.reject_message or f"relay link {self.state.value}")
        out = self._forward_head + datagram
        if self.state is LinkState.PRESENTING:
            # The relay drops FORWARDs of unbound peers; hold the newest few for the ACK.
            if len(self._held) == _HOLD_MAX:
                self.dropped_out += 1
            self._held.append(out)
            return None
        self.forwarded_out += 1
        return out

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Control messages (and held FORWARDs) to send to ``relay_addr``."""
        self._poll(now)
        out, self._out = self._out, []
        return out

    # -- receiving -------------------------------------------------------------------------

    def receive(self, datagram: bytes, now: float) -> bytes | None:
        """The RIFT payload of a FORWARD for this session; None for control messages (they
        update ``state``) and for anything else (counted in ``dropped_in``). Never raises
        (every read below is bounds-checked first; hypothesis tests it)."""
        data = datagram
        n = len(data)
        if (
            n < HEADER_SIZE
            or n > MAX_DATAGRAM_SIZE
            or data[0] != MAGIC
            or data[1] != VERSION
            or data[3] != 0
            or data[4:HEADER_SIZE] != self.session_id
            or self.state in _TERMINAL
        ):
            self.dropped_in += 1
            return None
        kind = data[2]
        if kind == _FORWARD:
            if n == HEADER_SIZE:
                self.dropped_in += 1
                return None
            self._last_rx = now
            self.forwarded_in += 1
            if self.state is LinkState.REBINDING:
                # Traffic came back (the relay acknowledged the other side, or we only
                # missed the ACK): the binding works.
                self._bound(now)
            return bytes(data[HEADER_SIZE:])
        if kind == _ACK and n >= HEADER_SIZE + _ACK_BODY_SIZE:
            self._on_ack(data, now)
        elif kind == _REJECT and n >= HEADER_SIZE + 2:
            self._on_reject(int.from_bytes(data[HEADER_SIZE : HEADER_SIZE + 2], "big"), now)
        else:
            self.dropped_in += 1
        return None

    def _on_ack(self, data: bytes, now: float) -> None:
        self.acks += 1
        self._last_rx = now
        exp_ms = int.from_bytes(data[HEADER_SIZE : HEADER_SIZE + 8], "big")
        self.soft_kbps = int.from_bytes(data[HEADER_SIZE + 8 : HEADER_SIZE + 12], "big")
        self.hard_kbps = int.from_bytes(data[HEADER_SIZE + 12 : HEADER_SIZE + 16], "big")
        if self._round_presents == 1 and self._present_at is not None:
            self.last_rtt = now - self._last_present_sent
        expires = exp_ms / 1000.0
        previous = self.lease_expires_unix
        renewed = self._renew_pending
        self.lease_expires_unix = expires
        self._renew_pending = False
        remaining = expires - self._wall()
        if renewed and previous is not None and expires <= previous + 1.0:
            # The relay cannot extend this lease any further (a renew never outlives the
            # token's exp, plus the relay's clock skew allowance): a new token is needed.
            self.lease_ending = True
            self._renew_at = None
        elif remaining > 0:
            self._renew_at = now + remaining * _RENEW_AT
        if self.state in (LinkState.PRESENTING, LinkState.REBINDING):
            self._bound(now)

    def _on_reject(self, raw: int, now: float) -> None:
        self.rejects += 1
        try:
            code = RejectCode(raw)
        except ValueError:
            self.rejects -= 1
            self.dropped_in += 1
            return
        if code is RejectCode.RATE_LIMITED:
            return  # transient: the paced presentation (or renew retry) goes on
        if self._renew_pending and self._present_at is None:
            # A renew the relay cannot match (restarted: session unknown, or our address
            # changed): present the lease again instead.
            self._renew_pending = False
            self._renew_at = None
            self._start_presenting(now, LinkState.REBINDING)
            return
        self.state = LinkState.REJECTED
        self.reject_code = code
        self.reject_message = reject_message(code)
        self._present_at = None
        self._renew_at = None
        self._held.clear()
        self._out.clear()

    # -- timers ----------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        if self.state in _TERMINAL:
            return None
        times = [t for t in (self._present_at, self._renew_at) if t is not None]
        if self.state is LinkState.PRESENTING and self.present_timeout is not None:
            times.append(self._started + self.present_timeout)
        if self.state is LinkState.BOUND:
            times.append(self._last_rx + self.silence_s)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self._poll(now)

    def _poll(self, now: float) -> None:
        state = self.state
        if state in _TERMINAL:
            return
        if (
            state is LinkState.PRESENTING
            and self.present_timeout is not None
            and now >= self._started + self.present_timeout
        ):
            self.state = LinkState.TIMED_OUT
            self.reject_message = (
                f"no answer from the relay within {self.present_timeout:g} s: ask for another relay"
            )
            self._present_at = self._renew_at = None
            self._held.clear()
            return
        if state is LinkState.BOUND and now >= self._last_rx + self.silence_s:
            self.rebinds += 1
            self._start_presenting(now, LinkState.REBINDING)
        if self._present_at is not None and now >= self._present_at:
            self._out.append(self._present)
            self.presents_sent += 1
            self._round_presents += 1
            self._last_present_sent = now
            self._present_at = now + self._present_gap
            self._present_gap = min(self._present_gap * 2, _MAX_RETRY)
        if self._renew_at is not None and now >= self._renew_at:
            self._out.append(self._renew)
            self.renews_sent += 1
            self._renew_pending = True
            self._renew_at = now + _RENEW_RETRY

    def _start_presenting(self, now: float, state: LinkState) -> None:
        self.state = state
        # A renew cannot succeed while the binding is in doubt; the ACK reschedules it.
        self._renew_at = None
        self._renew_pending = False
        self._present_at = now
        self._present_gap = _FIRST_RETRY
        self._round_presents = 0

    def _bound(self, now: float) -> None:
        self.state = LinkState.BOUND
        self._present_at = None
        self._round_presents = 0
        self._last_rx = now
        while self._held:
            self._out.append(self._held.popleft())
            self.forwarded_out += 1

    # -- control ---------------------------------------------------------------------------

    def network_changed(self, now: float) -> None:
        """Our socket changed (new local port or address): present the lease again at once
        instead of waiting for ``silence_s``. No-op for a terminal or presenting link."""
        if self.state in (LinkState.BOUND, LinkState.REBINDING):
            self.rebinds += 1
            self._start_presenting(now, LinkState.REBINDING)

    def close(self) -> None:
        self.state = LinkState.CLOSED
        self._present_at = self._renew_at = None
        self._held.clear()
        self._out.clear()

    @property
    def closed(self) -> bool:
        """Rejected, timed out or closed: the owner should detach the link."""
        return self.state in _TERMINAL

    def stats(self) -> RelayLinkStats:
        return RelayLinkStats(
            state=self.state.value,
            presents_sent=self.presents_sent,
            renews_sent=self.renews_sent,
            acks=self.acks,
            rejects=self.rejects,
            rebinds=self.rebinds,
            forwarded_in=self.forwarded_in,
            forwarded_out=self.forwarded_out,
            dropped_in=self.dropped_in,
            dropped_out=self.dropped_out,
            last_rtt_ms=None if self.last_rtt is None else self.last_rtt * 1000,
            soft_kbps=self.soft_kbps,
            hard_kbps=self.hard_kbps,
            lease_expires_unix=self.lease_expires_unix,
        )
