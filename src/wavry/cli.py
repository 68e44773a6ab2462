"""The ``wavry`` command. Thin: parse arguments, call a service or tool, report errors.

Every subcommand's errors end with what to do next; exit status 0 = success, 1 = the operation
failed, 2 = bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from wavry import __version__, paths

__all__ = ["main"]

_EPILOG = """\
State (identity, known hosts, allow-list) lives in a per-user data directory:
WAVRY_DATA_DIR if set, else the XDG data dir (~/.local/share/wavry).

Examples:
  wavry demo                   stream on loopback and print per-stage latency
  wavry host                   share this screen (loopback; see wavry host --help)
  wavry connect HOST[:PORT]    connect to a host (no HOST: list hosts on the LAN)
  wavry keygen                 create your identity and print your Wavry ID
  wavry show-id                print the Wavry ID of your identity
  wavry login --gateway URL --email E   sign in and store the session token
  wavry logout                 revoke and forget the stored session token
  wavry bench rift             measure the RIFT protocol core on this machine
  wavry bench relay            wavry relay vs coturn, same run (needs coturn)
  wavry bench signaling        gateway offer->answer round trips with 1,000 WebSockets
  wavry doctor                 check this machine for what Wavry needs
"""


def _json_option(p: argparse.ArgumentParser, text: str = "print one JSON object") -> None:
    """``--json`` prints the JSON on stdout; ``--json PATH`` writes it to PATH (see ``main``)."""
    p.add_argument(
        "--json", nargs="?", const=True, default=False, metavar="PATH", help=f"{text} (to PATH)"
    )


def _cmd_version(_: argparse.Namespace) -> int:
    print(f"wavry {__version__} (RIFT protocol version 1)")
    return 0


def _cmd_keygen(ns: argparse.Namespace) -> int:
    from wavry.identity_store import IdentityFileError, create_identity_file

    path = Path(ns.out) if ns.out else paths.identity_path()
    try:
        identity = create_identity_file(path, overwrite=ns.force)
    except IdentityFileError as exc:
        print(f"wavry keygen: {exc}", file=sys.stderr)
        return 1
    print(f"Created identity {path} (mode 0600). Your Wavry ID:", file=sys.stderr)
    print(identity.wavry_id)
    return 0


def _cmd_show_id(ns: argparse.Namespace) -> int:
    from wavry.identity_store import IdentityFileError, load_identity

    path = Path(ns.path) if ns.path else paths.identity_path()
    try:
        identity = load_identity(path)
    except IdentityFileError as exc:
        print(f"wavry show-id: {exc}", file=sys.stderr)
        return 1
    print(identity.wavry_id)
    return 0


def _cmd_bench(ns: argparse.Namespace) -> int:
    from wavry.bench.rift_bench import format_report, run_rift_bench

    def progress(msg: str) -> None:
        if not ns.json:
            print(f"  … {msg}", file=sys.stderr, flush=True)

    results = run_rift_bench(quick=ns.quick, seed=ns.seed, progress=progress)
    if ns.json:
        print(json.dumps(results, sort_keys=True))
    else:
        print(format_report(results))
    return 0


def _cmd_demo(ns: argparse.Namespace) -> int:
    import logging

    from wavry.demo import DemoOptions, format_summary, run_demo

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        width, height = (int(x) for x in ns.resolution.lower().split("x"))
    except ValueError:
        print("wavry demo: --resolution must look like 1280x720", file=sys.stderr)
        return 2
    if ns.impair:
        from wavry.net.impairment import ImpairmentConfig

        try:
            ImpairmentConfig.parse(ns.impair)
        except ValueError as exc:
            print(f"wavry demo: --impair: {exc}", file=sys.stderr)
            return 2
    opts = DemoOptions(
        seconds=ns.seconds,
        width=width,
        height=height,
        fps=ns.fps,
        codec=ns.codec,
        pattern=ns.pattern,
        bitrate_kbps=ns.bitrate,
        window=ns.window,
        impair=ns.impair,
    )

    def progress(msg: str) -> None:
        print(f"  {msg}", file=sys.stderr, flush=True)

    try:
        summary = run_demo(opts, progress=progress)
    except RuntimeError as exc:
        print(f"wavry demo: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, sort_keys=True) if ns.json else format_summary(summary))
    return 0


def _cmd_bench_stream(ns: argparse.Namespace) -> int:
    from wavry.bench.stream_bench import format_stream_bench, run_stream_bench

    width, height = (int(x) for x in ns.resolution.lower().split("x"))

    def progress(msg: str) -> None:
        print(f"  … {msg}", file=sys.stderr, flush=True)

    result = run_stream_bench(
        seconds=ns.seconds, width=width, height=height, fps=ns.fps, progress=progress
    )
    print(json.dumps(result, sort_keys=True) if ns.json else format_stream_bench(result))
    return 0


def _cmd_bench_signaling(ns: argparse.Namespace) -> int:
    from wavry.bench.signaling_bench import format_signaling_bench, run_signaling_bench

    def progress(msg: str) -> None:
        print(f"  … {msg}", file=sys.stderr)

    result = run_signaling_bench(
        pairs=ns.pairs,
        rounds=ns.rounds,
        seconds=ns.seconds,
        window=ns.window,
        rate=ns.rate,
        database_url=ns.database_url,
        policy_cache_secs=ns.policy_cache_secs,
        progress=progress,
    )
    print(json.dumps(result, sort_keys=True) if ns.json else format_signaling_bench(result))
    return 0


def _cmd_bench_relay(ns: argparse.Namespace) -> int:
    from wavry.bench.relay_bench import BenchProfile, format_relay_bench, run_relay_bench

    profile = BenchProfile.quick() if ns.quick else BenchProfile()
    if ns.repeats is not None:
        profile = dataclasses.replace(profile, repeats=ns.repeats)
    if ns.seconds is not None:
        profile = dataclasses.replace(profile, seconds=ns.seconds)
    if ns.no_pin:
        profile = dataclasses.replace(profile, pin=False)

    def progress(msg: str) -> None:
        print(f"  … {msg}", file=sys.stderr, flush=True)

    try:
        result = run_relay_bench(profile, coturn_threads=ns.coturn_threads, progress=progress)
    except RuntimeError as exc:
        print(f"wavry bench relay: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True) if ns.json else format_relay_bench(result))
    return 0


def _cmd_bench_connect(ns: argparse.Namespace) -> int:
    from wavry.bench.connect_bench import format_connect_bench, run_connect_bench
    from wavry.netlab import NetlabError

    def progress(msg: str) -> None:
        print(f"  … {msg}", file=sys.stderr, flush=True)

    try:
        if ns.recovery:
            from wavry.bench.connect_bench import format_recovery_bench, run_recovery_bench

            result = run_recovery_bench(runs=ns.runs, progress=progress)
            text = format_recovery_bench(result)
        else:
            result = run_connect_bench(runs=ns.runs, seconds=ns.seconds, progress=progress)
            text = format_connect_bench(result)
    except NetlabError as exc:
        print(f"wavry bench connect: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True) if ns.json else text)
    return 1 if result["failures"] else 0


def _cmd_doctor(_: argparse.Namespace) -> int:
    from wavry.doctor import run_doctor

    return run_doctor()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wavry",
        description="Wavry: latency-first remote desktop and game streaming over RIFT, "
        "an encrypted UDP protocol with FEC, NACK and delay-based congestion control.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wavry {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_cmd_version)

    p = sub.add_parser(
        "keygen",
        help="create an Ed25519 identity and print its Wavry ID",
        description="Create an Ed25519 identity (file mode 0600) and print its Wavry ID "
        "(43-character base64url public key). Hosts allow-list clients by this ID and clients "
        "pin hosts by it.",
    )
    p.add_argument(
        "--out", metavar="PATH", help="where to write it (default: DATA_DIR/identity.key)"
    )
    p.add_argument("--force", action="store_true", help="replace an existing identity")
    p.set_defaults(func=_cmd_keygen)

    p = sub.add_parser("show-id", help="print the Wavry ID of an identity file")
    p.add_argument("path", nargs="?", help="identity file (default: DATA_DIR/identity.key)")
    p.set_defaults(func=_cmd_show_id)

    p = sub.add_parser(
        "bench",
        help="run benchmarks",
        description="Benchmarks. Numbers are machine-dependent: compare ratios within one run.",
    )
    bench_sub = p.add_subparsers(dest="target", metavar="TARGET", required=True)
    b = bench_sub.add_parser(
        "rift",
        help="RIFT core: seal/open, packetize+FEC, receive path, loss recovery, DELTA",
        description="Measure the RIFT core: AEAD seal+open packets/s (1200 B), the cost to "
        "packetize+encrypt+FEC a 35 KB keyframe and an 18 KB P-frame, the receive path per "
        "packet, frame delivery under 5%% loss with jitter, and DELTA on a simulated 10 Mbps link.",
    )
    _json_option(b, "print one JSON object instead of a table")
    b.add_argument(
        "--quick", action="store_true", help="shorter runs (less precise), for smoke tests"
    )
    b.add_argument("--seed", type=int, default=1, help="seed of the simulations (default 1)")
    b.set_defaults(func=_cmd_bench)
    b = bench_sub.add_parser(
        "stream",
        help="wavry demo vs plain FFmpeg pipelines, same content, same run",
        description="Run `wavry demo` and two plain FFmpeg pipelines (libx264 -> MPEG-TS/UDP "
        "on loopback -> low-delay decode; FFmpeg defaults and tuned) on the same barcoded "
        "content, and report capture->decoded latency and the ratios.",
    )
    b.add_argument("--seconds", type=float, default=10.0)
    b.add_argument("--resolution", default="1280x720")
    b.add_argument("--fps", type=int, default=60)
    _json_option(b)
    b.set_defaults(func=_cmd_bench_stream)
    b = bench_sub.add_parser(
        "relay",
        help="wavry relay vs coturn: packets/s per core and added latency, same run",
        description="Forward 1200-byte datagrams through `wavry relay` and coturn (TURN "
        "ChannelData), 1 and 50 sessions, each relay pinned to one CPU; report packets/s per "
        "relay CPU-second and the ratio, then one-way added latency at 10k packets/s against "
        "a direct loopback path. Needs turnserver (apt-get install coturn).",
    )
    b.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    b.add_argument("--quick", action="store_true", help="a few seconds, for smoke tests")
    b.add_argument("--repeats", type=int, help="repetitions per session count (default 3)")
    b.add_argument("--seconds", type=float, help="measured window per run (default 5)")
    b.add_argument("--coturn-threads", type=int, default=1, help="coturn relay threads (1)")
    b.add_argument("--no-pin", action="store_true", help="do not pin the relays to one CPU")
    b.set_defaults(func=_cmd_bench_relay)
    b = bench_sub.add_parser(
        "signaling",
        help="gateway signaling: offer->answer round trip p50/p99 and messages/s per core",
        description="Bind 2 x --pairs WebSockets (hosts and clients) to a gateway in its own "
        "process, then measure OFFER_RIFT -> ANSWER_RIFT round trips (idle and all pairs at "
        "once) and messages routed per second and per gateway CPU-second.",
    )
    b.add_argument("--pairs", type=int, default=500, help="host/client pairs (default 500)")
    b.add_argument("--rounds", type=int, default=20, help="loaded round trips per pair (20)")
    b.add_argument("--seconds", type=float, default=10.0, help="throughput window (10)")
    b.add_argument("--window", type=int, default=4, help="offers outstanding per pair (4)")
    b.add_argument("--rate", type=float, default=1000.0, help="paced offers per second (1000)")
    b.add_argument("--database-url", help="database (default: a temporary SQLite file)")
    b.add_argument(
        "--policy-cache-secs",
        type=float,
        default=300.0,
        help="policy cache of the gateway under test (300: warm; 0: a DB lookup per offer)",
    )
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=_cmd_bench_signaling)
    b = bench_sub.add_parser(
        "connect",
        help="connect by username across real NATs: time to first frame, relay added latency",
        description="Build the NAT lab (network namespaces: host and client behind their own "
        "NAT routers; gateway, master, relay and coturn on the public side; needs root, "
        "iproute2, nftables, conntrack, coturn) and run `wavry connect alice` per round: "
        "direct (hole punched), relayed (--relay) and fallback (client NAT symmetric). "
        "Reports time to first decoded frame and one-way network latency; the relay's added "
        "latency is relayed minus direct in the same run.",
    )
    b.add_argument("--runs", type=int, default=5, help="rounds of the modes (default 5)")
    b.add_argument(
        "--recovery",
        action="store_true",
        help="instead: the longest picture freeze when a NAT rebinds or the relay restarts or "
        "is replaced mid-stream",
    )
    b.add_argument("--seconds", type=float, default=2.0, help="streaming per connect (2)")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=_cmd_bench_connect)
    from wavry.gateway.cli import add_gateway_bench_parser

    add_gateway_bench_parser(bench_sub)

    p = sub.add_parser("doctor", help="check this machine for what Wavry needs")
    p.set_defaults(func=_cmd_doctor)

    from wavry.cli_stream import add_connect_parser, add_host_parser

    add_host_parser(sub)
    add_connect_parser(sub)

    from wavry.cli_account import add_account_parsers

    add_account_parsers(sub)

    from wavry.gateway.cli import add_control_plane_parser, add_gateway_parser
    from wavry.master.cli import add_master_parser
    from wavry.relay.cli import add_relay_parser

    add_master_parser(sub)
    add_relay_parser(sub)
    add_gateway_parser(sub)
    add_control_plane_parser(sub)

    from wavry.storage.cli import add_db_parser

    add_db_parser(sub)

    p = sub.add_parser(
        "demo",
        help="host + client on loopback, then per-stage latency (no set-up, no display needed)",
        description="Start a host on the synthetic test source and a client on loopback (real "
        "UDP, real encryption, real encode/decode), stream for --seconds, then print per-stage "
        "latency (capture, encode, network, decode, present, total) as p50/p95/p99, fps, "
        "bitrate, loss, FEC recoveries and keyframe requests.",
    )
    p.add_argument("--seconds", type=float, default=10.0, help="how long to stream (default 10)")
    p.add_argument("--resolution", default="1280x720", help="stream size (default 1280x720)")
    p.add_argument("--fps", type=int, default=60)
    p.add_argument("--codec", default="h264", choices=("h264", "hevc", "av1"))
    p.add_argument("--pattern", default="desktop", choices=("desktop", "game"))
    p.add_argument("--bitrate", type=int, default=10_000, help="initial kbit/s")
    p.add_argument("--window", action="store_true", help="show the client window (needs a display)")
    p.add_argument(
        "--impair",
        default=None,
        help="impair both directions, e.g. loss=5%%,delay=20ms,jitter=5ms,rate=8mbit",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if not getattr(ns, "func", None):
        parser.print_help()
        return 2
    try:
        target = getattr(ns, "json", None)
        if isinstance(target, str):  # ``--json PATH``: the command's JSON goes to PATH
            ns.json = True
            with open(target, "w", encoding="utf-8") as out, contextlib.redirect_stdout(out):
                return int(ns.func(ns))
        return int(ns.func(ns))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
