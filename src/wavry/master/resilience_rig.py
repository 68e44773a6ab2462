"""Pieces of the relay-side resilience gates: a ``wavry relay`` subprocess, UDP peers, leases.

Everything runs on 127.0.0.1. :class:`RelayProcess` is the relay counterpart of
:class:`wavry.master.loadgate.MasterProcess`: ``python -m wavry relay`` on free loopback ports
with its own ``WAVRY_DATA_DIR``, logs to a file. :class:`UdpPeer` is a peer's UDP socket;
:class:`PeerPair` holds two Wavry identities logged in at the master, opens relay sessions the
way peers do (``POST /v1/sessions`` for the requester, ``POST /v1/sessions/{id}/lease`` for the
target), presents both leases to the relay and checks that FORWARD datagrams cross it
byte-identical in both directions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx

from wavry.master.loadgate import (
    DEFAULT_RELAY_TOKEN,
    MasterProcess,
    _identity_headers,
    free_port,
)
from wavry.relay import wire
from wavry.relay.lease import key_id_for, public_key_from_private
from wavry.relay.settings import parse_hostport
from wavry.rift.header import TransportHeader

__all__ = [
    "MasterHandle",
    "PeerPair",
    "RelayProcess",
    "RelayedSession",
    "Rig",
    "UdpPeer",
    "free_udp_port",
    "relays_seen",
    "wait_until",
]

#: how long a peer waits for a LEASE_ACK or a forwarded datagram before calling it lost
PEER_TIMEOUT = 0.5


def free_udp_port() -> int:
    """A currently free UDP port on 127.0.0.1 (the usual small race is acceptable here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], *, give_up: float, poll: float = 0.05
) -> float | None:
    """Seconds until ``predicate()`` is true, or None after ``give_up`` seconds."""
    start = time.monotonic()
    while True:
        if await predicate():
            return time.monotonic() - start
        if time.monotonic() - start > give_up:
            return None
        await asyncio.sleep(poll)


