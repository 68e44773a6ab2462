"""``python -m tools.soak --profile ci|2h|8h [--json]``: memory soak with a leak-slope gate."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tools.soak.fit import ProcessVerdict, Threshold, evaluate
from tools.soak.profiles import PROFILES, Profile, build_workloads
from tools.soak.sampler import RssSampler
from tools.soak.workloads import Workload


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.soak",
        description="Run wavry's services under steady load, sample each process's RSS every "
        "second, fit the leak slope (MB/h) after a warm-up and fail above the threshold.",
    )
    p.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    p.add_argument("--duration", type=float, help="override the profile's duration (seconds)")
    p.add_argument("--warmup", type=float, help="override the profile's warm-up (seconds)")
    p.add_argument(
        "--only",
        action="append",
        metavar="WORKLOAD",
        help="only these workloads (relay, master, demo, gateway); repeatable",
    )
    p.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    p.add_argument("--out", metavar="PATH", help="write the JSON report, samples included")
    return p


def _table(verdicts: list[ProcessVerdict]) -> str:
    head = (
        f"{'process':<12} {'status':<12} {'samples':>7} {'start':>7} {'end':>7} {'peak':>7} "
        f"{'slope MB/h':>11} {'± stderr':>9} {'limit':>6}"
    )
    rows = [head]
    for v in verdicts:
        f = v.fit

        def mb(x: float | None) -> str:
            return "-" if x is None else f"{x:.1f}"

        slope = "-" if f is None else f"{f.slope_mb_per_h:+.2f}"
        err = "-" if f is None else f"{f.stderr_mb_per_h:.2f}"
        rows.append(
            f"{v.name:<12} {v.status:<12} {v.samples_total:>7} {mb(v.start_mb):>7} "
            f"{mb(v.end_mb):>7} {mb(v.peak_mb):>7} {slope:>11} {err:>9} "
            f"{v.threshold.mb_per_h:>6g}"
        )
    return "\n".join(rows)


def run_soak(
    profile: Profile,
    *,
    only: list[str] | None = None,
    log: Any = sys.stderr,
) -> dict[str, Any]:
    """Run the profile; returns the report (``report["passed"]`` is the verdict)."""
    workloads: list[Workload]
    workloads, skipped = build_workloads(profile, only)
    sampler = RssSampler(profile.interval)
    started: list[Workload] = []
    problems: list[str] = []
    t0 = time.monotonic()
    try:
        for w in workloads:
            log.write(f"soak: starting {w.name}\n")
            w.launch(profile.duration)
            started.append(w)
            for name, source in w.processes().items():
                sampler.add(name, source)
        sampler.start()
        for w in started:
            w.begin(profile.duration)
        log.write(
            f"soak: profile {profile.name}, {profile.duration:g} s, warm-up {profile.warmup:g} s, "
            f"workloads {', '.join(w.name for w in started)}\n"
        )
        deadline = time.monotonic() + profile.duration
        next_note = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= next_note:
                next_note += 60.0
                latest = {n: s[-1][1] for n, s in sampler.samples.items() if s}
                log.write(
                    f"soak: {time.monotonic() - t0:.0f} s  "
                    + "  ".join(f"{n} {mb:.1f} MB" for n, mb in sorted(latest.items()))
                    + "\n"
                )
    except KeyboardInterrupt:
        problems.append("interrupted")
        for w in started:
            w.abort()
    except (RuntimeError, TimeoutError, OSError) as exc:
        problems.append(f"start-up failed: {exc}")
    finally:
        for w in started:
            w.stop()
        sampler.stop()
        for w in workloads:
            w.cleanup()
    for w in started:
        problems += w.problems()
    verdicts = [
        evaluate(
            name,
            samples,
            warmup_s=profile.warmup,
            threshold=profile.thresholds.get(name, Threshold()),
        )
        for name, samples in sorted(sampler.samples.items())
    ]
    for w in started:
        for v in verdicts:
            if v.name in w.processes():
                v.extra = dict(w.stats)
    failed = [v.name for v in verdicts if not v.passed]
    return {
        "profile": profile.name,
        "duration_s": profile.duration,
        "warmup_s": profile.warmup,
        "interval_s": profile.interval,
        "elapsed_s": round(time.monotonic() - t0, 1),
        "passed": not failed and not problems and bool(verdicts),
        "failed": failed,
        "problems": problems,
        "skipped": skipped,
        "processes": [v.as_dict() for v in verdicts],
        "table": _table(verdicts),
        "samples": {
            name: [[round(t - s[0][0], 2), round(mb, 3)] for t, mb in s]
            for name, s in sampler.samples.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    profile = PROFILES[ns.profile].with_overrides(duration=ns.duration, warmup=ns.warmup)
    report = run_soak(profile, only=ns.only)
    if ns.out:
        Path(ns.out).write_text(json.dumps(report, indent=1))
    public = {k: v for k, v in report.items() if k not in ("samples", "table")}
    if ns.json:
        sys.stdout.write(json.dumps(public, indent=2) + "\n")
        sys.stderr.write(report["table"] + "\n")
    else:
        sys.stdout.write(report["table"] + "\n")
    for skipped in report["skipped"]:
        sys.stderr.write(f"soak: skipped {skipped}\n")
    for problem in report["problems"]:
        sys.stderr.write(f"soak: PROBLEM {problem}\n")
    for v in report["processes"]:
        if v["status"] != "pass":
            sys.stderr.write(f"soak: FAIL {v['process']}: {v['status']} {v['detail']}\n")
    sys.stderr.write(f"soak: {'pass' if report['passed'] else 'FAIL'}\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
