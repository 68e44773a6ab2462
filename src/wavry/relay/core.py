"""Sans-IO relay: sessions, lease checks, limits and forwarding decisions.

``RelayCore.receive_datagram(data, addr, now, wall)`` takes one received datagram and returns the
one datagram to send in answer (a forward to the other peer, a LEASE_ACK or a LEASE_REJECT), or
``None``. ``now`` is monotonic seconds (windows, idle and expiry), ``wall`` unix seconds (lease
validity). ``handle_timer(now)`` runs cleanup when ``get_timer()`` is due. No sockets, no clocks.

**Accounting rule.** Every datagram counted in ``packets_rx`` ends in exactly one *outcome*
counter (``OUTCOMES``): forwarded, acknowledged, or one drop reason (a reject is a drop that is
answered). ``Counters.outcome_total() == packets_rx`` always holds; the property test checks it.

Order of checks (cheap before expensive, unauthenticated traffic limited before any crypto):

1. length 20..1500, magic, version, flags (``invalid_packets``)
2. FORWARD from a peer of the session: lease time, other peer present, sequence (replay window),
   hard bandwidth cap, then forward byte-identical. This is the fast path: no rate-limiter or
   table work beyond one dict lookup and two address compares.
3. Anything else (control messages, FORWARD from unknown addresses) first passes the per-IP
   fixed 1 s window (reject 6 to control messages).
4. LEASE_PRESENT: load shedding for new sessions (reject 4, before any signature work), lease
   verification (1/2/3), ban list (5), per-identity window (6), session table full (4), role lock
   (2: a role belongs to the first identity that presented it), NAT rebind, ACK.
5. LEASE_RENEW: session (1), peer by address (2), identity window (6), expiry (1), ACK. A renew
   never extends a peer's lease past its token's ``exp``; past that, present a new token.

**Native fast path.** ``attach_fastpath(fp)`` hands step 2 to ``wavry.relay._fastpath`` (C): every
LEASE_ACK mirrors the peer (address, lease expiry, byte budgets) into it, cleanup removes sessions
from it, and from then on it owns the replay and bandwidth windows of bound peers and decides their
FORWARDs with the same checks in the same order. Its counters are folded into ``counters`` by
``fold_fastpath()`` (called after every datagram it decides through here, and by the server after
every socket drain), so the accounting rule holds with it on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wavry.relay.lease import LeaseRejected, LeaseVerifier
from wavry.relay.wire import (
    HEADER_SIZE,
    MAGIC,
    MAX_DATAGRAM_SIZE,
    NIL_SESSION,
    VERSION,
    MessageType,
    RejectCode,
    RelayWireError,
    Role,
    encode_lease_ack,
    encode_lease_reject,
    parse_lease_present,
)
from wavry.rift.errors import RemoteProtocolError
from wavry.rift.header import parse_header as parse_rift_header
from wavry.rift.replay import ReplayWindow

if TYPE_CHECKING:
    from wavry.relay.fastpath import FastPathLike

__all__ = ["OUTCOMES", "Addr", "Counters", "RelayConfig", "RelayCore", "SessionInfo"]

Addr = tuple[Any, ...]

#: Every received datagram lands in exactly one of these.
OUTCOMES: tuple[str, ...] = (
    "packets_forwarded",
    "lease_ack_packets",
    "backpressure_dropped_packets",
    "invalid_packets",
    "rate_limited_packets",
    "identity_rate_limited_packets",
    "overload_shed_packets",
    "auth_reject_packets",
    "expired_lease_rejects",
    "wrong_relay_rejects",
    "session_full_rejects",
    "banned_rejects",
    "session_not_found_packets",
    "session_not_active_packets",
    "unknown_peer_packets",
    "replay_dropped_packets",
    "bandwidth_dropped_packets",
)
#: Counters that describe traffic but are not outcomes.
OTHER_COUNTERS: tuple[str, ...] = (
    "packets_rx",
    "bytes_rx",
    "bytes_forwarded",
    "lease_present_packets",
    "lease_renew_packets",
    "soft_limit_exceeded_packets",
    "sessions_created",
    "cleanup_expired_sessions",
    "cleanup_idle_sessions",
    "nat_rebind_events",
)

_RIFT_MAGIC0, _RIFT_MAGIC1 = 0x52, 0x49
_FORWARD = int(MessageType.FORWARD)
_PRESENT = int(MessageType.LEASE_PRESENT)
_RENEW = int(MessageType.LEASE_RENEW)
_REJECT_COUNTER = {
    RejectCode.EXPIRED: "expired_lease_rejects",
    RejectCode.INVALID_SIGNATURE: "auth_reject_packets",
    RejectCode.WRONG_RELAY: "wrong_relay_rejects",
}


class Counters:
    """Monotonic counters (plain ints: the hot path increments attributes)."""

    __slots__ = OUTCOMES + OTHER_COUNTERS

    packets_forwarded: int
    lease_ack_packets: int
    backpressure_dropped_packets: int
    invalid_packets: int
    rate_limited_packets: int
    identity_rate_limited_packets: int
    overload_shed_packets: int
    auth_reject_packets: int
    expired_lease_rejects: int
    wrong_relay_rejects: int
    session_full_rejects: int
    banned_rejects: int
    session_not_found_packets: int
    session_not_active_packets: int
    unknown_peer_packets: int
    replay_dropped_packets: int
    bandwidth_dropped_packets: int
    packets_rx: int
    bytes_rx: int
    bytes_forwarded: int
    lease_present_packets: int
    lease_renew_packets: int
    soft_limit_exceeded_packets: int
    sessions_created: int
    cleanup_expired_sessions: int
    cleanup_idle_sessions: int
    nat_rebind_events: int

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def outcome_total(self) -> int:
        return sum(getattr(self, name) for name in OUTCOMES)

    @property
    def dropped_packets(self) -> int:
        """Every outcome except forwarded and acknowledged (the original's ``dropped_packets``)."""
        return self.outcome_total() - self.packets_forwarded - self.lease_ack_packets

    def as_dict(self) -> dict[str, int]:
        out = {name: int(getattr(self, name)) for name in self.__slots__}
        out["dropped_packets"] = self.dropped_packets
        return out


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Relay protocol knobs (the service maps its settings onto these)."""

    max_sessions: int = 100
    #: new sessions are shed (reject 4) from max(1, max_sessions * pct / 100) sessions on;
    #: 100 disables shedding (the table-full reject still applies)
    load_shed_threshold_pct: int = 95
    ip_rate_limit_pps: int = 1000
    identity_rate_limit_pps: int = 200
    ip_table_size: int = 1_000_000
    identity_table_size: int = 100_000
    idle_timeout: float = 60.0
    #: relay-side lease length granted by an ACK or a renew (never past the token's exp)
    lease_duration: float = 300.0
    cleanup_interval: float = 10.0
    replay_window: int = 1024
    #: floor of the soft limit, kbit/s (as the original)
    min_soft_kbps: int = 1000

    def __post_init__(self) -> None:
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        if not 50 <= self.load_shed_threshold_pct <= 100:
            raise ValueError("load_shed_threshold_pct must be within 50..100")
        for name in ("ip_rate_limit_pps", "identity_rate_limit_pps", "ip_table_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.identity_table_size < 1:
            raise ValueError("identity_table_size must be >= 1")
        for name in ("idle_timeout", "lease_duration", "cleanup_interval"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")

    @property
    def shed_threshold(self) -> int:
        return max(1, self.max_sessions * self.load_shed_threshold_pct // 100)


class _FixedWindow:
    """Per-key packet counts in one shared, aligned 1 s window.

    The table is cleared when the window turns, so it never holds more keys than were seen in
    one second, and never more than ``max_keys``: once full, new keys are refused until the next
    window (fail closed, counted as rate limited).
    """

    __slots__ = ("_counts", "_limit", "_max_keys", "_window")

    def __init__(self, limit: int, max_keys: int) -> None:
        self._limit = limit
        self._max_keys = max_keys
        self._window = -1
        self._counts: dict[object, int] = {}

    def allow(self, key: object, now: float) -> bool:
        window = math.floor(now)
        if window != self._window:
            self._window = window
            self._counts.clear()
        n = self._counts.get(key, 0)
        if n >= self._limit or (n == 0 and len(self._counts) >= self._max_keys):
            return False
        self._counts[key] = n + 1
        return True

    def __len__(self) -> int:
        return len(self._counts)


class _Peer:
    __slots__ = (
        "addr",
        "bw_bytes",
        "bw_start",
        "expires",
        "expires_wall",
        "hard_bytes",
        "hard_kbps",
        "identity",
        "replay",
        "soft_bytes",
        "soft_kbps",
        "token_exp_wall",
    )

    def __init__(self, identity: str, addr: Addr, replay_window: int) -> None:
        self.identity = identity
        self.addr = addr
        self.replay = ReplayWindow(replay_window)
        self.expires = 0.0  # monotonic
        self.expires_wall = 0.0
        self.token_exp_wall = 0.0
        self.soft_kbps = 0
        self.hard_kbps = 0
        self.soft_bytes = 0
        self.hard_bytes = 0
        self.bw_start = -math.inf
        self.bw_bytes = 0


class _Session:
    __slots__ = ("client", "created", "last_activity", "server", "sid")

    def __init__(self, sid: bytes, now: float) -> None:
        self.sid = sid
        self.client: _Peer | None = None
        self.server: _Peer | None = None
        self.created = now
        self.last_activity = now


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A read-only view of one session (for /health, logs and tests)."""

    session_id: bytes
    client: tuple[str, Addr] | None
    server: tuple[str, Addr] | None
    active: bool


class RelayCore:
    """The relay's decision logic; see the module docstring."""

    def __init__(
        self,
        relay_id: str,
        verifier: LeaseVerifier | None,
        config: RelayConfig | None = None,
        *,
        banned: Iterable[str] = (),
        now: float = 0.0,
    ) -> None:
        self.relay_id = relay_id
        self.verifier = verifier
        self.config = config or RelayConfig()
        self.counters = Counters()
        self.banned: set[str] = set(banned)
        self._sessions: dict[bytes, _Session] = {}
        self._ip_limit = _FixedWindow(self.config.ip_rate_limit_pps, self.config.ip_table_size)
        self._id_limit = _FixedWindow(
            self.config.identity_rate_limit_pps, self.config.identity_table_size
        )
        self._next_cleanup = now + self.config.cleanup_interval
        self._fast: FastPathLike | None = None
        self._fast_names: tuple[str, ...] = ()

    # -- native fast path ------------------------------------------------------------------

    def attach_fastpath(self, fp: FastPathLike, counter_names: tuple[str, ...]) -> None:
        """Let ``fp`` decide FORWARDs from bound peers (see the module docstring)."""
        if self._fast is not None:
            raise RuntimeError("a fast path is already attached")
        if any(s.client or s.server for s in self._sessions.values()):
            raise RuntimeError("attach the fast path before any peer is bound")
        self._fast = fp
        self._fast_names = counter_names

    @property
    def fastpath(self) -> FastPathLike | None:
        return self._fast

    def fold_fastpath(self) -> None:
        """Add the fast path's counter increments to ``counters``."""
        fp = self._fast
        if fp is None:
            return
        delta = fp.take_counters()
        if delta is None:
            return
        c = self.counters
        for name, value in zip(self._fast_names, delta, strict=True):
            if value:
                setattr(c, name, getattr(c, name) + value)

    def _fast_forward(self, data: bytes, addr: Addr, now: float) -> tuple[bytes, Addr] | None:
        assert self._fast is not None
        dest = self._fast.forward_one(data, addr, now)
        self.fold_fastpath()
        if dest is False:  # the mirror disagrees with the table: a bug, never silently forward
            raise RuntimeError("fast path table out of sync with RelayCore")
        return None if dest is None else (data, dest)

    # -- state queries ---------------------------------------------------------------------

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    @property
    def active_sessions(self) -> int:
        return sum(1 for s in self._sessions.values() if s.client and s.server)

    @property
    def overloaded(self) -> bool:
        """At or above the shedding threshold (new sessions are being refused)."""
        return len(self._sessions) >= self.config.shed_threshold

    @property
    def load_pct(self) -> int:
        return min(100, len(self._sessions) * 100 // self.config.max_sessions)

    def sessions(self) -> list[SessionInfo]:
        out = []
        for s in self._sessions.values():
            c = (s.client.identity, s.client.addr) if s.client else None
            v = (s.server.identity, s.server.addr) if s.server else None
            out.append(SessionInfo(s.sid, c, v, bool(c and v)))
        return out

    def note_backpressure_drop(self, nbytes: int) -> None:
        """The I/O layer dropped a received datagram before the core saw it (queue full)."""
        c = self.counters
        c.packets_rx += 1
        c.bytes_rx += nbytes
        c.backpressure_dropped_packets += 1

    # -- timers ----------------------------------------------------------------------------

    def get_timer(self) -> float:
        return self._next_cleanup

    def handle_timer(self, now: float) -> None:
        if now < self._next_cleanup:
            return
        self._next_cleanup = now + self.config.cleanup_interval
        self.cleanup(now)

    def cleanup(self, now: float) -> None:
        """Drop sessions whose every lease expired, then sessions idle for ``idle_timeout``."""
        c = self.counters
        idle = self.config.idle_timeout
        fast = self._fast
        for sid, s in list(self._sessions.items()):
            peers = [p for p in (s.client, s.server) if p is not None]
            if fast is not None:
                seen = fast.last_activity(sid)
                if seen is not None and seen > s.last_activity:
                    s.last_activity = seen
            if not peers or all(now >= p.expires for p in peers):
                del self._sessions[sid]
                c.cleanup_expired_sessions += 1
            elif now - s.last_activity >= idle:
                del self._sessions[sid]
                c.cleanup_idle_sessions += 1
            else:
                continue
            if fast is not None:
                fast.remove_session(sid)

    # -- datagrams -------------------------------------------------------------------------

    def receive_datagram(
        self, data: bytes, addr: Addr, now: float, wall: float
    ) -> tuple[bytes, Addr] | None:
        c = self.counters
        c.packets_rx += 1
        n = len(data)
        c.bytes_rx += n
        if n < HEADER_SIZE or n > MAX_DATAGRAM_SIZE:
            c.invalid_packets += 1
            return None
        if data[0] != MAGIC or data[1] != VERSION or data[3] != 0:
            c.invalid_packets += 1
            return None
        kind = data[2]
        if kind == _FORWARD:
            session = self._sessions.get(data[4:HEADER_SIZE])
            if session is not None:
                client, server = session.client, session.server
                if client is not None and client.addr == addr:
                    if self._fast is not None:
                        return self._fast_forward(data, addr, now)
                    return self._forward(data, n, session, client, server, now)
                if server is not None and server.addr == addr:
                    if self._fast is not None:
                        return self._fast_forward(data, addr, now)
                    return self._forward(data, n, session, server, client, now)
            return self._forward_slow(data, addr, session, now)
        if kind == _PRESENT:
            c.lease_present_packets += 1
            return self._present(data, addr, now, wall)
        if kind == _RENEW:
            c.lease_renew_packets += 1
            return self._renew(data, addr, now, wall)
        # LEASE_ACK / LEASE_REJECT travel relay -> peer only; anything else is unknown.
        c.invalid_packets += 1
        return None

    def _forward(
        self,
        data: bytes,
        n: int,
        session: _Session,
        sender: _Peer,
        receiver: _Peer | None,
        now: float,
    ) -> tuple[bytes, Addr] | None:
        c = self.counters
        if receiver is None or now >= sender.expires or now >= receiver.expires:
            c.session_not_active_packets += 1
            return None
        if n > HEADER_SIZE + 1 and data[HEADER_SIZE] == _RIFT_MAGIC0 and data[21] == _RIFT_MAGIC1:
            try:
                header, _ = parse_rift_header(data[HEADER_SIZE : HEADER_SIZE + 30])
            except RemoteProtocolError:
                c.invalid_packets += 1
                return None
            pid = header.packet_id
        elif n >= HEADER_SIZE + 8:
            pid = int.from_bytes(data[HEADER_SIZE : HEADER_SIZE + 8], "big")
        else:
            c.invalid_packets += 1
            return None
        # RIFT handshake messages carry packet id 0 and are resent byte-identical by design
        # (Noise protects them); they bypass the window. Every other id is checked once.
        replay = sender.replay
        if pid != 0 and not replay.check(pid):
            c.replay_dropped_packets += 1
            return None
        if now - sender.bw_start >= 1.0:
            sender.bw_start = now
            sender.bw_bytes = 0
        used = sender.bw_bytes + n
        if used > sender.hard_bytes:
            c.bandwidth_dropped_packets += 1
            return None
        if used > sender.soft_bytes:
            c.soft_limit_exceeded_packets += 1
        sender.bw_bytes = used
        if pid != 0:
            replay.update(pid)
        session.last_activity = now
        c.packets_forwarded += 1
        c.bytes_forwarded += n
        return data, receiver.addr

    def _forward_slow(
        self, data: bytes, addr: Addr, session: _Session | None, now: float
    ) -> tuple[bytes, Addr] | None:
        """A FORWARD that is not from a known peer. It never rebinds: only a lease does."""
        c = self.counters
        if data[4:HEADER_SIZE] == NIL_SESSION:
            c.invalid_packets += 1
        elif not self._ip_limit.allow(addr[0], now):
            c.rate_limited_packets += 1
        elif session is None:
            c.session_not_found_packets += 1
        else:
            c.unknown_peer_packets += 1
        return None

    def _reject(self, counter: str, sid: bytes, code: RejectCode, addr: Addr) -> tuple[bytes, Addr]:
        c = self.counters
        setattr(c, counter, getattr(c, counter) + 1)
        return encode_lease_reject(sid, code), addr

    def _present(
        self, data: bytes, addr: Addr, now: float, wall: float
    ) -> tuple[bytes, Addr] | None:
        c = self.counters
        try:
            msg = parse_lease_present(data)
        except RelayWireError:
            c.invalid_packets += 1
            return None
        sid = msg.session_id
        if not self._ip_limit.allow(addr[0], now):
            return self._reject("rate_limited_packets", sid, RejectCode.RATE_LIMITED, addr)
        session = self._sessions.get(sid)
        cfg = self.config
        if (
            session is None
            and cfg.shed_threshold < cfg.max_sessions
            and len(self._sessions) >= cfg.shed_threshold
        ):
            return self._reject("overload_shed_packets", sid, RejectCode.SESSION_FULL, addr)
        if self.verifier is None:
            return self._reject("auth_reject_packets", sid, RejectCode.INVALID_SIGNATURE, addr)
        try:
            claims = self.verifier.verify(
                msg.token, now=wall, relay_id=self.relay_id, session_id=sid, role=msg.role.claim
            )
        except LeaseRejected as exc:
            counter = _REJECT_COUNTER.get(exc.code, "auth_reject_packets")
            return self._reject(counter, sid, exc.code, addr)
        if claims.sub in self.banned:
            return self._reject("banned_rejects", sid, RejectCode.BANNED, addr)
        if not self._id_limit.allow(claims.sub, now):
            return self._reject("identity_rate_limited_packets", sid, RejectCode.RATE_LIMITED, addr)
        if session is None:
            if len(self._sessions) >= cfg.max_sessions:
                return self._reject("session_full_rejects", sid, RejectCode.SESSION_FULL, addr)
            session = _Session(sid, now)
            self._sessions[sid] = session
            c.sessions_created += 1
        peer = session.client if msg.role is Role.CLIENT else session.server
        if peer is None:
            peer = _Peer(claims.sub, addr, cfg.replay_window)
            if msg.role is Role.CLIENT:
                session.client = peer
            else:
                session.server = peer
        elif peer.identity != claims.sub:
            # The role is locked to the first identity that presented it.
            return self._reject("auth_reject_packets", sid, RejectCode.INVALID_SIGNATURE, addr)
        elif peer.addr != addr:
            peer.addr = addr
            c.nat_rebind_events += 1
        soft = max(claims.slimit, cfg.min_soft_kbps)
        hard = max(claims.hlimit, soft)
        peer.soft_kbps, peer.hard_kbps = soft, hard
        peer.soft_bytes, peer.hard_bytes = soft * 125, hard * 125  # per 1 s window
        peer.token_exp_wall = claims.exp + self.verifier.clock_skew
        return self._ack(session, peer, now, wall)

    def _ack(self, session: _Session, peer: _Peer, now: float, wall: float) -> tuple[bytes, Addr]:
        expires_wall = min(peer.token_exp_wall, wall + self.config.lease_duration)
        peer.expires_wall = expires_wall
        peer.expires = now + (expires_wall - wall)
        session.last_activity = now
        if self._fast is not None:
            self._fast.set_peer(
                session.sid,
                0 if peer is session.client else 1,
                peer.addr,
                peer.expires,
                peer.soft_bytes,
                peer.hard_bytes,
            )
        c = self.counters
        c.lease_ack_packets += 1
        ack = encode_lease_ack(
            session.sid, int(expires_wall * 1000), peer.soft_kbps, peer.hard_kbps
        )
        return ack, peer.addr

    def _renew(self, data: bytes, addr: Addr, now: float, wall: float) -> tuple[bytes, Addr] | None:
        c = self.counters
        sid = data[4:HEADER_SIZE]
        if sid == NIL_SESSION:
            c.invalid_packets += 1
            return None
        if not self._ip_limit.allow(addr[0], now):
            return self._reject("rate_limited_packets", sid, RejectCode.RATE_LIMITED, addr)
        session = self._sessions.get(sid)
        if session is None:
            return self._reject("session_not_found_packets", sid, RejectCode.EXPIRED, addr)
        if session.client is not None and session.client.addr == addr:
            peer = session.client
        elif session.server is not None and session.server.addr == addr:
            peer = session.server
        else:
            return self._reject("unknown_peer_packets", sid, RejectCode.INVALID_SIGNATURE, addr)
        if not self._id_limit.allow(peer.identity, now):
            return self._reject("identity_rate_limited_packets", sid, RejectCode.RATE_LIMITED, addr)
        if now >= peer.expires or wall >= peer.token_exp_wall:
            return self._reject("expired_lease_rejects", sid, RejectCode.EXPIRED, addr)
        return self._ack(session, peer, now, wall)
