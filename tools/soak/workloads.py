"""Soak workloads: real ``python -m wavry …`` processes under steady load, on loopback.

Each workload starts its service processes, drives them from a thread of this process for the
soak's duration, names the processes whose RSS is sampled, and reports what it did (so a soak
whose load silently stopped cannot pass). Only processes started here are ever stopped, by their
own handles.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tools.soak.sampler import children_of

__all__ = [
    "DemoWorkload",
    "GatewayWorkload",
    "MasterWorkload",
    "RelayWorkload",
    "Workload",
    "gateway_available",
]

ROOT = Path(__file__).resolve().parents[2]


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    """The current environment without any WAVRY_* / ADMIN_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAVRY_", "ADMIN_"))}
    env.update(extra)
    return env


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{url}: the process exited at start-up:\n{_tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return
            time.sleep(0.2)
    raise TimeoutError(f"{url} not healthy within {timeout} s:\n{_tail(log)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


class Workload:
    """Base: a temp dir, a driver thread, an error slot, a stats dict."""

    name = "workload"

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=f"wavry-soak-{self.name}-"))
        self.stats: dict[str, Any] = {}
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def launch(self, duration: float) -> None:
        """Start the service processes and wait until they are healthy."""
        raise NotImplementedError

    def begin(self, duration: float) -> None:
        """Start applying load for ``duration`` seconds (in a thread)."""
        self._run_driver(duration)

    def processes(self) -> dict[str, Callable[[], int | None]]:
        raise NotImplementedError

    def _drive(self, duration: float) -> None:
        raise NotImplementedError

    def _run_driver(self, duration: float) -> None:
        def target() -> None:
            try:
                self._drive(duration)
            except Exception as exc:  # noqa: BLE001 - top of a thread: report, never vanish
                self.error = f"{type(exc).__name__}: {exc}"

        self._thread = threading.Thread(target=target, name=f"soak-{self.name}", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self) -> None:
        """End the load (normally at the end of the duration) and stop the processes."""
        self._stop.set()
        self.wait(15)

    def abort(self) -> None:
        """Interrupted: end everything now."""
        self.stop()

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def problems(self) -> list[str]:
        """Why the load this workload applied does not count (empty: it ran as intended)."""
        return [f"{self.name}: driver failed: {self.error}"] if self.error else []


# -- relay ----------------------------------------------------------------------------------------

_LEASE_SEED = bytes(range(32))
_LEASE_KID = "soak"
_RELAY_ID = "soak-relay"


