"""A NAT lab in Linux network namespaces: a "public" bridge, two NAT routers, a host and a client.

```
 ns host ──veth── ns nat-h ──veth──┐                        ┌──veth── ns nat-c ──veth── ns client
 10.1.0.2  eth0   lan0 10.1.0.1    │    ns pub (bridge br0) │          10.2.0.1 lan0  eth0 10.2.0.2
                  wan0 203.0.113.11┤  203.0.113.0/24        ├ 203.0.113.12 wan0
                                   │  services: .1, .2, ... │
                                   └────────────────────────┘
```

Design notes (why it looks like this):

- Every namespace name carries a short random per-lab prefix (``wl`` + 6 hex digits), so parallel
  pytest workers never collide. veth pairs are created **directly inside** their namespaces
  (``ip link add NAME netns A type veth peer name PEER netns B``), so interface names are short
  fixed names per namespace (``eth0``, ``lan0``, ``wan0``, ``br0``, ``to-nath``...) and nothing
  ever appears in the root namespace; deleting the namespaces deletes every interface.
- NAT rules are nftables (one ``ip wavrylab`` table per router, replaced atomically with
  ``nft -f``). ``masquerade`` is the same kernel NAT code as iptables' ``MASQUERADE`` target.
  Modes: ``"eim"`` plain masquerade (the kernel keeps the source port when it is free, so one
  socket is seen with the same public port by every destination: endpoint-independent mapping);
  ``"symmetric"`` masquerade ``fully-random`` (a random public port per destination).
- ``inbound_filter`` (default on) drops **new** UDP/TCP flows arriving on a router's public side,
  as every home router's firewall does. It matters for hole punching: without it, a peer's
  packet that reaches the router before the router has an outgoing mapping creates a conntrack
  entry (to the router itself) that then clashes with the outgoing mapping, so the kernel picks
  another source port and the punch fails. A dropped packet's conntrack entry is never
  confirmed, so with the filter the punch works in both orders. docs/connectivity.md has the
  measurements (tests/netlab/test_topology.py asserts them).
- ``socket(ns, ...)`` makes a socket inside a namespace from this process (``setns`` in a
  short-lived thread; a socket stays in the namespace it was created in), so tests talk to the
  lab without a subprocess per packet.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

__all__ = [
    "CLIENT_IP",
    "HOST_IP",
    "LAB_PREFIX",
    "NAMESPACES",
    "NAT_PUBLIC_IP",
    "PUBLIC_NET",
    "SERVICE_IP",
    "NatLab",
    "NatMode",
    "NetlabError",
    "NetlabUnavailable",
    "Side",
    "check_available",
    "cleanup_stale",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
NatMode = Literal["eim", "symmetric"]
Side = Literal["host", "client"]

LAB_PREFIX = "wl"  # every lab namespace starts with this (cleanup_stale looks for it)
NAMESPACES = ("pub", "nat-h", "nat-c", "host", "client")
PUBLIC_NET = "203.0.113.0/24"  # TEST-NET-3 (RFC 5737): never routed anywhere real
SERVICE_IP = "203.0.113.1"
NAT_PUBLIC_IP: dict[Side, str] = {"host": "203.0.113.11", "client": "203.0.113.12"}
HOST_IP = "10.1.0.2"
CLIENT_IP = "10.2.0.2"
_NAT_NS: dict[Side, str] = {"host": "nat-h", "client": "nat-c"}
_PRIVATE_NET: dict[Side, str] = {"host": "10.1.0", "client": "10.2.0"}
# Rebinding maps UDP into these ranges, alternately; both lie below Linux's ephemeral range
# (32768-60999), so the new port differs from the old one whatever the old one was.
_REBIND_RANGES = ((20000, 24999), (25000, 29999))
_SERVICE_HOSTS = range(2, 11)  # 203.0.113.2-.10 for more services; .11/.12 are the NATs
_OWNER_DIR = Path("/run/wavry-netlab")  # <prefix>.pid: the pid of the process owning a lab
_CLONE_NEWNET = 0x40000000
_CMD_TIMEOUT = 20.0
_REQUIRED_TOOLS = {"ip": "iproute2", "nft": "nftables", "conntrack": "conntrack"}


class NetlabError(RuntimeError):
    """A lab command failed (the message has the command and its output)."""


class NetlabUnavailable(NetlabError):  # noqa: N818 - the name the callers know it by
    """This machine cannot run the lab; ``missing`` says what is missing."""

    def __init__(self, missing: Sequence[str]) -> None:
        self.missing = list(missing)
        super().__init__("network-namespace lab unavailable: " + "; ".join(self.missing))


def check_available() -> None:
    """Raise ``NetlabUnavailable`` unless Linux, root, the tools and /run/netns are usable."""
    missing: list[str] = []
    if not sys.platform.startswith("linux"):
        missing.append(f"Linux (this is {sys.platform})")
    elif os.geteuid() != 0:
        missing.append("root (network namespaces and NAT rules need CAP_NET_ADMIN/CAP_SYS_ADMIN)")
    for tool, package in _REQUIRED_TOOLS.items():
        if shutil.which(tool) is None:
            missing.append(f"{tool} (apt-get install {package}, or scripts/bootstrap.sh)")
    if sys.platform.startswith("linux") and not os.path.exists("/proc/self/ns/net"):
        missing.append("network namespaces (kernel without CONFIG_NET_NS)")
    if _libc_setns() is None:
        missing.append("setns() in libc")
    if missing:
        raise NetlabUnavailable(missing)


def _libc_setns() -> Callable[[int, int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        fn: Callable[[int, int], int] = libc.setns
    except (OSError, AttributeError):
        return None
    return fn


def _run(
    argv: Sequence[str], *, input: str | None = None, check: bool = True, timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and res.returncode != 0:
        raise NetlabError(
            f"{' '.join(argv)} failed ({res.returncode}): "
            f"{res.stderr.strip() or res.stdout.strip()}"
            + (f"\n--- input ---\n{input}" if input else "")
        )
    return res


def _ip_batch(commands: Sequence[str], netns: str | None = None) -> None:
    """Many ``ip`` commands in one process (``-batch``); ``-n`` applies to every line."""
    argv = ["ip", *(["-n", netns] if netns else []), "-batch", "-"]
    _run(argv, input="\n".join(commands) + "\n")


def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a short-lived thread switched into ``netns`` (``setns`` is per thread)."""
    setns = _libc_setns()
    if setns is None:
        raise NetlabUnavailable(["setns() in libc"])
    result: list[T] = []
    error: list[BaseException] = []

    def worker() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({netns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(exc)

    t = threading.Thread(target=worker, name=f"netns-{netns}", daemon=True)
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]


def _write_sysctl(netns: str, key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")

    def write() -> None:
        # /proc/sys/net resolves against the writing thread's network namespace
        with open(path, "w", encoding="ascii") as fh:
            fh.write(value)

    in_netns(netns, write)


def _netns_list() -> list[str]:
    res = _run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in res.stdout.splitlines() if line.strip()]


def _kill_netns(netns: str) -> None:
    """SIGKILL every process still inside ``netns``, then delete it (interfaces go with it)."""
    res = _run(["ip", "netns", "pids", netns], check=False)
    for pid in res.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _run(["ip", "netns", "del", netns], check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a killed owner whose parent died too may stay a zombie until init reaps it: that is dead
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _remove_workdirs(lab_prefix: str) -> None:
    """A lab's temporary directories (coturn's, the rig's): ``tempfile.mkdtemp(prefix=
    f"{lab.prefix}-...")`` by convention, so they go with the lab."""
    for leftover in Path(tempfile.gettempdir()).glob(f"{lab_prefix}-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def cleanup_stale(prefix: str = LAB_PREFIX, *, only_dead_owners: bool = True) -> list[str]:
    """Delete lab namespaces whose name starts with ``prefix`` (and kill what runs in them).

    By default only labs whose owning process is gone (a killed test run); a lab with no owner
    record counts as stale. ``only_dead_owners=False`` removes every match. Returns the deleted
    namespace names."""
    removed: list[str] = []
    labs: dict[str, list[str]] = {}
    for name in _netns_list():
        m = re.fullmatch(rf"({re.escape(prefix)}[0-9a-f]*)-(.+)", name)
        if name.startswith(prefix) and m and m.group(2) in NAMESPACES:
            labs.setdefault(m.group(1), []).append(name)
    for lab_prefix, names in labs.items():
        owner_file = _OWNER_DIR / f"{lab_prefix}.pid"
        if only_dead_owners:
            try:
                owner = int(owner_file.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                owner = None
            if owner is not None and _alive(owner):
                continue
        for name in names:
            _kill_netns(name)
            removed.append(name)
        owner_file.unlink(missing_ok=True)
        _remove_workdirs(lab_prefix)
    if removed:
        log.info("netlab: removed stale namespaces %s", ", ".join(removed))
    return removed


class Lifecycle:
    """``with`` / ``async with`` for things with a blocking ``start() -> Self`` and ``close()``
    (the async forms run them in a thread: building a lab or a rig blocks)."""

    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)


class NatLab(Lifecycle):
    """The lab: ``with NatLab() as lab:`` (or ``async with``), or ``start()`` and ``close()``.

    ``host_nat``/``client_nat``: ``"eim"`` or ``"symmetric"`` (changeable with ``set_nat``).
    ``inbound_filter``: the routers drop new flows arriving on their public side (see the module
    docstring; on by default like a home router). ``ns(name)`` gives the real namespace name of
    ``"pub"``, ``"nat-h"``, ``"nat-c"``, ``"host"`` or ``"client"``; every method taking a
    namespace accepts either form."""

    def __init__(
        self,
        *,
        host_nat: NatMode = "eim",
        client_nat: NatMode = "eim",
        inbound_filter: bool = True,
        prefix: str | None = None,
    ) -> None:
        self.prefix = prefix or f"{LAB_PREFIX}{secrets.token_hex(3)}"
        if not re.fullmatch(r"[a-z][a-z0-9]{1,11}", self.prefix):
            raise ValueError(f"bad lab prefix {self.prefix!r}")
        self.modes: dict[Side, NatMode] = {"host": host_nat, "client": client_nat}
        self.inbound_filter = inbound_filter
        self.udp_blocked = False
        self.setup_seconds: float | None = None
        self._rebinds: dict[Side, int] = {"host": 0, "client": 0}
        self._procs: list[subprocess.Popen[Any]] = []
        self._services: list[str] = [SERVICE_IP]
        self._created: list[str] = []
        self._started = False

    # ------------------------------------------------------------------ names

    def ns(self, name: str) -> str:
        if name.startswith(self.prefix + "-"):
            return name
        if name not in NAMESPACES:
            raise ValueError(f"unknown namespace {name!r} (one of {', '.join(NAMESPACES)})")
        return f"{self.prefix}-{name}"

    @property
    def namespaces(self) -> list[str]:
        return [self.ns(n) for n in NAMESPACES]

    @staticmethod
    def nat_public_ip(side: Side) -> str:
        return NAT_PUBLIC_IP[side]

    # ------------------------------------------------------------------ life cycle

    def start(self) -> NatLab:
        if self._started:
            return self
        check_available()
        cleanup_stale()
        t0 = time.monotonic()
        self._started = True
        try:
            _OWNER_DIR.mkdir(mode=0o700, exist_ok=True)
            (_OWNER_DIR / f"{self.prefix}.pid").write_text(f"{os.getpid()}\n", encoding="ascii")
            self._build()
        except BaseException:
            self.close()
            raise
        self.setup_seconds = time.monotonic() - t0
        log.info("netlab %s up in %.0f ms", self.prefix, self.setup_seconds * 1000)
        return self

    def _build(self) -> None:
        for name in NAMESPACES:
            _run(["ip", "netns", "add", self.ns(name)])
            self._created.append(self.ns(name))
        pub, nath, natc = self.ns("pub"), self.ns("nat-h"), self.ns("nat-c")
        host, client = self.ns("host"), self.ns("client")
        _ip_batch(
            [
                f"link add wan0 netns {nath} type veth peer name to-nath netns {pub}",
                f"link add wan0 netns {natc} type veth peer name to-natc netns {pub}",
                f"link add eth0 netns {host} type veth peer name lan0 netns {nath}",
                f"link add eth0 netns {client} type veth peer name lan0 netns {natc}",
            ]
        )
        _ip_batch(
            [
                "link set lo up",
                "link add br0 type bridge",
                # no STP listening/learning delay: the bridge forwards at once
                "link set br0 type bridge stp_state 0 forward_delay 0",
                "link set to-nath master br0",
                "link set to-natc master br0",
                f"addr add {SERVICE_IP}/24 dev br0",
                "link set br0 up",
                "link set to-nath up",
                "link set to-natc up",
            ],
            pub,
        )
        for side in ("host", "client"):
            net = _PRIVATE_NET[side]
            nat = self.ns(_NAT_NS[side])
            _write_sysctl(nat, "net.ipv4.ip_forward", "1")
            _ip_batch(
                [
                    "link set lo up",
                    f"addr add {NAT_PUBLIC_IP[side]}/24 dev wan0",
                    f"addr add {net}.1/24 dev lan0",
                    "link set wan0 up",
                    "link set lan0 up",
                ],
                nat,
            )
            _ip_batch(
                [
                    "link set lo up",
                    f"addr add {net}.2/24 dev eth0",
                    "link set eth0 up",
                    f"route add default via {net}.1",
                ],
                self.ns(side),
            )
            self._apply_nat(side)
        self._apply_pub_filter()

    def close(self) -> None:
        """Stop every process started here and delete every namespace (also after failures)."""
        procs, self._procs = self._procs, []
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        deadline = time.monotonic() + 3.0
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(2.0)
        # every namespace we may have created, also those whose creation half-failed
        for name in {*self._created, *(n for n in _netns_list() if n in self.namespaces)}:
            _kill_netns(name)
        self._created.clear()
        (_OWNER_DIR / f"{self.prefix}.pid").unlink(missing_ok=True)
        _remove_workdirs(self.prefix)
        self._started = False

    # ------------------------------------------------------------------ NAT behaviour

    def _nat_rules(self, side: Side) -> str:
        mode = self.modes[side]
        flags = " fully-random" if mode == "symmetric" else ""
        n = self._rebinds[side]
        udp_ports = ""
        if n:
            lo, hi = _REBIND_RANGES[(n - 1) % len(_REBIND_RANGES)]
            udp_ports = f" to :{lo}-{hi}"
        inbound = (
            'iifname "wan0" ct state new meta l4proto { udp, tcp } drop'
            if self.inbound_filter
            else ""
        )
        # Flush + re-add in one nft transaction: the rule set changes atomically.
        return f"""
table ip wavrylab
flush table ip wavrylab
table ip wavrylab {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan0" meta l4proto udp masquerade{udp_ports}{flags}
        oifname "wan0" masquerade{flags}
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        {inbound}
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        {inbound}
    }}
}}
"""

    def _apply_nat(self, side: Side) -> None:
        _run(["ip", "netns", "exec", self.ns(_NAT_NS[side]), "nft", "-f", "-"],
             input=self._nat_rules(side))  # fmt: skip

    def _apply_pub_filter(self) -> None:
        a, b = NAT_PUBLIC_IP["host"], NAT_PUBLIC_IP["client"]
        rules = (
            f"ip saddr {a} ip daddr {b} meta l4proto udp drop\n"
            f"        ip saddr {b} ip daddr {a} meta l4proto udp drop"
            if self.udp_blocked
            else ""
        )
        # The "internet" drops it: NAT-to-NAT frames are bridged in pub, so the rule is in the
        # bridge family's forward hook (no br_netfilter needed); the services stay reachable.
        script = f"""
table bridge wavrylab
flush table bridge wavrylab
table bridge wavrylab {{
    chain forward {{
        type filter hook forward priority filter; policy accept;
        {rules}
    }}
}}
"""
        _run(["ip", "netns", "exec", self.ns("pub"), "nft", "-f", "-"], input=script)

    def set_nat(self, side: Side, mode: NatMode) -> None:
        """Switch one router's mapping behaviour (existing mappings are kept until they expire)."""
        if mode not in ("eim", "symmetric"):
            raise ValueError(f"unknown NAT mode {mode!r}")
        self.modes[side] = mode
        self._apply_nat(side)

    def set_inbound_filter(self, enabled: bool) -> None:
        self.inbound_filter = enabled
        for side in ("host", "client"):
            self._apply_nat(side)

    def block_udp_between_nats(self, blocked: bool = True) -> None:
        """Drop (or stop dropping) UDP between 203.0.113.11 and .12; services stay reachable."""
        self.udp_blocked = blocked
        self._apply_pub_filter()

    def flush_udp_mappings(self, side: Side) -> None:
        """Forget the router's UDP mappings (a router reboot): after a mode change, flows that
        were mapped under the old mode would otherwise keep their old ports."""
        nat = self.ns(_NAT_NS[side])
        res = _run(["ip", "netns", "exec", nat, "conntrack", "-D", "-p", "udp"], check=False)
        if res.returncode not in (0, 1):  # 1: nothing to delete
            raise NetlabError(f"conntrack -D failed on {nat}: {res.stderr.strip()}")

    def rebind(self, side: Side) -> tuple[int, int]:
        """Force a NAT rebinding: the router's UDP mappings are flushed and its next UDP packets
        leave from a new public port (from the returned range; the ranges alternate per call,
        so the port changes every time). TCP (e.g. the signaling WebSocket) is untouched.

        After a rebind the mapping stays endpoint-independent in ``"eim"`` mode: the kernel
        reuses the first new mapping of a socket for its other destinations."""
        self._rebinds[side] += 1
        self._apply_nat(side)
        nat = self.ns(_NAT_NS[side])
        res = _run(["ip", "netns", "exec", nat, "conntrack", "-D", "-p", "udp"], check=False)
        # exit 1 with "0 flow entries" just means there was nothing to delete
        if res.returncode not in (0, 1):
            raise NetlabError(f"conntrack -D in {nat} failed: {res.stderr.strip()}")
        lo, hi = _REBIND_RANGES[(self._rebinds[side] - 1) % len(_REBIND_RANGES)]
        log.info("netlab %s: %s NAT rebound (UDP now from %d-%d)", self.prefix, side, lo, hi)
        return lo, hi

    def conntrack(self, side: Side) -> str:
        """The router's conntrack table (``conntrack -L``), for assertions and failure messages."""
        res = _run(["ip", "netns", "exec", self.ns(_NAT_NS[side]), "conntrack", "-L"], check=False)
        return res.stdout

    def add_service_address(self) -> str:
        """One more address on the pub bridge (203.0.113.2, .3, ... up to .10) for a service."""
        for n in _SERVICE_HOSTS:
            ip = f"203.0.113.{n}"
            if ip not in self._services:
                _run(["ip", "-n", self.ns("pub"), "addr", "add", f"{ip}/24", "dev", "br0"])
                self._services.append(ip)
                return ip
        raise NetlabError("no free service address left in 203.0.113.2-.10")

    # ------------------------------------------------------------------ running things

    def popen(
        self,
        ns: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> subprocess.Popen[Any]:
        """Start ``argv`` inside ``ns`` (``ip netns exec``); stopped at ``close()`` if running.

        ``env`` replaces the environment (merge with ``os.environ`` yourself to inherit)."""
        self._require_started()
        proc: subprocess.Popen[Any] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(ns), *argv],
            env=dict(env) if env is not None else None,
            **kw,
        )
        self._procs.append(proc)
        return proc

    def run(
        self,
        ns: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        input: str | bytes | None = None,
        timeout: float = 30.0,
        check: bool = False,
        text: bool = True,
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` inside ``ns`` to completion, output captured (killed after ``timeout``)."""
        self._require_started()
        res = subprocess.run(
            ["ip", "netns", "exec", self.ns(ns), *argv],
            env=dict(env) if env is not None else None,
            input=input,
            capture_output=True,
            text=text,
            timeout=timeout,
            check=False,
        )
        if check and res.returncode != 0:
            raise NetlabError(f"{argv!r} in {ns} failed ({res.returncode}): {res.stderr!s:.2000}")
        return res

    def socket(
        self,
        ns: str,
        family: socket.AddressFamily = socket.AF_INET,
        type: socket.SocketKind = socket.SOCK_DGRAM,
    ) -> socket.socket:
        """A socket living in ``ns`` (bind/connect/send all happen there), owned by the caller."""
        self._require_started()
        return in_netns(self.ns(ns), lambda: socket.socket(family, type))

    def _require_started(self) -> None:
        if not self._started:
            raise NetlabError("the lab is not started")

    def check_alive(self) -> None:
        """Raise if a namespace vanished (someone ran cleanup_stale on a live lab)."""
        present = set(_netns_list())
        gone = [n for n in self.namespaces if n not in present]
        if gone:
            raise NetlabError(f"lab namespaces gone: {', '.join(gone)}")
