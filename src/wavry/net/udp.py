"""asyncio UDP adapter for the sans-IO RIFT core.

It only feeds the core, sends what the core wants sent, re-arms one timer, and wakes whoever
waits for events — all protocol logic stays in ``wavry.rift``. uvloop is used when installed.
An optional ``ImpairmentLink`` degrades the *outgoing* direction in-process (loss, delay,
jitter, reordering, duplication, bandwidth) for tests and ``wavry demo --impair``.

STUN runs on the same socket (``UdpDriver.stun_binding``), so the reflexive address is the
mapping peers see. Incoming datagrams that look like STUN (first two bits 00 + magic cookie;
RIFT starts with "RI") *and* carry the id of a pending transaction are consumed here; everything
else goes to the core unchanged.

Hole punching (``UdpDriver.punch``) sends STUN Binding *indications* (never answered) from this
socket to the peer's candidates; received Binding indications are counted (``punch_in``,
``punch_from``) and dropped, never given to the core.

Relayed paths (``UdpDriver.attach_relay``): a ``wavry.net.relay_link.RelayLink`` gets a *virtual*
peer address ``("relay:<session id hex>", relay_port)``. The core treats addresses as opaque, so
it talks to that address like to any peer; the driver wraps what the core sends there in relay
FORWARDs to the relay's real address, and unwraps FORWARDs from the relay (source address of an
attached relay *and* relay magic 'W' version 1; RIFT starts with "RI", STUN with bits 00) into
datagrams from the virtual address. The virtual address survives a change of socket (NAT
rebinding, relay restart), so the RIFT session never sees the relay path move.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol, cast

from wavry.net.impairment import ImpairmentLink
from wavry.net.relay_link import RelayLink, RelayLinkError, RelayPayloadTooLargeError
from wavry.net.stun import (
    BindingTransaction,
    Method,
    RetransmitPolicy,
    StunError,
    encode_indication,
    is_binding_indication,
    looks_like_stun,
    parse_message,
)

__all__ = [
    "DSCP_AF41",
    "DSCP_EF",
    "SansIoCore",
    "UdpDriver",
    "impairment_from_spec",
    "install_uvloop",
    "open_udp_driver",
    "virtual_relay_address",
]

log = logging.getLogger(__name__)

Address = tuple[str, int]

#: TOS byte values (DSCP << 2). EF (46) for latency-critical input/control, AF41 (34) for video.
DSCP_EF = 0xB8
DSCP_AF41 = 0x88
_SOCKET_BUFFER = 4 * 1024 * 1024
_VIRTUAL_PREFIX = "relay:"
#: relay magic 'W' + version 1 (wavry.relay.wire)
_RELAY_PREFIX = b"W\x01"
#: source addresses of the last punch indications remembered
PUNCH_FROM_MAX = 8
#: a punch burst lasts at most this many rounds (bounded whatever the caller asks)
PUNCH_MAX_COUNT = 200


def virtual_relay_address(link: RelayLink) -> Address:
    """The opaque peer address the core sees for a relayed path (unique per session id)."""
    return f"{_VIRTUAL_PREFIX}{link.session_id.hex()}", link.relay_addr[1]


class SansIoCore(Protocol):
    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None: ...
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...


def impairment_from_spec(spec: str | None, seed: int | None = None) -> ImpairmentLink | None:
    """An impairment link from a CLI spec such as ``loss=5%,delay=20ms`` (None: no link)."""
    if not spec:
        return None
    import random

    from wavry.net.impairment import ImpairmentConfig

    return ImpairmentLink(ImpairmentConfig.parse(spec), random.Random(seed))


def install_uvloop() -> bool:
    """Use uvloop's event loop policy when the package is present. Returns True if it is."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def configure_socket(sock: socket.socket, *, tos: int | None) -> int | None:
    """Large buffers (a keyframe is a burst) and DSCP marking where the OS allows it.

    Returns the TOS actually set, or None when the OS refused (not fatal).
    """
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, opt, _SOCKET_BUFFER)
    if tos is None:
        return None
    try:
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
    except OSError as exc:
        log.info("DSCP marking unavailable (%s); sending unmarked", exc)
        return None
    return tos