class RelayWorkload(Workload):
    """``wavry relay`` (no master, a pinned lease key) with sessions churning and a steady
    stream of FORWARD datagrams both ways through the newest session."""

    name = "relay"

    def __init__(self, *, pps: int = 800, session_every: float = 2.0, payload: int = 1000) -> None:
        super().__init__()
        self.pps = pps
        self.session_every = session_every
        self.payload = payload
        self.udp_port = _free_port(socket.SOCK_DGRAM)
        self.http_port = _free_port(socket.SOCK_STREAM)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.tmp / "relay.log"

    def launch(self, duration: float) -> None:
        from wavry.relay.lease import public_key_from_private

        env = _clean_env(
            WAVRY_DATA_DIR=str(self.tmp),
            WAVRY_RELAY_NO_MASTER="1",
            WAVRY_RELAY_MASTER_PUBLIC_KEY=f"{_LEASE_KID}:{public_key_from_private(_LEASE_SEED).hex()}",
            WAVRY_RELAY_RELAY_ID=_RELAY_ID,
            WAVRY_RELAY_LISTEN=f"127.0.0.1:{self.udp_port}",
            WAVRY_RELAY_HEALTH_LISTEN=f"127.0.0.1:{self.http_port}",
            WAVRY_RELAY_IDLE_TIMEOUT="5",
            WAVRY_RELAY_CLEANUP_INTERVAL_SECS="1",
            WAVRY_RELAY_IP_RATE_LIMIT_PPS="1000000",
            WAVRY_RELAY_IDENTITY_RATE_LIMIT_PPS="1000000",
            WAVRY_RELAY_MAX_SESSIONS="1000",
            WAVRY_RELAY_LOG_LEVEL="warning",
        )
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wavry", "relay"],
                env=env,
                cwd=self.tmp,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_http(f"http://127.0.0.1:{self.http_port}/health", self.proc, 60.0, self.log)

    def processes(self) -> dict[str, Callable[[], int | None]]:
        proc = self.proc
        return {"relay": lambda: None if proc is None else proc.pid}

    def _lease(self, sid: bytes, role: str, ttl: float) -> str:
        from wavry.relay.lease import LeaseClaims, sign_lease
        from wavry.rift.identity import Identity

        now = time.time()
        claims = LeaseClaims(
            sub=Identity.from_seed(bytes([1 if role == "client" else 2]) * 32).wavry_id,
            sid=str(uuid.UUID(bytes=sid)),
            role=role,
            rid=_RELAY_ID,
            iat=now,
            nbf=now - 5,
            exp=now + ttl,
            slimit=100_000,
            hlimit=200_000,
        )
        return sign_lease(claims, _LEASE_SEED, _LEASE_KID)

    def _drive(self, duration: float) -> None:
        from wavry.relay import wire
        from wavry.rift.header import TransportHeader

        relay = ("127.0.0.1", self.udp_port)
        peers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        for s in peers:
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        sent = received = acks = sessions = 0
        body = bytes(self.payload)
        end = time.monotonic() + duration
        next_session = 0.0
        sid = b""
        pids = [0, 0]
        interval = 2.0 / self.pps  # one datagram per peer per tick
        tick = time.monotonic()
        try:
            while not self._stop.is_set() and time.monotonic() < end:
                now = time.monotonic()
                if now >= next_session:
                    sid = uuid.uuid4().bytes
                    for s, role in zip(peers, (wire.Role.CLIENT, wire.Role.SERVER), strict=True):
                        token = self._lease(sid, role.claim, ttl=600.0)
                        s.sendto(wire.encode_lease_present(sid, role, token), relay)
                    pids = [0, 0]
                    sessions += 1
                    next_session = now + self.session_every
                for i, s in enumerate(peers):
                    pids[i] += 1
                    rift = TransportHeader(7 + i, pids[i]).encode() + body
                    s.sendto(wire.encode_forward(sid, rift), relay)
                    sent += 1
                ready, _, _ = select.select(peers, [], [], 0)
                for s in ready:
                    while True:
                        try:
                            data = s.recv(2048)
                        except BlockingIOError:
                            break
                        if data[2:3] == bytes([wire.MessageType.LEASE_ACK]):
                            acks += 1
                        else:
                            received += 1
                tick += interval
                delay = tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -1.0:
                    tick = time.monotonic()  # fell behind (loaded machine): do not burst
        finally:
            for s in peers:
                s.close()
            self.stats.update(sent=sent, forwarded_back=received, acks=acks, sessions=sessions)

    def stop(self) -> None:
        super().stop()
        with contextlib.suppress(httpx.HTTPError, ValueError):
            url = f"http://127.0.0.1:{self.http_port}/metrics/json"
            doc = httpx.get(url, timeout=3.0, trust_env=False).json()
            self.stats["relay_metrics"] = {
                k: doc[k]
                for k in ("packets_forwarded", "sessions_created", "cleanup_idle_sessions")
                if k in doc
            }
        _stop(self.proc)

    def problems(self) -> list[str]:
        out = super().problems()
        if self.stats.get("forwarded_back", 0) < self.stats.get("sent", 0) // 2:
            out.append(f"relay: forwarded too little of what was sent ({self.stats})")
        if self.stats.get("acks", 0) < self.stats.get("sessions", 1):
            out.append(f"relay: leases not acknowledged ({self.stats})")
        return out


# -- master ---------------------------------------------------------------------------------------


