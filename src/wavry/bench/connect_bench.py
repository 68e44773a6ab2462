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

__all__ = ["format_connect_bench", "run_connect_bench"]

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
