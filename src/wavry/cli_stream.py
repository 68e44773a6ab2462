"""``wavry host`` and ``wavry connect``: argument parsing and wiring of the two services."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wavry import paths

__all__ = ["add_connect_parser", "add_host_parser"]

log = logging.getLogger("wavry")

HOST_EPILOG = """\
Pairing: an unknown client is refused unless allowed with --allow WAVRY_ID (remembered in
DATA_DIR/allowed_clients) or approved at the prompt (--pairing prompt). Only one client
controls the host at a time.

Binding: loopback only by default. --public (or WAVRY_HOST_ALLOW_PUBLIC_BIND=1) lets the host
listen on other addresses; keep pairing on when you do.

Gateway: with --gateway (after `wavry login`) the host stays bound at the gateway (reconnecting
with backoff) and answers `wavry connect USERNAME` from your own account and from accounts you
share with; it sends its listen address(es) as candidates. Direct UDP only for now.

Examples:
  wavry host --capture testsrc                 synthetic desktop, loopback only
  wavry host --gateway https://gw.example.org --public --listen 0.0.0.0
  wavry host --allow <client-id> --public --listen 0.0.0.0
"""

CONNECT_EPILOG = """\
Without HOST, lists the Wavry hosts found on the LAN (mDNS, ~1 s).

USERNAME: with --gateway URL, a TARGET without ":port" that is not an IP address is the account
whose `wavry host --gateway` to reach (your own, or one that shares with you); with only a
stored `wavry login`, so is a TARGET without dots other than "localhost". The host's Wavry ID
comes from its answer and is pinned. --direct forces HOST.

In the window: Ctrl+Alt+Shift+Z releases/recaptures keyboard and mouse, Ctrl+Alt+Shift+F
toggles fullscreen, Ctrl+Alt+Shift+S toggles the stats overlay.