class RelayProcess:
    """``python -m wavry relay`` on free loopback ports; SIGTERM/SIGKILL; logs go to a file.

    ``master_public_key=None`` leaves the relay to trust the master's key on first use (and to
    persist that pin under ``data_dir``). ``relay_id`` is fixed for the object's life, so a
    restart (``stop()`` then ``spawn()``) is the same relay on the same ports."""

    def __init__(
        self,
        data_dir: Path,
        *,
        master_url: str,
        relay_id: str | None = None,
        token: str | None = DEFAULT_RELAY_TOKEN,
        master_public_key: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.master_url = master_url
        self.relay_id = relay_id or f"gate-{uuid.uuid4().hex[:12]}"
        self.token = token
        self.master_public_key = master_public_key
        self.extra_env = dict(env or {})
        self.udp_port = free_udp_port()
        self.health_port = free_port()
        self.log_path = data_dir / f"relay-{self.relay_id}.log"
        #: monotonic times of the last spawn() and of /health first answering after it
        self.spawned_at = 0.0
        self.serving_at = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._http = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.health_port}", timeout=2.0, trust_env=False
        )

    @property
    def udp_addr(self) -> tuple[str, int]:
        return "127.0.0.1", self.udp_port

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.udp_port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def spawn(self) -> None:
        """Start the process (does not wait; see :meth:`wait_serving`)."""
        if self.running:
            raise RuntimeError("relay already running")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("WAVRY_RELAY_", "WAVRY_MASTER_"))
            and k != "WAVRY_ALLOW_INSECURE_RELAY"
        }
        env["WAVRY_DATA_DIR"] = str(self.data_dir)
        env["WAVRY_RELAY_ID"] = self.relay_id
        if self.token is not None:
            env["WAVRY_RELAY_MASTER_TOKEN"] = self.token
        if self.master_public_key is not None:
            env["WAVRY_RELAY_MASTER_PUBLIC_KEY"] = self.master_public_key
        env.update(self.extra_env)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "wavry",
            "relay",
            "--listen",
            self.endpoint,
            "--health-listen",
            f"127.0.0.1:{self.health_port}",
            "--master-url",
            self.master_url,
        ]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self.spawned_at = time.monotonic()

    async def health(self) -> dict[str, Any] | None:
        """``GET /health`` as JSON, or None when the relay does not answer."""
        try:
            resp = await self._http.get("/health")
        except httpx.HTTPError:
            return None
        return cast(dict[str, Any], resp.json()) if resp.status_code == 200 else None

    async def ready(self) -> bool:
        """``GET /ready`` answered 200 (False on 503 or no answer)."""
        try:
            return (await self._http.get("/ready")).status_code == 200
        except httpx.HTTPError:
            return False

    async def wait_serving(self, timeout: float) -> float:
        """Wait until ``/health`` answers (the process is up: interpreter started, sockets
        bound); returns the start-up time. Raises with the log tail if the process dies first."""
        deadline = time.monotonic() + timeout
        while await self.health() is None:
            if self._proc is None or self._proc.poll() is not None:
                raise RuntimeError(f"relay exited during start-up:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"relay not serving in {timeout} s:\n{self.log_tail()}")
            await asyncio.sleep(0.05)
        self.serving_at = time.monotonic()
        return self.serving_at - self.spawned_at

    async def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Send ``sig`` (SIGTERM: graceful, SIGKILL: a crash) and reap the process."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                await asyncio.to_thread(proc.wait, timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, timeout)
        return proc.returncode

    async def aclose(self) -> None:
        await self.stop()
        await self._http.aclose()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


async def relays_seen(master: httpx.AsyncClient, since_wall: float) -> dict[str, dict[str, Any]]:
    """Relays the master lists as seen at or after ``since_wall`` (unix time), by relay id.

    Uses ``last_seen_ms_ago`` so it needs no shared clock with the master beyond this machine's
    (both run here). An unreachable master lists nothing."""
    try:
        resp = await master.get("/v1/relays")
        asked = time.time()
        rows = resp.json() if resp.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        return {}
    out = {}
    for row in rows:
        last_seen = asked - row["last_seen_ms_ago"] / 1000.0
        if last_seen + 0.05 >= since_wall and row["state"] not in ("quarantined", "banned"):
            out[row["relay_id"]] = row
    return out


class UdpPeer(asyncio.DatagramProtocol):
    """One peer's UDP socket on 127.0.0.1; received datagrams are queued (bounded)."""

    MAX_QUEUED = 1024

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue(self.MAX_QUEUED)
        self.transport: asyncio.DatagramTransport | None = None
        self.next_pid = 1

    @classmethod
    async def open(cls) -> UdpPeer:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.inbox.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable from a killed relay: the timeout says the same

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)

    async def recv(self, timeout: float = PEER_TIMEOUT) -> bytes | None:
        try:
            return await asyncio.wait_for(self.inbox.get(), timeout)
        except TimeoutError:
            return None

    def flush(self) -> None:
        while not self.inbox.empty():
            self.inbox.get_nowait()

    def rift_payload(self, size: int = 1000) -> bytes:
        """A RIFT transport datagram with this peer's next packet id (the relay's replay key)."""
        pid = self.next_pid
        self.next_pid += 1
        head = TransportHeader(7, pid).encode()
        return head + bytes((pid + i) & 0xFF for i in range(size - len(head)))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _is_ack(answer: bytes | None) -> bool:
    if answer is None:
        return False
    try:
        return wire.parse_header(answer)[0] is wire.MessageType.LEASE_ACK
    except wire.RelayWireError:
        return False


@dataclass(slots=True)
class RelayedSession:
    session_id: str
    relay_id: str
    relay_addr: tuple[str, int]
    client_token: str
    server_token: str

    @property
    def sid(self) -> bytes:
        return uuid.UUID(self.session_id).bytes


