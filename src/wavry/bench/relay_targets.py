"""The two relays ``wavry bench relay`` compares, each in its own process on 127.0.0.1.

``WavryRelay`` runs ``python -m wavry relay`` with no master and a lease key generated for the
run (``WAVRY_RELAY_MASTER_PUBLIC_KEY``); it mints one lease per peer (``sign_lease``) and opens
a session by presenting them. ``Coturn`` runs ``turnserver`` with a temporary configuration
(see ``Coturn.config``: one relay thread by default, long-term credentials with a random
password, UDP only, no TLS/DTLS/TCP, no CLI, loopback peers allowed, relay ports in a random
1000-port range) and opens a session by Allocate + CreatePermission + ChannelBind.

Both give ``open_flows(n)`` → ``Flow`` objects the load generator drives, ``close_flows``,
``pid`` (whose CPU time is measured) and ``input_ports`` (whose kernel drops are counted).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from wavry.bench.relay_load import Flow
from wavry.bench.turn_client import CHANNEL_MIN, TurnClient, TurnError, channel_data_header
from wavry.relay.lease import LeaseClaims, key_id_for, public_key_from_private, sign_lease
from wavry.relay.wire import (
    HEADER_SIZE,
    RelayWireError,
    Role,
    encode_forward,
    encode_lease_present,
    parse_lease_ack,
)

__all__ = [
    "DATAGRAM_SIZE",
    "Coturn",
    "Relay",
    "WavryRelay",
    "free_udp_port",
    "pin_process",
    "udp_socket",
    "wait_for",
]

#: every datagram the relays receive has this size (our FORWARD: 20-byte header + 1180;
#: ChannelData: 4-byte header + 1196)
DATAGRAM_SIZE = 1200
_SOCK_BUF = 4 * 1024 * 1024
_HOST = "127.0.0.1"


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def pin_process(pid: int, cpus: set[int] | None) -> None:
    """Pin every thread of ``pid`` (threads started later inherit from their creator)."""
    if not cpus:
        return
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), cpus)


def udp_socket(bind: bool = True) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, opt, _SOCK_BUF)
    if bind:
        s.bind((_HOST, 0))
    return s


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class WavryRelay:
    """``python -m wavry relay`` on loopback with a benchmark lease key and no master."""

    name = "wavry"

    def __init__(self, workdir: Path) -> None:
        self.seed = secrets.token_bytes(32)
        pub = public_key_from_private(self.seed)
        self.kid = key_id_for(pub)
        self.relay_id = ""  # read from the start-up log line
        env = dict(
            os.environ,
            WAVRY_RELAY_NO_MASTER="1",
            WAVRY_RELAY_MASTER_PUBLIC_KEY=f"{self.kid}:{pub.hex()}",
        )
        self.log_path = workdir / "wavry-relay.log"
        cmd = [sys.executable, "-m", "wavry", "relay", "--listen", f"{_HOST}:0",
               "--health-listen", f"{_HOST}:0", "--max-sessions", "1000",
               "--load-shed-threshold-pct", "100", "--lease-duration-secs", "3600",
               "--stats-log-interval-secs", "3600"]  # fmt: skip
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        self.port = 0
        self.health_port = 0
        try:
            wait_for(self._started, 30.0, "wavry relay to listen")
        except RuntimeError:
            self.close()
            raise RuntimeError(f"wavry relay did not start: {self._log_tail()}") from None
        self.pid = self.proc.pid
        self.input_ports = {self.port}

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]

    def _started(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"wavry relay exited: {self._log_tail()}")
        for line in self.log_path.read_text(errors="replace").splitlines():
            if "listening on udp" in line:
                # "... relay ID listening on udp 127.0.0.1:PORT, health on http://127.0.0.1:PORT"
                head, tail = line.split(" listening on udp ", 1)
                self.relay_id = head.rsplit(" ", 1)[1]
                udp = tail.split(",", 1)[0]
                health = line.rsplit("http://", 1)[1].strip()
                self.port = int(udp.rsplit(":", 1)[1])
                self.health_port = int(health.rsplit(":", 1)[1])
                return True
        return False

    def metrics(self) -> dict[str, int]:
        url = f"http://{_HOST}:{self.health_port}/metrics/json"
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback, ours)
            doc: dict[str, int] = json.loads(resp.read())
        return doc

    def _lease(self, sid: bytes, role: Role) -> str:
        now = time.time()
        claims = LeaseClaims(
            sub=f"bench-{role.claim}", sid=str(uuid.UUID(bytes=sid)), role=role.claim,
            rid=self.relay_id, iat=now, nbf=now - 5, exp=now + 3000,
            slimit=4_000_000, hlimit=4_000_000,
        )  # fmt: skip
        return sign_lease(claims, self.seed, self.kid)

    def _present(self, sock: socket.socket, sid: bytes, role: Role) -> None:
        msg = encode_lease_present(sid, role, self._lease(sid, role))
        sock.settimeout(1.0)
        for _ in range(4):
            sock.send(msg)
            try:
                parse_lease_ack(sock.recv(2048))
                return
            except TimeoutError:
                continue
            except RelayWireError as exc:
                raise RuntimeError(f"wavry relay refused the lease ({exc})") from None
        raise RuntimeError("wavry relay did not answer LEASE_PRESENT")

    def open_flows(self, n: int) -> list[Flow]:
        flows = []
        payload = bytes(DATAGRAM_SIZE - HEADER_SIZE)
        for _ in range(n):
            sid = uuid.uuid4().bytes
            client, server = udp_socket(), udp_socket()
            client.connect((_HOST, self.port))
            server.connect((_HOST, self.port))
            self._present(client, sid, Role.CLIENT)
            self._present(server, sid, Role.SERVER)
            flows.append(
                Flow(client, server, encode_forward(sid, payload), HEADER_SIZE, HEADER_SIZE)
            )
        return flows

    def close_flows(self, flows: list[Flow]) -> None:
        for f in flows:
            f.send_sock.close()
            f.recv_sock.close()

    def close(self) -> None:
        _stop(self.proc)


class Coturn:
    """``turnserver`` with a temporary configuration (see ``config``)."""

    name = "coturn"

    def __init__(self, workdir: Path, binary: str, relay_threads: int = 1) -> None:
        probe = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        version = (probe.stdout.strip() or probe.stderr.strip()).splitlines()
        self.version = version[-1] if version else "unknown"
        self.username = "wavrybench"
        self.password = secrets.token_hex(16)
        self.relay_threads = relay_threads
        self.port = free_udp_port()
        low = 20000 + secrets.randbelow(40) * 1000
        self.config = "\n".join([
            f"listening-ip={_HOST}", f"relay-ip={_HOST}", f"listening-port={self.port}",
            f"min-port={low}", f"max-port={low + 999}", f"relay-threads={relay_threads}",
            "lt-cred-mech", f"user={self.username}:{self.password}", "realm=wavry.bench",
            "no-tcp", "no-tls", "no-dtls", "no-tcp-relay", "no-cli", "no-rfc5780",
            "no-stun-backward-compatibility", "no-software-attribute", "allow-loopback-peers",
            f"log-file={workdir / 'turn.log'}", "simple-log", f"pidfile={workdir / 'turn.pid'}",
            f"userdb={workdir / 'turndb'}",
        ]) + "\n"  # fmt: skip
        conf = workdir / "turnserver.conf"
        conf.write_text(self.config)
        conf.chmod(0o600)
        self.log_path = workdir / "turnserver.out"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.proc.pid
        self.input_ports = {self.port}
        try:
            self._wait_ready()
        except (RuntimeError, OSError):
            self.close()
            raise

    def _wait_ready(self) -> None:
        probe = udp_socket()
        probe.connect((_HOST, self.port))
        client = TurnClient(probe, self.username, self.password, timeout=0.2, attempts=1)
        deadline = time.monotonic() + 15
        try:
            while True:
                if self.proc.poll() is not None:
                    tail = self.log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"turnserver exited: {tail}")
                try:
                    client.binding()
                    return
                except (TurnError, OSError):
                    if time.monotonic() > deadline:
                        raise RuntimeError("turnserver did not answer a Binding request") from None
        finally:
            probe.close()

    def metrics(self) -> dict[str, int]:
        """coturn's counters are not read (its Prometheus exporter is off); see the bench."""
        return {}

    def open_flows(self, n: int) -> list[Flow]:
        flows = []
        payload = bytes(DATAGRAM_SIZE - 4)
        for _ in range(n):
            client, peer = udp_socket(), udp_socket()
            client.connect((_HOST, self.port))
            turn = TurnClient(client, self.username, self.password)
            turn.allocate()
            target = peer.getsockname()
            turn.create_permission(target)
            turn.channel_bind(CHANNEL_MIN, target)
            template = channel_data_header(CHANNEL_MIN, len(payload)) + payload
            flow = Flow(client, peer, template, 4, 0)
            flow.turn = turn  # type: ignore[attr-defined]
            flows.append(flow)
        return flows

    def close_flows(self, flows: list[Flow]) -> None:
        for f in flows:
            with contextlib.suppress(TurnError, OSError):
                f.send_sock.settimeout(0.5)
                f.turn.release()  # type: ignore[attr-defined]
            f.send_sock.close()
            f.recv_sock.close()

    def close(self) -> None:
        _stop(self.proc)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((_HOST, 0))
        return int(s.getsockname()[1])


Relay = WavryRelay | Coturn
