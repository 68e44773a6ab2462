"""Control-plane load driver and SLO gate (the "load + soak" resilience gate, reference §8).

    python -m wavry.master.loadgate --relays 200 --seconds 30 [--master-url http://127.0.0.1:PORT]
                                    [--through-chaos] [--throughput]

N simulated relays register, then heartbeat every ``--interval`` seconds, concurrently over one
``httpx.AsyncClient`` with a bounded connection pool. Relay *i* advertises
``10.a.b.1:port`` with a distinct /24 per relay so the sybil limit (5 per /24) never trips; the
endpoints are only strings in the registration body and are never contacted. All traffic goes to
the master on 127.0.0.1 (a non-loopback ``--master-url`` is refused). Without ``--master-url`` a
master is started as a subprocess on a free loopback port with a temporary data directory.

The start of each relay is spread evenly over the first interval (relays do not boot in the same
millisecond) and each relay then heartbeats on its own 1 s grid. An *operation* is one register or
one heartbeat, including its retries (``--retries``, exponential backoff 50 ms -> 1 s); its
latency is measured from the first attempt to the answer. A heartbeat answered 404 (the master
forgot the relay) is a failure and the relay re-registers, like ``wavry relay`` does.

One JSON line is printed; the exit status is 1 when an SLO fails:

* success ratio (successful operations / operations) >= ``--min-success`` (0.99)
* register p95 <= ``--max-register-p95-ms`` (100), heartbeat p95 <= ``--max-heartbeat-p95-ms`` (100)
* every relay is in ``GET /v1/relays`` at the end (asked of the master directly)

``--through-chaos`` puts a :class:`wavry.master.chaos_proxy.ChaosProxy` (700 ms before dialing the
master, every 5th connection closed) between the relays and the master, turns keep-alive off so
every request is a new connection, retries 5 times, and raises both p95 limits to 3000 ms unless
given. ``--throughput`` measures master capacity instead (closed loop, no SLO): relay
registrations + heartbeats per second and leases issued per second (``POST /v1/sessions``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from wavry.master.chaos_proxy import ChaosProxy
from wavry.telemetry.latency import LatencyHistogram

__all__ = [
    "SLO",
    "LoadProfile",
    "LoadReport",
    "MasterProcess",
    "free_port",
    "main",
    "measure_throughput",
    "relay_endpoint",
    "run_load",
]

DEFAULT_RELAY_TOKEN = "loadgate-relay-token"
CHAOS_P95_MS = 3000.0


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the usual small race is acceptable in tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _loopback_hostport(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the load gate only talks to a loopback IP literal, got {url!r}")
    return host, parts.port or 80


def relay_endpoint(i: int) -> str:
    """Relay *i*'s advertised endpoint: one /24 per relay (10.1.1.0/24, 10.1.2.0/24, ...)."""
    if not 0 <= i < 250 * 250:
        raise ValueError("relay index out of range")
    return f"10.{i // 250 + 1}.{i % 250 + 1}.1:{20000 + i % 40000}"


