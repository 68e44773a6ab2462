"""The NAT lab itself: addresses, NAT modes, UDP blocking, rebinding, teardown, and what
simultaneous UDP hole punching does between two Linux MASQUERADE routers (docs/connectivity.md).

Real namespaces, real nftables NAT, real coturn; plain UDP sockets created inside the namespaces.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wavry.netlab import (
    NAT_PUBLIC_IP,
    SERVICE_IP,
    NatLab,
    NetlabUnavailable,
    StunServer,
    check_available,
    cleanup_stale,
    start_stun,
    stun_mapped,
    topology,
)

Side = str
OTHER = {"host": "client", "client": "host"}


def _udp(lab: NatLab, ns: str) -> socket.socket:
    s = lab.socket(ns)
    s.bind(("0.0.0.0", 0))
    return s


# ------------------------------------------------------------------------------ punching probe


@dataclass
class PunchResult:
    mapped: dict[Side, tuple[str, int]]  # STUN-mapped address of each side's socket
    seen: dict[Side, set[tuple[str, int]]] = field(default_factory=dict)  # sources each received

    @property
    def bidirectional(self) -> bool:
        return bool(self.seen["host"]) and bool(self.seen["client"])

    @property
    def ports_kept(self) -> bool:
        """Each side saw the other only from the other's STUN-mapped address."""
        return all(self.seen[s] == {self.mapped[OTHER[s]]} for s in ("host", "client"))


def punch(
    lab: NatLab,
    stun: StunServer,
    first: Side,
    *,
    gap: float = 0.2,
    interval: float = 0.1,
    duration: float = 2.0,
) -> PunchResult:
    """Two plain UDP sockets (host ns, client ns) learn their mapped address from coturn, then
    each sends to the other's mapped address every ``interval`` for ``duration``; ``first``
    starts ``gap`` seconds before the other. Records who received what from where."""
    socks = {side: _udp(lab, side) for side in ("host", "client")}
    try:
        result = PunchResult({side: stun_mapped(s, stun.address) for side, s in socks.items()})
        result.seen = {"host": set(), "client": set()}
        start = {first: 0.0, OTHER[first]: gap}
        next_send = dict(start)
        for s in socks.values():
            s.setblocking(False)
        t0 = time.monotonic()
        while (now := time.monotonic() - t0) <= gap + duration:
            for side, s in socks.items():
                if next_send[side] <= now and next_send[side] <= start[side] + duration:
                    s.sendto(side.encode(), result.mapped[OTHER[side]])
                    next_send[side] += interval
            ready, _, _ = select.select(list(socks.values()), [], [], 0.01)
            for side, s in socks.items():
                while s in ready:
                    try:
                        data, addr = s.recvfrom(64)
                    except (BlockingIOError, ConnectionRefusedError):
                        break
                    assert data == OTHER[side].encode()
                    result.seen[side].add(addr)
        return result
    finally:
        for s in socks.values():
            s.close()


def punch_both_orders(lab: NatLab, stun: StunServer) -> dict[Side, PunchResult]:
    """Host-first and client-first at the same time (distinct sockets: independent flows)."""
    results: dict[Side, PunchResult] = {}
    errors: list[BaseException] = []

    def trial(first: Side) -> None:
        try:
            results[first] = punch(lab, stun, first)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=trial, args=(f,)) for f in ("host", "client")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


# ------------------------------------------------------------------------------ tests


def _link_names(ip_o_link: str) -> set[str]:
    return {line.split(":")[1].strip().split("@")[0] for line in ip_o_link.splitlines()}


def test_setup_is_fast_and_teardown_leaves_nothing(netlab_ok: None) -> None:
    links_before = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    lab = NatLab()
    with lab:
        assert lab.setup_seconds is not None and lab.setup_seconds < 1.0, lab.setup_seconds
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for name in lab.namespaces:
            assert name in listed
        sleeper = lab.popen("host", ["sleep", "60"])
        stun = start_stun(lab)  # never stopped here: the lab stops it and removes its directory
        assert stun.workdir.is_dir()
        routes = lab.run("host", ["ip", "route"], check=True).stdout
        assert "default via 10.1.0.1" in routes
        # loopback is up everywhere
        for ns in ("pub", "nat-h", "nat-c", "host", "client"):
            assert "UP" in lab.run(ns, ["ip", "-br", "link", "show", "lo"]).stdout
    assert sleeper.returncode is not None  # killed at teardown
    assert stun.proc.returncode is not None and not stun.workdir.exists()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert lab.prefix not in listed
    links_after = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert lab.prefix not in links_after
    # the lab never creates interfaces in the root namespace (veths are born in their netns)
    new = _link_names(links_after) - _link_names(links_before)
    assert not new & {"wan0", "lan0", "to-nath", "to-natc", "br0"}, new
    assert not (topology._OWNER_DIR / f"{lab.prefix}.pid").exists()


