"""``wavry bench gateway-logins``: logins per second through the gateway's HTTP API.

Logins are Argon2id-bound: each one verifies a password hash (production parameters by default:
m=19456 KiB, t=2, p=1). The bench registers a few accounts, then N concurrent clients log in
over real HTTP (uvicorn on loopback, in this process) for a fixed time; it also measures a raw
single-thread Argon2id verify for reference. Rate limits and lockouts are lifted for the run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["format_gateway_logins", "run_gateway_logins"]

PASSWORD = "benchmark password 1234"
_UNLIMITED: dict[str, Any] = {
    "auth_rate_limit": 10**9, "account_rate_limit": 10**9, "post_auth_rate_limit": 10**9,
    "global_rate_limit": 10**9, "lockout_threshold": 10**9, "rate_max_keys": 10**6,
}  # fmt: skip


def _raw_verify_rate(memory_kib: int, time_cost: int, parallelism: int, seconds: float) -> float:
    from wavry.gateway.passwords import Argon2Params, PasswordHasher

    hasher = PasswordHasher(Argon2Params(memory_kib, time_cost, parallelism))
    phc = hasher.hash_sync(PASSWORD)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        assert hasher.verify_sync(phc, PASSWORD)
        n += 1
    return n / (time.perf_counter() - start)


async def _run(
    *,
    database_url: str | None,
    seconds: float,
    concurrency: int,
    users: int,
    memory_kib: int,
    time_cost: int,
    parallelism: int,
    argon2_threads: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    import httpx
    import uvicorn
    from pydantic import SecretStr

    from wavry.gateway.app import create_app
    from wavry.gateway.settings import GatewaySettings
    from wavry.storage import make_engine, upgrade

    with tempfile.TemporaryDirectory(prefix="wavry-bench-gw-") as tmp:
        url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'gateway.db'}"
        engine = make_engine(url)
        await upgrade(engine)
        settings = GatewaySettings(
            data_dir=Path(tmp), audit_ip_key=SecretStr("bench"), argon2_memory_kib=memory_kib,
            argon2_time_cost=time_cost, argon2_parallelism=parallelism,
            argon2_max_concurrency=argon2_threads, **_UNLIMITED,
        )  # fmt: skip
        app = create_app(settings, engine=engine, run_background=False)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        tag = os.urandom(4).hex()
        latencies: list[float] = []
        failures = 0
        try:
            limits = httpx.Limits(max_connections=concurrency + 2)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
                progress(f"registering {users} accounts")
                for i in range(users):
                    resp = await client.post("/auth/register", json={
                        "email": f"bench{i}-{tag}@example.com", "password": PASSWORD,
                        "username": f"bench{i}-{tag}", "display_name": f"Bench {i}",
                        "public_key": "ab" * 32,
                    })  # fmt: skip
                    resp.raise_for_status()
                progress(f"{concurrency} clients logging in for {seconds:g} s")
                deadline = time.perf_counter() + seconds

                async def worker(k: int) -> None:
                    nonlocal failures
                    i = k
                    while time.perf_counter() < deadline:
                        body = {"email": f"bench{i % users}-{tag}@example.com",
                                "password": PASSWORD}  # fmt: skip
                        t0 = time.perf_counter()
                        resp = await client.post("/auth/login", json=body)
                        if resp.status_code == 200:
                            latencies.append(time.perf_counter() - t0)
                        else:
                            failures += 1
                        i += concurrency

                start = time.perf_counter()
                await asyncio.gather(*(worker(k) for k in range(concurrency)))
                elapsed = time.perf_counter() - start
        finally:
            server.should_exit = True
            await task
            await engine.dispose()
    lat = sorted(latencies)
    return {
        "database": url.split("://", 1)[0].split("+", 1)[0],
        "argon2": {
            "variant": "argon2id",
            "memory_kib": memory_kib,
            "time_cost": time_cost,
            "parallelism": parallelism,
        },  # fmt: skip
        "argon2_threads": argon2_threads,
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "logins": len(lat),
        "failures": failures,
        "logins_per_sec": round(len(lat) / elapsed, 1),
        "latency_ms": {
            "p50": round(1000 * statistics.median(lat), 1) if lat else None,
            "p99": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1) if lat else None,
        },
        "cpus": os.cpu_count(),
    }


def run_gateway_logins(
    *,
    database_url: str | None = None,
    seconds: float = 10.0,
    concurrency: int = 8,
    users: int = 16,
    memory_kib: int = 19_456,
    time_cost: int = 2,
    parallelism: int = 1,
    argon2_threads: int | None = None,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    threads = argon2_threads or max(1, os.cpu_count() or 1)
    progress("raw Argon2id verify, one thread")
    raw = _raw_verify_rate(memory_kib, time_cost, parallelism, min(seconds, 3.0))
    result = asyncio.run(
        _run(database_url=database_url, seconds=seconds, concurrency=concurrency, users=users,
             memory_kib=memory_kib, time_cost=time_cost, parallelism=parallelism,
             argon2_threads=threads, progress=progress)
    )  # fmt: skip
    result["raw_verify_per_sec_one_thread"] = round(raw, 1)
    return result


def format_gateway_logins(r: dict[str, Any]) -> str:
    a = r["argon2"]
    return "\n".join([
        f"gateway logins over HTTP ({r['database']}, {r['cpus']} CPUs)",
        f"  Argon2id m={a['memory_kib']} KiB t={a['time_cost']} p={a['parallelism']}, "
        f"{r['argon2_threads']} hashing threads, {r['concurrency']} concurrent clients",
        f"  logins/s          {r['logins_per_sec']:.1f}  ({r['logins']} in {r['seconds']} s, "
        f"{r['failures']} failed)",
        f"  latency p50/p99   {r['latency_ms']['p50']} / {r['latency_ms']['p99']} ms",
        f"  raw verify/s, 1 thread  {r['raw_verify_per_sec_one_thread']:.1f}",
    ])  # fmt: skip