class MasterProcess:
    """``python -m wavry master`` on a loopback port, as a subprocess; logs go to a file."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        relay_token: str | None = DEFAULT_RELAY_TOKEN,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.relay_token = relay_token
        self.extra_env = dict(env or {})
        self.log_path = data_dir / "master.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, timeout: float = 20.0) -> None:
        if self.running:
            raise RuntimeError("master already running")
        env = {k: v for k, v in os.environ.items() if not k.startswith("WAVRY_MASTER_")}
        env.pop("ADMIN_PANEL_TOKEN", None)
        env.pop("WAVRY_DATABASE_URL", None)
        env["WAVRY_DATA_DIR"] = str(self.data_dir)
        if self.relay_token is not None:
            env["WAVRY_MASTER_RELAY_AUTH_TOKEN"] = self.relay_token
        env.update(self.extra_env)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "wavry",
                    "master",
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    "--log-level",
                    "warning",
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=1.0) as client:
            while True:
                if self._proc is None or self._proc.poll() is not None:
                    raise RuntimeError(f"master exited during start-up:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/health").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"master not healthy in {timeout} s:\n{self.log_tail()}")
                time.sleep(0.1)

    def stop(self, *, timeout: float = 10.0) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        return proc.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> MasterProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def _own_master(relay_token: str | None, env: Mapping[str, str] | None = None) -> Iterator[str]:
    tmp = Path(tempfile.mkdtemp(prefix="wavry-loadgate-"))
    try:
        with MasterProcess(tmp, relay_token=relay_token, env=env) as master:
            yield master.url
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class SLO:
    min_success: float = 0.99
    max_register_p95_ms: float = 100.0
    max_heartbeat_p95_ms: float = 100.0


@dataclass(frozen=True, slots=True)
class LoadProfile:
    relays: int = 200
    seconds: float = 30.0
    interval: float = 1.0
    max_connections: int = 100
    timeout: float = 3.0
    retries: int = 0
    keepalive: bool = True
    relay_token: str | None = DEFAULT_RELAY_TOKEN


@dataclass(slots=True)
class LoadReport:
    relays: int
    seconds: float
    register_ops: int = 0
    register_ok: int = 0
    heartbeat_ops: int = 0
    heartbeat_ok: int = 0
    attempts: int = 0
    reregistrations: int = 0
    missing_relays: int = 0
    elapsed: float = 0.0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    register_ms: LatencyHistogram = field(default_factory=LatencyHistogram)
    heartbeat_ms: LatencyHistogram = field(default_factory=LatencyHistogram)
    chaos: dict[str, int] | None = None

    @property
    def success_ratio(self) -> float:
        ops = self.register_ops + self.heartbeat_ops
        return (self.register_ok + self.heartbeat_ok) / ops if ops else 0.0

    def failures(self, slo: SLO) -> list[str]:
        out = []
        if self.success_ratio < slo.min_success:
            out.append(f"success ratio {self.success_ratio:.4f} < {slo.min_success}")
        reg, hb = self.register_ms.percentile(95), self.heartbeat_ms.percentile(95)
        if self.register_ok == 0 or reg > slo.max_register_p95_ms:
            out.append(f"register p95 {reg:.1f} ms > {slo.max_register_p95_ms} ms")
        if self.heartbeat_ok == 0 or hb > slo.max_heartbeat_p95_ms:
            out.append(f"heartbeat p95 {hb:.1f} ms > {slo.max_heartbeat_p95_ms} ms")
        if self.missing_relays:
            out.append(f"{self.missing_relays} relays missing from /v1/relays")
        return out

    def as_dict(self, slo: SLO) -> dict[str, Any]:
        failures = self.failures(slo)
        ops = self.register_ok + self.heartbeat_ok
        return {
            "gate": "pass" if not failures else "fail",
            "failures": failures,
            "relays": self.relays,
            "seconds": self.seconds,
            "elapsed_s": round(self.elapsed, 3),
            "success_ratio": round(self.success_ratio, 5),
            "register": {
                "ops": self.register_ops,
                "ok": self.register_ok,
                **self.register_ms.summary().as_dict(),
            },
            "heartbeat": {
                "ops": self.heartbeat_ops,
                "ok": self.heartbeat_ok,
                **self.heartbeat_ms.summary().as_dict(),
            },
            "ok_ops_per_s": round(ops / self.elapsed, 1) if self.elapsed else 0.0,
            "attempts": self.attempts,
            "reregistrations": self.reregistrations,
            "missing_relays": self.missing_relays,
            "errors": dict(self.errors),
            "chaos": self.chaos,
            "slo": {
                "min_success": slo.min_success,
                "max_register_p95_ms": slo.max_register_p95_ms,
                "max_heartbeat_p95_ms": slo.max_heartbeat_p95_ms,
            },
        }


def _register_body(relay_id: str, i: int) -> dict[str, Any]:
    return {
        "relay_id": relay_id,
        "endpoints": [relay_endpoint(i)],
        "region": "loadtest-us",
        "asn": 64512,
        "max_sessions": 256,
        "max_bitrate_kbps": 20_000,
        "features": ["ipv4"],
    }


class _Driver:
    def __init__(self, client: httpx.AsyncClient, profile: LoadProfile, report: LoadReport) -> None:
        self.client = client
        self.profile = profile
        self.report = report

    async def _op(
        self, path: str, body: dict[str, Any], hist: LatencyHistogram
    ) -> httpx.Response | None:
        """POST with retries; record the latency of a 200 (first attempt to answer)."""
        start = time.perf_counter()
        for attempt in range(self.profile.retries + 1):
            self.report.attempts += 1
            try:
                resp = await self.client.post(path, json=body)
            except httpx.HTTPError as exc:
                self.report.errors[type(exc).__name__] += 1
            else:
                if resp.status_code == 200:
                    hist.record((time.perf_counter() - start) * 1000.0)
                    return resp
                self.report.errors[f"http_{resp.status_code}"] += 1
                if resp.status_code < 500:
                    return resp  # a client error does not improve by retrying
            if attempt < self.profile.retries:
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
        return None

    async def register(self, relay_id: str, i: int) -> bool:
        self.report.register_ops += 1
        resp = await self._op(
            "/v1/relays/register", _register_body(relay_id, i), self.report.register_ms
        )
        ok = resp is not None and resp.status_code == 200
        self.report.register_ok += ok
        return ok

    async def heartbeat(self, relay_id: str, load: int) -> int | None:
        self.report.heartbeat_ops += 1
        body = {"relay_id": relay_id, "load_pct": load}
        resp = await self._op("/v1/relays/heartbeat", body, self.report.heartbeat_ms)
        ok = resp is not None and resp.status_code == 200
        self.report.heartbeat_ok += ok
        return None if resp is None else resp.status_code

    async def relay(self, relay_id: str, i: int, t0: float, end: float) -> None:
        interval = self.profile.interval
        offset = interval * i / max(1, self.report.relays)
        await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))
        registered = await self.register(relay_id, i)
        tick = 1
        while (at := t0 + offset + tick * interval) < end:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            tick += 1
            if not registered:
                registered = await self.register(relay_id, i)
                continue
            status = await self.heartbeat(relay_id, 5 + (i * 7 + tick) % 86)
            if status == 404:
                self.report.reregistrations += 1
                registered = await self.register(relay_id, i)


def _client(base_url: str, profile: LoadProfile) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=profile.max_connections,
        max_keepalive_connections=profile.max_connections if profile.keepalive else 0,
    )
    headers = {"Authorization": f"Bearer {profile.relay_token}"} if profile.relay_token else {}
    return httpx.AsyncClient(
        base_url=base_url,
        limits=limits,
        timeout=profile.timeout,
        headers=headers,
        trust_env=False,
    )


async def run_load(
    master_url: str,
    profile: LoadProfile,
    *,
    chaos: tuple[float, int] | None = None,
) -> LoadReport:
    """Drive ``profile`` against ``master_url``; ``chaos=(delay_s, drop_every)`` adds the proxy."""
    host, port = _loopback_hostport(master_url)
    report = LoadReport(relays=profile.relays, seconds=profile.seconds)
    run = uuid.uuid4().hex[:8]
    ids = [f"load-{run}-{i:04d}" for i in range(profile.relays)]
    proxy: ChaosProxy | None = None
    target = master_url
    if chaos is not None:
        proxy = ChaosProxy((host, port), delay=chaos[0], drop_every=chaos[1])
        await proxy.start()
        target = f"http://127.0.0.1:{proxy.port}"
    try:
        async with _client(target, profile) as client:
            driver = _Driver(client, profile, report)
            t0 = time.monotonic()
            end = t0 + profile.seconds
            await asyncio.gather(*(driver.relay(rid, i, t0, end) for i, rid in enumerate(ids)))
            report.elapsed = time.monotonic() - t0
    finally:
        if proxy is not None:
            report.chaos = {
                "delay_ms": int(proxy.delay * 1000),
                "drop_every": proxy.drop_every,
                "accepted": proxy.accepted,
                "dropped": proxy.dropped,
                "forwarded": proxy.forwarded,
            }
            await proxy.close()
    # the end-of-run check asks the master itself, not through the proxy
    async with httpx.AsyncClient(base_url=master_url, timeout=10.0, trust_env=False) as c:
        listed = {r["relay_id"] for r in (await c.get("/v1/relays")).json()}
    report.missing_relays = sum(1 for rid in ids if rid not in listed)
    return report


async def _identity_headers(client: httpx.AsyncClient, seed: bytes) -> tuple[str, dict[str, str]]:
    from wavry.master.identity import challenge_message
    from wavry.rift.identity import Identity

    ident = Identity.from_seed(seed)
    wid = ident.wavry_id
    for purpose, path, first in (
        ("register", "/v1/auth/register", {"wavry_id": wid, "display_name": "load"}),
        ("login", "/v1/auth/login", {"wavry_id": wid}),
    ):
        resp = await client.post(path, json=first)
        resp.raise_for_status()
        challenge = resp.json()["challenge"]
        sig = ident.sign(challenge_message(purpose, bytes.fromhex(challenge))).hex()
        resp = await client.post(
            f"{path}/verify", json={"wavry_id": wid, "challenge": challenge, "signature_hex": sig}
        )
        resp.raise_for_status()
    return wid, {"Authorization": f"Bearer {resp.json()['token']}"}


async def measure_throughput(
    master_url: str,
    *,
    seconds: float = 10.0,
    concurrency: int = 16,
    relay_token: str | None = DEFAULT_RELAY_TOKEN,
) -> dict[str, Any]:
    """Closed-loop capacity: registrations + heartbeats per second, then leases per second.

    The master must allow the lease and auth rates (``WAVRY_MASTER_LEASE_RATE_LIMIT``,
    ``WAVRY_MASTER_AUTH_RATE_LIMIT_PER_MIN``); the master this module starts itself does.
    """
    _loopback_hostport(master_url)
    profile = LoadProfile(relays=concurrency, max_connections=concurrency, relay_token=relay_token)
    run = uuid.uuid4().hex[:8]
    out: dict[str, Any] = {"concurrency": concurrency, "seconds_per_phase": seconds}
    async with _client(master_url, profile) as client:
        report = LoadReport(relays=concurrency, seconds=seconds)
        driver = _Driver(client, profile, report)

        async def relay_worker(i: int, end: float) -> None:
            rid = f"tput-{run}-{i:04d}"
            n = 0
            while time.monotonic() < end:
                if n % 2 == 0:
                    await driver.register(rid, 1000 + i)
                else:
                    await driver.heartbeat(rid, 10)
                n += 1

        t0 = time.monotonic()
        await asyncio.gather(*(relay_worker(i, t0 + seconds) for i in range(concurrency)))
        elapsed = time.monotonic() - t0
        ok = report.register_ok + report.heartbeat_ok
        out["relay_ops"] = {
            "ok": ok,
            "failed": report.register_ops + report.heartbeat_ops - ok,
            "per_s": round(ok / elapsed, 1),
            "register": report.register_ms.summary().as_dict(),
            "heartbeat": report.heartbeat_ms.summary().as_dict(),
        }

        target_id, _ = await _identity_headers(client, b"\x01" * 32)
        requesters = [
            (await _identity_headers(client, bytes([2 + i]) * 32))[1]
            for i in range(min(concurrency, 200))
        ]
        leases = LatencyHistogram()
        issued = 0
        refused: collections.Counter[str] = collections.Counter()

        async def lease_worker(headers: dict[str, str], end: float) -> None:
            nonlocal issued
            while time.monotonic() < end:
                start = time.perf_counter()
                resp = await client.post(
                    "/v1/sessions", json={"target_wavry_id": target_id}, headers=headers
                )
                if resp.status_code == 201:
                    issued += 1
                    leases.record((time.perf_counter() - start) * 1000.0)
                else:
                    refused[f"http_{resp.status_code}"] += 1
                    if resp.status_code == 429:
                        await asyncio.sleep(0.1)

        t0 = time.monotonic()
        await asyncio.gather(*(lease_worker(h, t0 + seconds) for h in requesters))
        elapsed = time.monotonic() - t0
        out["leases"] = {
            "issued": issued,
            "refused": dict(refused),
            "per_s": round(issued / elapsed, 1),
            "latency_ms": leases.summary().as_dict(),
        }
    return out


THROUGHPUT_MASTER_ENV = {
    "WAVRY_MASTER_LEASE_RATE_LIMIT": "1000000000",
    "WAVRY_MASTER_AUTH_RATE_LIMIT_PER_MIN": "100000",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m wavry.master.loadgate",
        description="Control-plane load driver and SLO gate (loopback only).",
    )
    p.add_argument("--relays", type=int, default=200)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--interval", type=float, default=1.0, help="heartbeat period (s)")
    p.add_argument("--master-url", help="a running master on 127.0.0.1 (default: start one)")
    p.add_argument(
        "--relay-token",
        default=os.environ.get("WAVRY_RELAY_MASTER_TOKEN", DEFAULT_RELAY_TOKEN),
        help="relay bearer token (WAVRY_RELAY_MASTER_TOKEN; '' sends none)",
    )
    p.add_argument("--max-connections", type=int, default=100)
    p.add_argument("--timeout", type=float, default=3.0, help="per-request timeout (s)")
    p.add_argument("--retries", type=int, help="retries per operation (default 0, chaos 5)")
    p.add_argument("--min-success", type=float, default=0.99)
    p.add_argument("--max-register-p95-ms", type=float)
    p.add_argument("--max-heartbeat-p95-ms", type=float)
    p.add_argument("--through-chaos", action="store_true", help="relays talk via a chaos proxy")
    p.add_argument("--chaos-delay-ms", type=float, default=700.0)
    p.add_argument("--chaos-drop-every", type=int, default=5)
    p.add_argument(
        "--throughput", action="store_true", help="measure capacity (no SLO) instead of the gate"
    )
    p.add_argument("--concurrency", type=int, default=16, help="--throughput workers")
    return p


async def _amain(ns: argparse.Namespace) -> int:
    token = ns.relay_token or None
    if ns.throughput:
        with contextlib.ExitStack() as stack:
            url = ns.master_url or stack.enter_context(_own_master(token, THROUGHPUT_MASTER_ENV))
            result = await measure_throughput(
                url, seconds=ns.seconds, concurrency=ns.concurrency, relay_token=token
            )
        sys.stdout.write(json.dumps({"throughput": result}, sort_keys=True) + "\n")
        return 0
    chaos = ns.through_chaos
    default_p95 = CHAOS_P95_MS if chaos else 100.0
    slo = SLO(
        min_success=ns.min_success,
        max_register_p95_ms=ns.max_register_p95_ms or default_p95,
        max_heartbeat_p95_ms=ns.max_heartbeat_p95_ms or default_p95,
    )
    profile = LoadProfile(
        relays=ns.relays,
        seconds=ns.seconds,
        interval=ns.interval,
        max_connections=ns.max_connections,
        timeout=ns.timeout,
        retries=ns.retries if ns.retries is not None else (5 if chaos else 0),
        keepalive=not chaos,
        relay_token=token,
    )
    with contextlib.ExitStack() as stack:
        url = ns.master_url or stack.enter_context(_own_master(token))
        report = await run_load(
            url,
            profile,
            chaos=(ns.chaos_delay_ms / 1000.0, ns.chaos_drop_every) if chaos else None,
        )
    sys.stdout.write(json.dumps(report.as_dict(slo), sort_keys=True) + "\n")
    return 1 if report.failures(slo) else 0


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    if ns.relays < 1 or ns.seconds <= 0 or ns.interval <= 0:
        sys.stderr.write("loadgate: --relays >= 1, --seconds > 0 and --interval > 0\n")
        return 2
    try:
        return asyncio.run(_amain(ns))
    except (ValueError, RuntimeError, TimeoutError) as exc:
        sys.stderr.write(f"loadgate: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
