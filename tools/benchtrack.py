"""Benchmark tracking against a committed baseline, normalised by a reference measured in the run.

    python -m tools.benchtrack run [--suite rift] [--baseline benchmarks/baseline.json]
                                   [--out CURRENT.json] [--tolerance 0.15]
    python -m tools.benchtrack run --write-baseline benchmarks/baseline.json
    python -m tools.benchtrack compare --baseline benchmarks/baseline.json --current CURRENT.json

``run`` measures a fixed **reference workload** (pure-Python protocol-style work plus
ChaCha20-Poly1305, the two things wavry's hot paths are made of) around each repetition of each
suite (``python -m wavry bench rift --quick --json PATH``) and normalises every
machine-dependent metric by it: rates become ``rate / reference_rate``, times
``time * reference_rate``. A machine twice as slow halves both the metric and the reference, so
the normalised value stays put. Three more corrections for a shared, oversubscribed box: the
reference is timed in CPU seconds of this process; each suite's wall-clock metrics are scaled
by the share of a CPU the suite process actually got (rusage CPU time / wall time), so waiting
for a core other jobs hold does not count as slowness; and of ``--repeats`` runs the best is
kept for rates and times (interference only ever slows a run down), the median for the rest.
Simulation results (virtual time, deterministic for a seed) are compared as they are.

Every tracked metric declares its direction (``higher`` or ``lower`` is better). The comparison
reports, per metric, ``ratio = current / baseline`` for higher-is-better and ``baseline /
current`` for lower-is-better, so ``ratio < 1`` always means worse; a ratio below
``1 - tolerance`` is a regression (exit 1). A metric of the baseline missing from the current
run is reported and fails too (the bench stopped measuring it); a new metric is only reported.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "SCHEMA",
    "SUITES",
    "Comparison",
    "Metric",
    "Suite",
    "compare",
    "main",
    "normalise",
    "reference_rate",
]

SCHEMA = 1
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOLERANCE = 0.15


@dataclass(frozen=True)
class Metric:
    """A tracked metric: which way is better, and whether it scales with machine speed.

    ``kind`` is ``rate`` (per second: divided by the reference rate), ``time`` (seconds or a
    share of a core: multiplied by it) or ``fixed`` (simulation output or a ratio already
    measured against a same-run baseline: compared as is)."""

    direction: str  # "higher" or "lower"
    kind: str = "fixed"
    tolerance: float | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("higher", "lower"):
            raise ValueError(f"direction must be 'higher' or 'lower', not {self.direction!r}")
        if self.kind not in ("rate", "time", "fixed"):
            raise ValueError(f"kind must be rate, time or fixed, not {self.kind!r}")


@dataclass(frozen=True)
class Suite:
    name: str
    command: tuple[str, ...]  # ``--json PATH`` is appended
    metrics: Mapping[str, Metric]


#: Wall-clock micro-benchmarks of ``--quick`` runs: back-to-back runs on the shared 2-core box
#: differed by up to ~30 % even after normalisation, best-of-5 and the CPU-share correction
#: (docs/benchmarks.md "Tracking"); a wider band keeps the gate from flaking while still
#: catching a path becoming half as fast.
_NOISY = 0.35

_FRAME = {
    "send_us_per_frame": Metric("lower", "time", _NOISY),
    "receive_us_per_frame": Metric("lower", "time", _NOISY),
    "receive_us_per_packet": Metric("lower", "time", _NOISY),
    "packets_per_frame": Metric("lower"),
}

RIFT_METRICS: dict[str, Metric] = {
    "seal_open_pps": Metric("higher", "rate", _NOISY),
    # a same-run ratio of two timings: noisier than either under interference
    "seal_open_vs_raw_aead": Metric("higher", tolerance=_NOISY),
    **{f"keyframe35k_{k}": m for k, m in _FRAME.items()},
    **{f"pframe18k_{k}": m for k, m in _FRAME.items()},
    "path_20mbps_1080p60_cpu_pct_of_core": Metric("lower", "time", _NOISY),
    # simulations in virtual time: deterministic for the seed
    "frames_complete_pct_loss5": Metric("higher"),
    "loss5_latency_p50_ms": Metric("lower"),
    "loss5_latency_p99_ms": Metric("lower"),
    "delta_utilisation_pct": Metric("higher"),
    "delta_queue_p95_ms": Metric("lower"),
    "delta_adapt_time_s": Metric("lower"),
    "delta_loss_after_drop_pct": Metric("lower"),
    "stack_utilisation_pct_10mbit": Metric("higher"),
    "stack_utilisation_pct_5mbit": Metric("higher"),
    "stack_frames_complete_pct": Metric("higher"),
    "stack_latency_p50_ms": Metric("lower"),
    "stack_latency_p95_ms": Metric("lower"),
}

SUITES: dict[str, Suite] = {
    "rift": Suite(
        "rift", (sys.executable, "-m", "wavry", "bench", "rift", "--quick"), RIFT_METRICS
    ),
}


# -- reference workload ---------------------------------------------------------------------------


def _reference_once() -> float:
    """CPU seconds for one fixed unit of work: header packing, CRC, dict and list churn (the
    protocol core's Python), then seal+open of 1200-byte packets (its crypto)."""
    import binascii

    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    aead = ChaCha20Poly1305(bytes(range(32)))
    packet = bytes(1200)
    hdr = struct.Struct(">2sHIQ")
    start = time.process_time()
    window: dict[int, int] = {}
    queue: list[bytes] = []
    for i in range(20_000):
        head = hdr.pack(b"RI", 1, 7, i)
        crc = binascii.crc_hqx(head, 0)
        window[i & 1023] = crc
        queue.append(head)
        if len(queue) > 64:
            del queue[:32]
    for i in range(1_500):
        nonce = i.to_bytes(12, "little")
        aead.decrypt(nonce, aead.encrypt(nonce, packet, b"h"), b"h")
    return time.process_time() - start


def reference_rate(repeats: int = 7) -> float:
    """Reference work units per second (median of ``repeats``; one warm-up run discarded)."""
    _reference_once()
    return 1.0 / statistics.median(_reference_once() for _ in range(repeats))


# -- normalising and comparing --------------------------------------------------------------------


def normalise(
    raw: Mapping[str, Any], metrics: Mapping[str, Metric], ref: float, cpu_share: float = 1.0
) -> dict[str, Any]:
    """Tracked metrics of one suite's raw output, with their normalised values.

    ``ref`` is the reference rate (units per CPU second); ``cpu_share`` the fraction of a CPU
    the suite's process got while it ran (wall-clock metrics are converted to CPU time)."""
    out: dict[str, Any] = {}
    for name, metric in metrics.items():
        value = raw.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if metric.kind == "rate":
            norm = value / cpu_share / ref
        elif metric.kind == "time":
            norm = value * cpu_share * ref
        else:
            norm = float(value)
        out[name] = {
            "value": value,
            "normalised": norm,
            "direction": metric.direction,
            "kind": metric.kind,
        }
    return out


@dataclass(frozen=True)
class Row:
    suite: str
    metric: str
    status: str  # ok, regression, improved, missing, new
    direction: str = ""
    baseline: float | None = None
    current: float | None = None
    ratio: float | None = None
    tolerance: float | None = None


@dataclass(frozen=True)
class Comparison:
    rows: list[Row]
    tolerance: float

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.status in ("regression", "missing")]

    @property
    def passed(self) -> bool:
        return not self.regressions

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "tolerance": self.tolerance,
            "regressions": [f"{r.suite}.{r.metric}" for r in self.regressions],
            "rows": [r.__dict__ for r in self.rows],
        }