async def test_async_context_manager(netlab_ok: None) -> None:
    async with NatLab() as lab:
        res = lab.run("client", ["ip", "-br", "addr", "show", "eth0"])
        assert "10.2.0.2/24" in res.stdout
    assert lab.prefix not in subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout


def test_stun_through_the_client_nat(lab: NatLab, stun: StunServer) -> None:
    s = _udp(lab, "client")
    try:
        host, port = stun_mapped(s, stun.address)
        assert host == NAT_PUBLIC_IP["client"] == "203.0.113.12"
        assert port == s.getsockname()[1]  # plain MASQUERADE keeps a free source port
    finally:
        s.close()
    s = _udp(lab, "host")
    try:
        assert stun_mapped(s, stun.address)[0] == "203.0.113.11"
    finally:
        s.close()


@pytest.mark.parametrize("mode", ["eim", "symmetric"])
def test_mapping_per_destination(make_lab: Callable[..., NatLab], mode: str) -> None:
    lab = make_lab(client_nat=mode)
    first = start_stun(lab)
    second = start_stun(lab, address=lab.add_service_address())
    assert second.address[0] == "203.0.113.2"
    s = _udp(lab, "client")
    try:
        a, b = stun_mapped(s, first.address), stun_mapped(s, second.address)
    finally:
        s.close()
    assert a[0] == b[0] == "203.0.113.12"
    if mode == "eim":
        assert a[1] == b[1], (a, b)
    else:
        assert a[1] != b[1], (a, b)


def test_blocked_udp_between_nats_keeps_services_reachable(lab: NatLab, stun: StunServer) -> None:
    lab.block_udp_between_nats(True)
    for side in ("host", "client"):
        s = _udp(lab, side)
        try:
            assert stun_mapped(s, stun.address)[0] == NAT_PUBLIC_IP[side]
        finally:
            s.close()
    results = punch_both_orders(lab, stun)
    for first, r in results.items():
        assert not r.seen["host"] and not r.seen["client"], (first, r)
    lab.block_udp_between_nats(False)
    assert punch(lab, stun, "host").bidirectional


def test_rebind_gives_a_new_port(make_lab: Callable[..., NatLab]) -> None:
    lab = make_lab()
    stun = start_stun(lab)
    other = start_stun(lab, address=lab.add_service_address())
    s = _udp(lab, "client")
    try:
        before = stun_mapped(s, stun.address)
        lo, hi = lab.rebind("client")
        after = stun_mapped(s, stun.address)
        assert after[0] == before[0] == "203.0.113.12"
        assert after[1] != before[1] and lo <= after[1] <= hi, (before, after, lo, hi)
        # still endpoint-independent after the rebind: the new mapping is reused per socket
        assert stun_mapped(s, other.address) == after
        lo2, hi2 = lab.rebind("client")
        again = stun_mapped(s, stun.address)
        assert again[1] != after[1] and lo2 <= again[1] <= hi2
        # the other router is untouched
        h = _udp(lab, "host")
        try:
            assert stun_mapped(h, stun.address)[1] == h.getsockname()[1]
        finally:
            h.close()
    finally:
        s.close()


def test_punching_between_home_routers(make_lab: Callable[..., NatLab]) -> None:
    """Default lab (MASQUERADE + routers dropping unsolicited inbound flows): the punch works
    in both orders and the ports stay the STUN-mapped ones."""
    lab = make_lab()
    stun = start_stun(lab)
    for first, r in punch_both_orders(lab, stun).items():
        assert r.bidirectional, (first, r)
        assert r.ports_kept, (first, r)