@dataclass(slots=True)
class PeerPair:
    """Two identities (requester presents ``client``, target ``server``) and their sockets."""

    master: httpx.AsyncClient
    client_id: str
    client_headers: dict[str, str]
    server_id: str
    server_headers: dict[str, str]
    client: UdpPeer
    server: UdpPeer
    sessions_opened: list[str] = field(default_factory=list)

    @classmethod
    async def login(cls, master: httpx.AsyncClient) -> PeerPair:
        seed = uuid.uuid4().bytes
        cid, ch = await _identity_headers(master, seed + b"\x01" * 16)
        sid, sh = await _identity_headers(master, seed + b"\x02" * 16)
        return cls(master, cid, ch, sid, sh, await UdpPeer.open(), await UdpPeer.open())

    async def open_session(self) -> RelayedSession:
        """Ask the master for a relay session; raises httpx.HTTPStatusError when refused."""
        resp = await self.master.post(
            "/v1/sessions",
            json={"target_wavry_id": self.server_id, "role": "client"},
            headers=self.client_headers,
        )
        resp.raise_for_status()
        mine = resp.json()
        theirs = await self.master.post(
            f"/v1/sessions/{mine['session_id']}/lease", headers=self.server_headers
        )
        theirs.raise_for_status()
        self.sessions_opened.append(mine["relay_id"])
        return RelayedSession(
            session_id=mine["session_id"],
            relay_id=mine["relay_id"],
            relay_addr=parse_hostport(mine["relay_addr"]),
            client_token=mine["token"],
            server_token=theirs.json()["token"],
        )

    async def attach(self, s: RelayedSession) -> bool:
        """Both peers present their leases; True when both get a LEASE_ACK."""
        for peer, role, token in (
            (self.client, wire.Role.CLIENT, s.client_token),
            (self.server, wire.Role.SERVER, s.server_token),
        ):
            peer.flush()
            peer.send(wire.encode_lease_present(s.sid, role, token), s.relay_addr)
            if not _is_ack(await peer.recv()):
                return False
        return True

    async def renew(self, s: RelayedSession) -> bool:
        """Both peers send LEASE_RENEW; True when both get a LEASE_ACK."""
        for peer in (self.client, self.server):
            peer.flush()
            peer.send(wire.encode_lease_renew(s.sid), s.relay_addr)
            if not _is_ack(await peer.recv()):
                return False
        return True

    async def exchange(self, s: RelayedSession, rounds: int = 3) -> int:
        """FORWARD ``rounds`` datagrams each way; how many arrived byte-identical."""
        delivered = 0
        for _ in range(rounds):
            for src, dst in ((self.client, self.server), (self.server, self.client)):
                dst.flush()
                datagram = wire.encode_forward(s.sid, src.rift_payload())
                src.send(datagram, s.relay_addr)
                delivered += await dst.recv() == datagram
        return delivered

    def close(self) -> None:
        self.client.close()
        self.server.close()


