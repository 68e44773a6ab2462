"""The relay service: asyncio UDP around ``RelayCore``, health/metrics HTTP, master registration
(the master client itself is ``wavry.relay.registration``).

Fast path (measured, see docs/relay.md): ``datagram_received`` appends ``(data, addr)`` to a
bounded list and schedules one drain per event-loop iteration; the drain reads the clocks once and
runs the whole batch through the core, sending with the transport's ``sendto``. Under uvloop that
is one C-level socket read per datagram and no Python object per packet beyond the tuple the
transport hands us. When the list holds ``WAVRY_RELAY_PACKET_QUEUE_CAPACITY`` datagrams, new
ones are dropped and counted (``backpressure_dropped_packets``): that is the explicit
backpressure. Outgoing datagrams the kernel cannot take are not buffered without bound either:
past ``_TX_BUFFER_LIMIT`` bytes in the transport's buffer they are dropped (``tx_dropped_packets``).

Native fast path (``WAVRY_RELAY_FASTPATH``, docs/relay.md): ``_FastReceiver`` replaces the
transport. The relay owns a non-blocking socket and ``loop.add_reader`` calls the C ``drain``, which
reads with ``recvmmsg``, decides and sends FORWARDs from bound peers with ``sendmmsg``, and returns
the rest (in arrival order) to ``RelayCore.receive_datagram``. Sends the kernel refuses (send
buffer full) are dropped and counted in ``tx_dropped_packets``, never buffered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import httpx

from wavry.bind_policy import check_bind, is_loopback
from wavry.relay import fastpath
from wavry.relay.core import Addr, RelayCore
from wavry.relay.lease import LeaseVerifier
from wavry.relay.pins import load_pins
from wavry.relay.registration import MasterClient, advertised_endpoints, format_endpoint
from wavry.relay.settings import RelaySettings

# MasterClient and advertised_endpoints moved to wavry.relay.registration; re-exported here
# because callers and tests import them from this module.
__all__ = ["MasterClient", "RelayServer", "advertised_endpoints", "install_uvloop"]

log = logging.getLogger(__name__)

_TX_BUFFER_LIMIT = 4 * 1024 * 1024
#: the health/metrics HTTP server's limit on reading a request head
_HTTP_TIMEOUT = 5.0


def install_uvloop() -> bool:
    """Use uvloop's event loop policy when the package is present. Returns True if it is."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def _zero() -> int:
    return 0


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, core: RelayCore, capacity: int) -> None:
        self.core = core
        self.capacity = capacity
        self.queue: list[tuple[bytes, Addr]] = []
        self.scheduled = False
        self.paused = False
        self.tx_dropped = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.tx_buffered: Callable[[], int] = _zero
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Selector and uvloop transports do not share the DatagramTransport base class.
        self.transport = cast(asyncio.DatagramTransport, transport)
        # Selector and uvloop datagram transports both have it; typeshed's base class does not.
        self.tx_buffered = getattr(transport, "get_write_buffer_size", _zero)

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        queue = self.queue
        if len(queue) >= self.capacity:
            self.core.note_backpressure_drop(len(data))
            return
        queue.append((data, addr))
        if not self.scheduled and not self.paused:
            self.scheduled = True
            self._loop.call_soon(self.drain)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable from a peer that went away) are normal for a relay.
        if log.isEnabledFor(logging.DEBUG):
            log.debug("udp error: %s", exc)

    def drain(self) -> None:
        self.scheduled = False
        if self.paused or not self.queue:
            return
        batch, self.queue = self.queue, []
        now = time.monotonic()
        wall = time.time()
        receive = self.core.receive_datagram
        transport = self.transport
        assert transport is not None
        if self.tx_buffered() > _TX_BUFFER_LIMIT:
            # The kernel is not taking our sends: process (and count) but do not queue more.
            for data, addr in batch:
                if receive(data, addr, now, wall) is not None:
                    self.tx_dropped += 1
            return
        sendto = transport.sendto
        for data, addr in batch:
            out = receive(data, addr, now, wall)
            if out is not None:
                sendto(*out)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        if self.queue and not self.scheduled:
            self.scheduled = True
            self._loop.call_soon(self.drain)


#: recvmmsg batches per readable event before yielding to the loop (64 datagrams each)
_DRAIN_BUDGET = 16


