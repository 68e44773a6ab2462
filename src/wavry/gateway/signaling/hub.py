"""The signaling hub: bound connections, presence, routing, access policy.

Sans-IO-ish: the hub never touches a socket. The WebSocket adapter (``ws.py``) feeds it parsed
messages (``handle``) and drains each connection's bounded outbox; replicas reach each other only
through the ``Fanout`` (``deliver`` is its callback). Every policy decision lives here, once:

- one bound connection per (user, role); a newer BIND replaces the older one, on any replica;
- ``OFFER_RIFT`` / ``REQUEST_RELAY`` (client -> host) and client ``CANDIDATE`` need
  ``may_connect(sender, target)``: the same account, or the target's owner shares with the sender;
- a host may ``ANSWER_RIFT`` / send ``CANDIDATE`` only to a client that reached it through the
  policy (an offer, a candidate or a relay request) within ``rendezvous_ttl_secs``;
- forwarded messages name the *sender* in ``target_username`` (rewritten, never trusted);
- ``WATCH`` subscribes a connection to the presence of the hosts it may reach.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from wavry.gateway.ratelimit import RateLimiter
from wavry.gateway.sessions import Principal
from wavry.gateway.signaling.fanout import Delivery, Fanout
from wavry.gateway.signaling.limits import MessageRate
from wavry.gateway.signaling.master_client import MasterClient, MasterError, MasterErrorKind
from wavry.gateway.signaling.messages import (
    AnswerRift,
    Bind,
    Bound,
    Candidate,
    ErrorCode,
    ErrorMsg,
    InboundMessage,
    OfferRift,
    Presence,
    RelayCredentials,
    RequestRelay,
    SignalingMessage,
    Watch,
    Watching,
    dump,
)
from wavry.gateway.signaling.settings import SignalingSettings

__all__ = ["AccountDirectory", "CloseFrame", "Conn", "Hub", "account_subject", "close_code_for"]

log = logging.getLogger(__name__)

_CLOSE_CODES: dict[ErrorCode, int] = {
    ErrorCode.SESSION_REPLACED: 4000,
    ErrorCode.INVALID_TOKEN: 4001,
    ErrorCode.BIND_TIMEOUT: 4008,
    ErrorCode.RATE_LIMITED: 4029,
    ErrorCode.BIND_RATE_LIMITED: 4029,
    ErrorCode.TOO_LARGE: 1009,
    ErrorCode.BINARY_FRAME: 1003,
    ErrorCode.SLOW_CONSUMER: 1013,
    ErrorCode.SHUTTING_DOWN: 1001,
    ErrorCode.INTERNAL: 1011,
}


REPLACED_MESSAGE = "Session replaced by a newer connection"

#: the hub's counters and their help texts (exported as ``wavry_gateway_<name>_total``)
COUNTERS: dict[str, str] = {
    "ws_messages": "Signaling messages received (parsed)",
    "ws_routed": "Signaling messages delivered to a peer",
    "ws_refused_policy": "Signaling messages refused by the access policy",
    "ws_replaced": "Bound sockets replaced by a newer BIND",
    "ws_slow_consumers": "Sockets closed for not reading their messages",
    "ws_relay_credentials": "Relay leases handed to peers",
    "ws_closed_errors": "Sockets closed after a closing ERROR",
}


def close_code_for(code: ErrorCode) -> int:
    """The WebSocket close code that follows a closing ERROR (1008 unless listed)."""
    return _CLOSE_CODES.get(code, 1008)


class AccountDirectory(Protocol):
    """What the hub needs from the accounts side (``GatewayContext`` provides it)."""

    async def resolve_token(self, token: str) -> Principal | None: ...

    async def may_connect(self, sender: Principal, target_username: str) -> tuple[bool, str]: ...


#: username -> the subject its relay lease is issued for (its bound Wavry ID, else
#: ``account_subject(user_id)``), ``None`` if there is no such account
SubjectLookup = Callable[[str], Awaitable[str | None]]
AuditFn = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CloseFrame:
    code: int
    reason: str


@dataclass(eq=False)
class Conn:
    """One WebSocket as the hub sees it."""

    id: str
    ip: str
    outbox: asyncio.Queue[str | CloseFrame]
    rate: MessageRate
    principal: Principal | None = None
    role: str | None = None
    binding: bool = False
    closing: bool = False
    watching: frozenset[str] = frozenset()
    #: (host connections) client username -> until when it may be answered
    rendezvous: OrderedDict[str, float] = field(default_factory=OrderedDict)

    @property
    def bound(self) -> bool:
        return self.principal is not None

    @property
    def username(self) -> str:
        assert self.principal is not None
        return self.principal.username

    @property
    def key(self) -> str:
        return f"{self.role}:{self.username}"


def account_subject(user_id: str) -> str:
    """The lease subject of an account without a bound Wavry ID: a stable pseudonym in Wavry ID
    form (43 chars of base64url of a 32-byte digest of the user id). Relays use ``sub`` only to
    lock a role to one peer and for per-identity rate limits; they never verify it."""
    digest = hashlib.sha256(b"wavry-gateway account subject v1\n" + user_id.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class Hub:
    def __init__(
        self,
        *,
        settings: SignalingSettings,
        directory: AccountDirectory,
        fanout: Fanout,
        limiter: RateLimiter,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        subject_of: SubjectLookup | None = None,
        master: MasterClient | None = None,
        audit: AuditFn | None = None,
        on_count: Callable[[str, int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.fanout = fanout
        self.limiter = limiter
        self.clock = clock
        self.monotonic = monotonic
        self.subject_of = subject_of
        self.master = master
        self.audit = audit
        self._on_count = on_count
        self.conns: dict[str, Conn] = {}
        #: (sender user id, target username) -> monotonic time until which it is allowed
        self._allowed: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._by_user: dict[str, set[Conn]] = {}
        self._watchers: dict[str, set[Conn]] = {}
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._handlers: dict[type[SignalingMessage], Callable[[Conn, object], Awaitable[None]]] = {
            Watch: self._watch,  # type: ignore[dict-item]
            OfferRift: self._offer,  # type: ignore[dict-item]
            AnswerRift: self._answer,  # type: ignore[dict-item]
            Candidate: self._candidate,  # type: ignore[dict-item]
            RequestRelay: self._request_relay,  # type: ignore[dict-item]
        }
        #: which role may send which message (a violation closes with wrong_role)
        self._roles: dict[type[SignalingMessage], frozenset[str]] = {
            Watch: frozenset({"client", "host"}),
            OfferRift: frozenset({"client"}),
            AnswerRift: frozenset({"host"}),
            Candidate: frozenset({"client", "host"}),
            RequestRelay: frozenset({"client"}),
        }

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n
        if self._on_count is not None:
            self._on_count(name, n)

    # --- connection lifecycle -------------------------------------------------------------------

    def open(self, ip: str) -> Conn:
        conn = Conn(
            id=secrets.token_hex(8),
            ip=ip,
            outbox=asyncio.Queue(self.settings.send_queue),
            rate=MessageRate(self.settings.msg_rate_limit, self.settings.msg_rate_window_secs),
        )
        self.conns[conn.id] = conn
        return conn

    async def close(self, conn: Conn) -> None:
        """Forget a connection whose socket is gone (the adapter calls this exactly once)."""
        conn.closing = True
        self.conns.pop(conn.id, None)
        self._set_watch(conn, frozenset())
        if conn.principal is None:
            return
        users = self._by_user.get(conn.principal.user_id)
        if users is not None:
            users.discard(conn)
            if not users:
                del self._by_user[conn.principal.user_id]
        released = await self.fanout.release(conn.key, self._owner(conn))
        if released and conn.role == "host":
            await self.fanout.broadcast({"k": "presence", "u": conn.username, "online": False})

    def bind_deadline_passed(self, conn: Conn) -> None:
        """Timer callback armed at the upgrade."""
        if not conn.bound and not conn.binding and not conn.closing:
            self.kill(conn, ErrorCode.BIND_TIMEOUT, "no BIND within the bind deadline")

    def _owner(self, conn: Conn) -> str:
        return f"{self.fanout.node_id}/{conn.id}"

    # --- output ---------------------------------------------------------------------------------

    def send(self, conn: Conn, msg: SignalingMessage) -> None:
        self.push(conn, dump(msg))

    def push(self, conn: Conn, text: str) -> None:
        if conn.closing:
            return
        try:
            conn.outbox.put_nowait(text)
        except asyncio.QueueFull:
            self.count("ws_slow_consumers", 1)
            self.kill(conn, ErrorCode.SLOW_CONSUMER, "too many unread messages")

    def error(
        self,
        conn: Conn,
        code: ErrorCode,
        message: str,
        *,
        target: str | None = None,
        session_id: str | None = None,
    ) -> None:
        self.send(
            conn,
            ErrorMsg(code=code, message=message, target_username=target, session_id=session_id),
        )

    def kill(self, conn: Conn, code: ErrorCode, message: str) -> None:
        """Send a closing ERROR, then close the socket (the adapter's writer does it)."""
        if conn.closing:
            return
        conn.closing = True
        self.count("ws_closed_errors")
        while not conn.outbox.empty():  # the ERROR and close go first, whatever was queued
            conn.outbox.get_nowait()
        conn.outbox.put_nowait(dump(ErrorMsg(code=code, message=message)))
        conn.outbox.put_nowait(CloseFrame(close_code_for(code), code.value))

    # --- input ----------------------------------------------------------------------------------

    async def handle(self, conn: Conn, msg: InboundMessage) -> None:
        """Process one parsed message of ``conn``."""
        self.count("ws_messages", 1)
        if isinstance(msg, Bind):
            if conn.bound or conn.binding:
                self.kill(conn, ErrorCode.ALREADY_BOUND, "this connection is already bound")
                return
            await self._bind(conn, msg)
            return
        if not conn.bound:
            self.kill(conn, ErrorCode.NOT_BOUND, "send BIND first")
            return
        kind = type(msg)
        if conn.role not in self._roles[kind]:
            self.kill(conn, ErrorCode.WRONG_ROLE, f"a {conn.role} connection cannot send this")
            return
        await self._handlers[kind](conn, msg)

    async def _bind(self, conn: Conn, msg: Bind) -> None:
        conn.binding = True
        s = self.settings
        if not await self.limiter.hit(
            f"ws_bind:{conn.ip}", limit=s.bind_rate_limit, window_secs=s.bind_rate_window_secs
        ):
            self.kill(conn, ErrorCode.BIND_RATE_LIMITED, "too many binds from this address")
            return
        principal = await self.directory.resolve_token(msg.token)
        if conn.closing:
            return
        if principal is None:
            await self._audit("ws_bind", "auth_failed", conn, None, {"role": msg.role})
            self.kill(conn, ErrorCode.INVALID_TOKEN, "invalid, expired or revoked session token")
            return
        if not await self.limiter.hit(
            f"ws_bind_user:{principal.user_id}",
            limit=s.account_bind_rate_limit,
            window_secs=s.bind_rate_window_secs,
        ):
            self.kill(conn, ErrorCode.BIND_RATE_LIMITED, "too many binds for this account")
            return
        conn.principal = principal
        conn.role = msg.role
        self._by_user.setdefault(principal.user_id, set()).add(conn)
        previous = await self.fanout.claim(conn.key, self._owner(conn))
        if previous is not None and previous != self._owner(conn):
            self.count("ws_replaced", 1)
            await self.fanout.to_owner(previous, {"k": "replace"})
        self.send(conn, Bound(user=principal.user_id, username=principal.username, role=msg.role))
        if msg.role == "host" and previous is None:
            await self.fanout.broadcast({"k": "presence", "u": principal.username, "online": True})

    async def _policy(self, conn: Conn, target: str, session_id: str | None) -> bool:
        assert conn.principal is not None
        key = (conn.principal.user_id, target)
        now = self.monotonic()
        until = self._allowed.get(key)
        if until is not None and until > now:
            return True
        ok, reason = await self.directory.may_connect(conn.principal, target)
        if ok:
            ttl = self.settings.policy_cache_secs
            if ttl > 0:
                self._allowed[key] = now + ttl
                self._allowed.move_to_end(key)
                while len(self._allowed) > self.settings.policy_cache_max:
                    self._allowed.popitem(last=False)
            return True
        self._allowed.pop(key, None)
        self.count("ws_refused_policy", 1)
        code = ErrorCode.UNKNOWN_TARGET if reason == "unknown_target" else ErrorCode.NOT_SHARED
        text = (
            f"no account named {target}"
            if code is ErrorCode.UNKNOWN_TARGET
            else f"{target} does not share its hosts with you"
        )
        if code is ErrorCode.NOT_SHARED:
            await self._audit("signaling_refused", "denied", conn, target, {"reason": reason})
        self.error(conn, code, text, target=target, session_id=session_id)
        return False

    def _may_answer(self, conn: Conn, target: str) -> bool:
        until = conn.rendezvous.get(target)
        return until is not None and until > self.monotonic()

    async def _route(
        self, conn: Conn, key: str, out: SignalingMessage, target: str, sid: str | None
    ) -> bool:
        delivery: Delivery = {"k": "msg", "m": dump(out), "from": conn.username}
        if conn.role == "client":
            delivery["rdv"] = True
        if await self.fanout.route(key, delivery):
            self.count("ws_routed", 1)
            return True
        role = key.partition(":")[0]
        self.error(
            conn, ErrorCode.TARGET_OFFLINE, f"{target} has no {role} online", target=target,
            session_id=sid,
        )  # fmt: skip
        return False

    async def _offer(self, conn: Conn, msg: OfferRift) -> None:
        target = msg.target_username
        if await self._policy(conn, target, msg.session_id):
            out = msg.model_copy(update={"target_username": conn.username})
            await self._route(conn, f"host:{target}", out, target, msg.session_id)

    async def _answer(self, conn: Conn, msg: AnswerRift) -> None:
        target = msg.target_username
        if not self._may_answer(conn, target):
            self.count("ws_refused_policy", 1)
            self.error(
                conn, ErrorCode.NO_RENDEZVOUS, f"{target} has not offered to this host recently",
                target=target, session_id=msg.session_id,
            )  # fmt: skip
            return
        out = msg.model_copy(update={"target_username": conn.username})
        await self._route(conn, f"client:{target}", out, target, msg.session_id)

    async def _candidate(self, conn: Conn, msg: Candidate) -> None:
        target = msg.target_username
        if conn.role == "client":
            if not await self._policy(conn, target, msg.session_id):
                return
            key = f"host:{target}"
        else:
            if not self._may_answer(conn, target):
                self.count("ws_refused_policy", 1)
                self.error(
                    conn, ErrorCode.NO_RENDEZVOUS,
                    f"{target} has not offered to this host recently",
                    target=target, session_id=msg.session_id,
                )  # fmt: skip
                return
            key = f"client:{target}"
        out = msg.model_copy(update={"target_username": conn.username})
        await self._route(conn, key, out, target, msg.session_id)

    async def _watch(self, conn: Conn, msg: Watch) -> None:
        allowed: list[str] = []
        for name in dict.fromkeys(msg.usernames):
            if await self._policy(conn, name, None):
                allowed.append(name)
        if conn.closing:
            return
        self._set_watch(conn, frozenset(allowed))
        self.send(conn, Watching(usernames=allowed))
        for name in allowed:
            online = await self.fanout.is_bound(f"host:{name}")
            self.send(conn, Presence(username=name, online=online))

    def _set_watch(self, conn: Conn, names: frozenset[str]) -> None:
        for name in conn.watching - names:
            watchers = self._watchers.get(name)
            if watchers is not None:
                watchers.discard(conn)
                if not watchers:
                    del self._watchers[name]
        for name in names - conn.watching:
            self._watchers.setdefault(name, set()).add(conn)
        conn.watching = names

    async def _request_relay(self, conn: Conn, msg: RequestRelay) -> None:
        target, sid = msg.target_username, msg.session_id
        assert conn.principal is not None
        s = self.settings
        if not await self.limiter.hit(
            f"ws_relay:{conn.principal.user_id}",
            limit=s.relay_rate_limit,
            window_secs=s.relay_rate_window_secs,
        ):
            self.error(
                conn, ErrorCode.RELAY_RATE_LIMITED, "too many relay requests; wait a moment",
                target=target, session_id=sid,
            )  # fmt: skip
            return
        if not await self._policy(conn, target, sid):
            return
        if not await self.fanout.is_bound(f"host:{target}"):
            self.error(
                conn, ErrorCode.TARGET_OFFLINE, f"{target} has no host online", target=target,
                session_id=sid,
            )  # fmt: skip
            return
        if self.master is None or self.subject_of is None:
            self.error(
                conn, ErrorCode.RELAY_UNAVAILABLE,
                "relays are not configured on this gateway (WAVRY_GATEWAY_MASTER_URL and "
                "WAVRY_GATEWAY_MASTER_TOKEN)", target=target, session_id=sid,
            )  # fmt: skip
            return
        requester = await self.subject_of(conn.username)
        theirs = await self.subject_of(target)
        if requester is None or theirs is None:
            self.error(conn, ErrorCode.UNKNOWN_TARGET, f"no account named {target}", target=target)
            return
        try:
            leases = await self.master.open_session(
                requester_wavry_id=requester,
                target_wavry_id=theirs,
                requester_role="client",
                region=msg.region,
                requester_label=conn.principal.user_id,
                exclude_relay_ids=list(msg.avoid_relay_ids),
            )
        except MasterError as exc:
            code = (
                ErrorCode.RELAY_RATE_LIMITED
                if exc.kind is MasterErrorKind.RATE_LIMITED
                else ErrorCode.RELAY_UNAVAILABLE
            )
            self.error(conn, code, exc.message, target=target, session_id=sid)
            return

        def creds(peer: str, lease_role: str, token: str, exp: float) -> RelayCredentials:
            return RelayCredentials(
                target_username=peer,
                relay_id=leases.relay_id,
                addr=leases.relay_addr,
                session_id=leases.session_id,
                lease=token,
                role=lease_role,  # type: ignore[arg-type]
                expires_at=exp,
                rendezvous_id=sid,
            )

        mine, other = leases.requester, leases.target
        delivered = await self.fanout.route(
            f"host:{target}",
            {
                "k": "msg",
                "rdv": True,
                "from": conn.username,
                "m": dump(creds(conn.username, other.role, other.token, other.expires_at)),
            },
        )
        if not delivered:
            self.error(
                conn, ErrorCode.TARGET_OFFLINE, f"{target} went offline", target=target,
                session_id=sid,
            )  # fmt: skip
            return
        self.count("ws_relay_credentials", 2)
        self.send(conn, creds(target, mine.role, mine.token, mine.expires_at))

    async def _audit(
        self, action: str, outcome: str, conn: Conn, target: str | None, details: dict[str, str]
    ) -> None:
        if self.audit is None:
            return
        actor = conn.principal.username if conn.principal is not None else "anonymous"
        try:
            await self.audit(
                actor=actor,
                action=action,
                target_type="user",
                target_id=target,
                outcome=outcome,
                ip=conn.ip,
                details=details,
            )
        except Exception:  # noqa: BLE001 - auditing must not break signaling; it is logged
            log.exception("audit write failed")

    # --- from the fanout --------------------------------------------------------------------------

    async def deliver(self, delivery: Delivery) -> None:
        """A delivery for this replica (``Fanout.start`` callback). Never raises on bad input."""
        kind = delivery.get("k")
        if kind == "msg":
            conn = self._local(delivery.get("owner"))
            if conn is None or not conn.bound:
                return
            sender, text = delivery.get("from"), delivery.get("m")
            if not isinstance(text, str):
                return
            if delivery.get("rdv") and conn.role == "host" and isinstance(sender, str):
                self._remember(conn, sender)
            self.push(conn, text)
        elif kind == "replace":
            conn = self._local(delivery.get("owner"))
            if conn is not None:
                self.kill(conn, ErrorCode.SESSION_REPLACED, REPLACED_MESSAGE)
        elif kind == "presence":
            name, online = delivery.get("u"), delivery.get("online")
            if not isinstance(name, str) or not isinstance(online, bool):
                return
            watchers = self._watchers.get(name)
            if watchers:
                text = dump(Presence(username=name, online=online))
                for conn in list(watchers):
                    self.push(conn, text)
        elif kind == "revoke":
            user, hashes = delivery.get("user"), delivery.get("hashes")
            if not isinstance(user, str) or not isinstance(hashes, list):
                return
            revoked = set(hashes)
            for key in [k for k in self._allowed if k[0] == user]:
                del self._allowed[key]
            for conn in list(self._by_user.get(user, ())):
                if conn.principal is not None and conn.principal.token_hash in revoked:
                    self.kill(conn, ErrorCode.INVALID_TOKEN, "session revoked")

    def _local(self, owner: object) -> Conn | None:
        if not isinstance(owner, str):
            return None
        node, _, conn_id = owner.partition("/")
        if node != self.fanout.node_id:
            return None
        return self.conns.get(conn_id)

    def _remember(self, conn: Conn, client: str) -> None:
        conn.rendezvous[client] = self.monotonic() + self.settings.rendezvous_ttl_secs
        conn.rendezvous.move_to_end(client)
        while len(conn.rendezvous) > self.settings.rendezvous_max:
            conn.rendezvous.popitem(last=False)

    async def sessions_revoked(self, user_id: str, token_hashes: list[str]) -> None:
        """``GatewayContext.revocation_hooks`` entry: close those sessions' sockets everywhere."""
        await self.fanout.broadcast({"k": "revoke", "user": user_id, "hashes": token_hashes})

    async def shutdown(self) -> None:
        for conn in list(self.conns.values()):
            self.kill(conn, ErrorCode.SHUTTING_DOWN, "the gateway is stopping")

    def bound_count(self, role: str) -> int:
        return sum(1 for c in self.conns.values() if c.role == role and not c.closing)
