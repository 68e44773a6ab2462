"""``wavry bench connect``: connect-by-username across real NATs (network namespaces).

The NAT lab (``wavry.netlab``: host and client each behind its own MASQUERADE router, gateway +
master + relay + coturn on the public side) runs the real ``wavry host --gateway`` and, per
round, three real ``wavry connect alice`` processes, interleaved so that machine drift hits every
mode alike:

* ``direct``: both NATs endpoint-independent, hole punched (no relay involved);
* ``relayed``: the same topology with ``--relay`` (a relay from the start): the relay's added
  latency is this minus ``direct``, measured in the same round;
* ``fallback``: the client's NAT symmetric, so punching fails and the client falls back to the
  relay after ``--direct-timeout`` (1 s): the connect time users see behind a strict NAT;
* ``detected``: the same with two STUN servers: the client sees its NAT map per destination
  and asks for the relay after 0.25 s.

Per run: ``first_frame_ms`` (``wavry connect`` started → first decoded picture, measured inside
the client), the handshake time, and with ``--same-clock`` (one machine, one monotonic clock)
the one-way network latency per frame (host sent → client reassembled) p50/p99 and RIFT's RTT.
Needs root, iproute2, nftables, conntrack and coturn (``wavry.netlab.check_available``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "format_connect_bench",
    "format_recovery_bench",
    "run_connect_bench",
    "run_recovery_bench",
]

MODES = ("direct", "relayed", "fallback", "detected")


def _pick(doc: dict[str, Any]) -> dict[str, Any]:
    network = doc.get("latency_ms", {}).get("network", {})
    return {
        "path": doc.get("path"),
        "relayed": doc.get("relayed"),
        "first_frame_ms": doc.get("first_frame_ms"),
        "handshake_ms": doc.get("handshake_ms"),
        "frames_verified": doc.get("frames_verified"),
        "frames_presented": doc.get("frames_presented"),
        "network_p50_ms": network.get("p50"),
        "network_p99_ms": network.get("p99"),
        "srtt_ms": doc.get("stats", {}).get("srtt_ms"),
    }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def col(key: str) -> list[float]:
        return [float(r[key]) for r in runs if r.get(key) is not None]

    first = sorted(col("first_frame_ms"))
    return {
        "runs": len(runs),
        "first_frame_ms_p50": _median(first),
        "first_frame_ms_max": first[-1] if first else None,
        "handshake_ms_p50": _median(col("handshake_ms")),
        "network_p50_ms": _median(col("network_p50_ms")),
        "network_p99_ms": _median(col("network_p99_ms")),
        "srtt_ms": _median(col("srtt_ms")),
        "all_frames_verified": all(
            r.get("frames_verified") == r.get("frames_presented") and r.get("frames_verified")
            for r in runs
        ),
        "paths": sorted({str(r.get("path", "")).split(" ")[0].split("@")[0][:12] for r in runs}),
    }


def run_connect_bench(
    *,
    runs: int = 5,
    seconds: float = 2.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    from wavry.netlab import NatLab, start_stun
    from wavry.netlab.rig import ControlPlaneRig

    say = progress or (lambda _m: None)
    per_mode: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    failures: list[str] = []
    t0 = time.monotonic()
    with NatLab() as lab:
        stun = start_stun(lab)
        second = start_stun(lab, address=lab.add_service_address())
        say(f"lab up in {(lab.setup_seconds or 0) * 1000:.0f} ms; starting the control plane")
        with ControlPlaneRig(lab, stun=stun) as rig:
            host = rig.start_host()
            try:
                for n in range(runs):
                    for mode in MODES:
                        args = ["--same-clock"] + (["--relay"] if mode == "relayed" else [])
                        env = None
                        if mode == "detected":
                            env = {"WAVRY_STUN_SERVERS": f"{stun.env_value},{second.env_value}"}
                        if mode in ("fallback", "detected"):
                            lab.set_nat("client", "symmetric")
                        try:
                            res = rig.connect(args, env, seconds=seconds, timeout=seconds + 30)
                        finally:
                            if mode in ("fallback", "detected"):
                                lab.set_nat("client", "eim")
                                lab.flush_udp_mappings("client")
                        if res.returncode != 0 or res.json is None:
                            failures.append(f"{mode} run {n + 1}: {res.stderr_tail[-400:]}")
                            continue
                        row = _pick(res.json)
                        per_mode[mode].append(row)
                        say(
                            f"run {n + 1}/{runs} {mode}: first frame {row['first_frame_ms']} ms "
                            f"via {row['path']}"
                        )
            finally:
                host.stop()
    summary = {m: _summary(rows) for m, rows in per_mode.items()}
    d, r = summary["direct"], summary["relayed"]
    added = {
        key: round(r[key] - d[key], 3)
        for key in ("network_p50_ms", "network_p99_ms", "srtt_ms")
        if r.get(key) is not None and d.get(key) is not None
    }
    return {
        "runs": runs,
        "seconds_per_run": seconds,
        "elapsed_s": round(time.monotonic() - t0, 1),
        "summary": summary,
        "relay_added_ms": added,
        "per_run": per_mode,
        "failures": failures,
    }


def format_connect_bench(result: dict[str, Any]) -> str:
    lines = [
        f"wavry bench connect: {result['runs']} runs per mode, NAT lab (network namespaces)",
        "",
        f"{'mode':<10} {'first frame p50':>16} {'max':>8} {'handshake':>10} "
        f"{'net p50':>8} {'net p99':>8} {'rtt':>7}  verified",
    ]

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.1f}"

    for mode, s in result["summary"].items():
        lines.append(
            f"{mode:<10} {fmt(s['first_frame_ms_p50']):>13} ms {fmt(s['first_frame_ms_max']):>8} "
            f"{fmt(s['handshake_ms_p50']):>10} {fmt(s['network_p50_ms']):>8} "
            f"{fmt(s['network_p99_ms']):>8} {fmt(s['srtt_ms']):>7}  "
            f"{'yes' if s['all_frames_verified'] else 'NO'}"
        )
    added = result["relay_added_ms"]
    lines += [
        "",
        "relay added (relayed - direct, same run): "
        + ", ".join(f"{k.removesuffix('_ms')} {v:+.3f} ms" for k, v in added.items()),
    ]
    for failure in result["failures"]:
        lines.append(f"FAILED {failure}")
    return "\n".join(lines)


# --- recovery: how long a disruption freezes the picture ------------------------------------------

DISRUPTIONS = ("client_rebind", "host_rebind", "relay_restart", "relay_replaced")


def run_recovery_bench(
    *,
    runs: int = 3,
    seconds: float = 8.0,
    at: float = 3.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Per disruption and run: one `wavry connect` streaming ``seconds`` (8), the disruption
    ``at`` (3 s) in, and
    the longest gap between two presented pictures (``max_frame_gap_ms``: the freeze a user
    sees; 33 ms is one frame at 30 fps). Direct paths for the NAT rebindings, ``--relay`` for
    the relay ones."""
    from wavry.netlab import NatLab, start_stun
    from wavry.netlab.rig import ControlPlaneRig

    say = progress or (lambda _m: None)
    gaps: dict[str, list[float]] = {d: [] for d in DISRUPTIONS}
    baseline: list[float] = []
    failures: list[str] = []
    with NatLab() as lab:
        stun = start_stun(lab)
        with ControlPlaneRig(lab, stun=stun) as rig:
            host = rig.start_host()
            try:
                for n in range(runs):
                    res = rig.connect(seconds=seconds, timeout=seconds + 30)
                    if res.json is not None:
                        baseline.append(float(res.json.get("max_frame_gap_ms") or 0))
                    for what in DISRUPTIONS:
                        relayed = what.startswith("relay")
                        run = rig.spawn_connect(["--relay"] if relayed else [], seconds=seconds)
                        time.sleep(max(0.0, run.started + at - time.monotonic()))
                        if what == "client_rebind":
                            lab.rebind("client")
                        elif what == "host_rebind":
                            lab.rebind("host")
                        elif what == "relay_restart":
                            rig.restart_relay()
                        else:
                            rig.restart_relay(relay_id=f"replacement-{n}")
                        res = run.result(timeout=seconds + 30)
                        if what == "relay_replaced":
                            rig.restart_relay()  # the relay's own id again
                        if res.returncode != 0 or res.json is None:
                            failures.append(f"{what} run {n + 1}: {res.stderr_tail[-300:]}")
                            continue
                        gap = float(res.json.get("max_frame_gap_ms") or 0)
                        gaps[what].append(gap)
                        say(f"run {n + 1}/{runs} {what}: longest freeze {gap:.0f} ms")
            finally:
                host.stop()
    return {
        "runs": runs,
        "baseline_max_gap_ms": baseline,
        "max_frame_gap_ms": gaps,
        "median_ms": {d: _median(v) for d, v in gaps.items()},
        "failures": failures,
    }


def format_recovery_bench(result: dict[str, Any]) -> str:
    lines = [
        f"wavry bench connect --recovery: {result['runs']} runs, longest freeze per session",
        f"{'disruption':<16} {'median':>8}  runs (ms)",
        f"{'none':<16} {_median(result['baseline_max_gap_ms']) or 0:>8.0f}  "
        + ", ".join(f"{v:.0f}" for v in result["baseline_max_gap_ms"]),
    ]
    for what, values in result["max_frame_gap_ms"].items():
        med = result["median_ms"][what]
        lines.append(
            f"{what:<16} {'-' if med is None else f'{med:.0f}':>8}  "
            + ", ".join(f"{v:.0f}" for v in values)
        )
    lines += [f"FAILED {f}" for f in result["failures"]]
    return "\n".join(lines)
