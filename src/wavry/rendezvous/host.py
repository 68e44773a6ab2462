"""``wavry host --gateway``: the host's side of connect-by-username.

Bound to the gateway as ``host``, for each ``OFFER_RIFT`` (the gateway forwards offers only from
the owner's account or accounts the owner shares with) it answers ``ANSWER_RIFT`` (the
negotiated ``HelloAck`` preview and its Wavry ID) and a ``CANDIDATE`` with the streaming
socket's addresses. The offering client's Wavry ID is allowed for this host process (in memory,
not written to ``allowed_clients``).

* **Hole punching.** A ``CANDIDATE`` from the client (its LAN and reflexive addresses) makes the
  host send small punch datagrams from the streaming socket to each of them for a moment, so
  its own NAT opens a mapping towards the client while the client's handshake comes the other
  way. A later ``CANDIDATE`` (the client's NAT mapping changed mid-session) punches again.
* **Relay.** ``RELAY_CREDENTIALS`` (the client asked for a relay) attach a relay link with the
  host's own lease (role ``server``) to the streaming socket; the client's handshake then
  arrives through the relay like through any other path. A link no session uses is detached
  after ``relay_idle_s``; links are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from wavry.gateway.signaling.messages import (
    AnswerRift,
    Candidate,
    CandidateEntry,
    ErrorMsg,
    OfferRift,
    Presence,
    RelayCredentials,
    SignalingMessage,
    encode_ack,
)
from wavry.host.service import HostService
from wavry.net.candidates import NatMapping, gather_candidates, probe_mapping
from wavry.net.signaling import Backoff, SignalingFatal, SignalingSession, run_signaling
from wavry.relay.wire import Role
from wavry.rendezvous.common import (
    Address,
    ConnectError,
    answer_ack,
    parse_candidate_addr,
)
from wavry.rendezvous.relaying import relay_link_for
from wavry.rendezvous.watch import REGATHER_EVERY_S, STALL_S
from wavry.rift.connection import ConnectionState

__all__ = ["HostRendezvous", "RendezvousStatus"]

log = logging.getLogger(__name__)

#: relay sessions one host keeps at once (each is a lease presented to a relay)
MAX_RELAY_LINKS = 8
#: client candidates punched per CANDIDATE message
MAX_PUNCH_TARGETS = 16
#: clients remembered for re-sending our candidates after a NAT rebinding
MAX_PEERS = 64
#: how often the host probes its NAT's mapping behaviour (with two STUN servers)
NAT_PROBE_EVERY_S = 60.0


@dataclass(slots=True)
class RendezvousStatus:
    binds: int = 0
    offers: int = 0
    answers: int = 0
    punches: int = 0
    regathers: int = 0
    relay_links: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class _RelayJoin:
    addr: Address  # the virtual peer address the driver gave the link
    relay_id: str
    peer: str
    started: float
    expires_at: float  # unix seconds


class HostRendezvous:
    def __init__(
        self,
        service: HostService,
        url: str,
        token: str,
        *,
        stun_servers: Sequence[tuple[str, int]] = (),
        backoff: Backoff | None = None,
        relay_idle_s: float = 30.0,
    ) -> None:
        self.service = service
        self.url = url
        self._token = token
        self.stun_servers = list(stun_servers)
        self.backoff = backoff or Backoff()
        self.relay_idle_s = relay_idle_s
        self.status = RendezvousStatus()
        self.stop_event = asyncio.Event()
        self._relays: dict[str, _RelayJoin] = {}
        self._session: SignalingSession | None = None
        #: how our NAT maps the streaming socket (probed in the background, two STUN servers)
        self.nat_mapping: NatMapping = "unknown"
        #: client Wavry ID -> (username, rendezvous session id) of its latest offer (bounded)
        self._peers: dict[str, tuple[str, str | None]] = {}

    def stop(self) -> None:
        self.stop_event.set()

    async def run(self) -> None:
        """Until stopped; logs and returns on a fatal refusal (e.g. an expired login)."""
        while self.service.udp_driver is None and not self.stop_event.is_set():
            await asyncio.sleep(0.05)
        janitor = asyncio.create_task(self._expire_relays())
        watcher = asyncio.create_task(self._watch_paths())
        prober = asyncio.create_task(self._probe_nat())
        try:
            await run_signaling(
                self.url,
                self._token,
                "host",
                self._handle,
                stop=self.stop_event,
                backoff=self.backoff,
                on_bound=self._bound,
            )
        except SignalingFatal as exc:
            self.status.last_error = exc.code
            hint = (
                " (run `wavry login --gateway URL --email EMAIL` again)"
                if exc.code == "invalid_token"
                else ""
            )
            log.error("signaling stopped: the gateway said %s%s", exc, hint)
        finally:
            for task in (janitor, watcher, prober):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._session = None
            for sid in list(self._relays):
                self._detach(sid, "host stopping")

    async def _bound(self, session: SignalingSession) -> None:
        self.status.binds += 1
        self._session = session
        log.info(
            "online at the gateway as %s: clients allowed by your shares can `wavry connect %s`",
            session.bound.username,
            session.bound.username,
        )

    async def _handle(self, session: SignalingSession, msg: SignalingMessage) -> None:
        try:
            if isinstance(msg, OfferRift):
                await self._answer(session, msg)
            elif isinstance(msg, Candidate):
                self._punch(msg)
            elif isinstance(msg, RelayCredentials):
                self._join_relay(msg)
            elif isinstance(msg, Presence):
                log.info("presence: %s is %s", msg.username, "online" if msg.online else "offline")
            elif isinstance(msg, ErrorMsg):
                log.warning("gateway: %s: %s", msg.code, msg.message)
        except (OSError, ValueError) as exc:  # e.g. interfaces unreadable, a bad address
            self.status.last_error = type(exc).__name__
            log.warning("could not handle %s from %s: %s", msg.type, _who(msg), exc)  # type: ignore[attr-defined]

    async def _answer(self, session: SignalingSession, offer: OfferRift) -> None:
        self.status.offers += 1
        service = self.service
        who = offer.target_username  # rewritten by the gateway to the offering account
        ack = answer_ack(offer.hello_b64, service.offer())
        if not ack.accepted:
            log.info("offer from %s refused: %s", who, ack.reject_message)
        elif offer.wavry_id and service.settings.pairing != "open":
            # The gateway only forwards offers its owner/share policy allows.
            service.allow_list.add(offer.wavry_id, f"gateway:{who}")
        if ack.accepted and offer.wavry_id:
            self._peers.pop(offer.wavry_id, None)
            self._peers[offer.wavry_id] = (who, offer.session_id)
            while len(self._peers) > MAX_PEERS:
                del self._peers[next(iter(self._peers))]
        await session.send(
            AnswerRift(
                target_username=who,
                ack_b64=encode_ack(ack),
                wavry_id=service.identity.wavry_id,
                session_id=offer.session_id,
            )
        )
        self.status.answers += 1
        if not ack.accepted:
            return
        driver = service.udp_driver
        if driver is None:
            return
        found = await gather_candidates(driver, self.stun_servers)
        if not found:
            log.warning("no address to offer %s (the host listens on no usable interface)", who)
            return
        await session.send(
            Candidate(
                target_username=who,
                candidates=[CandidateEntry(addr=c["addr"], type=c["type"]) for c in found],
                session_id=offer.session_id,
                nat_mapping=None if self.nat_mapping == "unknown" else self.nat_mapping,
            )
        )
        log.info(
            "answered %s (session %s) with %s",
            who,
            offer.session_id,
            ", ".join(f"{c['type']} {c['addr']}" for c in found),
        )

    def _punch(self, msg: Candidate) -> None:
        driver = self.service.udp_driver
        if driver is None:
            return
        family_v6 = ":" in driver.local_address[0]
        targets: list[Address] = []
        for entry in msg.candidates[:MAX_PUNCH_TARGETS]:
            if entry.type == "relay":
                continue  # relays are reached with a lease, not punched
            addr = parse_candidate_addr(entry.addr)
            if (":" in addr[0]) == family_v6:
                targets.append(addr)
        if not targets:
            return
        self.status.punches += 1
        driver.punch(targets)
        log.info(
            "punching towards %s: %s",
            msg.target_username,
            ", ".join(f"{e.type} {e.addr}" for e in msg.candidates[:MAX_PUNCH_TARGETS]),
        )

    def _join_relay(self, creds: RelayCredentials) -> None:
        driver = self.service.udp_driver
        if driver is None:
            return
        if creds.role != "server":
            log.warning("relay credentials for role %s ignored (a host serves)", creds.role)
            return
        if creds.session_id in self._relays:
            return
        if len(self._relays) >= MAX_RELAY_LINKS:
            oldest = min(self._relays.values(), key=lambda j: j.started)
            sid = next(k for k, v in self._relays.items() if v is oldest)
            self._detach(sid, "too many relay sessions")
        try:
            link = relay_link_for(creds, Role.SERVER, asyncio.get_running_loop().time())
        except ConnectError as exc:
            self.status.last_error = "bad_relay_credentials"
            log.warning("relay credentials for %s ignored: %s", creds.target_username, exc)
            return
        vaddr = driver.attach_relay(link)
        self._relays[creds.session_id] = _RelayJoin(
            addr=vaddr,
            relay_id=creds.relay_id,
            peer=creds.target_username,
            started=time.monotonic(),
            expires_at=creds.expires_at,
        )
        self.status.relay_links += 1
        log.info(
            "joined relay %s at %s for %s (session %s)",
            creds.relay_id,
            creds.addr,
            creds.target_username,
            creds.session_id,
        )

    def _in_use(self, addr: Address) -> bool:
        endpoint = self.service.endpoint
        if endpoint is None:
            return False
        return any(conn.peer_addr == addr for conn in endpoint.connections.values())

    def _detach(self, sid: str, why: str) -> None:
        join = self._relays.pop(sid, None)
        driver = self.service.udp_driver
        if join is None or driver is None:
            return
        driver.detach_relay(join.addr)
        log.info("left relay %s (session %s): %s", join.relay_id, sid, why)

    async def _send_candidates(self, who: str, session_id: str | None) -> list[str]:
        driver, session = self.service.udp_driver, self._session
        if driver is None or session is None:
            return []
        found = await gather_candidates(driver, self.stun_servers, stun_timeout=1.5)
        if found:
            await session.send(
                Candidate(
                    target_username=who,
                    candidates=[CandidateEntry(addr=c["addr"], type=c["type"]) for c in found],
                    session_id=session_id,
                )
            )
        return [f"{c['type']} {c['addr']}" for c in found]

    async def _watch_paths(self) -> None:
        """A direct session that goes silent may mean our NAT mapping changed (a new public
        port the client's NAT does not let through): send our addresses again, so the client
        punches towards them; its RIFT core adopts our new address after an authenticated
        packet. Relayed sessions are kept alive by their relay link instead."""
        seen: dict[int, tuple[int, float]] = {}
        last_sent: dict[int, float] = {}
        loop = asyncio.get_running_loop()
        relay_addrs: set[Address] = set()
        while True:
            await asyncio.sleep(0.05)
            endpoint = self.service.endpoint
            if endpoint is None:
                continue
            now = loop.time()
            relay_addrs = {j.addr for j in self._relays.values()}
            conns = endpoint.connections
            for alias in [a for a in seen if a not in conns]:
                seen.pop(alias, None)
                last_sent.pop(alias, None)
            for alias, conn in conns.items():
                if conn.state is not ConnectionState.ESTABLISHED or conn.peer_addr in relay_addrs:
                    continue
                packets = conn.stats().packets_received
                count, since = seen.get(alias, (-1, now))
                if packets != count:
                    seen[alias] = (packets, now)
                    continue
                peer = self._peers.get(conn.peer_wavry_id or "")
                if peer is None or now - since < STALL_S:
                    continue
                if now - last_sent.get(alias, -REGATHER_EVERY_S) < REGATHER_EVERY_S:
                    continue
                last_sent[alias] = now
                try:
                    sent = await self._send_candidates(*peer)
                except Exception as exc:  # noqa: BLE001 - keep serving; RIFT timers decide
                    log.warning("could not refresh our addresses for %s: %s", peer[0], exc)
                    continue
                self.status.regathers += 1
                log.info(
                    "nothing from %s for %.1f s; sent our addresses again: %s",
                    peer[0],
                    now - since,
                    ", ".join(sent),
                )

    async def _probe_nat(self) -> None:
        """Tell the clients whether punching towards us can work at all: with two STUN servers,
        probe how our NAT maps the streaming socket now and then (it rarely changes; probing
        per offer would delay the answer when a server is slow)."""
        if len(self.stun_servers) < 2:
            return
        while True:
            driver = self.service.udp_driver
            if driver is not None:
                found = await probe_mapping(driver, self.stun_servers)
                if found != self.nat_mapping and found != "unknown":
                    log.info("this host's NAT mapping: %s", found)
                    self.nat_mapping = found
            await asyncio.sleep(NAT_PROBE_EVERY_S)

    async def _expire_relays(self) -> None:
        while True:
            await asyncio.sleep(min(2.0, self.relay_idle_s / 2))
            now, wall = time.monotonic(), time.time()
            driver = self.service.udp_driver
            for sid, join in list(self._relays.items()):
                link = driver.relay_link(join.addr) if driver is not None else None
                if link is None or link.closed:
                    self._detach(sid, "the relay refused the lease or stopped answering")
                elif wall >= join.expires_at:
                    self._detach(sid, "lease expired")
                elif not self._in_use(join.addr) and now - join.started > self.relay_idle_s:
                    self._detach(sid, "no session through it")
                elif self._in_use(join.addr):
                    join.started = now  # idle time counts from the last time it carried one


def _who(msg: SignalingMessage) -> str:
    return str(getattr(msg, "target_username", "") or getattr(msg, "username", "") or "?")
