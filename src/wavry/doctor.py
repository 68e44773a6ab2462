"""``wavry doctor``: check this machine for what Wavry needs and say how to fix what is missing."""

from __future__ import annotations

import importlib
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from wavry import paths

__all__ = ["Check", "run_checks", "run_doctor"]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _python() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check("python >= 3.11", ok, sys.version.split()[0], "install Python 3.11 or newer")


def _module(name: str, why: str, *, required: bool = True) -> Callable[[], Check]:
    def check() -> Check:
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:
            return Check(name, False, f"not importable ({exc})", f"uv sync  # {why}", required)
        return Check(name, True, str(getattr(mod, "__version__", "present")), required=required)

    return check


def _data_dir() -> Check:
    d = paths.data_dir()
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = d / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        fix = "set WAVRY_DATA_DIR to a writable directory"
        return Check("data dir writable", False, f"{d}: {exc}", fix)
    return Check("data dir writable", True, str(d))


def _identity() -> Check:
    p = paths.identity_path()
    if not p.exists():
        return Check("identity", False, f"none at {p}", "wavry keygen", required=False)
    mode = p.stat().st_mode & 0o777
    if mode & 0o077:
        return Check("identity", False, f"{p} has mode {mode:o}", f"chmod 600 {p}")
    return Check("identity", True, str(p))


def _udp_loopback() -> Check:
    try:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
        ):
            a.bind(("127.0.0.1", 0))
            b.settimeout(1.0)
            b.bind(("127.0.0.1", 0))
            a.sendto(b"wavry", b.getsockname())
            data, _ = b.recvfrom(16)
        return Check("UDP on loopback", data == b"wavry", "send/receive works")
    except OSError as exc:
        return Check("UDP on loopback", False, str(exc), "check firewall / network namespace")


def _dscp() -> Check:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0xB8)
            tos = s.getsockopt(socket.IPPROTO_IP, socket.IP_TOS)
        return Check("DSCP EF marking", tos == 0xB8, f"IP_TOS={tos:#x}", required=False)
    except OSError as exc:
        return Check("DSCP EF marking", False, str(exc), "not fatal: packets go unmarked", False)


def _h264_encoder() -> Check:
    try:
        import av

        codec = av.CodecContext.create("libx264", "w")
        del codec
    except Exception as exc:  # noqa: BLE001 - any failure means no H.264 here; say which
        return Check("H.264 encoder (libx264)", False, str(exc), "uv sync  # reinstalls PyAV")
    return Check("H.264 encoder (libx264)", True, f"PyAV {av.__version__}")


def _display() -> Check:
    import os

    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not display:
        return Check(
            "display for capture/input",
            False,
            "no DISPLAY/WAYLAND_DISPLAY: `wavry host` will use the test source",
            "run the host inside your desktop session",
            required=False,
        )
    return Check("display for capture/input", True, display, required=False)


def _uinput() -> Check:
    import os

    ok = os.access("/dev/uinput", os.W_OK)
    detail = "writable" if ok else "/dev/uinput missing or not writable"
    fix = "needed only on Wayland/console: `sudo modprobe uinput` and add yourself to its group"
    return Check("uinput (Wayland input)", ok, detail, fix, required=False)


def _relay_fastpath() -> Check:
    from wavry.relay import fastpath

    name = "relay fast path (C)"
    if fastpath.available():
        return Check(name, True, "built: `wavry relay` forwards natively", required=False)
    fix = "install gcc and libc6-dev, then `uv sync --reinstall-package wavry`"
    return Check(name, False, fastpath.unavailable_reason(), fix, required=False)