class MasterWorkload(Workload):
    """``wavry master`` under the load gate's relay register/heartbeat driver, in rounds with
    new relay ids each round (registry churn)."""

    name = "master"

    def __init__(self, *, relays: int = 40, round_seconds: float = 60.0) -> None:
        super().__init__()
        self.relays = relays
        self.round_seconds = round_seconds
        self.master: Any = None

    def launch(self, duration: float) -> None:
        from wavry.master.loadgate import MasterProcess

        # Relays of finished rounds go silent: quarantine and purge them within a round or two
        # so the registry reaches a steady size and the sweeper's purge path runs under soak.
        forget = max(10.0, self.round_seconds / 3)
        env = {
            "WAVRY_MASTER_QUARANTINE_AFTER_SECS": str(forget),
            "WAVRY_MASTER_PURGE_AFTER_SECS": str(2 * forget),
            "WAVRY_MASTER_SWEEP_INTERVAL_SECS": str(max(2.0, forget / 4)),
        }
        self.master = MasterProcess(self.tmp / "master", env=env)
        self.master.start(timeout=60.0)

    def processes(self) -> dict[str, Callable[[], int | None]]:
        def pid() -> int | None:
            if self.master is None:
                return None
            port = f"127.0.0.1:{self.master.port}"
            for child in children_of(os.getpid()):
                line = _cmdline(child)
                if "wavry master" in line and port in line:
                    return child
            return None

        return {"master": pid}

    def _drive(self, duration: float) -> None:
        from wavry.master.loadgate import SLO, LoadProfile, run_load

        end = time.monotonic() + duration
        rounds = ops = ok = 0
        failures: list[str] = []
        while not self._stop.is_set():
            left = end - time.monotonic()
            if left < 5.0:
                break
            profile = LoadProfile(relays=self.relays, seconds=min(self.round_seconds, left))
            report = asyncio.run(run_load(self.master.url, profile))
            rounds += 1
            ops += report.register_ops + report.heartbeat_ops
            ok += report.register_ok + report.heartbeat_ok
            # latency SLOs are the load gate's business; here only whether requests succeed
            failures += [f for f in report.failures(SLO(1.0, 1e9, 1e9)) if "success" in f]
        self.stats.update(rounds=rounds, ops=ops, ok=ok, failures=failures[:5])

    def stop(self) -> None:
        super().stop()
        if self.master is not None:
            self.master.stop()

    def problems(self) -> list[str]:
        out = super().problems()
        ops, ok = self.stats.get("ops", 0), self.stats.get("ok", 0)
        if ops == 0 or ok < 0.99 * ops:
            out.append(f"master: {ok}/{ops} register/heartbeat operations succeeded")
        return out


# -- host + client (wavry demo) -------------------------------------------------------------------


class DemoWorkload(Workload):
    """``wavry demo`` for the soak's duration: the client is the demo process, the host its
    child (real UDP, encryption, encode and decode on the synthetic source)."""

    name = "demo"

    def __init__(self, *, resolution: str = "320x180", fps: int = 30, bitrate: int = 1000) -> None:
        super().__init__()
        self.resolution, self.fps, self.bitrate = resolution, fps, bitrate
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.tmp / "demo.log"
        self.out = self.tmp / "demo.json"

    def launch(self, duration: float) -> None:
        cmd = [sys.executable, "-m", "wavry", "demo", "--seconds", str(duration)]
        cmd += ["--resolution", self.resolution, "--fps", str(self.fps)]
        cmd += ["--bitrate", str(self.bitrate), "--json"]
        with self.log.open("ab") as log, self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd,
                env=_clean_env(WAVRY_DATA_DIR=str(self.tmp)),
                cwd=self.tmp,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=log,
            )

    def processes(self) -> dict[str, Callable[[], int | None]]:
        def client() -> int | None:
            return None if self.proc is None else self.proc.pid

        def host() -> int | None:
            if self.proc is None:
                return None
            kids = [c for c in children_of(self.proc.pid) if "wavry host" in _cmdline(c)]
            return kids[0] if kids else None

        return {"demo-client": client, "demo-host": host}

    def _drive(self, duration: float) -> None:
        assert self.proc is not None
        try:
            self.proc.wait(duration + 90.0)
        except subprocess.TimeoutExpired:
            self.error = "wavry demo did not finish"

    def abort(self) -> None:
        _stop(self.proc)
        super().abort()

    def stop(self) -> None:
        self.wait(120.0)  # the demo ends by itself after --seconds
        _stop(self.proc)
        super().stop()
        try:
            doc = json.loads(self.out.read_text().strip().splitlines()[-1])
        except (OSError, ValueError, IndexError):
            doc = {}
        self.stats.update(
            exit_code=None if self.proc is None else self.proc.returncode,
            frames=doc.get("frames_presented"),
            fps=doc.get("fps"),
        )

    def problems(self) -> list[str]:
        out = super().problems()
        if self.stats.get("exit_code") != 0:
            out.append(f"demo: exited with {self.stats.get('exit_code')}:\n{_tail(self.log)}")
        elif not self.stats.get("fps"):
            out.append(f"demo: no frames ({self.stats})")
        return out


