"""Signaling over a real WebSocket against a real gateway server on loopback."""

from __future__ import annotations

import base64

from tests.gateway.signaling.conftest import Gateway, GatewayFactory
from wavry.gateway.signaling import messages as m
from wavry.rift.identity import Identity
from wavry.rift.proto import rift_pb2

SID = "0b5e7a52-4a8c-4c6e-9d3b-6f0f7f1d2a11"
HOST_ID = Identity.from_seed(b"\x01" * 32).wavry_id
CLIENT_ID = Identity.from_seed(b"\x02" * 32).wavry_id


def hello_b64() -> str:
    hello = rift_pb2.Hello(
        client_name="laptop",
        supported_codecs=[rift_pb2.H264],
        max_resolution=rift_pb2.Resolution(width=1920, height=1080),
        max_fps=60,
        protocol_version=1,
    )
    return m.encode_hello(hello)


async def test_offer_answer_candidates_same_account(gw: Gateway) -> None:
    token = await gw.register("alice")
    host = await gw.bind(token, "host")
    client = await gw.bind(token, "client")
    await client.send(
        {"type": "OFFER_RIFT", "target_username": "alice", "hello_b64": hello_b64(),
         "wavry_id": CLIENT_ID, "session_id": SID}
    )  # fmt: skip
    offer = await host.expect("OFFER_RIFT")
    assert offer == {
        "type": "OFFER_RIFT", "target_username": "alice", "hello_b64": hello_b64(),
        "wavry_id": CLIENT_ID, "session_id": SID,
    }  # fmt: skip
    hello = m.decode_hello(offer["hello_b64"])
    assert hello.max_fps == 60
    ack = m.encode_ack(rift_pb2.HelloAck(accepted=True, selected_codec=rift_pb2.H264, fps=60))
    await host.send(
        {"type": "ANSWER_RIFT", "target_username": "alice", "ack_b64": ack, "wavry_id": HOST_ID,
         "session_id": SID}
    )  # fmt: skip
    answer = await client.expect("ANSWER_RIFT")
    assert answer["wavry_id"] == HOST_ID and m.decode_ack(answer["ack_b64"]).accepted
    cands = [{"addr": "192.0.2.1:5000", "type": "host"}, {"addr": "[2001:db8::1]:5000",
             "type": "srflx"}]  # fmt: skip
    await host.send({"type": "CANDIDATE", "target_username": "alice", "candidates": cands})
    got = await client.expect("CANDIDATE")
    assert got["candidates"] == cands
    await client.send({"type": "CANDIDATE", "target_username": "alice", "candidates": cands[:1]})
    assert (await host.expect("CANDIDATE"))["candidates"] == cands[:1]
    assert base64.b64decode(offer["hello_b64"])
    await host.close()
    await client.close()


async def _pair(gw: Gateway) -> tuple[str, str]:
    """bob (a host owner) shares with carol; dave is a stranger."""
    bob = await gw.register("bob")
    carol = await gw.register("carol")
    await gw.share(bob, "carol")
    return bob, carol


async def test_shared_account_reaches_host_and_target_is_rewritten(gw: Gateway) -> None:
    bob, carol = await _pair(gw)
    host = await gw.bind(bob, "host")
    client = await gw.bind(carol, "client")
    await client.send({"type": "OFFER_RIFT", "target_username": "bob", "hello_b64": hello_b64()})
    offer = await host.expect("OFFER_RIFT")
    assert offer["target_username"] == "carol"  # rewritten to the sender
    await host.send({"type": "ANSWER_RIFT", "target_username": "carol", "ack_b64": "AAAA"})
    answer = await client.expect("ANSWER_RIFT")
    assert answer["target_username"] == "bob"


async def test_refusals_keep_the_connection_open(gw: Gateway) -> None:
    bob, carol = await _pair(gw)
    dave = await gw.register("dave")
    host = await gw.bind(bob, "host")
    stranger = await gw.bind(dave, "client")
    offer = {"type": "OFFER_RIFT", "target_username": "bob", "hello_b64": hello_b64(),
             "session_id": SID}  # fmt: skip
    await stranger.send(offer)
    err = await stranger.expect_error("not_shared")
    assert err["target_username"] == "bob" and err["session_id"] == SID
    await stranger.send({**offer, "target_username": "nobody"})
    await stranger.expect_error("unknown_target")
    await stranger.send({"type": "REQUEST_RELAY", "target_username": "bob"})
    await stranger.expect_error("not_shared")
    await stranger.send(
        {"type": "CANDIDATE", "target_username": "bob",
         "candidates": [{"addr": "192.0.2.1:1", "type": "host"}]}
    )  # fmt: skip
    await stranger.expect_error("not_shared")
    await host.silent()
    # carol is allowed, but bob has no client bound to answer to, and carol's host is offline
    client = await gw.bind(carol, "client")
    await client.send({**offer, "target_username": "carol"})
    await client.expect_error("target_offline")
    # the refusal is in the audit log, without the token
    audit = await gw.http.get("/admin/api/audit", headers={"x-admin-token": "s" * 40})
    events = [e for e in audit.json()["events"] if e["action"] == "signaling_refused"]
    assert events and events[0]["actor"] == "dave" and events[0]["target_id"] == "bob"