The first time you connect to a host its Wavry ID is recorded in DATA_DIR/known_hosts (you are
asked to confirm on a terminal); a host presenting a different ID later is refused.
"""


def _resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError("resolution must look like 1280x720") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise argparse.ArgumentTypeError("resolution must be within 16x16..8192x8192")
    return w, h


def add_host_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "host",
        help="share this machine's screen and accept a client's input",
        description="Capture, encode and stream this machine's screen over RIFT; inject the "
        "paired client's keyboard, mouse and gamepads.",
        epilog=HOST_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--listen", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=4444, help="UDP port (default 4444; 0 = any)")
    p.add_argument("--public", action="store_true", help="allow a non-loopback --listen address")
    p.add_argument(
        "--capture",
        default="auto",
        choices=("auto", "x11", "testsrc"),
        help="screen source (auto: X11 when $DISPLAY works, else the test source)",
    )
    p.add_argument(
        "--pattern", default="desktop", choices=("desktop", "game"), help="test source content"
    )
    p.add_argument("--monitor", type=int, default=None, help="monitor id to capture (X11)")
    p.add_argument("--resolution", type=_resolution, default=(1280, 720), help="stream size")
    p.add_argument("--fps", type=int, default=60)
    p.add_argument("--bitrate", type=int, default=10_000, help="initial kbit/s (default 10000)")
    p.add_argument("--max-bitrate", type=int, default=50_000, help="ceiling for DELTA, kbit/s")
    p.add_argument(
        "--codec",
        action="append",
        choices=("h264", "hevc", "av1"),
        help="codec preference, repeatable (HEVC/AV1 only if a real-time encoder opens here)",
    )
    p.add_argument("--encoder", default="auto", help="FFmpeg encoder name, e.g. libx264")
    p.add_argument("--keyframe-interval", type=int, default=2000, help="ms between keyframes")
    p.add_argument("--allow", action="append", default=[], metavar="WAVRY_ID", help="pair a client")
    p.add_argument(
        "--pairing", default="allow-list", choices=("allow-list", "prompt", "open"),
        help="unknown clients: refuse (allow-list), ask here (prompt), or accept (open: tests)",
    )  # fmt: skip
    p.add_argument("--input", default="auto", choices=("auto", "xtest", "uinput", "none"))
    p.add_argument("--no-mdns", action="store_true", help="do not advertise on the LAN")
    p.add_argument("--idle-timeout", type=float, default=10.0, help="seconds of client silence")
    p.add_argument("--run-for", type=float, default=None, help="stop after N seconds")
    p.add_argument("--impair", default=None, help="degrade outgoing packets (tests), e.g. loss=5%%")
    p.add_argument("--identity", default=None, help="identity file (default DATA_DIR/identity.key)")
    p.add_argument("--status-json", action="store_true", help="print a JSON status line at exit")
    p.add_argument(
        "--gateway",
        nargs="?",
        const="",
        default=None,
        metavar="URL",
        help="be reachable by username through this gateway (default: the one of `wavry login`)",
    )
    p.set_defaults(func=_run_host)


def _run_host(ns: argparse.Namespace) -> int:
    from wavry.host.service import HostService, HostStatus, prompt_on_terminal
    from wavry.host.settings import HostSettings
    from wavry.identity_store import IdentityFileError, load_or_create_identity
    from wavry.media.probe import codec_from_name
    from wavry.rift.trust import TrustFileError
    from wavry.trust_store import load_allow_list, save_allow_list

    _setup_logging()
    try:
        identity, created = load_or_create_identity(
            Path(ns.identity) if ns.identity else paths.identity_path()
        )
        allow_path = paths.allowed_clients_path()
        allow = load_allow_list(allow_path)
        for wid in ns.allow:
            allow.add(wid)
        if ns.allow:
            save_allow_list(allow_path, allow)
    except (IdentityFileError, TrustFileError, ValueError) as exc:
        print(f"wavry host: {exc}", file=sys.stderr)
        return 1
    if created:
        log.info("created a new host identity")
    codecs = tuple(ns.codec or ["h264"])
    settings = HostSettings(
        listen_host=ns.listen,
        port=ns.port,
        allow_public_bind=ns.public or HostSettings().allow_public_bind,
        capture=ns.capture,
        testsrc_pattern=ns.pattern,
        monitor=ns.monitor,
        width=ns.resolution[0],
        height=ns.resolution[1],
        fps=ns.fps,
        bitrate_kbps=ns.bitrate,
        max_bitrate_kbps=ns.max_bitrate,
        codecs=codecs,
        encoder=ns.encoder,
        keyframe_interval_ms=ns.keyframe_interval,
        pairing=ns.pairing,
        input_backend=ns.input,
        mdns=not ns.no_mdns,
        idle_timeout=ns.idle_timeout,
        run_for=ns.run_for,
        impair=ns.impair,
    )
    for name in codecs:
        codec_from_name(name)
    service = HostService(
        settings,
        identity=identity,
        allow_list=allow,
        ask_approval=prompt_on_terminal if ns.pairing == "prompt" else None,
    )
    from wavry.bind_policy import BindPolicyError
    from wavry.net.udp import install_uvloop

    rendezvous = None
    if ns.gateway is not None:
        try:
            url, token = _gateway_login(ns.gateway)
        except ValueError as exc:
            print(f"wavry host: {exc}", file=sys.stderr)
            return 1
        from wavry.net.stun import stun_servers_from_env
        from wavry.rendezvous import HostRendezvous

        rendezvous = HostRendezvous(service, url, token, stun_servers=stun_servers_from_env())

    install_uvloop()

    async def main() -> HostStatus:
        import signal

        loop = asyncio.get_running_loop()

        def stop() -> None:
            service.stop()  # stop cleanly: say goodbye to clients
            if rendezvous is not None:
                rendezvous.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        if rendezvous is None:
            return await service.run()
        signaling = asyncio.create_task(rendezvous.run())
        try:
            return await service.run()
        finally:
            rendezvous.stop()
            await asyncio.wait_for(signaling, 5)

    from wavry.media.encoder import EncoderUnavailable

    try:
        status = asyncio.run(main())
    except EncoderUnavailable as exc:
        print(f"wavry host: {exc}; H.264 always works: --codec h264", file=sys.stderr)
        return 1
    except BindPolicyError as exc:
        print(f"wavry host: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"wavry host: cannot listen on {ns.listen}:{ns.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if ns.status_json:
        print(
            json.dumps(
                {
                    "frames_sent": status.frames_sent,
                    "sessions": status.sessions_started,
                    "inputs_injected": status.inputs_injected,
                    "refused": status.refused,
                    "cpu_pct_of_core": round(
                        100 * status.stream_cpu_s / max(status.stream_wall_s, 1e-9), 1
                    ),
                    "max_rss_mb": round(status.max_rss_mb, 1),
                }
            ),
            flush=True,
        )
    return 0


def add_connect_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "connect",
        help="connect to a host: see its screen, drive it",
        description="Connect to a Wavry host, present its screen in a window and send keyboard, "
        "mouse and gamepad input.",
        epilog=CONNECT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "target",
        nargs="?",
        help="HOST[:PORT] (default port 4444), or USERNAME or WAVRY_ID through the gateway of "
        "`wavry login`",
    )
    p.add_argument(
        "--gateway",
        default=None,
        metavar="URL",
        help="reach USERNAME through this gateway (default: the one of `wavry login`)",
    )
    p.add_argument("--direct", action="store_true", help="TARGET is a host name, never a username")
    p.add_argument(
        "--answer-timeout", type=float, default=10.0, help="seconds to wait for the host's answer"
    )
    relay = p.add_mutually_exclusive_group()
    relay.add_argument(
        "--direct-only",
        action="store_true",
        help="through the gateway: never fall back to a relay (fail if no direct path works)",
    )
    relay.add_argument(
        "--relay",
        action="store_true",
        help="through the gateway: go through a relay at once (skip hole punching)",
    )
    p.add_argument(
        "--direct-timeout",
        type=float,
        default=1.0,
        help="seconds hole punching gets before a relay is asked for (default 1)",
    )
    p.add_argument(
        "--same-clock",
        action="store_true",
        help="host and client run on one machine (e.g. network namespaces): also report the "
        "network and total capture-to-present latency (automatic on loopback)",
    )
    p.add_argument(
        "--bind",
        default="0.0.0.0",
        metavar="ADDR",
        help="local address of the streaming socket for USERNAME targets (default 0.0.0.0)",
    )
    p.add_argument("--headless", action="store_true", help="decode without a window")
    p.add_argument("--fullscreen", action="store_true")
    p.add_argument("--relative-mouse", action="store_true", help="pointer-lock mode for games")
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stream N seconds once connected, then disconnect",
    )
    p.add_argument("--max-bitrate", type=int, default=0, help="cap the host's bitrate (kbit/s)")
    p.add_argument("--monitor", type=int, default=None, help="show this monitor of the host")
    p.add_argument(
        "--accept-new-host",
        action="store_true",
        help="trust a host seen for the first time without asking",
    )
    p.add_argument("--impair", default=None, help="degrade outgoing packets (tests)")
    p.add_argument("--identity", default=None, help="identity file (default DATA_DIR/identity.key)")
    p.add_argument("--json", action="store_true", help="print a JSON report at exit")
    p.set_defaults(func=_run_connect)


def _parse_target(target: str) -> tuple[str, int]:
    if target.startswith("["):  # [v6]:port
        host, _, rest = target[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 4444
    if target.count(":") == 1:
        host, port = target.split(":")
        return host, int(port)
    return target, 4444


def _run_connect(ns: argparse.Namespace) -> int:
    _setup_logging()
    if not ns.target:
        return _list_hosts()
    from wavry.client.service import ClientService
    from wavry.client.settings import ClientSettings
    from wavry.identity_store import IdentityFileError, load_or_create_identity
    from wavry.rift.trust import TrustFileError
    from wavry.trust_store import load_known_hosts, save_known_hosts

    if _is_username_target(ns):
        return _run_connect_username(ns)
    try:
        host, port = _parse_target(ns.target)
    except ValueError:
        print(f"wavry connect: {ns.target!r} is not HOST[:PORT]", file=sys.stderr)
        return 2
    try:
        identity, _ = load_or_create_identity(
            Path(ns.identity) if ns.identity else paths.identity_path()
        )
        known_path = paths.known_hosts_path()
        known = load_known_hosts(known_path)
    except (IdentityFileError, TrustFileError) as exc:
        print(f"wavry connect: {exc}", file=sys.stderr)
        return 1
    key = f"{host}:{port}"
    expected = known.expected(key)

    def on_new_host(wavry_id: str) -> bool:
        if not ns.accept_new_host and sys.stdin.isatty():
            answer = input(
                f"First connection to {key}. Its Wavry ID is\n  {wavry_id}\n"
                "Check it on the host (`wavry show-id`). Trust it? [y/N] "
            )
            if answer.strip().lower() not in ("y", "yes"):
                return False
        log.info("trusting %s as %s (remembered in %s)", key, wavry_id, known_path)
        known.remember(key, wavry_id)
        save_known_hosts(known_path, known)
        return True

    settings = ClientSettings(
        host=host,
        port=port,
        headless=ns.headless,
        fullscreen=ns.fullscreen,
        relative_mouse=ns.relative_mouse,
        max_bitrate_kbps=ns.max_bitrate,
        monitor=ns.monitor,
        same_clock=host in ("127.0.0.1", "localhost", "::1"),
        run_for=ns.seconds,
        impair=ns.impair,
    )
    window_factory = None if ns.headless else _window_factory(settings)
    service = ClientService(
        settings,
        identity=identity,
        expected_host_id=expected,
        on_host_identity=on_new_host,
        window_factory=window_factory,
    )
    from wavry.net.udp import install_uvloop

    install_uvloop()
    try:
        report = asyncio.run(service.run())
    except KeyboardInterrupt:
        return 130
    if report.rejected:
        print(f"wavry connect: the host refused: {report.rejected}", file=sys.stderr)
        return 1
    if report.established_at is None:
        reason = report.close_reason or "no answer"
        print(
            f"wavry connect: could not connect to {key}: {reason}. Is `wavry host` running "
            f"there and reachable over UDP port {port}?",
            file=sys.stderr,
        )
        return 1
    if ns.json:
        print(json.dumps(_report_json(report)))
    return 0


def _gateway_login(flag: str | None) -> tuple[str, str]:
    """(WebSocket URL, token) from the stored `wavry login`; ``flag`` may name the gateway."""
    from wavry.cli_account import normalize_gateway_url
    from wavry.credentials import CredentialsError, TokenStore
    from wavry.net.signaling import ws_url

    try:
        stored = TokenStore().load()
    except CredentialsError as exc:
        raise ValueError(str(exc)) from None
    if flag:
        wanted = normalize_gateway_url(flag, allow_http=True)
        if stored is None or normalize_gateway_url(stored.gateway, allow_http=True) != wanted:
            raise ValueError(
                f"not logged in at {wanted}: run `wavry login --gateway {wanted} --email ...`"
            )
    if stored is None:
        raise ValueError("not logged in: run `wavry login --gateway URL --email ...` first")
    return ws_url(stored.gateway), stored.token


def _is_username_target(ns: argparse.Namespace) -> bool:
    import ipaddress
    import re

    target = ns.target
    if ns.direct or ":" in target:
        return False
    if re.fullmatch(r"[A-Za-z0-9_\-]{43}", target):
        return True  # a Wavry ID: resolved by the gateway
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{3,32}", target):
        return False
    try:
        ipaddress.ip_address(target)
        return False
    except ValueError:
        pass
    if ns.gateway:
        return True
    if "." in target or target.lower() == "localhost":
        return False  # host.lan, 10.0.0.1: with only a stored login, dotted names are hosts
    from wavry.credentials import CredentialsError, TokenStore

    try:
        return TokenStore().load() is not None
    except CredentialsError:
        return False


def _run_connect_username(ns: argparse.Namespace) -> int:
    from wavry.client.settings import ClientSettings
    from wavry.identity_store import IdentityFileError, load_or_create_identity
    from wavry.net.stun import stun_servers_from_env
    from wavry.net.udp import install_uvloop
    from wavry.rendezvous import ConnectError, connect_by_username

    username = ns.target if len(ns.target) == 43 else ns.target.lower()
    try:
        url, token = _gateway_login(ns.gateway)
        identity, _ = load_or_create_identity(
            Path(ns.identity) if ns.identity else paths.identity_path()
        )
    except (ValueError, IdentityFileError) as exc:
        print(f"wavry connect: {exc}", file=sys.stderr)
        return 1
    settings = ClientSettings(
        host="0.0.0.0",
        port=1,
        headless=ns.headless,
        fullscreen=ns.fullscreen,
        relative_mouse=ns.relative_mouse,
        max_bitrate_kbps=ns.max_bitrate,
        monitor=ns.monitor,
        same_clock=ns.same_clock,  # loopback candidates turn it on by themselves
        run_for=ns.seconds,
        impair=ns.impair,
    )
    window_factory = None if ns.headless else _window_factory(settings)
    verified = _PatternCheck()
    install_uvloop()
    try:
        report, info = asyncio.run(
            connect_by_username(
                url,
                token,
                username,
                identity=identity,
                settings=settings,
                answer_timeout=ns.answer_timeout,
                direct_timeout=ns.direct_timeout,
                relay="never" if ns.direct_only else "always" if ns.relay else "auto",
                bind=ns.bind,
                stun_servers=stun_servers_from_env(),
                window_factory=window_factory,
                on_frame=verified if ns.json else None,
            )
        )
    except ConnectError as exc:
        print(f"wavry connect: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if report.rejected:
        print(f"wavry connect: {username}'s host refused: {report.rejected}", file=sys.stderr)
        return 1
    if ns.json:
        doc = _report_json(report)
        doc["path"] = info.path
        doc["relayed"] = info.relayed
        doc["relay_id"] = info.relay_id
        doc["host_wavry_id"] = info.host_wavry_id
        doc["candidates"] = info.candidates
        doc["own_candidates"] = info.own_candidates
        for key, value in (
            ("answer_ms", info.answer_s),
            ("relay_requested_ms", info.relay_requested_s),
            ("handshake_ms", info.handshake_s),
            ("first_frame_ms", info.first_frame_s),
        ):
            doc[key] = None if value is None else round(value * 1000, 1)
        doc["regathers"] = info.regathers
        doc["address_changes"] = info.address_changes
        doc["relay_moves"] = info.relay_moves
        doc["nat_mapping"] = info.nat_mapping
        doc["feedback"] = info.feedback
        doc["frames_verified"] = verified.counts["verified"]
        doc["frames_blurred"] = verified.counts["blurred"]
        doc["frames_damaged"] = verified.counts["damaged"]
        print(json.dumps(doc))
    return 0


class _PatternCheck:
    """Sorts decoded pictures by their test-pattern barcode (`wavry host --capture testsrc`):
    ``verified`` carries the frame's own capture time (the right content, intact), ``blurred``
    is low quality (grey blocks), ``damaged`` is wrong or broken content
    (``wavry.media.capture.barcode.check_picture``)."""

    def __init__(self) -> None:
        self.counts = {"verified": 0, "blurred": 0, "damaged": 0, "absent": 0}

    def __call__(self, picture: Any, timing: Any) -> None:
        from wavry.media.capture.barcode import check_picture

        self.counts[check_picture(picture.y, timing.capture_start)] += 1


def _window_factory(settings: object) -> Callable[[], Any]:
    from wavry.client.window import ClientWindow

    def make() -> ClientWindow:
        return ClientWindow(
            "Wavry",
            width=1280,
            height=720,
            fullscreen=getattr(settings, "fullscreen", False),
            relative_mouse=getattr(settings, "relative_mouse", False),
        )

    return make


def _report_json(report: object) -> dict[str, object]:
    from wavry.client.service import ClientReport

    assert isinstance(report, ClientReport)
    return {
        "frames_received": report.frames_received,
        "frames_presented": report.frames_presented,
        "frames_lost": report.frames_lost,
        "frames_skipped": report.frames_skipped,
        "max_frame_gap_ms": round(report.max_frame_gap_s * 1000, 1),
        "latency_ms": report.latency.as_dict(),
        "params": report.params,
        "stats": report.stats,
    }


def _list_gateway_hosts() -> bool:
    """Print the hosts reachable through the stored login's gateway; False when not logged in."""
    from wavry.credentials import CredentialsError, TokenStore
    from wavry.net.gateway_api import GatewayApiError
    from wavry.net.signaling import SignalingFatal, ws_url
    from wavry.rendezvous.presence import reachable_hosts

    try:
        stored = TokenStore().load()
    except CredentialsError:
        return False
    if stored is None:
        return False
    try:
        hosts = asyncio.run(reachable_hosts(stored.gateway, ws_url(stored.gateway), stored.token))
    except (GatewayApiError, SignalingFatal, OSError, TimeoutError) as exc:
        print(f"Hosts through {stored.gateway}: cannot list them ({exc})")
        return True
    print(f"Hosts through {stored.gateway} (logged in as {stored.username}):")
    for h in hosts:
        state = "online " if h.online else "offline"
        mine = "  (yours)" if h.own else ""
        print(f"  {h.username:<24} {state}  wavry connect {h.username}{mine}")
    if not any(h.online for h in hosts):
        print("  none online: start `wavry host --gateway` on the machine you want to reach")
    print()
    return True


def _list_hosts() -> int:
    from wavry.net.mdns import browse_hosts

    _list_gateway_hosts()
    hosts = browse_hosts(timeout=1.0)
    if not hosts:
        print("No Wavry hosts found on the LAN. Start one with `wavry host`, or give an address:")
        print("  wavry connect HOST[:PORT]")
        return 0
    for h in hosts:
        addr = h.addresses[0] if h.addresses else "?"
        print(f"{h.name:<30} {addr}:{h.port}  {h.wavry_id}")
    print("\nConnect with: wavry connect ADDRESS:PORT")
    return 0


def _setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