class _FastReceiver:
    """The UDP socket driven by the native fast path (the same queue/pause/backpressure rules as
    ``_UdpProtocol`` for the datagrams Python handles)."""

    def __init__(
        self, core: RelayCore, fp: fastpath.FastPathLike, sock: socket.socket, capacity: int
    ) -> None:
        self.core = core
        self.fp = fp
        self.sock = sock
        self.fd = sock.fileno()
        self.capacity = capacity
        self.queue: list[tuple[bytes, Addr]] = []
        self.scheduled = False
        self.paused = False
        self.py_tx_dropped = 0
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self.readable)

    @property
    def tx_dropped(self) -> int:
        return self.py_tx_dropped + self.fp.tx_dropped

    def readable(self) -> None:
        now = time.monotonic()
        core = self.core
        if self.paused:
            queue = self.queue
            for data, addr in self.fp.drain(self.fd, now, _DRAIN_BUDGET, True):
                if len(queue) >= self.capacity:
                    core.note_backpressure_drop(len(data))
                else:
                    queue.append((data, addr))
            core.fold_fastpath()
            return
        if self.queue:
            self.drain_queue()
        slow = self.fp.drain(self.fd, now, _DRAIN_BUDGET, False)
        if slow:
            self.process(slow, now)
        core.fold_fastpath()

    def process(self, batch: list[tuple[bytes, Addr]], now: float) -> None:
        wall = time.time()
        receive = self.core.receive_datagram
        sendto = self.sock.sendto
        for data, addr in batch:
            out = receive(data, addr, now, wall)
            if out is not None:
                try:
                    sendto(*out)
                except OSError:  # send buffer full (EAGAIN) or the destination is unreachable
                    self.py_tx_dropped += 1

    def drain_queue(self) -> None:
        self.scheduled = False
        if self.paused or not self.queue:
            return
        batch, self.queue = self.queue, []
        self.process(batch, time.monotonic())
        self.core.fold_fastpath()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        if self.queue and not self.scheduled:
            self.scheduled = True
            self._loop.call_soon(self.drain_queue)

    def close(self) -> None:
        self.paused = True
        self._loop.remove_reader(self.fd)
        self.sock.close()


