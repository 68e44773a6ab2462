"""``wavry bench signaling``: offer -> answer round trips through the gateway's WebSocket.

The gateway runs in a **separate process** (``create_app`` + uvicorn, as ``wavry gateway`` runs
it) so its CPU time can be read from ``/proc``. This process registers ``2 x pairs`` accounts
over HTTP (each host account shares with one client account), binds one host and one client
WebSocket per pair (1,000 sockets for 500 pairs), then measures:

1. **idle** round trips: one OFFER_RIFT at a time (client -> gateway -> host -> ANSWER_RIFT ->
   gateway -> client), p50/p99;
2. **paced** round trips: ``rate`` offers per second spread over all pairs (open loop), p50/p99;
3. **saturated** round trips: every pair at once, one offer outstanding per pair (closed loop:
   the latency is mostly queueing at the saturation rate), p50/p99;
4. **throughput**: every pair keeps ``window`` offers outstanding for ``seconds``; messages
   routed per second (an offer and an answer are two) and per gateway CPU-second ("per core":
   the gateway is one asyncio process).

Every offer goes through the access policy: a database lookup (``ctx.may_connect``) that the hub
remembers for ``policy_cache_secs``. The bench defaults to 300 s, i.e. the steady state of pairs
that keep signaling (the gateway's default is 5 s); ``--policy-cache-secs 0`` asks the database
for every offer. Answers go through the host's rendezvous table (no database). Rate limits are
lifted for the run (``WAVRY_WS_MSG_RATE_LIMIT`` etc.), so the numbers are the routing path, not
the limiter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["format_signaling_bench", "run_signaling_bench"]

PASSWORD = "benchmark password 1234"
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _raise_nofile(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the gateway process --------------------------------------------------------------------------


def _serve(ns: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import SecretStr

    from wavry.gateway.app import create_app
    from wavry.gateway.settings import GatewaySettings
    from wavry.gateway.signaling.limits import SERVER_WS_MAX_SIZE
    from wavry.gateway.signaling.settings import SignalingSettings
    from wavry.storage import make_engine, upgrade

    async def main() -> None:
        engine = make_engine(ns.database_url)
        await upgrade(engine)
        settings = GatewaySettings(
            data_dir=Path(ns.data_dir), audit_ip_key=SecretStr("bench"),
            argon2_memory_kib=8, argon2_time_cost=1, argon2_parallelism=1,
            auth_rate_limit=10**9, account_rate_limit=10**9, post_auth_rate_limit=10**9,
            global_rate_limit=10**9, rate_max_keys=10**6,
            signaling=SignalingSettings(
                allow_missing_origin=True, max_per_ip=100_000, max_connections=100_000,
                msg_rate_limit=10**9, bind_rate_limit=10**9, send_queue=4096,
                policy_cache_secs=ns.policy_cache_secs,
            ),
        )  # fmt: skip
        app = create_app(settings, engine=engine, run_background=False)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", access_log=False,
            ws_max_size=SERVER_WS_MAX_SIZE, ws_ping_interval=None, backlog=4096,
        )  # fmt: skip
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        sys.stdout.write(f"PORT {port}\n")
        sys.stdout.flush()
        await task
        await engine.dispose()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
    return 0


# --- the load generator ---------------------------------------------------------------------------


class _Pair:
    def __init__(self, host: Any, client: Any, host_name: str) -> None:
        self.host = host
        self.client = client
        self.host_name = host_name
        self.pending: dict[str, tuple[float, asyncio.Future[float]]] = {}

    async def offer(self) -> float:
        sid = str(uuid.uuid4())
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.pending[sid] = (time.perf_counter(), fut)
        msg = {"type": "OFFER_RIFT", "target_username": self.host_name, "hello_b64": "CAEQAQ==",
               "session_id": sid}  # fmt: skip
        await self.client.send(json.dumps(msg))
        return await fut

    async def run_client(self) -> None:
        async for raw in self.client:
            doc = json.loads(raw)
            if doc.get("type") != "ANSWER_RIFT":
                continue
            entry = self.pending.pop(doc.get("session_id", ""), None)
            if entry is not None and not entry[1].done():
                entry[1].set_result(time.perf_counter() - entry[0])

    async def run_host(self) -> None:
        async for raw in self.host:
            doc = json.loads(raw)
            if doc.get("type") != "OFFER_RIFT":
                continue
            answer = {"type": "ANSWER_RIFT", "target_username": doc["target_username"],
                      "ack_b64": "CAE=", "session_id": doc["session_id"]}  # fmt: skip
            await self.host.send(json.dumps(answer))


async def _gather_bounded(n: int, limit: int, make: Callable[[int], Any]) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(i: int) -> Any:
        async with sem:
            return await make(i)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _drive(
    port: int,
    server_pid: int,
    *,
    pairs: int,
    rounds: int,
    seconds: float,
    window: int,
    idle_samples: int,
    rate: float,
    paced_seconds: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    import httpx
    import websockets

    base = f"http://127.0.0.1:{port}"
    tag = os.urandom(3).hex()
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def register(name: str) -> str:
            resp = await http.post("/auth/register", json={
                "email": f"{name}@bench.example", "password": PASSWORD, "username": name,
                "display_name": name, "public_key": "ab" * 32,
            })  # fmt: skip
            resp.raise_for_status()
            token: str = resp.json()["token"]
            return token

        progress(f"registering {2 * pairs} accounts")
        host_tokens = await _gather_bounded(pairs, 16, lambda i: register(f"h{tag}{i}"))
        client_tokens = await _gather_bounded(pairs, 16, lambda i: register(f"c{tag}{i}"))

        async def share(i: int) -> None:
            resp = await http.post(
                "/v1/shares", json={"username": f"c{tag}{i}"},
                headers={"Authorization": f"Bearer {host_tokens[i]}"},
            )  # fmt: skip
            resp.raise_for_status()

        await _gather_bounded(pairs, 16, share)

    async def bind(token: str, role: str) -> Any:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws", open_timeout=30, ping_interval=None, max_queue=None,
            compression=None,
        )  # fmt: skip
        await ws.send(json.dumps({"type": "BIND", "token": token, "role": role}))
        bound = json.loads(await ws.recv())
        if bound.get("type") != "BOUND":
            raise RuntimeError(f"bind failed: {bound}")
        return ws

    progress(f"binding {2 * pairs} WebSockets")
    hosts = await _gather_bounded(pairs, 32, lambda i: bind(host_tokens[i], "host"))
    clients = await _gather_bounded(pairs, 32, lambda i: bind(client_tokens[i], "client"))
    all_pairs = [_Pair(hosts[i], clients[i], f"h{tag}{i}") for i in range(pairs)]
    readers = [asyncio.create_task(p.run_client()) for p in all_pairs]
    readers += [asyncio.create_task(p.run_host()) for p in all_pairs]
    try:
        # warm-up: every pair once
        await asyncio.gather(*(p.offer() for p in all_pairs))

        progress(f"idle round trips ({idle_samples}, one at a time)")
        idle = [await all_pairs[i % pairs].offer() for i in range(idle_samples)]

        progress(f"paced round trips ({rate:.0f}/s spread over all pairs, {paced_seconds:.0f} s)")
        paced_tasks: list[asyncio.Task[float]] = []
        t0 = time.perf_counter()
        for k in range(int(rate * paced_seconds)):
            delay = t0 + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            paced_tasks.append(asyncio.create_task(all_pairs[(k * 7919) % pairs].offer()))
        paced = list(await asyncio.gather(*paced_tasks))

        progress(f"saturated round trips ({pairs} pairs at once x {rounds})")

        async def closed_loop(p: _Pair) -> list[float]:
            return [await p.offer() for _ in range(rounds)]

        start = time.perf_counter()
        loaded_lists = await asyncio.gather(*(closed_loop(p) for p in all_pairs))
        loaded_wall = time.perf_counter() - start
        loaded = [x for xs in loaded_lists for x in xs]

        progress(f"throughput ({window} outstanding per pair, {seconds:.0f} s)")
        done = 0
        stop_at = time.perf_counter() + seconds

        async def pump(p: _Pair) -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                await p.offer()
                done += 1

        cpu0, own0, t0 = _cpu_seconds(server_pid), time.process_time(), time.perf_counter()
        await asyncio.gather(*(pump(p) for p in all_pairs for _ in range(window)))
        wall = time.perf_counter() - t0
        server_cpu = _cpu_seconds(server_pid) - cpu0
        load_cpu = time.process_time() - own0
    finally:
        for task in readers:
            task.cancel()
        for ws in (*hosts, *clients):
            with contextlib.suppress(Exception):
                await ws.close()
    routed = 2 * done
    return {
        "pairs": pairs,
        "sockets": 2 * pairs,
        "idle_rtt_ms": {"n": len(idle), "p50": _pct(idle, 0.5) * 1e3,
                        "p99": _pct(idle, 0.99) * 1e3},
        "paced_rtt_ms": {"n": len(paced), "rate": rate, "p50": _pct(paced, 0.5) * 1e3,
                         "p99": _pct(paced, 0.99) * 1e3},
        "loaded_rtt_ms": {"n": len(loaded), "p50": _pct(loaded, 0.5) * 1e3,
                          "p99": _pct(loaded, 0.99) * 1e3,
                          "round_trips_per_s": len(loaded) / loaded_wall},
        "throughput": {
            "seconds": wall, "window": window, "round_trips": done,
            "messages_routed": routed, "messages_per_s": routed / wall,
            "gateway_cpu_s": server_cpu,
            "messages_per_gateway_cpu_s": routed / server_cpu if server_cpu > 0 else None,
            "gateway_cpu_utilisation": server_cpu / wall,
            "load_generator_cpu_s": load_cpu,
        },
    }  # fmt: skip


def run_signaling_bench(
    *,
    pairs: int = 500,
    rounds: int = 20,
    seconds: float = 10.0,
    window: int = 4,
    idle_samples: int = 1000,
    rate: float = 1000.0,
    paced_seconds: float = 5.0,
    database_url: str | None = None,
    policy_cache_secs: float = 300.0,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    nofile = _raise_nofile(max(4096, 4 * pairs + 256))
    with tempfile.TemporaryDirectory(prefix="wavry-bench-sig-") as tmp:
        url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'gateway.db'}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "wavry.bench.signaling_bench", "serve",
             "--database-url", url, "--data-dir", tmp,
             "--policy-cache-secs", str(policy_cache_secs)],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("PORT "):
                raise RuntimeError("the gateway process did not start")
            port = int(line.split()[1])
            progress(f"gateway pid {proc.pid} on 127.0.0.1:{port}")
            try:
                import uvloop

                runner: Callable[[Any], Any] = uvloop.run
            except ImportError:
                runner = asyncio.run
            result: dict[str, Any] = runner(
                _drive(port, proc.pid, pairs=pairs, rounds=rounds, seconds=seconds,
                       window=window, idle_samples=idle_samples, rate=rate,
                       paced_seconds=paced_seconds, progress=progress)
            )  # fmt: skip
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    result["database"] = url.split(":", 1)[0] if database_url else "sqlite (temporary file)"
    result["ulimit_nofile"] = nofile
    result["policy_cache_secs"] = policy_cache_secs
    result["cpus"] = os.cpu_count()
    return result


def format_signaling_bench(r: dict[str, Any]) -> str:
    t = r["throughput"]
    per_core = t["messages_per_gateway_cpu_s"]
    lines = [
        f"signaling bench: {r['sockets']} bound WebSockets ({r['pairs']} host/client pairs), "
        f"database {r['database']}, policy cache {r['policy_cache_secs']:g} s, "
        f"ulimit -n {r['ulimit_nofile']}, {r['cpus']} CPUs",
        f"  offer->answer idle      p50 {r['idle_rtt_ms']['p50']:.2f} ms  "
        f"p99 {r['idle_rtt_ms']['p99']:.2f} ms  (n={r['idle_rtt_ms']['n']})",
        f"  offer->answer paced     p50 {r['paced_rtt_ms']['p50']:.2f} ms  "
        f"p99 {r['paced_rtt_ms']['p99']:.2f} ms  (n={r['paced_rtt_ms']['n']}, "
        f"{r['paced_rtt_ms']['rate']:.0f} offers/s spread over all pairs)",
        f"  offer->answer saturated p50 {r['loaded_rtt_ms']['p50']:.2f} ms  "
        f"p99 {r['loaded_rtt_ms']['p99']:.2f} ms  (n={r['loaded_rtt_ms']['n']}, all pairs at "
        f"once, {r['loaded_rtt_ms']['round_trips_per_s']:.0f} round trips/s)",
        f"  throughput              {t['messages_per_s']:.0f} messages/s routed "
        f"({t['round_trips']} round trips in {t['seconds']:.1f} s, {t['window']} outstanding "
        "per pair)",
        f"  per core                {per_core:.0f} messages per gateway CPU-second "
        f"(gateway used {t['gateway_cpu_utilisation'] * 100:.0f}% of a core; "
        f"load generator {t['load_generator_cpu_s']:.1f} CPU-s)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wavry.bench.signaling_bench")
    sub = parser.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="(internal) run the gateway for the bench")
    serve.add_argument("--database-url", required=True)
    serve.add_argument("--data-dir", required=True)
    serve.add_argument("--policy-cache-secs", type=float, default=5.0)
    ns = parser.parse_args(argv)
    if ns.cmd == "serve":
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with contextlib.suppress(KeyboardInterrupt):
            return _serve(ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