async def test_host_may_only_answer_clients_that_offered(gw: Gateway) -> None:
    bob, carol = await _pair(gw)
    host = await gw.bind(bob, "host")
    client = await gw.bind(carol, "client")
    await host.send({"type": "ANSWER_RIFT", "target_username": "carol", "ack_b64": "AAAA"})
    await host.expect_error("no_rendezvous")
    await host.send(
        {"type": "CANDIDATE", "target_username": "carol",
         "candidates": [{"addr": "192.0.2.1:1", "type": "host"}]}
    )  # fmt: skip
    await host.expect_error("no_rendezvous")
    await client.silent()
    # a candidate from carol (through the policy) opens the rendezvous too
    await client.send(
        {"type": "CANDIDATE", "target_username": "bob",
         "candidates": [{"addr": "192.0.2.2:2", "type": "srflx"}]}
    )  # fmt: skip
    await host.expect("CANDIDATE")
    await host.send({"type": "ANSWER_RIFT", "target_username": "carol", "ack_b64": "AAAA"})
    await client.expect("ANSWER_RIFT")


async def test_wrong_role_closes(gw: Gateway) -> None:
    bob = await gw.register("bob")
    host = await gw.bind(bob, "host")
    await host.send({"type": "OFFER_RIFT", "target_username": "bob", "hello_b64": "AAAA"})
    await host.expect_error("wrong_role")
    await host.expect_closed(1008)
    client = await gw.bind(bob, "client")
    await client.send({"type": "ANSWER_RIFT", "target_username": "bob", "ack_b64": "AAAA"})
    await client.expect_error("wrong_role")
    await client.expect_closed(1008)


async def test_presence_watch(gw: Gateway) -> None:
    bob, carol = await _pair(gw)
    await gw.register("eve")
    watcher = await gw.bind(carol, "client")
    await watcher.send({"type": "WATCH", "usernames": ["bob", "eve", "nobody", "bob"]})
    assert (await watcher.expect_error("not_shared"))["target_username"] == "eve"
    assert (await watcher.expect_error("unknown_target"))["target_username"] == "nobody"
    assert (await watcher.expect("WATCHING"))["usernames"] == ["bob"]
    assert await watcher.expect("PRESENCE") == {"type": "PRESENCE", "username": "bob",
                                                "online": False}  # fmt: skip
    host = await gw.bind(bob, "host")
    assert (await watcher.expect("PRESENCE"))["online"] is True
    # a bob *client* is not presence
    bob_client = await gw.bind(bob, "client")
    await watcher.silent()
    await host.close()
    assert (await watcher.expect("PRESENCE"))["online"] is False
    # re-watching reports the current state; [] unsubscribes
    host = await gw.bind(bob, "host")
    await watcher.expect("PRESENCE")
    await watcher.send({"type": "WATCH", "usernames": []})
    assert (await watcher.expect("WATCHING"))["usernames"] == []
    await host.close()
    await watcher.silent()
    await bob_client.close()


async def test_newer_bind_replaces_older(gw: Gateway) -> None:
    bob, carol = await _pair(gw)
    watcher = await gw.bind(carol, "client")
    await watcher.send({"type": "WATCH", "usernames": ["bob"]})
    await watcher.expect("WATCHING")
    await watcher.expect("PRESENCE")
    old = await gw.bind(bob, "host")
    assert (await watcher.expect("PRESENCE"))["online"] is True
    new = await gw.bind(bob, "host")
    err = await old.expect_error("session_replaced")
    assert err["message"] == "Session replaced by a newer connection"
    await old.expect_closed(4000)
    await watcher.silent()  # no offline/online flap
    await watcher.send({"type": "OFFER_RIFT", "target_username": "bob", "hello_b64": "AAAA"})
    await new.expect("OFFER_RIFT")
    # the host and the client binding of one account do not replace each other
    bob_client = await gw.bind(bob, "client")
    await new.silent()
    await bob_client.close()


async def test_logout_and_ban_close_bound_sockets(gw: Gateway) -> None:
    bob, carol = await _pair(gw)
    host = await gw.bind(bob, "host")
    client = await gw.bind(carol, "client")
    resp = await gw.http.post("/auth/logout", headers={"Authorization": f"Bearer {bob}"})
    assert resp.status_code == 200 and resp.json()["revoked"] is True
    await host.expect_error("invalid_token")
    await host.expect_closed(4001)
    carol_id = gw.users["carol"]["user"]["id"]
    resp = await gw.http.post(
        "/admin/api/ban",
        json={"user_id": carol_id, "reason": "abuse"},
        headers={"x-admin-token": "s" * 40},
    )
    assert resp.status_code == 200, resp.text
    await client.expect_error("invalid_token")
    await client.expect_closed(4001)
    # and the revoked token cannot bind again
    peer = await gw.connect()
    await peer.send({"type": "BIND", "token": bob, "role": "host"})
    await peer.expect_error("invalid_token")
    await peer.expect_closed(4001)


async def test_metrics_show_signaling(gw: Gateway) -> None:
    bob = await gw.register("bob")
    host = await gw.bind(bob, "host")
    text = (await gw.http.get("/metrics")).text
    assert "wavry_gateway_websocket_connections 1" in text
    assert "wavry_gateway_signaling_hosts_bound 1" in text
    assert "wavry_gateway_ws_messages_total 1" in text
    await host.close()


async def test_unshare_stops_offers(gateway_factory: GatewayFactory) -> None:
    # without the policy cache an unshare takes effect at the next offer
    async with gateway_factory(signaling={"policy_cache_secs": 0}) as gw:
        bob, carol = await _pair(gw)
        host = await gw.bind(bob, "host")
        client = await gw.bind(carol, "client")
        offer = {"type": "OFFER_RIFT", "target_username": "bob", "hello_b64": "AAAA"}
        await client.send(offer)
        await host.expect("OFFER_RIFT")
        resp = await gw.http.delete("/v1/shares/carol", headers={"Authorization": f"Bearer {bob}"})
        assert resp.status_code == 200, resp.text
        await client.send(offer)
        await client.expect_error("not_shared")
        await host.silent()
