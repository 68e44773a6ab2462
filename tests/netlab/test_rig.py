"""The control-plane rig on the NAT lab: gateway + master, relay and coturn in `pub`, alice logged
in on `host`, bob on `client` (real processes, real logins through the NATs)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest

from wavry.netlab import NAT_PUBLIC_IP, NatLab
from wavry.netlab.rig import ControlPlaneRig


@pytest.fixture(scope="module")
def rig(netlab_ok: None) -> Iterator[ControlPlaneRig]:
    with NatLab() as lab, ControlPlaneRig(lab) as rig:
        yield rig


# A native signaling client inside the client namespace: bob watches alice's presence.
_WATCH = """
import asyncio, json, sys
import websockets
from wavry.credentials import TokenStore

async def main():
    rec = TokenStore().load()
    async with websockets.connect(rec.gateway.replace("http", "ws", 1) + "/ws") as ws:
        await ws.send(json.dumps({"type": "BIND", "token": rec.token, "role": "client"}))
        seen = []
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            seen.append(msg["type"])
            if msg["type"] == "BOUND":
                await ws.send(json.dumps({"type": "WATCH", "usernames": ["alice"]}))
            if msg["type"] == "PRESENCE":
                print(json.dumps({"seen": seen, "presence": msg}))
                return

asyncio.run(main())
"""


def test_rig_is_up_with_an_assignable_relay(rig: ControlPlaneRig) -> None:
    assert rig.setup_seconds is not None
    status, relays = rig.http("GET", f"{rig.master_url}/v1/relays")
    assert status == 200
    assert [r["endpoints"] for r in relays] == [[f"{rig.relay_addr[0]}:{rig.relay_addr[1]}"]]
    assert rig.relay_addr == ("203.0.113.2", 4000)
    status, ready = rig.http("GET", f"{rig.master_url}/ready")
    assert status == 200 and ready["relays_assignable"] == 1
    metrics = rig.relay_metrics()
    assert metrics["packets_rx"] == 0 and "packets_forwarded" in metrics


def test_stored_logins_work_from_inside_each_namespace(rig: ControlPlaneRig) -> None:
    for side, username in (("host", "alice"), ("client", "bob")):
        status, doc = rig.http("GET", "/auth/me", ns=side, token=rig.stored_token(side))
        assert status == 200, doc
        assert doc["user"]["username"] == username
        assert doc["user"]["wavry_id"]  # `wavry login` bound this side's identity
    # separate data directories: two identities, two records
    assert rig.stored_token("host") != rig.stored_token("client")
    status, shares = rig.http("GET", "/v1/shares", ns="client", token=rig.stored_token("client"))
    assert status == 200 and [s["username"] for s in shares["shared_by"]] == ["alice"]


def test_host_comes_online_and_bob_sees_its_presence(rig: ControlPlaneRig) -> None:
    host = rig.start_host(["--run-for", "30"])
    try:
        status, metrics = rig.http("GET", "/metrics")
        assert status == 200
        assert "wavry_gateway_signaling_hosts_bound 1" in metrics
        res = rig.lab.run("client", [sys.executable, "-c", _WATCH], env=rig.side_env("client"),
                          timeout=20)  # fmt: skip
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout.strip().splitlines()[-1])
        assert doc["presence"] == {"type": "PRESENCE", "username": "alice", "online": True}
        assert doc["seen"][:2] == ["BOUND", "WATCHING"]
        # the gateway saw the host's signaling connection come from its NAT
        assert f"{NAT_PUBLIC_IP['host']}:" in rig.log_tail("control-plane", 100_000)
        # connect returns whatever the CLI says: an exit status, its JSON report, stderr
        result = rig.connect(timeout=30, seconds=2)
        assert result.returncode is not None, result.stderr_tail
        assert result.json is not None or result.stderr_tail, result
        if result.returncode == 0:
            assert result.json is not None and result.frames_verified > 0, result
    finally:
        assert host.stop() is not None


def test_relay_restart_is_assignable_again(rig: ControlPlaneRig) -> None:
    first = rig.relay
    rig.restart_relay()
    assert rig.relay is not first and rig.relay is not None and rig.relay.alive()
    status, ready = rig.http("GET", f"{rig.master_url}/ready")
    assert status == 200 and ready["relays_assignable"] >= 1