def test_punching_between_bare_masquerade_routers_fails(make_lab: Callable[..., NatLab]) -> None:
    """Routers without an inbound filter: the first packet to arrive creates a conntrack entry on
    the other router (addressed to the router itself); that router's own outgoing flow then
    clashes with it, gets another source port, and no packet ever gets through, in either order.
    If this starts passing, the kernel changed its clash handling (update docs/connectivity.md)."""
    lab = make_lab(inbound_filter=False)
    stun = start_stun(lab)
    results = punch_both_orders(lab, stun)
    for first, r in results.items():
        assert not r.seen["host"] and not r.seen["client"], (first, r)
    # the evidence: the client's router holds the host's first packets as an inbound flow to
    # itself, and mapped the client's own flow to the host to another public port
    r = results["host"]
    (_, hport), (_, cport) = r.mapped["host"], r.mapped["client"]
    flows = _flows(lab.conntrack("client"))
    assert ("203.0.113.11", "203.0.113.12", hport, cport) in [o for o, _ in flows], flows
    out = [rep for o, rep in flows if o == ("10.2.0.2", "203.0.113.11", cport, hport)]
    assert len(out) == 1 and out[0][3] != cport, flows


def _flows(table: str) -> list[tuple[tuple[str, str, int, int], tuple[str, str, int, int]]]:
    """``conntrack -L`` lines as (original, reply) tuples of (src, dst, sport, dport)."""
    flows = []
    for line in table.splitlines():
        fields = dict.fromkeys(("src", "dst", "sport", "dport"))
        tuples: list[tuple[str, str, int, int]] = []
        for word in line.split():
            key, _, value = word.partition("=")
            if key in fields:
                fields[key] = value
                if key == "dport":
                    tuples.append((fields["src"], fields["dst"], int(fields["sport"]), int(value)))  # type: ignore[arg-type]
        if len(tuples) == 2:
            flows.append((tuples[0], tuples[1]))
    return flows


@pytest.mark.parametrize("symmetric_side", ["host", "client"])
def test_punching_with_a_symmetric_nat_fails(
    make_lab: Callable[..., NatLab], symmetric_side: str
) -> None:
    kw = {f"{symmetric_side}_nat": "symmetric"}
    lab = make_lab(**kw)
    stun = start_stun(lab)
    for first, r in punch_both_orders(lab, stun).items():
        assert not r.bidirectional, (first, r)


def test_set_nat_switches_mode(lab: NatLab, stun: StunServer) -> None:
    lab.set_nat("host", "symmetric")
    second = start_stun(lab, address=lab.add_service_address())
    s = _udp(lab, "host")
    try:
        assert stun_mapped(s, stun.address)[1] != stun_mapped(s, second.address)[1]
    finally:
        s.close()
    lab.set_nat("host", "eim")
    s = _udp(lab, "host")
    try:
        assert stun_mapped(s, stun.address) == stun_mapped(s, second.address)
    finally:
        s.close()


def test_cleanup_stale_removes_a_dead_owners_lab(netlab_ok: None) -> None:
    lab = NatLab().start()
    try:
        sleeper = lab.popen("client", ["sleep", "60"])
        # the owner was SIGKILLed and nobody has reaped it yet: a zombie counts as dead
        dead = subprocess.Popen(["true"])
        while Path(f"/proc/{dead.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            time.sleep(0.01)
        (topology._OWNER_DIR / f"{lab.prefix}.pid").write_text(f"{dead.pid}\n")
        removed = cleanup_stale(lab.prefix)
        dead.wait()
        assert sorted(removed) == sorted(lab.namespaces)
        assert sleeper.wait(5) == -9  # processes inside the namespace were killed
        listed = subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout
        assert lab.prefix not in listed
    finally:
        lab.close()
    # a live owner's lab is left alone
    with NatLab() as live:
        assert cleanup_stale(live.prefix) == []
        live.check_alive()


def test_services_reachable_over_tcp_from_both_sides(lab: NatLab) -> None:
    server = lab.socket("pub", type=socket.SOCK_STREAM)
    server.bind((SERVICE_IP, 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        for side in ("host", "client"):
            c = lab.socket(side, type=socket.SOCK_STREAM)
            c.settimeout(2)
            c.connect((SERVICE_IP, port))
            conn, peer = server.accept()
            assert peer[0] == NAT_PUBLIC_IP[side]
            conn.close()
            c.close()
    finally:
        server.close()


def test_unavailable_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    real_which = topology.shutil.which
    monkeypatch.setattr(
        topology.shutil, "which", lambda name: None if name == "conntrack" else real_which(name)
    )
    with pytest.raises(NetlabUnavailable) as info:
        check_available()
    text = str(info.value)
    assert "root" in text and "conntrack (apt-get install conntrack" in text
    assert len(info.value.missing) == 2
