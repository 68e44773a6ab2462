"""``python -m tools.release <command>`` (run from the repository root; see docs/release.md).

Exit status: 0 success, 1 a gate/check failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _say(text: str) -> None:
    sys.stderr.write(f"release: {text}\n")
    sys.stderr.flush()


def _repo(ns: argparse.Namespace) -> Path:
    return Path(ns.repo).resolve()


def _cmd_build(ns: argparse.Namespace) -> int:
    from tools.release.build import BuildError, build_release

    try:
        result = build_release(
            _repo(ns),
            Path(ns.out),
            ref=ns.ref,
            images=ns.images,
            version=ns.version,
            source_date_epoch=ns.source_date_epoch,
            log=_say,
        )
    except BuildError as exc:
        _say(f"build FAILED: {exc}")
        return 1
    for name in result.files:
        sys.stdout.write(f"{Path(ns.out) / name}\n")
    if not result.images_built:
        _say("NOTE: container images were not built (no Docker daemon); build contexts shipped")
    return 0


def _report_verify(directory: Path, problems: list[str]) -> int:
    if problems:
        _say(f"verify FAILED for {directory} ({len(problems)} problem(s)):")
        for p in problems:
            sys.stderr.write(f"  - {p}\n")
        return 1
    _say(f"verify OK: {directory}")
    return 0


def _cmd_verify(ns: argparse.Namespace) -> int:
    from tools.release.manifest import verify

    directory = Path(ns.dir)
    return _report_verify(directory, verify(directory, expect_version=ns.version))


def _cmd_dry_run(ns: argparse.Namespace) -> int:
    from tools.release.build import BuildError, build_release
    from tools.release.manifest import verify

    start = time.monotonic()
    out = Path(ns.out)
    try:
        result = build_release(_repo(ns), out, ref=ns.ref, images=ns.images, log=_say)
    except BuildError as exc:
        _say(f"dry-run FAILED at build: {exc}")
        return 1
    status = _report_verify(out, verify(out, expect_version=result.version.release))
    images = "built" if result.images_built else "NOT built (no Docker daemon; contexts shipped)"
    _say(
        f"dry-run {'passed' if status == 0 else 'FAILED'}: {result.version} from "
        f"{result.commit[:12]}, {len(result.files)} files in {out}, container images {images}, "
        f"{time.monotonic() - start:.1f} s"
    )
    return status


def _cmd_policy(ns: argparse.Namespace) -> int:
    from tools.release.policy import check_policy

    problems = check_policy(_repo(ns), release=ns.release, tag=ns.tag)
    for p in problems:
        _say(f"policy: {p}")
    if not problems:
        _say("policy OK")
    return 1 if problems else 0


def _cmd_lint(ns: argparse.Namespace) -> int:
    from tools.release.build import DOCKERFILES
    from tools.release.dockerlint import lint_file

    repo = _repo(ns)
    files = [Path(f) for f in ns.files] or [repo / rel for rel in DOCKERFILES.values()]
    bad = 0
    for path in files:
        findings = lint_file(path)
        for f in findings:
            sys.stderr.write(f.format(str(path)) + "\n")
        bad += bool(findings)
    _say(f"lint: {len(files) - bad}/{len(files)} Dockerfile(s) clean")
    return 1 if bad else 0


def _cmd_record_tests(ns: argparse.Namespace) -> int:
    from tools.release.train import DEFAULT_TESTS_CMD

    repo = _repo(ns)
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    command = ns.cmd or DEFAULT_TESTS_CMD
    rc = subprocess.run(command, shell=True, cwd=repo, check=False).returncode  # noqa: S602
    record = {"commit": head, "command": command, "passed": rc == 0, "exit_status": rc}
    Path(ns.out).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    _say(f"tests {'passed' if rc == 0 else 'FAILED'}; recorded in {ns.out}")
    return 0 if rc == 0 else 1


def _cmd_train(ns: argparse.Namespace) -> int:
    from tools.release.train import run_train

    if ns.tests_cmd and ns.tests_result:
        _say("give --tests-cmd or --tests-result, not both")
        return 2
    result = run_train(
        _repo(ns),
        ns.version,
        channel=ns.channel,
        tests_cmd=ns.tests_cmd,
        tests_result=Path(ns.tests_result) if ns.tests_result else None,
        out=Path(ns.out) if ns.out else None,
        date=ns.date,
        images=ns.images,
        log=_say,
    )
    _say(f"release train for {ns.version}:")
    for gate in result.gates:
        sys.stderr.write(gate.line() + "\n")
    if not result.ok:
        _say(f"NO-GO: release {ns.version} refused; failed gate(s): {', '.join(result.failed)}")
        return 1
    _say(
        f"GO: release commit {result.commit} tagged {result.tag} (local only). Publish with: "
        f"git push origin HEAD {result.tag}"
    )
    return 0


def _cmd_rollback_drill(ns: argparse.Namespace) -> int:
    from tools.release.rollback import DrillError, run_drill

    try:
        report = run_drill(
            _repo(ns),
            old_ref=ns.old_ref,
            new_ref=ns.new_ref,
            workdir=Path(ns.workdir) if ns.workdir else None,
            allow_same_schema=ns.allow_same_schema,
            log=_say,
        )
    except DrillError as exc:
        _say(f"rollback drill FAILED: {exc}")
        return 1
    sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.release", description=__doc__)
    p.add_argument("--repo", default=".", help="repository root (default: the current directory)")
    sub = p.add_subparsers(dest="command", required=True)

    def images_flag(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--images",
            choices=("auto", "never", "require"),
            default="auto",
            help="container images: build when a Docker daemon answers (auto), never, or fail "
            "without one (require)",
        )

    b = sub.add_parser("build", help="build every artifact of a commit into an empty directory")
    b.add_argument("--out", required=True)
    b.add_argument("--ref", default="HEAD", help="commit to build (default HEAD)")
    b.add_argument("--version", help="build as this release version (e.g. for a drill)")
    b.add_argument(
        "--source-date-epoch", type=int, help="default: $SOURCE_DATE_EPOCH, else the commit time"
    )
    images_flag(b)
    b.set_defaults(func=_cmd_build)

    v = sub.add_parser("verify", help="check a release directory against its SHA256SUMS/manifest")
    v.add_argument("dir")
    v.add_argument("--version", help="also require this release version")
    v.set_defaults(func=_cmd_verify)

    d = sub.add_parser("dry-run", help="build everything into DIR, then verify it")
    d.add_argument("--out", required=True)
    d.add_argument("--ref", default="HEAD")
    images_flag(d)
    d.set_defaults(func=_cmd_dry_run)

    pol = sub.add_parser("policy", help="check the version policy of the working tree")
    pol.add_argument("--release", action="store_true", help="require a dated changelog section")
    pol.add_argument("--tag", help="the tag being built must match the version")
    pol.set_defaults(func=_cmd_policy)

    lint = sub.add_parser("lint", help="lint Dockerfiles (default: docker/*.Dockerfile)")
    lint.add_argument("files", nargs="*")
    lint.set_defaults(func=_cmd_lint)

    rec = sub.add_parser("record-tests", help="run the tests and record the result for `train`")
    rec.add_argument("--out", required=True)
    rec.add_argument("--cmd", help="test command (default ./scripts/test.sh)")
    rec.set_defaults(func=_cmd_record_tests)

    t = sub.add_parser("train", help="go/no-go gates, then bump, changelog, commit and tag")
    t.add_argument("--version", required=True, help="X.Y.Z, X.Y.Z-canary.N or X.Y.Z-unstableN")
    t.add_argument("--channel", choices=("stable", "canary", "unstable"))
    t.add_argument("--tests-cmd", help="test command (default ./scripts/test.sh)")
    t.add_argument("--tests-result", help="a record-tests JSON for HEAD instead of running tests")
    t.add_argument("--out", help="artifact directory (default dist/<version>)")
    t.add_argument("--date", help="changelog date YYYY-MM-DD (default today, UTC)")
    images_flag(t)
    t.set_defaults(func=_cmd_train)

    r = sub.add_parser("rollback-drill", help="install N-1, upgrade to N, roll back; check data")
    r.add_argument("--old-ref", help="commit of release N-1 (default: before the newest migration)")
    r.add_argument("--new-ref", default="HEAD", help="commit of release N (default HEAD)")
    r.add_argument("--workdir", help="keep venvs, database and logs here (default: temporary)")
    r.add_argument(
        "--allow-same-schema",
        action="store_true",
        help="accept N-1 and N with the same migration head (package-only rollback)",
    )
    r.set_defaults(func=_cmd_rollback_drill)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    ns = parser.parse_args(argv)
    rc: int = ns.func(ns)
    return rc