def _gateway_login() -> Check:
    """Connect-anywhere needs a stored `wavry login`; the token is checked with the gateway."""
    from wavry.credentials import CredentialsError, TokenStore

    name = "gateway login (connect anywhere)"
    fix = "wavry login --gateway URL --email EMAIL  # then `wavry connect USERNAME`"
    try:
        stored = TokenStore().load()
    except CredentialsError as exc:
        return Check(name, False, str(exc), "wavry logout --forget-only, then " + fix, False)
    if stored is None:
        return Check(name, False, "not logged in (direct HOST:PORT only)", fix, False)
    import httpx

    try:
        resp = httpx.get(
            f"{stored.gateway.rstrip('/')}/auth/me",
            headers={"Authorization": f"Bearer {stored.token}"},
            timeout=3.0,
        )
    except httpx.HTTPError as exc:
        return Check(name, False, f"{stored.gateway} unreachable ({type(exc).__name__})", "", False)
    if resp.status_code == 401:
        return Check(
            name, False, f"the token for {stored.gateway} expired or was revoked", fix, False
        )
    ok = resp.status_code == 200
    detail = f"{stored.username or '?'} at {stored.gateway}" + (
        "" if ok else f" (HTTP {resp.status_code})"
    )
    return Check(name, ok, detail, "", False)


def _stun() -> Check:
    """The NAT-reflexive address and, with two servers, how the NAT maps (docs/connectivity.md)."""
    import asyncio

    from wavry.net.stun import stun_servers_from_env

    name = "STUN / NAT (connect anywhere)"
    fix = "set WAVRY_STUN_SERVERS=stun1.example.org,stun2.example.org (two: NAT type too)"
    try:
        servers = stun_servers_from_env()
    except ValueError as exc:
        return Check(name, False, str(exc), fix, False)
    if not servers:
        return Check(
            name, False, "no STUN servers: hosts behind NAT offer LAN addresses only", fix, False
        )

    async def probe() -> tuple[str, str]:
        from wavry.net.candidates import probe_mapping, reflexive_address
        from wavry.net.udp import open_udp_driver
        from wavry.rendezvous.common import NullCore

        loopback = all(host.startswith("127.") for host, _ in servers)
        driver = await open_udp_driver(
            NullCore, local_addr=("127.0.0.1" if loopback else "0.0.0.0", 0)
        )
        try:
            mapped = await reflexive_address(driver, servers, timeout=2.0)
            mapping = await probe_mapping(driver, servers, timeout=2.0)
        finally:
            driver.close()
        return ("none" if mapped is None else f"{mapped[0]}:{mapped[1]}"), mapping

    try:
        mapped, mapping = asyncio.run(probe())
    except OSError as exc:
        return Check(name, False, str(exc), "check the network", False)
    if mapped == "none":
        return Check(
            name, False, "no STUN server answered", "check WAVRY_STUN_SERVERS / UDP egress", False
        )
    hint = {
        "endpoint-independent": "hole punching can work",
        "endpoint-dependent": "symmetric NAT: sessions will use a relay",
        "unknown": "NAT type unknown (needs two servers)",
    }[mapping]
    return Check(name, True, f"seen as {mapped}; {hint}", required=False)


CHECKS: tuple[Callable[[], Check], ...] = (
    _python,
    _module("cryptography", "Noise handshake and packet encryption"),
    _module("google.protobuf", "RIFT messages"),
    _module("zfec", "Reed-Solomon FEC"),
    _module("uvloop", "faster event loop", required=False),
    _h264_encoder,
    _module("sdl2", "the client window", required=False),
    _display,
    _uinput,
    _data_dir,
    _identity,
    _udp_loopback,
    _dscp,
    _relay_fastpath,
    _gateway_login,
    _stun,
)


def run_checks() -> list[Check]:
    return [check() for check in CHECKS]


def run_doctor() -> int:
    results = run_checks()
    width = max(len(c.name) for c in results)
    for c in results:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
        line = f"[{mark}] {c.name:<{width}}  {c.detail}"
        if not c.ok and c.fix:
            line += f"\n       fix: {c.fix}"
        print(line)  # noqa: T201
    failed = [c for c in results if c.required and not c.ok]
    print(  # noqa: T201
        f"\n{sum(c.ok for c in results)}/{len(results)} checks passed"
        + (f"; {len(failed)} required check(s) failed" if failed else "; all required ones passed")
        + f" (data dir: {paths.data_dir()}; override with {paths.ENV_DATA_DIR})"
    )
    return 1 if failed else 0
