"""``wavry bench relay``: our relay and coturn forwarding the same load, in the same run.

Both relays run as their own processes on 127.0.0.1, each pinned to the same single CPU (when
the machine has more than one) so that "per core" means what it says; the load generator runs
on the other CPUs. Our relay is ``python -m wavry relay`` with a lease key the benchmark
generates (no master); coturn is ``turnserver`` with a temporary configuration: one relay
thread, long-term credentials, UDP only, no TLS/DTLS/TCP, no CLI, loopback peers allowed.

Throughput: ``n`` sessions, each a sender socket and a receiver socket. Ours: the client peer
presents its lease and sends FORWARDs, the server peer presents its lease and receives them.
coturn: the client allocates (long-term auth), creates a permission and binds a channel to the
receiver socket, then sends ChannelData (RFC 8656's fast path, the counterpart of FORWARD).
Every datagram the relay receives is 1200 bytes. The generator (``wavry.bench.relay_load``)
sends as fast as it can; after a warm-up the benchmark reads, at the start and the end of the
window: datagrams sent, datagrams delivered to the receiver sockets (read, or dropped by a full
receiver buffer), datagrams the kernel dropped at the relay's sockets, and the relay process's
CPU time: all its threads, from /proc/<pid>/task/*/schedstat (nanoseconds; the same total that
utime + stime of /proc/<pid>/stat add up to, whose 10 ms ticks are too coarse for short runs;
utime and stime are still reported for the user/kernel split). Packets/s per core = delivered /
relay CPU seconds. A run counts as saturated when the relay's input socket overflowed
(``relay_socket_drops`` > 0): the relay always had work whenever it ran. On an idle machine it
is then at ~100 % of its CPU; on a shared one other processes take part of that CPU
(``relay_core_busy_pct`` shows the CPU was busy), which is why the figure is per CPU-second and
not per wall-clock second. Runs alternate ours/coturn and are repeated; ratios are taken within
each repetition and the median reported.

Latency: one session per relay at ``latency_rate`` packets/s (1200 B) plus a direct stream at
the same rate from the same sender to a plain socket, half an interval apart; one-way latency
from timestamps in the payload (one clock: CLOCK_MONOTONIC of this host). Added latency =
relayed - direct, as quantile differences and per pair of packets with the same sequence.
Measured twice: with normal scheduling (nothing pinned; what a relay on a host with idle CPU
sees, and on a shared machine also other processes' time slices), and "realtime", with the
relay, sender and receiver at SCHED_FIFO so other work cannot preempt them (when permitted).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wavry.bench.relay_load import (
    STOP_RECV,
    STOP_SEND,
    cpu_busy_ticks,
    latency_receiver,
    latency_sender,
    proc_cpu_seconds,
    proc_runtime_seconds,
    receiver,
    sender,
    set_realtime,
    udp_drops,
)
from wavry.bench.relay_targets import (
    DATAGRAM_SIZE,
    Coturn,
    Relay,
    WavryRelay,
    pin_process,
    udp_socket,
)

__all__ = ["BenchProfile", "format_relay_bench", "run_relay_bench"]


@dataclass(frozen=True)
class BenchProfile:
    sessions: tuple[int, ...] = (1, 50)
    repeats: int = 3
    warmup: float = 1.0
    seconds: float = 5.0
    latency_rate: float = 10_000.0
    latency_seconds: float = 5.0
    senders: int = 1
    receivers: int = 1
    pin: bool = True
    latency_pin: bool = False
    #: latency is measured under normal scheduling and, where permitted, with the relay, sender
    #: and receiver at SCHED_FIFO (other work on a shared machine cannot preempt them)
    latency_modes: tuple[str, ...] = ("normal", "realtime")

    @classmethod
    def quick(cls) -> BenchProfile:
        return cls(repeats=1, warmup=0.2, seconds=0.5, latency_seconds=0.6)


# -- measurements -----------------------------------------------------------------------------


@dataclass
class _Snapshot:
    t: float
    cpu: tuple[float, float]  # user, system seconds (/proc/<pid>/stat, clock ticks)
    runtime: float  # CPU seconds, all threads, ns resolution (schedstat)
    sent: int
    received: int
    relay_drops: int
    receiver_drops: int
    #: (busy, total) jiffies of the relay's CPU when pinned
    core: tuple[int, int] = (0, 0)
    metrics: dict[str, int] = field(default_factory=dict)


def _cpu_sets(pin: bool) -> tuple[set[int] | None, list[int] | None]:
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, None
    return {cpus[0]}, cpus[1:]


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    parts = max(1, min(parts, len(items)))
    return [items[i::parts] for i in range(parts)]


def _wait_stable(read: Callable[[], tuple[int, ...]], timeout: float = 5.0) -> None:
    """Wait until ``read()`` stops changing for 0.2 s (the relay and receivers drained)."""
    deadline = time.monotonic() + timeout
    last = read()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = read()
        if now == last:
            return
        last = now


_COUNTER_KEYS = ("packets_rx", "packets_forwarded", "backpressure_dropped_packets",
                 "dropped_packets", "tx_dropped_packets")  # fmt: skip


def measure_throughput(relay: Relay, sessions: int, profile: BenchProfile) -> dict[str, Any]:
    """Flat-out load over ``sessions`` sessions; see the module docstring."""
    relay_cpus, load_cpus = _cpu_sets(profile.pin)
    pin_process(relay.pid, relay_cpus)
    ctx = multiprocessing.get_context("fork")
    flows = relay.open_flows(sessions)
    recv_ports = {f.recv_sock.getsockname()[1] for f in flows}
    send_groups = _split(flows, profile.senders)
    recv_groups = _split([f.recv_sock for f in flows], profile.receivers)
    counters = ctx.Array("q", 2 + len(send_groups) + len(recv_groups), lock=False)
    send_slots = range(2, 2 + len(send_groups))
    recv_slots = range(2 + len(send_groups), len(counters))
    workers = [ctx.Process(target=receiver, args=(g, counters, s, load_cpus), daemon=True)
               for g, s in zip(recv_groups, recv_slots, strict=True)]  # fmt: skip
    senders = [ctx.Process(target=sender, args=(g, counters, s, load_cpus), daemon=True)
               for g, s in zip(send_groups, send_slots, strict=True)]  # fmt: skip

    def snap() -> _Snapshot:
        return _Snapshot(
            t=time.monotonic(),
            cpu=proc_cpu_seconds(relay.pid),
            runtime=proc_runtime_seconds(relay.pid),
            sent=sum(counters[i] for i in send_slots),
            received=sum(counters[i] for i in recv_slots),
            relay_drops=udp_drops(relay.input_ports),
            receiver_drops=udp_drops(recv_ports),
            core=cpu_busy_ticks(min(relay_cpus)) if relay_cpus else (0, 0),
            metrics=relay.metrics(),
        )

    def progress_counts() -> tuple[int, ...]:
        rx = relay.metrics().get("packets_rx", 0)
        return (sum(counters[i] for i in recv_slots), udp_drops(recv_ports), rx)

    try:
        base = snap()
        for w in workers + senders:
            w.start()
        time.sleep(profile.warmup)
        a = snap()
        time.sleep(profile.seconds)
        b = snap()
        counters[STOP_SEND] = 1
        for w in senders:
            w.join(10)
        _wait_stable(progress_counts)  # the relay and the receivers drain
        counters[STOP_RECV] = 1
        for w in workers:
            w.join(10)
        end = snap()
    finally:
        counters[STOP_SEND] = counters[STOP_RECV] = 1
        for w in workers + senders:
            if w.is_alive():
                w.kill()
        relay.close_flows(flows)
    return _throughput_row(relay.name, sessions, base, a, b, end)


def _throughput_row(
    name: str, sessions: int, base: _Snapshot, a: _Snapshot, b: _Snapshot, end: _Snapshot
) -> dict[str, Any]:
    dt = b.t - a.t
    user, system = b.cpu[0] - a.cpu[0], b.cpu[1] - a.cpu[1]
    cpu = b.runtime - a.runtime
    delivered = (b.received - a.received) + (b.receiver_drops - a.receiver_drops)
    drops = b.relay_drops - a.relay_drops
    out: dict[str, Any] = {
        "relay": name,
        "sessions": sessions,
        "window_s": round(dt, 3),
        "offered_pps": round((b.sent - a.sent) / dt),
        "forwarded_pps": round(delivered / dt),
        "relay_cpu_s": round(cpu, 4),
        "relay_user_s": round(user, 3),
        "relay_system_s": round(system, 3),
        "relay_cpu_pct": round(100 * cpu / dt, 1),
        "pps_per_core": round(delivered / cpu) if cpu > 0 else None,
        "relay_socket_drops": drops,
        # how busy the relay's CPU was with anything (other processes share it on a busy host)
        "relay_core_busy_pct": round(100 * (b.core[0] - a.core[0]) / (b.core[1] - a.core[1]), 1)
        if b.core[1] > a.core[1]
        else None,
        "receiver_socket_drops": b.receiver_drops - a.receiver_drops,
        # the relay could not keep up with what was offered: its input socket overflowed
        "saturated": drops > 0,
        # whole run, warm-up and drain included
        "totals": {
            "sent": end.sent - base.sent,
            "received": end.received - base.received,
            "receiver_socket_drops": end.receiver_drops - base.receiver_drops,
            "relay_socket_drops": end.relay_drops - base.relay_drops,
        },
    }
    if base.metrics:
        out["relay_counters"] = {k: b.metrics[k] - a.metrics[k] for k in _COUNTER_KEYS}
        out["totals"]["relay_counters"] = {
            k: end.metrics[k] - base.metrics[k] for k in _COUNTER_KEYS
        }
    return out


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def _us(values: list[float]) -> dict[str, float | None]:
    s = sorted(values)
    return {f"p{q}": None if (v := _percentile(s, q)) is None else round(v, 1) for q in (50, 99)}


def measure_latency(
    relay: Relay, profile: BenchProfile, *, realtime: bool = False
) -> dict[str, Any]:
    """One-way latency at ``latency_rate`` through the relay and directly, interleaved.

    Not pinned unless ``profile.latency_pin``: a relay that shares its only CPU with another
    busy process waits for its time slice (milliseconds), which is the machine, not the relay.
    With ``realtime`` the relay, sender and receiver run SCHED_FIFO during the measurement
    (where permitted; the row says whether it was), for the same reason.
    """
    relay_cpus, load_cpus = _cpu_sets(profile.latency_pin)
    pin_process(relay.pid, relay_cpus or set(os.sched_getaffinity(0)))
    realtime = realtime and set_realtime(relay.pid, True)
    ctx = multiprocessing.get_context("fork")
    (flow,) = relay.open_flows(1)
    direct_rx, direct_tx = udp_socket(), udp_socket()
    direct_tx.connect(direct_rx.getsockname())
    rx_parent, rx_child = ctx.Pipe(duplex=False)
    tx_parent, tx_child = ctx.Pipe(duplex=False)
    rx_args = (flow.recv_sock, flow.recv_offset, direct_rx, 0.5, rx_child, load_cpus, realtime)
    rx = ctx.Process(target=latency_receiver, daemon=True, args=rx_args)
    tx_args = (flow, direct_tx, DATAGRAM_SIZE, profile.latency_rate, profile.latency_seconds,
               tx_child, load_cpus, realtime)  # fmt: skip
    tx = ctx.Process(target=latency_sender, daemon=True, args=tx_args)
    try:
        rx.start()
        time.sleep(0.1)
        cpu0, t0 = proc_runtime_seconds(relay.pid), time.monotonic()
        tx.start()
        sent, slips = tx_parent.recv()
        cpu1, t1 = proc_runtime_seconds(relay.pid), time.monotonic()
        rseq_b, rlat_b, dseq_b, dlat_b = rx_parent.recv()
        tx.join(5)
        rx.join(5)
    finally:
        if realtime:
            set_realtime(relay.pid, False)
        for p in (tx, rx):
            if p.is_alive():
                p.kill()
        relay.close_flows([flow])
        direct_rx.close()
        direct_tx.close()
    rseq, rlat, dseq, dlat = (array("q", raw) for raw in (rseq_b, rlat_b, dseq_b, dlat_b))
    skip = min(int(profile.latency_rate * 0.2), sent // 5)  # the first 0.2 s warm the path up
    relayed = {s: ns / 1000 for s, ns in zip(rseq, rlat, strict=True) if s > skip}
    direct = {s: ns / 1000 for s, ns in zip(dseq, dlat, strict=True) if s > skip}
    pairs = [relayed[s] - direct[s] for s in relayed.keys() & direct.keys()]
    r, d = _us(list(relayed.values())), _us(list(direct.values()))
    added = {k: None if r[k] is None or d[k] is None else round(r[k] - d[k], 1) for k in r}  # type: ignore[operator]
    return {
        "relay": relay.name,
        "rate_pps": profile.latency_rate,
        "achieved_pps": round(sent / max(1e-9, t1 - t0), 1),
        "sent_per_path": sent,
        "schedule_slips": slips,
        "received_relayed": len(rseq),
        "received_direct": len(dseq),
        "relayed_us": r,
        "direct_us": d,
        "added_us": added,
        "added_paired_us": _us(pairs),
        "relay_cpu_pct": round(100 * (cpu1 - cpu0) / max(1e-9, t1 - t0), 1),
        "realtime": realtime,
    }


# -- the whole benchmark ----------------------------------------------------------------------


@contextlib.contextmanager
def _relays(workdir: Path, coturn_threads: int) -> Iterator[tuple[WavryRelay, Coturn]]:
    binary = shutil.which("turnserver")
    if binary is None:
        raise RuntimeError("coturn is not installed (apt-get install coturn)")
    ours = WavryRelay(workdir)
    try:
        turn = Coturn(workdir, binary, coturn_threads)
    except BaseException:
        ours.close()
        raise
    try:
        yield ours, turn
    finally:
        ours.close()
        turn.close()


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _throughput_summary(rows: dict[str, list[dict[str, Any]]], ratios: list[float]) -> Any:
    out: dict[str, Any] = {
        name: {
            key: _median([r[key] for r in rs if r[key] is not None])
            for key in ("pps_per_core", "forwarded_pps", "offered_pps", "relay_cpu_pct")
        }
        | {"saturated_runs": sum(r["saturated"] for r in rs), "runs": len(rs)}
        for name, rs in rows.items()
    }
    out["ratio_wavry_over_coturn"] = _median(ratios)
    out["ratios"] = [round(x, 3) for x in ratios]
    return out


def _latency_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        key: {
            q: _median([r[key][q] for r in rows if r[key][q] is not None]) for q in ("p50", "p99")
        }
        for key in ("relayed_us", "direct_us", "added_us", "added_paired_us")
    }
    out["relay_cpu_pct"] = _median([r["relay_cpu_pct"] for r in rows])
    out["achieved_pps"] = _median([r["achieved_pps"] for r in rows])
    out["sent_per_path"] = sum(r["sent_per_path"] for r in rows)
    out["received_relayed"] = sum(r["received_relayed"] for r in rows)
    out["received_direct"] = sum(r["received_direct"] for r in rows)
    out["runs"] = len(rows)
    out["realtime"] = all(r["realtime"] for r in rows)
    return out


def run_relay_bench(
    profile: BenchProfile | None = None,
    *,
    coturn_threads: int = 1,
    progress: Callable[[str], None] = lambda _msg: None,
) -> dict[str, Any]:
    """The whole benchmark: throughput per session count, then latency; repeated, alternating
    which relay goes first. Returns the JSON document ``wavry bench relay --json`` prints."""
    profile = profile or BenchProfile()
    relay_cpus, load_cpus = _cpu_sets(profile.pin)
    results: dict[str, Any] = {
        "profile": asdict(profile) | {"sessions": list(profile.sessions)},
        "datagram_bytes": DATAGRAM_SIZE,
        "coturn_relay_threads": coturn_threads,
        "cpus": {"relay": sorted(relay_cpus or []), "load": load_cpus or [],
                 "online": os.cpu_count()},
        "throughput": [],
        "latency_runs": [],
    }  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="wavry-relay-bench-") as tmp,
        _relays(Path(tmp), coturn_threads) as (ours, turn),
    ):
        results["coturn_version"] = turn.version
        progress(f"wavry relay pid {ours.pid}, turnserver pid {turn.pid} (for py-spy / perf)")
        summary: dict[str, Any] = {}
        for n in profile.sessions:
            ratios: list[float] = []
            rows: dict[str, list[dict[str, Any]]] = {"wavry": [], "coturn": []}
            for rep in range(profile.repeats):
                pair = {}
                for relay in (ours, turn) if rep % 2 == 0 else (turn, ours):
                    progress(f"{relay.name}: {n} session(s), repetition {rep + 1}")
                    row = measure_throughput(relay, n, profile) | {"repetition": rep + 1}
                    results["throughput"].append(row)
                    rows[relay.name].append(row)
                    pair[relay.name] = row["pps_per_core"]
                if pair["wavry"] and pair["coturn"]:
                    ratios.append(pair["wavry"] / pair["coturn"])
            summary[str(n)] = _throughput_summary(rows, ratios)
        results["summary"] = summary
        results["latency"] = {}
        for mode in profile.latency_modes:
            lat_rows: dict[str, list[dict[str, Any]]] = {"wavry": [], "coturn": []}
            for rep in range(profile.repeats):
                for relay in (ours, turn) if rep % 2 == 0 else (turn, ours):
                    progress(f"{relay.name}: latency at {profile.latency_rate:.0f}/s, {mode}")
                    row = measure_latency(relay, profile, realtime=mode == "realtime")
                    row |= {"repetition": rep + 1, "mode": mode}
                    results["latency_runs"].append(row)
                    lat_rows[relay.name].append(row)
            results["latency"][mode] = {n: _latency_summary(rs) for n, rs in lat_rows.items()}
        results["wavry_relay_counters"] = ours.metrics()
    return results


def format_relay_bench(r: dict[str, Any]) -> str:
    """The human table of ``wavry bench relay``."""
    lines = [
        f"Relay forwarding, {r['datagram_bytes']}-byte datagrams, relays pinned to CPU "
        f"{r['cpus']['relay'] or 'any'}, load on {r['cpus']['load'] or 'any'}; coturn "
        f"{r.get('coturn_version', '?')}, relay threads {r['coturn_relay_threads']}",
        "",
        f"{'relay':7} {'sess':>4} {'rep':>3} {'offered/s':>10} {'forwarded/s':>11} "
        f"{'relay CPU':>9} {'user/sys s':>11} {'pkts/s/core':>11} {'relay drops':>11}",
    ]
    for row in r["throughput"]:
        lines.append(
            f"{row['relay']:7} {row['sessions']:>4} {row['repetition']:>3} "
            f"{row['offered_pps']:>10,} {row['forwarded_pps']:>11,} "
            f"{row['relay_cpu_pct']:>8}% {row['relay_user_s']:>5.2f}/{row['relay_system_s']:<5.2f} "
            f"{row['pps_per_core'] or 0:>11,} {row['relay_socket_drops']:>11,}"
            + ("" if row["saturated"] else "  (not saturated)")
        )
    lines += ["", "median packets/s per relay CPU-second (ratio wavry/coturn per repetition):"]
    for n, s in r["summary"].items():
        lines.append(
            f"  {n:>3} session(s): wavry {s['wavry']['pps_per_core'] or 0:,.0f}  "
            f"coturn {s['coturn']['pps_per_core'] or 0:,.0f}  ratio "
            f"{s['ratio_wavry_over_coturn']} {s['ratios']}"
        )
    lines += [
        "",
        f"one-way latency at {r['profile']['latency_rate']:.0f} packets/s, us, median of the "
        "repetitions (added = relayed p - direct p; paired = p of relayed - direct per packet "
        "pair):",
    ]
    for mode, by_relay in r["latency"].items():
        lines.append(f"  {mode:9} {'':3} {'relayed':>8} {'direct':>8} {'added':>8} {'paired':>8}")
        for name, lat in by_relay.items():
            for q in ("p50", "p99"):
                lines.append(
                    f"  {name:9} {q:3} {lat['relayed_us'][q]:>8} {lat['direct_us'][q]:>8} "
                    f"{lat['added_us'][q]:>8} {lat['added_paired_us'][q]:>8}"
                )
            lines.append(
                f"  {name:9}     relay CPU {lat['relay_cpu_pct']}% at {lat['achieved_pps']} "
                f"packets/s; {lat['received_relayed']}/{lat['sent_per_path']} relayed"
                + ("" if lat["realtime"] or mode != "realtime" else "; SCHED_FIFO refused")
            )
    return "\n".join(lines)