def _ratio(direction: str, base: float, cur: float) -> float:
    """Performance ratio, < 1 means worse, whatever the direction."""
    if direction == "higher":
        if base == 0:
            return 1.0 if cur == 0 else float("inf")
        return cur / base
    if cur == 0:
        return 1.0 if base == 0 else float("inf")
    return base / cur


def compare(
    baseline: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    catalog: Mapping[str, Suite] | None = None,
) -> Comparison:
    """Compare two benchtrack documents (``run`` output) suite by suite, metric by metric."""
    if baseline.get("schema") != SCHEMA or current.get("schema") != SCHEMA:
        raise ValueError(f"both documents must be benchtrack schema {SCHEMA}")
    suites = catalog or SUITES
    rows: list[Row] = []
    base_suites: Mapping[str, Any] = baseline.get("suites", {})
    cur_suites: Mapping[str, Any] = current.get("suites", {})
    for suite_name in sorted(set(base_suites) | set(cur_suites)):
        base = base_suites.get(suite_name, {}).get("metrics", {})
        cur = cur_suites.get(suite_name, {}).get("metrics", {})
        declared = suites[suite_name].metrics if suite_name in suites else {}
        for name in sorted(set(base) | set(cur)):
            if name not in cur:
                rows.append(Row(suite_name, name, "missing", base[name]["direction"]))
                continue
            if name not in base:
                rows.append(Row(suite_name, name, "new", cur[name]["direction"]))
                continue
            direction = base[name]["direction"]
            b, c = float(base[name]["normalised"]), float(cur[name]["normalised"])
            ratio = _ratio(direction, b, c)
            tol = tolerance
            if name in declared and declared[name].tolerance is not None:
                tol = float(declared[name].tolerance)  # type: ignore[arg-type]
            if ratio < 1.0 - tol:
                status = "regression"
            elif ratio > 1.0 + tol:
                status = "improved"
            else:
                status = "ok"
            rows.append(Row(suite_name, name, status, direction, b, c, ratio, tol))
    return Comparison(rows, tolerance)