def _bind_udp(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound like ``create_datagram_endpoint(local_addr=...)``."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP)
    error: OSError | None = None
    for family, kind, proto, _, addr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.bind(addr)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error or OSError(f"cannot bind udp {host}:{port}")


class RelayServer:
    """``wavry relay``: start() binds, serves and registers; close() stops everything."""

    def __init__(
        self,
        settings: RelaySettings,
        *,
        master_transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        keys = settings.trusted_keys
        verifier = LeaseVerifier(keys) if keys else None
        self.core = RelayCore(
            settings.relay_id,
            verifier,
            settings.core_config(),
            banned=settings.banned,
            now=time.monotonic(),
        )
        self.started = time.monotonic()
        self.master: MasterClient | None = None
        self._master_transport = master_transport
        self._sleep = sleep
        self._proto: _UdpProtocol | _FastReceiver | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._sock: socket.socket | None = None
        #: whether the native FORWARD fast path runs (decided by start())
        self.fastpath_enabled = False
        self._http: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    def check_policy(self) -> None:
        """Bind policy and insecure-mode warnings; raises BindPolicyError on refusal."""
        s = self.settings
        for host, _ in (s.listen_addr, s.health_addr):
            check_bind(
                host,
                allow_public=s.allow_public_bind,
                flag="--allow-public-bind",
                env="WAVRY_RELAY_ALLOW_PUBLIC_BIND",
            )
        problems = s.insecure_problems()
        public = not (is_loopback(s.listen_addr[0]) and is_loopback(s.health_addr[0]))
        if problems and public and not s.allow_insecure_dev:
            raise ValueError(
                "refusing a public relay with insecure settings (or set "
                "WAVRY_RELAY_ALLOW_INSECURE_DEV=1):\n  - " + "\n  - ".join(problems)
            )
        if problems:
            log.warning(
                "INSECURE DEV MODE (%s only):\n  - %s",
                "loopback" if not public else "public, by WAVRY_RELAY_ALLOW_INSECURE_DEV",
                "\n  - ".join(problems),
            )
        if s.no_master and not s.trusted_keys:
            raise ValueError("WAVRY_RELAY_NO_MASTER needs WAVRY_RELAY_MASTER_PUBLIC_KEY")

    def load_pinned_keys(self) -> None:
        """Without a configured key, trust the keys pinned at an earlier first registration.

        Raises PinFileError (a ValueError) when the pin file exists but cannot be trusted."""
        s = self.settings
        if s.master_public_key is not None or s.no_master or self.core.verifier is not None:
            return
        pinned = load_pins(s.pin_path, s.master_url)
        if pinned:
            self.core.verifier = LeaseVerifier(pinned)
            log.info("trusting the master keys %s pinned in %s", sorted(pinned), s.pin_path)

    async def start(self) -> None:
        self.check_policy()
        self.load_pinned_keys()
        s = self.settings
        loop = asyncio.get_running_loop()
        host, port = s.listen_addr
        self.fastpath_enabled = fastpath.resolve(s.fastpath)
        if self.fastpath_enabled:
            fp = fastpath.load(self.core.config.replay_window)
            self.core.attach_fastpath(fp, fastpath.counter_names())
            sock = _bind_udp(host, port)
            self._sock = sock
            self._proto = _FastReceiver(self.core, fp, sock, s.packet_queue_capacity)
        else:
            proto = _UdpProtocol(self.core, s.packet_queue_capacity)
            self._proto = proto
            transport, _ = await loop.create_datagram_endpoint(
                lambda: proto, local_addr=(host, port)
            )
            self._transport = transport
            sock = transport.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
        hhost, hport = s.health_addr
        self._http = await asyncio.start_server(self._serve_http, hhost, hport)
        self._tasks.append(asyncio.create_task(self._timers(), name="relay-timers"))
        if not s.no_master:
            self.master = MasterClient(
                s,
                self.core,
                advertised_endpoints(s, self.udp_address),
                transport=self._master_transport,
                sleep=self._sleep,
            )
            self._tasks.append(asyncio.create_task(self._run_master(), name="relay-master"))
        log.info(
            "relay %s listening on udp %s, health on http://%s",
            self.core.relay_id,
            format_endpoint(*self.udp_address),
            format_endpoint(*self.health_address),
        )
        if self.fastpath_enabled:
            log.info("forwarding on the native fast path (recvmmsg/sendmmsg)")
        else:
            why = fastpath.unavailable_reason()
            if s.fastpath == "off":
                why = "WAVRY_RELAY_FASTPATH=off"
            log.info("forwarding on the pure-Python path (%s)", why)

    async def _run_master(self) -> None:
        assert self.master is not None
        try:
            await self.master.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # top of a task: log, mark unready, never crash the relay silently
            log.exception("master client stopped")
            self.master.registered = False

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.master is not None:
            await self.master.aclose()
        if self._http is not None:
            self._http.close()
            await self._http.wait_closed()
        if isinstance(self._proto, _FastReceiver):
            self._proto.close()
        elif self._proto is not None:
            self._proto.pause()
        if self._transport is not None:
            self._transport.close()

    async def _timers(self) -> None:
        next_stats = time.monotonic() + self.settings.stats_log_interval_secs
        while True:
            now = time.monotonic()
            delay = min(self.core.get_timer(), next_stats) - now
            await asyncio.sleep(max(0.05, delay))
            now = time.monotonic()
            self.core.handle_timer(now)
            if now >= next_stats:
                next_stats = now + self.settings.stats_log_interval_secs
                c = self.core.counters
                log.info(
                    "sessions=%d active=%d rx=%d fwd=%d dropped=%d backpressure=%d ready=%s",
                    self.core.session_count,
                    self.core.active_sessions,
                    c.packets_rx,
                    c.packets_forwarded,
                    c.dropped_packets,
                    c.backpressure_dropped_packets,
                    self.ready,
                )

    # -- state -----------------------------------------------------------------------------

    @property
    def udp_address(self) -> tuple[str, int]:
        if self._sock is not None:
            addr = self._sock.getsockname()
            return str(addr[0]), int(addr[1])
        assert self._transport is not None
        addr = self._transport.get_extra_info("sockname")
        return str(addr[0]), int(addr[1])

    @property
    def health_address(self) -> tuple[str, int]:
        assert self._http is not None
        addr = self._http.sockets[0].getsockname()
        return str(addr[0]), int(addr[1])

    @property
    def registered(self) -> bool:
        if self.settings.no_master:
            return True
        return self.master is not None and self.master.registered

    @property
    def has_master_key(self) -> bool:
        return self.core.verifier is not None and bool(self.core.verifier.key_ids)

    @property
    def ready(self) -> bool:
        return self.has_master_key and self.registered and not self.core.overloaded

    @property
    def queue_depth(self) -> int:
        return len(self._proto.queue) if self._proto else 0

    @property
    def tx_dropped(self) -> int:
        return self._proto.tx_dropped if self._proto else 0

    def pause_processing(self) -> None:
        """Stop draining the inbound queue (tests and operators: shows backpressure)."""
        assert self._proto is not None
        self._proto.pause()

    def resume_processing(self) -> None:
        assert self._proto is not None
        self._proto.resume()

    # -- HTTP ------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        core = self.core
        return {
            "relay_id": core.relay_id,
            "status": "ok",
            "ready": self.ready,
            "has_master_key": self.has_master_key,
            "registered_with_master": self.registered,
            "active_sessions": core.active_sessions,
            "total_sessions": core.session_count,
            "max_sessions": core.config.max_sessions,
            "uptime_secs": round(time.monotonic() - self.started, 3),
            "master": self.master_status(),
            "metrics": self.metrics(),
        }

    def master_status(self) -> dict[str, Any]:
        """Registration counters (resilience gates and operators: was it a re-registration?)."""
        m = self.master
        if self.settings.master_public_key is not None:
            source = "configured"
        elif self.has_master_key:
            source = "pinned"
        else:
            source = "none"
        return {
            "registrations": m.registrations if m else 0,
            "heartbeats_ok": m.heartbeats_ok if m else 0,
            "failures_since_registration": m.failures if m else 0,
            "last_failure": m.last_failure if m else "",
            "last_registration_uptime_secs": (
                round(m.registered_at - self.started, 3) if m and m.registered_at else None
            ),
            "key_source": source,
            "key_ids": list(self.core.verifier.key_ids) if self.core.verifier else [],
        }

    def metrics(self) -> dict[str, int]:
        out = self.core.counters.as_dict()
        out["tx_dropped_packets"] = self.tx_dropped
        return out

    def prometheus(self) -> str:
        rid = self.core.relay_id.replace("\\", "\\\\").replace('"', '\\"')
        label = f'{{relay_id="{rid}"}}'
        lines = []
        for name, value in sorted(self.metrics().items()):
            kind = "counter"
            lines.append(f"# TYPE wavry_relay_{name} {kind}")
            lines.append(f"wavry_relay_{name}{label} {value}")
        gauges = {
            "active_sessions": self.core.active_sessions,
            "sessions": self.core.session_count,
            "max_sessions": self.core.config.max_sessions,
            "queue_depth": self.queue_depth,
            "queue_capacity": self.settings.packet_queue_capacity,
            "registered_with_master": int(self.registered),
            "ready": int(self.ready),
            "uptime_seconds": math.floor(time.monotonic() - self.started),
            "fastpath_enabled": int(self.fastpath_enabled),
        }
        for name, value in gauges.items():
            lines.append(f"# TYPE wavry_relay_{name} gauge")
            lines.append(f"wavry_relay_{name}{label} {value}")
        return "\n".join(lines) + "\n"

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HTTP_TIMEOUT)
            method, path, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            status, ctype, body = self._route(method, path.split("?", 1)[0])
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            status, ctype, body = 400, "text/plain", b"bad request\n"
        except ConnectionError:
            writer.close()
            return
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
        reason[503] = "Service Unavailable"
        writer.write(
            f"HTTP/1.1 {status} {reason.get(status, 'OK')}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    def _route(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        js = "application/json"
        if path == "/health":
            return 200, js, json.dumps(self.health()).encode()
        if path == "/ready":
            ready = self.ready
            doc = {"relay_id": self.core.relay_id, "ready": ready}
            return (200 if ready else 503), js, json.dumps(doc).encode()
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4", self.prometheus().encode()
        if path == "/metrics/json":
            return 200, js, json.dumps(self.metrics()).encode()
        return 404, "text/plain", b"not found\n"
