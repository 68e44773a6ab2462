"""asyncio UDP adapter for the sans-IO RIFT core.

It only feeds the core, sends what the core wants sent, re-arms one timer, and wakes whoever
waits for events — all protocol logic stays in ``wavry.rift``. uvloop is used when installed.
An optional ``ImpairmentLink`` degrades the *outgoing* direction in-process (loss, delay,
jitter, reordering, duplication, bandwidth) for tests and ``wavry demo --impair``.

STUN runs on the same socket (``UdpDriver.stun_binding``), so the reflexive address is the
mapping peers see. Incoming datagrams that look like STUN (first two bits 00 + magic cookie;
RIFT starts with "RI") *and* carry the id of a pending transaction are consumed here; everything
else goes to the core unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any, Protocol, cast

from wavry.net.impairment import ImpairmentLink
from wavry.net.stun import (
    BindingTransaction,
    RetransmitPolicy,
    StunError,
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
]

log = logging.getLogger(__name__)

Address = tuple[str, int]

#: TOS byte values (DSCP << 2). EF (46) for latency-critical input/control, AF41 (34) for video.
DSCP_EF = 0xB8
DSCP_AF41 = 0x88
_SOCKET_BUFFER = 4 * 1024 * 1024


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

    # asyncio.DatagramProtocol -----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Selector and uvloop transports do not share a base class; both have sendto().
        self._transport = cast(asyncio.DatagramTransport, transport)
        self.flush()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self._stun and looks_like_stun(data) and self._stun_received(data):
            return
        self.datagrams_in += 1
        host, port = str(addr[0]), int(addr[1])
        self.core.receive_datagram(data, (host, port), self._loop.time())
        self.flush()
        self._wake()

    def _stun_received(self, data: bytes) -> bool:
        """Hand a STUN-looking datagram to its transaction; False if it is not ours."""
        try:
            msg = parse_message(data)
        except StunError:
            return False
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
        for data, addr in self.core.datagrams_to_send(now):
            self.datagrams_out += 1
            if self._impairment is None:
                self._send(data, addr)
            else:
                for at in self._impairment.transmit(len(data), now):
                    self._loop.call_at(at, self._send, data, addr)
        self._arm()

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
        self.core.handle_timer(self._loop.time())
        self.flush()
        self._wake()

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
) -> UdpDriver:
    """Bind a UDP socket on ``local_addr`` and drive the core built by ``core_factory``."""
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
    _, protocol = await loop.create_datagram_endpoint(
        lambda: UdpDriver(core, impairment=impairment), sock=sock
    )
    return protocol