def format_comparison(comp: Comparison) -> str:
    head = f"{'metric':<46} {'better':<6} {'baseline':>10} {'current':>10} {'ratio':>6} {'tol':>4}"
    lines = [head + "  status"]

    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.4g}"

    for r in comp.rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.3f}"
        tol = "-" if r.tolerance is None else f"{r.tolerance:.0%}"
        status = r.status.upper() if r.status in ("regression", "missing") else r.status
        lines.append(
            f"{r.suite + '.' + r.metric:<46} {r.direction:<6} {num(r.baseline):>10} "
            f"{num(r.current):>10} {ratio:>6} {tol:>4}  {status}"
        )
    verdict = "pass" if comp.passed else f"FAIL ({len(comp.regressions)} regressed or missing)"
    lines.append(
        f"default tolerance {comp.tolerance:.0%}; ratio < 1 is worse whatever the direction; "
        f"{verdict}"
    )
    return "\n".join(lines)


# -- running suites -------------------------------------------------------------------------------


def run_suite(suite: Suite, *, timeout: float = 900.0) -> tuple[dict[str, Any], float]:
    """Run one suite's command with ``--json PATH``; its raw JSON output and the share of a CPU
    its process (and children) got: rusage CPU seconds / wall seconds, at most 1."""
    with tempfile.TemporaryDirectory(prefix="wavry-benchtrack-") as tmp:
        path = Path(tmp, f"{suite.name}.json")
        err = Path(tmp, "stderr")
        with err.open("wb") as err_file:
            start = time.perf_counter()
            proc = subprocess.Popen(
                [*suite.command, "--json", str(path)],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err_file,
            )
            deadline = time.monotonic() + timeout
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    raise RuntimeError(f"suite {suite.name} timed out after {timeout} s")
                time.sleep(0.05)
            wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code  # reaped by wait4
        if code != 0 or not path.exists():
            tail = err.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"suite {suite.name} failed ({code}):\n{tail}")
        doc: dict[str, Any] = json.loads(path.read_text())
        share = min(1.0, (usage.ru_utime + usage.ru_stime) / wall) if wall > 0 else 1.0
        return doc, share


def _best_metrics(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per metric, the best repetition of a rate or time (highest when higher is better, else
    lowest), the median one of anything else.

    Interference on a shared machine only ever makes a run slower, so the best of several is
    the estimate closest to what the code costs (``timeit`` reports the minimum for the same
    reason). A ``fixed`` metric is deterministic (equal in every run) or a same-run ratio of two
    timings, where interference can push either way."""
    out: dict[str, Any] = {}
    for name in sorted({m for r in runs for m in r}):
        entries = sorted((r[name] for r in runs if name in r), key=lambda e: e["normalised"])
        values = [e["normalised"] for e in entries]
        higher = entries[0]["direction"] == "higher"
        if entries[0]["kind"] == "fixed":  # a ratio of two timings: best-of would pick outliers
            best = entries[(len(entries) - 1) // 2]
        else:
            best = entries[-1] if higher else entries[0]
        worst = values[0] if higher else values[-1]
        out[name] = dict(
            best,
            runs=len(entries),
            worst_vs_best=_ratio(best["direction"], best["normalised"], worst),
        )
    return out


def run(
    suite_names: list[str],
    *,
    repeats: int = 5,
    runner: Callable[[Suite], tuple[dict[str, Any], float]] = run_suite,
    reference: Callable[[], float] = reference_rate,
    log: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Reference, suite, reference, suite, ... reference: each repetition is normalised by the
    reference measured just before and just after it; the best repetition is kept."""
    refs = [reference()]
    suites: dict[str, Any] = {}
    for name in suite_names:
        suite = SUITES[name]
        normalised_runs: list[dict[str, Any]] = []
        shares: list[float] = []
        untracked: set[str] = set()
        t0 = time.monotonic()
        for i in range(repeats):
            log(f"suite {name} ({i + 1}/{repeats}): python {' '.join(suite.command[1:])}")
            raw, share = runner(suite)
            refs.append(reference())
            ref = statistics.geometric_mean(refs[-2:])
            normalised_runs.append(normalise(raw, suite.metrics, ref, share))
            shares.append(share)
            untracked |= {
                k for k, v in raw.items() if k not in suite.metrics and isinstance(v, int | float)
            }
        suites[name] = {
            "command": "python " + " ".join(suite.command[1:]),
            "repeats": repeats,
            "seconds": round(time.monotonic() - t0, 1),
            "cpu_share": [round(x, 3) for x in shares],
            "metrics": _best_metrics(normalised_runs),
            "untracked": sorted(untracked),
        }
    ref = statistics.median(refs)
    return {
        "schema": SCHEMA,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()} x{os.cpu_count()}, Python {platform.python_version()}",
        "reference": {
            "units_per_s": ref,
            "measurements": [round(x, 3) for x in refs],
            "spread": max(refs) / min(refs) - 1.0,
        },
        "suites": suites,
    }