# -- gateway (picked up once `wavry gateway` exists) ----------------------------------------------


def gateway_available() -> str | None:
    """None when ``wavry gateway`` runs here, else why not."""
    proc = subprocess.run(
        [sys.executable, "-m", "wavry", "gateway", "--help"],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        return "`wavry gateway` is not available yet"
    return None


class GatewayWorkload(Workload):
    """``wavry gateway`` under register-once, then login/logout loops of a few accounts."""

    name = "gateway"

    def __init__(self, *, accounts: int = 3, per_second: float = 5.0) -> None:
        super().__init__()
        self.accounts = accounts
        self.per_second = per_second
        self.port = _free_port(socket.SOCK_STREAM)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.tmp / "gateway.log"

    def launch(self, duration: float) -> None:
        # soak load from one loopback address must not trip the per-IP/per-account limits
        limits = ("AUTH", "ACCOUNT", "POST_AUTH", "GLOBAL")
        env = _clean_env(
            WAVRY_DATA_DIR=str(self.tmp),
            **{f"WAVRY_GATEWAY_{name}_RATE_LIMIT": "1000000" for name in limits},
        )
        cmd = [sys.executable, "-m", "wavry", "gateway", "--listen", f"127.0.0.1:{self.port}"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*cmd, "--log-level", "warning"],
                env=env,
                cwd=self.tmp,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_http(f"http://127.0.0.1:{self.port}/health", self.proc, 60.0, self.log)

    def processes(self) -> dict[str, Callable[[], int | None]]:
        proc = self.proc
        return {"gateway": lambda: None if proc is None else proc.pid}

    def _drive(self, duration: float) -> None:
        base = f"http://127.0.0.1:{self.port}"
        end = time.monotonic() + duration
        logins = failures = 0
        run = uuid.uuid4().hex[:6]
        creds = []
        with httpx.Client(base_url=base, timeout=10.0, trust_env=False) as client:
            for i in range(self.accounts):
                email = f"soak{run}{i}@example.com"
                password = f"Soak-{run}-password-{i}!"
                resp = client.post(
                    "/auth/register",
                    json={
                        "email": email,
                        "password": password,
                        "username": f"soak{run}{i}",
                        "display_name": f"Soak {i}",
                        "public_key": f"{i:02x}" * 32,
                    },
                )
                if resp.status_code >= 300:
                    raise RuntimeError(f"register answered {resp.status_code}: {resp.text[:200]}")
                creds.append({"email": email, "password": password})
            period = 1.0 / self.per_second
            tick = time.monotonic()
            while not self._stop.is_set() and time.monotonic() < end:
                body = creds[logins % len(creds)]
                resp = client.post("/auth/login", json=body)
                token = resp.json().get("token") if resp.status_code == 200 else None
                if token:
                    out = client.post("/auth/logout", headers={"Authorization": f"Bearer {token}"})
                    failures += out.status_code >= 300
                else:
                    failures += 1
                logins += 1
                tick += period
                time.sleep(max(0.0, tick - time.monotonic()))
        self.stats.update(logins=logins, failures=failures)

    def stop(self) -> None:
        super().stop()
        _stop(self.proc)

    def problems(self) -> list[str]:
        out = super().problems()
        logins, failures = self.stats.get("logins", 0), self.stats.get("failures", 0)
        if logins == 0 or failures > 0.01 * logins:
            out.append(f"gateway: {failures}/{logins} login+logout cycles failed")
        return out