class MasterHandle:
    """A master subprocess with a provisioned signing key and fast-heartbeat knobs."""

    def __init__(self, workdir: Path, *, heartbeat_ms: int, quarantine_s: float) -> None:
        seed = os.urandom(32)
        pub = public_key_from_private(seed)
        self.kid = key_id_for(pub)
        #: the value relays get as WAVRY_RELAY_MASTER_PUBLIC_KEY
        self.relay_key = f"{self.kid}:{pub.hex()}"
        env = {
            "WAVRY_MASTER_SIGNING_KEY": seed.hex(),
            "WAVRY_MASTER_HEARTBEAT_INTERVAL_MS": str(heartbeat_ms),
            "WAVRY_MASTER_QUARANTINE_AFTER_SECS": str(quarantine_s),
            "WAVRY_MASTER_PURGE_AFTER_SECS": str(max(600.0, 4 * quarantine_s)),
            "WAVRY_MASTER_SWEEP_INTERVAL_SECS": str(max(1.0, min(30.0, quarantine_s / 3))),
            # peers in the failover gate may ask several times while the dead relay is fresh
            "WAVRY_MASTER_LEASE_RATE_LIMIT": "100",
        }
        self.proc = MasterProcess(workdir, env=env)
        self.http = httpx.AsyncClient(base_url=self.proc.url, timeout=5.0, trust_env=False)

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def running(self) -> bool:
        return self.proc.running

    async def start(self) -> float:
        """Start and wait for ``/health``; returns how long that took."""
        t0 = time.monotonic()
        await asyncio.to_thread(self.proc.start, timeout=60.0)
        return time.monotonic() - t0

    async def stop(self) -> None:
        await asyncio.to_thread(self.proc.stop)

    def wipe_database(self) -> None:
        """Delete the SQLite database (the master must be stopped): it forgets every relay."""
        for path in self.proc.data_dir.glob("master.db*"):
            path.unlink()

    async def ready(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return (await self.http.get("/ready")).status_code == 200
        return False

    async def rows(self) -> list[dict[str, Any]]:
        resp = await self.http.get("/v1/relays")
        resp.raise_for_status()
        rows: list[dict[str, Any]] = resp.json()
        return rows

    async def aclose(self) -> None:
        await self.stop()
        await self.http.aclose()


class Rig:
    """The processes one run of the gates shares, like the original harness: one master, relays
    added as gates need them. Any gate can also run alone: :meth:`ensure_primary` starts what is
    missing. After a failed gate the runner calls :meth:`reset` so the next one starts clean."""

    def __init__(self, workdir: Path, *, heartbeat_ms: int, quarantine_s: float) -> None:
        self.workdir = workdir
        self.heartbeat_ms = heartbeat_ms
        self.quarantine_s = quarantine_s
        self.generation = 0
        self.master = self._new_master()
        self.relays: list[RelayProcess] = []
        #: a registered relay gates may use (the first one; the failover survivor later)
        self.primary: RelayProcess | None = None

    def _new_master(self) -> MasterHandle:
        return MasterHandle(
            self.workdir / f"master-{self.generation}",
            heartbeat_ms=self.heartbeat_ms,
            quarantine_s=self.quarantine_s,
        )

    def new_relay(self, *, pinned: bool = False, master_url: str | None = None) -> RelayProcess:
        """A relay with the master's key configured, or (``pinned``) trusting it on first use."""
        relay = RelayProcess(
            self.workdir / f"relay-{self.generation}-{len(self.relays)}",
            master_url=master_url or self.master.url,
            master_public_key=None if pinned else self.master.relay_key,
        )
        self.relays.append(relay)
        return relay

    async def ensure_master(self) -> None:
        if not self.master.running:
            await self.master.start()

    async def ready_and_seen(self, relay: RelayProcess, since_wall: float) -> bool:
        return await relay.ready() and relay.relay_id in await relays_seen(
            self.master.http, since_wall
        )

    async def wait_ready_and_seen(
        self, relay: RelayProcess, since_wall: float, give_up: float
    ) -> float | None:
        """Seconds until the relay is ready and the master saw it after ``since_wall``; None if
        that did not happen within ``give_up`` seconds."""
        return await wait_until(lambda: self.ready_and_seen(relay, since_wall), give_up=give_up)

    async def spawn_and_register(
        self, relay: RelayProcess, give_up: float
    ) -> tuple[float, float | None]:
        """Start ``relay``; (start-up seconds, seconds from serving to ready-and-seen or None).

        Start-up (interpreter, imports, binds) is reported apart: on a loaded machine it is
        what varies, and it is not the control plane's doing."""
        since = time.time()
        relay.spawn()
        startup = await relay.wait_serving(give_up)
        return startup, await self.wait_ready_and_seen(relay, since, give_up)

    async def ensure_primary(self, give_up: float) -> RelayProcess:
        """A running relay the master sees (started, trusting on first use, when missing)."""
        await self.ensure_master()
        relay = self.primary
        if relay is not None and relay.running and await relay.ready():
            return relay
        relay = self.primary = self.new_relay(pinned=True)
        if (await self.spawn_and_register(relay, give_up))[1] is None:
            raise RuntimeError(f"relay {relay.relay_id} did not register:\n{relay.log_tail()}")
        return relay

    def log_tails(self, lines: int = 20) -> dict[str, str]:
        out = {"master": self.master.proc.log_tail(lines)}
        for relay in self.relays:
            out[relay.relay_id] = relay.log_tail(lines)
        return out

    async def reset(self) -> None:
        """Stop everything; the next gate gets a new master (new data dir) and new relays."""
        await self.close()
        self.generation += 1
        self.master = self._new_master()
        self.relays = []
        self.primary = None

    async def close(self) -> None:
        for relay in self.relays:
            await relay.aclose()
        await self.master.aclose()