def merge_rounds(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several ``run`` documents -> one holding each metric's median round (a baseline should
    not be one lucky run)."""
    if len(docs) == 1:
        return docs[0]
    out = dict(docs[-1], rounds=len(docs))
    refs = [d["reference"]["units_per_s"] for d in docs]
    out["reference"] = dict(docs[-1]["reference"], units_per_s=statistics.median(refs), rounds=refs)
    suites: dict[str, Any] = {}
    for name in docs[-1]["suites"]:
        merged = dict(docs[-1]["suites"][name])
        per_round = [d["suites"][name]["metrics"] for d in docs if name in d["suites"]]
        metrics: dict[str, Any] = {}
        for metric in sorted({m for r in per_round for m in r}):
            entries = sorted(
                (r[metric] for r in per_round if metric in r), key=lambda e: e["normalised"]
            )
            metrics[metric] = dict(entries[(len(entries) - 1) // 2], rounds=len(entries))
        merged["metrics"] = metrics
        suites[name] = merged
    out["suites"] = suites
    return out


# -- command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.benchtrack", description=__doc__.split("\n\n")[0]
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="measure (reference + suites) and compare with a baseline")
    r.add_argument("--suite", action="append", choices=sorted(SUITES), help="default: all")
    r.add_argument(
        "--baseline", type=Path, help="compare with this baseline (exit 1 on regression)"
    )
    r.add_argument("--out", type=Path, help="write this run's document here")
    r.add_argument(
        "--write-baseline", type=Path, metavar="PATH", help="write the run as a baseline"
    )
    r.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    r.add_argument("--repeats", type=int, default=5, help="runs per suite; the best is kept")
    r.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="with --write-baseline: independent runs; the baseline keeps each metric's median",
    )
    c = sub.add_parser("compare", help="compare two documents written by `run`")
    c.add_argument("--baseline", type=Path, required=True)
    c.add_argument("--current", type=Path, required=True)
    c.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    c.add_argument("--json", action="store_true", help="print the comparison as JSON")
    return p


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    if not 0 < ns.tolerance < 1:
        sys.stderr.write("benchtrack: --tolerance must be within (0, 1)\n")
        return 2
    if ns.cmd == "compare":
        try:
            comp = compare(_load(ns.baseline), _load(ns.current), tolerance=ns.tolerance)
        except (OSError, ValueError, KeyError) as exc:
            sys.stderr.write(f"benchtrack: {exc}\n")
            return 2
        sys.stdout.write(
            (json.dumps(comp.as_dict(), indent=2) if ns.json else format_comparison(comp)) + "\n"
        )
        return 0 if comp.passed else 1

    def log(msg: str) -> None:
        sys.stderr.write(f"benchtrack: {msg}\n")

    rounds = max(1, ns.rounds) if ns.write_baseline else 1
    try:
        docs = [
            run(ns.suite or sorted(SUITES), repeats=max(1, ns.repeats), log=log)
            for _ in range(rounds)
        ]
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        sys.stderr.write(f"benchtrack: {exc}\n")
        return 2
    doc = merge_rounds(docs)
    spread = doc["reference"]["spread"]
    log(f"reference {doc['reference']['units_per_s']:.2f} units/s (spread {spread:.1%})")
    if ns.out:
        ns.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    if ns.write_baseline:
        doc["command"] = f"python -m tools.benchtrack run --write-baseline {ns.write_baseline}"
        ns.write_baseline.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        log(f"baseline written to {ns.write_baseline}")
    if ns.baseline is None:
        return 0
    comp = compare(_load(ns.baseline), doc, tolerance=ns.tolerance)
    sys.stdout.write(format_comparison(comp) + "\n")
    return 0 if comp.passed else 1


if __name__ == "__main__":
    sys.exit(main())
