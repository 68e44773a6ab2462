"""The host side of RIFT: one listening address, many sessions, demultiplexed without sockets.

Handshake datagrams are routed by their handshake id (chosen by the client), transport datagrams
by the session alias the host assigned in MSG2 — never by source address, so a client whose NAT
mapping changes keeps its session (the new address is adopted only after an authenticated
packet, see ``Connection``).
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Callable

from wavry.rift import events as ev
from wavry.rift.config import HostOffer, RiftConfig
from wavry.rift.connection import Admission, Connection, ConnectionState
from wavry.rift.errors import DropReason, RemoteProtocolError
from wavry.rift.header import HandshakeHeader, parse_header
from wavry.rift.identity import Identity
from wavry.rift.trust import AllowList

__all__ = ["HostEndpoint"]

Address = tuple[str, int]


class HostEndpoint:
    def __init__(
        self,
        *,
        identity: Identity,
        offer: HostOffer | None = None,
        config: RiftConfig | None = None,
        allow_list: AllowList | None = None,
        max_active_sessions: int = 1,
        max_connections: int = 64,
        approval_mode: bool = False,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """``allow_list=None`` accepts any client identity (pairing disabled: say so loudly).

        With ``approval_mode`` a client missing from the allow-list is not refused at once:
        an ``ApprovalRequired`` event lets the host's user approve or deny it.
        """
        self.approval_mode = approval_mode
        self.identity = identity
        self.offer = offer or HostOffer()
        self.config = config or RiftConfig()
        self.allow_list = allow_list
        self.admission = Admission(max_active_sessions)
        self.max_connections = max_connections
        self._rng = rng
        self._by_alias: dict[int, Connection] = {}
        self._by_hsid: dict[bytes, Connection] = {}
        self._events: deque[tuple[int, ev.Event]] = deque()
        self.drops: Counter[DropReason] = Counter()

    @property
    def connections(self) -> dict[int, Connection]:
        return dict(self._by_alias)

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        try:
            header, _ = parse_header(data)
        except RemoteProtocolError as exc:
            self.drops[exc.reason] += 1
            return
        if isinstance(header, HandshakeHeader):
            conn = self._by_hsid.get(header.session_id)
            if conn is None:
                self._new_connection(header, data, addr, now)
                return
        else:
            found = self._by_alias.get(header.session_alias)
            if found is None:
                self.drops[DropReason.UNKNOWN_ALIAS] += 1
                return
            conn = found
        conn.receive_datagram(data, addr, now)
        self._collect(conn)

    def _new_connection(
        self, header: HandshakeHeader, data: bytes, addr: Address, now: float
    ) -> None:
        if header.packet_id != 0:
            self.drops[DropReason.UNKNOWN_HANDSHAKE] += 1
            return
        if len(self._by_alias) >= self.max_connections:
            self.drops[DropReason.RATE_LIMITED] += 1
            return
        alias = self._new_alias()
        try:
            conn = Connection.accept(
                identity=self.identity,
                peer_addr=addr,
                handshake_id=header.session_id,
                msg1=data,
                alias=alias,
                now=now,
                offer=self.offer,
                config=self.config,
                allow_list=self.allow_list,
                admission=self.admission,
                approval_mode=self.approval_mode,
                rng=self._rng,
            )
        except RemoteProtocolError as exc:
            self.drops[exc.reason] += 1
            return
        self._by_alias[alias] = conn
        self._by_hsid[header.session_id] = conn

    def _new_alias(self) -> int:
        while True:
            alias = int.from_bytes(self._rng(4), "big")
            if alias != 0 and alias not in self._by_alias:
                return alias

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        out: list[tuple[bytes, Address]] = []
        for conn in self._by_alias.values():
            out.extend(conn.datagrams_to_send(now))
        self._reap()
        return out

    def next_event(self) -> tuple[int, ev.Event] | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        timers = [t for c in self._by_alias.values() if (t := c.get_timer()) is not None]
        return min(timers) if timers else None

    def handle_timer(self, now: float) -> None:
        for conn in list(self._by_alias.values()):
            timer = conn.get_timer()
            if timer is not None and timer <= now:
                conn.handle_timer(now)
                self._collect(conn)

    def close_all(self, now: float, message: str = "host shutting down") -> None:
        from wavry.rift.proto import rift_pb2

        for conn in self._by_alias.values():
            conn.close(now, rift_pb2.DISCONNECT_SHUTDOWN, message)
            self._collect(conn)

    def _collect(self, conn: Connection) -> None:
        while (event := conn.next_event()) is not None:
            self._events.append((conn.alias, event))

    def _reap(self) -> None:
        """Forget closed sessions once their last datagrams went out and events were read."""
        for alias, conn in list(self._by_alias.items()):
            if conn.state is ConnectionState.CLOSED:
                self._collect(conn)
                del self._by_alias[alias]
                self._by_hsid = {h: c for h, c in self._by_hsid.items() if c is not conn}
