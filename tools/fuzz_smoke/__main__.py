"""``python -m tools.fuzz_smoke``: run the fuzz smoke; exit 1 on any failure."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from tools.fuzz_smoke import REGISTRY, TargetResult, run_target, targets


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.fuzz_smoke",
        description="Fuzz every parser of untrusted input for a short time budget each. Fails "
        "on any exception other than the parser's declared typed errors, and on hangs.",
    )
    p.add_argument("--seconds-per-target", type=float, default=2.0, metavar="S")
    p.add_argument(
        "--budget",
        type=float,
        metavar="S",
        help="total fuzzing seconds, shared evenly by the targets (overrides the per-target S)",
    )
    p.add_argument("--seed", type=int, default=1, help="inputs are a pure function of the seed")
    p.add_argument(
        "--target",
        action="append",
        metavar="NAME",
        help="only this target (or family prefix like 'rift'); repeatable",
    )
    p.add_argument(
        "--iterations",
        type=int,
        help="exactly this many inputs per target instead of a time budget (replays a failure)",
    )
    p.add_argument("--input-hex", metavar="HEX", help="feed this one input to a fresh harness")
    p.add_argument("--input-timeout", type=float, default=2.0, help="per input, seconds")
    p.add_argument("--list", action="store_true", help="list the targets and exit")
    p.add_argument(
        "--json", metavar="PATH", help="also write the full report as JSON ('-': stdout)"
    )
    p.add_argument(
        "--strict",
        action="store_true",
        default=os.environ.get("CI", "").lower() == "true",
        help="an unavailable target is a failure (default under CI=true)",
    )
    return p


def _table(results: list[TargetResult]) -> str:
    rows = [
        f"{'target':<22} {'status':<11} {'inputs':>8} {'exec/s':>8} {'accepted':>9}  top reject"
    ]
    for r in results:
        rate = f"{r.iterations / r.seconds:.0f}" if r.seconds else "-"
        acc = f"{100 * r.accepted / r.iterations:.1f}%" if r.iterations else "-"
        top = max(r.rejections.items(), key=lambda kv: kv[1])[0] if r.rejections else ""
        if r.status == "unavailable":
            top = r.detail[:60]
        rows.append(f"{r.name:<22} {r.status:<11} {r.iterations:>8} {rate:>8} {acc:>9}  {top}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    out = sys.stdout
    if ns.list:
        for t in REGISTRY.values():
            out.write(f"{t.name:<22} {t.description}\n{'':<22} modules: {', '.join(t.modules)}\n")
        return 0
    try:
        chosen = targets(ns.target)
    except KeyError as exc:
        sys.stderr.write(f"fuzz_smoke: {exc.args[0]}\n")
        return 2
    only = bytes.fromhex(ns.input_hex) if ns.input_hex else None
    if ns.budget is not None:
        ns.seconds_per_target = max(0.2, ns.budget / max(1, len(chosen)))
    started = time.perf_counter()
    results = []
    for target in chosen:
        result = run_target(
            target,
            seed=ns.seed,
            seconds=ns.seconds_per_target,
            iterations=ns.iterations,
            input_timeout=ns.input_timeout,
            only_input=only,
        )
        results.append(result)
        if result.failure is not None:
            sys.stderr.write(result.failure.describe() + "\n")
    elapsed = time.perf_counter() - started
    failed = [r.name for r in results if r.status == "fail"]
    unavailable = [r.name for r in results if r.status == "unavailable"]
    summary = {
        "seed": ns.seed,
        "seconds_per_target": ns.seconds_per_target,
        "elapsed_s": round(elapsed, 2),
        "failed": failed,
        "unavailable": unavailable,
        "targets": [r.as_dict() for r in results],
    }
    if ns.json == "-":
        out.write(json.dumps(summary, indent=2) + "\n")
    else:
        out.write(_table(results) + "\n")
        if ns.json:
            with open(ns.json, "w", encoding="utf-8") as fh:
                json.dump(summary, fh, indent=2)
    total = sum(r.iterations for r in results)
    verdict = "FAIL" if failed or (ns.strict and unavailable) else "pass"
    sys.stderr.write(
        f"fuzz smoke: {verdict} — {len(results)} targets, {total} inputs, {elapsed:.1f} s, "
        f"seed {ns.seed}"
        + (f"; failed: {', '.join(failed)}" if failed else "")
        + (f"; unavailable: {', '.join(unavailable)}" if unavailable else "")
        + "\n"
    )
    return 1 if verdict == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
