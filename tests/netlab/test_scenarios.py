"""Issue #6's scenarios across real NATs: host and client each behind its own NAT router
namespace, gateway + master + relay + coturn on the "public" network, the real `wavry host
--gateway` and `wavry connect alice` processes (docs/connectivity.md, "NAT lab").

Every scenario asserts pictures flowing end to end: decoded frames whose test-pattern barcode
carries their own capture time (``frames_verified``), not just a handshake.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from wavry.netlab import NAT_PUBLIC_IP, NatLab, start_stun
from wavry.netlab.rig import ConnectResult, ControlPlaneRig, RigProcess

FPS = 30


@pytest.fixture(scope="module")
def rig(netlab_ok: None) -> Iterator[ControlPlaneRig]:
    with NatLab() as lab:
        stun = start_stun(lab)
        with ControlPlaneRig(lab, stun=stun) as rig:
            yield rig


@pytest.fixture
def host(rig: ControlPlaneRig) -> Iterator[RigProcess]:
    """A fresh `wavry host --gateway` per scenario, NATs back to endpoint-independent after."""
    lab = rig.lab
    proc = rig.start_host()
    try:
        yield proc
    finally:
        proc.stop()
        for side in ("host", "client"):
            lab.set_nat(side, "eim")  # type: ignore[arg-type]
            lab.flush_udp_mappings(side)  # type: ignore[arg-type]
        lab.block_udp_between_nats(False)
        if not rig.relay_alive():
            rig.start_relay()
            rig.wait_relay_assignable()


def _ok(res: ConnectResult, host: RigProcess) -> dict:
    assert res.returncode == 0 and res.json is not None, (
        f"connect failed ({res.returncode}):\n{res.stderr_tail}\n--- host:\n{host.tail()}"
    )
    doc = res.json
    # no picture with wrong or broken content; low quality ("blurred": a keyframe squeezed into
    # the collapsed bitrate after an outage) only for a few frames
    assert doc["frames_damaged"] == 0, doc
    assert doc["frames_verified"] + doc["frames_blurred"] == doc["frames_presented"], doc
    assert doc["frames_verified"] >= 0.8 * doc["frames_presented"], doc
    return doc


def _relay_forwarded(rig: ControlPlaneRig) -> float:
    return rig.relay_metrics().get("packets_forwarded", 0.0)


def test_both_nats_endpoint_independent_punch_a_direct_path(
    rig: ControlPlaneRig, host: RigProcess
) -> None:
    before = rig.relay_metrics()
    res = rig.connect(["--same-clock"], seconds=3.0)
    doc = _ok(res, host)
    assert doc["relayed"] is False
    # the host's NAT-reflexive address: the path goes through both NATs, punched
    assert doc["path"].startswith(f"srflx {NAT_PUBLIC_IP['host']}:"), doc["path"]
    assert doc["frames_verified"] >= 2 * FPS
    assert doc["relay_requested_ms"] is None
    after = rig.relay_metrics()
    assert after.get("packets_rx", 0) == before.get("packets_rx", 0)  # no relay traffic at all
    assert doc["first_frame_ms"] < 1000  # the direct target


@pytest.mark.parametrize("case", ["client_symmetric", "host_symmetric", "udp_blocked"])
def test_no_direct_path_falls_back_to_the_relay(
    rig: ControlPlaneRig, host: RigProcess, case: str
) -> None:
    if case == "udp_blocked":
        rig.lab.block_udp_between_nats(True)
    else:
        rig.lab.set_nat(case.split("_")[0], "symmetric")  # type: ignore[arg-type]
    forwarded = _relay_forwarded(rig)
    res = rig.connect(["--same-clock"], seconds=3.0)
    doc = _ok(res, host)
    assert doc["relayed"] is True, doc["path"]
    assert doc["relay_id"] and doc["path"].endswith(f"@{rig.relay_addr[0]}:{rig.relay_addr[1]}")
    assert doc["frames_verified"] >= 1.5 * FPS
    assert _relay_forwarded(rig) - forwarded >= 2 * doc["frames_verified"]  # media went through
    assert doc["first_frame_ms"] < 2000  # the relayed target
    # the client reported the relayed session's quality, signed, through the gateway
    assert (doc["feedback"] or "").startswith("sent: "), doc["feedback"]


def _master_relay(rig: ControlPlaneRig) -> dict:
    status, relays = rig.http("GET", f"{rig.master_url}/v1/relays")
    assert status == 200
    (relay,) = relays
    return relay


def test_relay_feedback_moves_the_masters_scores(rig: ControlPlaneRig, host: RigProcess) -> None:
    before = _master_relay(rig)
    rig.lab.block_udp_between_nats(True)
    res = rig.connect(seconds=2.0)
    doc = _ok(res, host)
    assert doc["relayed"] is True and doc["feedback"].startswith("sent: ")
    after = _master_relay(rig)
    counts = ("success_count", "failure_count")
    assert sum(after[k] for k in counts) == sum(before[k] for k in counts) + 1, (before, after)
    assert after["feedback_score"] != before["feedback_score"]


def _streaming(run_started: float, seconds: float) -> None:
    time.sleep(max(0.0, run_started + seconds - time.monotonic()))


@pytest.mark.parametrize("side", ["client", "host"])
def test_a_nat_rebinding_mid_stream_keeps_the_session(
    rig: ControlPlaneRig, host: RigProcess, side: str
) -> None:
    """The NAT's mappings are flushed and its UDP leaves from a new port range: the session
    continues on the new port (adopted only after an authenticated packet)."""
    seconds = 7.0
    run = rig.spawn_connect(["--same-clock"], seconds=seconds)
    _streaming(run.started, 3.0)  # connected and streaming by now
    lo, hi = rig.lab.rebind(side)  # type: ignore[arg-type]
    rebound_at = time.monotonic() - run.started
    res = run.result(timeout=30)
    doc = _ok(res, host)
    assert doc["relayed"] is False, doc["path"]
    # before the rebind at most ~3 s of pictures existed: the rest came after it
    before_rebind = rebound_at * FPS
    assert doc["frames_verified"] >= before_rebind + 2 * FPS, (doc, res.stderr_tail)
    if side == "client":
        # the host adopted the client's new source port
        assert "client moved from" in host.tail(), host.tail()
        moved = [ln for ln in host.tail().splitlines() if "client moved from" in ln][-1]
        new_port = int(moved.rsplit(":", 1)[1])
        assert lo <= new_port <= hi, moved
        assert doc["regathers"] >= 1
    else:
        assert doc["address_changes"] >= 1  # the client adopted the host's new port


def test_a_relay_restart_mid_stream_recovers(rig: ControlPlaneRig, host: RigProcess) -> None:
    seconds = 8.0
    run = rig.spawn_connect(["--relay", "--same-clock"], seconds=seconds)
    _streaming(run.started, 3.0)
    rig.restart_relay()
    restarted_at = time.monotonic() - run.started
    res = run.result(timeout=30)
    doc = _ok(res, host)
    assert doc["relayed"] is True
    assert doc["frames_verified"] >= restarted_at * FPS + 2 * FPS, (doc, res.stderr_tail)
    assert rig.relay_metrics().get("packets_forwarded", 0) >= 2 * FPS  # the new relay process


def test_a_relay_replaced_mid_stream_moves_the_session(
    rig: ControlPlaneRig, host: RigProcess
) -> None:
    """The relay comes back as another relay (new id): it refuses the old leases, so both
    peers move to a new relay session through the gateway and the pictures continue."""
    # the master may hand out the dead relay's id again until it has missed 3 heartbeats
    # (1 s each here): a move can take two tries
    seconds = 15.0
    run = rig.spawn_connect(["--relay"], seconds=seconds)
    _streaming(run.started, 3.0)
    rig.restart_relay(relay_id=f"replacement-{time.monotonic_ns()}")
    replaced_at = time.monotonic() - run.started
    res = run.result(timeout=40)
    rig.restart_relay()  # back to the relay's own id for the next scenarios
    doc = _ok(res, host)
    assert doc["relayed"] is True and doc["relay_moves"] >= 1, res.stderr_tail
    assert doc["relay_id"].startswith("replacement-"), doc["relay_id"]
    assert doc["frames_verified"] >= replaced_at * FPS + 2 * FPS, (doc, res.stderr_tail)


def test_two_stun_servers_tell_a_symmetric_nat_and_the_relay_comes_early(
    rig: ControlPlaneRig, host: RigProcess
) -> None:
    """With two STUN servers the client sees its NAT give each destination its own port, so
    it gives hole punching 0.25 s instead of 1 s before asking for a relay."""
    second = start_stun(rig.lab, address=rig.lab.add_service_address())
    servers = {"WAVRY_STUN_SERVERS": f"{rig.stun_env},{second.env_value}"}
    try:
        res = rig.connect(env=servers, seconds=2.0)  # both NATs endpoint-independent
        doc = _ok(res, host)
        assert doc["nat_mapping"] == "endpoint-independent" and doc["relayed"] is False
        rig.lab.set_nat("client", "symmetric")
        res = rig.connect(env=servers, seconds=2.0)
        doc = _ok(res, host)
        assert doc["nat_mapping"] == "endpoint-dependent", res.stderr_tail
        assert doc["relayed"] is True
        assert doc["relay_requested_ms"] < 700 and doc["first_frame_ms"] < 900, doc
    finally:
        second.stop()


def test_a_nat_rebinding_on_a_relayed_path_keeps_the_session(
    rig: ControlPlaneRig, host: RigProcess
) -> None:
    """Through a relay the client's new port reaches the relay, which drops FORWARDs from an
    unknown address: the client's link notices the silence, presents its lease again from the
    new port, and the relay moves the peer (only a lease moves a peer)."""
    seconds = 7.0
    run = rig.spawn_connect(["--relay"], seconds=seconds)
    _streaming(run.started, 3.0)
    rig.lab.rebind("client")
    rebound_at = time.monotonic() - run.started
    res = run.result(timeout=30)
    doc = _ok(res, host)
    assert doc["relayed"] is True and doc["relay_moves"] == 0, res.stderr_tail
    assert doc["frames_verified"] >= rebound_at * FPS + 2 * FPS, (doc, res.stderr_tail)


def test_a_host_behind_a_symmetric_nat_says_so_and_the_relay_comes_early(
    rig: ControlPlaneRig,
) -> None:
    """The host probes its own NAT with two STUN servers and puts ``nat_mapping`` in its
    CANDIDATE: a client (one STUN server, it cannot tell by itself) relays after 0.25 s."""
    lab = rig.lab
    second = start_stun(lab, address=lab.add_service_address())
    lab.set_nat("host", "symmetric")
    lab.flush_udp_mappings("host")
    host = rig.start_host(env={"WAVRY_STUN_SERVERS": f"{rig.stun_env},{second.env_value}"})
    try:
        deadline = time.monotonic() + 10
        while "this host's NAT mapping: endpoint-dependent" not in host.tail():
            assert time.monotonic() < deadline, host.tail()
            time.sleep(0.05)
        res = rig.connect(seconds=2.0)
        doc = _ok(res, host)
        assert doc["relayed"] is True
        assert doc["relay_requested_ms"] < 700 and doc["first_frame_ms"] < 900, doc
    finally:
        host.stop()
        second.stop()
        lab.set_nat("host", "eim")
        lab.flush_udp_mappings("host")