class UdpDriver(asyncio.DatagramProtocol):
    """Drives one sans-IO core (a client ``Connection`` or a ``HostEndpoint``) on a UDP socket."""

    def __init__(
        self,
        core: SansIoCore,
        *,
        impairment: ImpairmentLink | None = None,
        on_activity: Callable[[], None] | None = None,
    ) -> None:
        self.core = core
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._impairment = impairment
        self._activity_pending = False
        self._waiter: asyncio.Future[bool] | None = None
        self._on_activity = on_activity
        self.closed = asyncio.Event()
        self.datagrams_in = 0
        self.datagrams_out = 0
        self.send_errors = 0
        self.stun_in = 0
        self._stun: dict[bytes, tuple[BindingTransaction, asyncio.Future[None]]] = {}
        # relayed paths: relay address -> session id -> (link, virtual address)
        self._relays: dict[Address, dict[bytes, tuple[RelayLink, Address]]] = {}
        self._virtual: dict[Address, RelayLink] = {}
        self._relayed = False  # a link was attached once (then outgoing addresses are checked)
        self._warned_size = False
        #: datagrams from a relay consumed by links (control messages and FORWARDs)
        self.relay_in = 0
        #: datagrams from a relay address with relay magic but no attached session
        self.relay_unknown = 0
        #: core datagrams to a relayed path that could not be sent (too large, link closed)
        self.relay_send_dropped = 0
        # hole punching
        self.punch_in = 0
        self.punch_out = 0
        self.punch_from: deque[Address] = deque(maxlen=PUNCH_FROM_MAX)
        self._punch: asyncio.TimerHandle | None = None

    # asyncio.DatagramProtocol -----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Selector and uvloop transports do not share a base class; both have sendto().
        self._transport = cast(asyncio.DatagramTransport, transport)
        self.flush()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        source = (str(addr[0]), int(addr[1]))
        if self._relays and data[:2] == _RELAY_PREFIX:
            links = self._relays.get(source)
            if links is not None:
                self._relay_received(links, data)
                return
        # STUN starts with bits 00 (RIFT "R" and relay "W" are 01): one byte test first.
        if data[:1] < b"\x40" and looks_like_stun(data) and self._stun_received(data, source):
            return
        self.datagrams_in += 1
        self.core.receive_datagram(data, source, self._loop.time())
        self.flush()
        self._wake()

    def _relay_received(self, links: dict[bytes, tuple[RelayLink, Address]], data: bytes) -> None:
        entry = links.get(data[4:20])
        if entry is None:
            self.relay_unknown += 1
            return
        self.relay_in += 1
        link, vaddr = entry
        now = self._loop.time()
        payload = link.receive(data, now)
        if payload is not None:
            self.datagrams_in += 1
            self.core.receive_datagram(payload, vaddr, now)
        self.flush()
        self._wake()

    def _stun_received(self, data: bytes, source: Address) -> bool:
        """Consume a STUN-looking datagram that is a punch indication or the answer of one of
        our transactions; False (give it to the core) otherwise."""
        try:
            msg = parse_message(data)
        except StunError:
            return False
        if is_binding_indication(msg):
            self.punch_in += 1
            self.punch_from.append(source)
            return True
        pending = self._stun.get(msg.txid)
        if pending is None:
            return False
        tx, done = pending
        if not tx.receive(msg, self._loop.time()):
            return False
        self.stun_in += 1
        if tx.done and not done.done():
            done.set_result(None)
        return True

    async def stun_binding(
        self, server: Address, *, policy: RetransmitPolicy | None = None
    ) -> Address:
        """The server-reflexive address of this socket as ``server`` sees it.

        ``server`` is an IP literal of the socket's family. Raises ``StunTimeoutError`` or
        ``StunErrorResponse`` (both ``StunClientError``) per ``wavry.net.stun``."""
        tx = BindingTransaction(server, self._loop.time(), policy)
        done: asyncio.Future[None] = self._loop.create_future()
        self._stun[tx.txid] = (tx, done)
        try:
            while not tx.done:
                for data in tx.datagrams_to_send(self._loop.time()):
                    self._send(data, server)
                at = tx.get_timer()
                if at is None:
                    break
                await asyncio.wait({done}, timeout=max(0.0, at - self._loop.time()))
                tx.handle_timer(self._loop.time())
        finally:
            del self._stun[tx.txid]
            if not done.done():
                done.cancel()
        if tx.error is not None:
            raise tx.error
        assert tx.result is not None
        return tx.result

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable...) are routine for UDP; the core's timers decide.
        log.debug("socket error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.stop_punching()
        self.closed.set()
        self._wake()

    # driving ----------------------------------------------------------------------------
    def flush(self) -> None:
        """Send what the core has queued and re-arm the timer.

        It does not wake event readers: only a received datagram or a timer can create
        events, and waking on our own sends would make the reader spin."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        now = self._loop.time()
        virtual = self._virtual
        relayed = self._relayed
        for data, addr in self.core.datagrams_to_send(now):
            self.datagrams_out += 1
            if relayed:
                link = virtual.get(addr)
                if link is not None:
                    try:
                        wrapped = link.wrap(data)
                    except RelayPayloadTooLargeError as exc:
                        self.relay_send_dropped += 1
                        if not self._warned_size:
                            self._warned_size = True
                            log.warning("%s: lower RiftConfig.chunk_payload on relayed paths", exc)
                        continue
                    except RelayLinkError as exc:
                        self.relay_send_dropped += 1
                        log.debug("relayed datagram not sent: %s", exc)
                        continue
                    if wrapped is None:  # held until the relay acknowledges the lease
                        continue
                    data, addr = wrapped, link.relay_addr
                elif addr[0].startswith(_VIRTUAL_PREFIX):
                    # A detached relayed path: never hand "relay:..." to sendto (a name lookup).
                    self.relay_send_dropped += 1
                    continue
            self._emit(data, addr, now)
        if virtual:
            for link in virtual.values():
                for data in link.datagrams_to_send(now):
                    self._emit(data, link.relay_addr, now)
        self._arm()

    def _emit(self, data: bytes, addr: Address, now: float) -> None:
        if self._impairment is None:
            self._send(data, addr)
        else:
            for at in self._impairment.transmit(len(data), now):
                self._loop.call_at(at, self._send, data, addr)

    def _send(self, data: bytes, addr: Address) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        try:
            transport.sendto(data, addr)
        except OSError:
            self.send_errors += 1

    def _arm(self) -> None:
        at = self.core.get_timer()
        for link in self._virtual.values():
            t = link.get_timer()
            if t is not None and (at is None or t < at):
                at = t
        if at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at is not None:
            self._timer = self._loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self._loop.time()
        # The timer may be a link's; cores act only on what is due, so calling both is safe.
        self.core.handle_timer(now)
        for link in self._virtual.values():
            link.handle_timer(now)
        self.flush()
        self._wake()

    # relayed paths ------------------------------------------------------------------------
    def attach_relay(self, link: RelayLink) -> Address:
        """Route a relayed path through this socket; returns the virtual peer address to give
        the core (``Connection.client(peer_addr=...)``; a host core sees it as the source).

        Re-attaching a bound link (a new socket after a NAT rebinding or a restart of our
        side) presents its lease again at once, so the relay learns the new address."""
        vaddr = virtual_relay_address(link)
        if vaddr in self._virtual:
            raise ValueError(f"a relay link for session {link.session_id.hex()} is attached")
        self._relays.setdefault(link.relay_addr, {})[link.session_id] = (link, vaddr)
        self._virtual[vaddr] = link
        self._relayed = True
        link.network_changed(self._loop.time())
        self.flush()
        return vaddr

    def detach_relay(self, addr: Address) -> RelayLink | None:
        """Stop routing the virtual address ``addr``; returns its link (None if unknown)."""
        link = self._virtual.pop(addr, None)
        if link is None:
            return None
        links = self._relays.get(link.relay_addr)
        if links is not None:
            links.pop(link.session_id, None)
            if not links:
                del self._relays[link.relay_addr]
        self._arm()
        return link

    def relay_link(self, addr: Address) -> RelayLink | None:
        return self._virtual.get(addr)

    @property
    def relay_links(self) -> dict[Address, RelayLink]:
        """Attached links by virtual address (a copy)."""
        return dict(self._virtual)

    # hole punching ------------------------------------------------------------------------
    def punch(self, addrs: Iterable[Address], *, count: int = 20, interval: float = 0.05) -> None:
        """Send a Binding indication to each of ``addrs`` now and every ``interval`` seconds,
        ``count`` rounds in all (default 1 s), until ``stop_punching``. A new call replaces a
        burst in progress. Each indication has a fresh random transaction id."""
        targets = list(dict.fromkeys(addrs))
        if not 1 <= count <= PUNCH_MAX_COUNT:
            raise ValueError(f"count must be 1..{PUNCH_MAX_COUNT}")
        if not 0.005 <= interval <= 5.0:
            raise ValueError("interval must be 5 ms..5 s")
        self.stop_punching()
        self._punch_round(targets, count, interval)

    def _punch_round(self, targets: list[Address], left: int, interval: float) -> None:
        self._punch = None
        for addr in targets:
            self.punch_out += 1
            self._send(encode_indication(Method.BINDING, []), addr)
        if left > 1:
            self._punch = self._loop.call_later(
                interval, self._punch_round, targets, left - 1, interval
            )

    def stop_punching(self) -> None:
        if self._punch is not None:
            self._punch.cancel()
            self._punch = None

    @property
    def punching(self) -> bool:
        return self._punch is not None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)
        else:
            self._activity_pending = True
        if self._on_activity is not None:
            self._on_activity()

    async def wait_activity(self, timeout: float | None = None) -> bool:
        """Wait until the core may have new events. Returns False on timeout.

        Called once per received datagram batch, so it avoids ``asyncio.wait_for`` (a task
        per call): one future and one timer handle.
        """
        if self._activity_pending:
            self._activity_pending = False
            return True
        waiter: asyncio.Future[bool] = self._loop.create_future()
        self._waiter = waiter
        timer = None
        if timeout is not None:
            timer = self._loop.call_later(timeout, _resolve, waiter, False)
        try:
            return await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    @property
    def local_address(self) -> Address:
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def close(self) -> None:
        if self._transport is not None:
            self.flush()
            self._transport.close()


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


async def open_udp_driver(
    core_factory: Callable[[], SansIoCore],
    *,
    local_addr: Address,
    tos: int | None = None,
    impairment: ImpairmentLink | None = None,
    relay_links: Iterable[RelayLink] = (),
    on_activity: Callable[[], None] | None = None,
) -> UdpDriver:
    """Bind a UDP socket on ``local_addr`` and drive the core built by ``core_factory``.

    ``relay_links`` are attached before the first datagram leaves (a client core whose peer is
    a relay's virtual address sends MSG1 at once; see ``virtual_relay_address``)."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in local_addr[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind(local_addr)
        configure_socket(sock, tos=tos)
    except OSError:
        sock.close()
        raise
    core = core_factory()
    links = list(relay_links)

    def build() -> UdpDriver:
        driver = UdpDriver(core, impairment=impairment, on_activity=on_activity)
        for link in links:
            driver.attach_relay(link)
        return driver

    _, protocol = await loop.create_datagram_endpoint(build, sock=sock)
    return protocol
