"""Property tests of the hub (sans-IO-ish): arbitrary message sequences from several sockets
never crash it and never break its invariants; arbitrary deliveries and channel frames are
harmless. The account side is an in-memory directory with the gateway's policy semantics."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.gateway.ratelimit import InMemoryRateLimiter
from wavry.gateway.sessions import Principal
from wavry.gateway.signaling import messages as m
from wavry.gateway.signaling.fanout import LocalFanout
from wavry.gateway.signaling.hub import CloseFrame, Conn, Hub
from wavry.gateway.signaling.redis_backend import _decode
from wavry.gateway.signaling.settings import SignalingSettings

USERS = ["alice", "bob", "carol"]
TOKENS = {f"{name}-token-{'x' * 32}": name for name in USERS}
#: owner -> accounts it shares with
SHARES = {"alice": {"bob"}, "bob": set(), "carol": {"alice", "bob"}}


def allowed(sender: str, target: str) -> bool:
    return sender == target or sender in SHARES.get(target, set())


class Directory:
    async def resolve_token(self, token: str) -> Principal | None:
        name = TOKENS.get(token)
        return None if name is None else Principal(user_id=f"id-{name}", username=name,
                                                   token_hash=f"h-{name}")  # fmt: skip

    async def may_connect(self, sender: Principal, target_username: str) -> tuple[bool, str]:
        if target_username not in SHARES:
            return False, "unknown_target"
        return (True, "ok") if allowed(sender.username, target_username) else (False, "not_shared")


names = st.sampled_from([*USERS, "nobody"])
messages = st.one_of(
    st.builds(m.Bind, token=st.sampled_from([*TOKENS, "z" * 40]),
              role=st.sampled_from(["host", "client"])),
    st.builds(m.Watch, usernames=st.lists(names, max_size=4)),
    st.builds(m.OfferRift, target_username=names, hello_b64=st.just("AAAA")),
    st.builds(m.AnswerRift, target_username=names, ack_b64=st.just("AAAA")),
    st.builds(m.Candidate, target_username=names,
              candidates=st.just([m.CandidateEntry(addr="192.0.2.1:1", type="host")])),
    st.builds(m.RequestRelay, target_username=names),
)  # fmt: skip


def _hub(queue: int = 16) -> Hub:
    return Hub(
        settings=SignalingSettings(send_queue=queue, bind_rate_limit=10**6),
        directory=Directory(),
        fanout=LocalFanout(),
        limiter=InMemoryRateLimiter(clock=lambda: 0.0),
        clock=lambda: 0.0,
        monotonic=lambda: 0.0,
    )


def _drain(conn: Conn) -> list[Any]:
    out = []
    while not conn.outbox.empty():
        item = conn.outbox.get_nowait()
        out.append(item if isinstance(item, CloseFrame) else json.loads(item))
    return out


@settings(max_examples=150)
@given(st.lists(st.tuples(st.integers(0, 4), messages), max_size=40))
def test_message_sequences_keep_invariants(steps: list[tuple[int, m.InboundMessage]]) -> None:
    async def run() -> None:
        hub = _hub()
        await hub.fanout.start(hub.deliver)
        conns = [hub.open(f"198.51.100.{i}") for i in range(5)]
        for index, msg in steps:
            conn = conns[index]
            if conn.closing:  # the adapter stops reading a closing socket and forgets it
                await hub.close(conn)
                conn = conns[index] = hub.open(conn.ip)
            await hub.handle(conn, msg)
            live = [c for c in hub.conns.values() if c.bound and not c.closing]
            keys = [c.key for c in live]
            assert len(keys) == len(set(keys)), "two live sockets for one (account, role)"
            for c in hub.conns.values():
                assert c.outbox.qsize() <= hub.settings.send_queue + 2
                for item in _drain(c):
                    if isinstance(item, CloseFrame) or item["type"] != "OFFER_RIFT":
                        continue
                    # an offer only ever reaches a host its sender may reach
                    assert c.role == "host" and allowed(item["target_username"], c.username)

    asyncio.run(run())


deliveries = st.dictionaries(
    st.sampled_from(["k", "owner", "m", "from", "rdv", "u", "online", "user", "hashes"]),
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30),
              st.sampled_from(["msg", "replace", "presence", "revoke"]),
              st.lists(st.text(max_size=10), max_size=3)),
)  # fmt: skip


@given(st.lists(deliveries, max_size=20))
def test_arbitrary_deliveries_are_harmless(items: list[dict[str, Any]]) -> None:
    async def run() -> None:
        hub = _hub()
        conn = hub.open("198.51.100.1")
        await hub.handle(conn, m.Bind(token=next(iter(TOKENS)), role="host"))
        for item in items:
            if item.get("owner") == "self":
                item["owner"] = f"{hub.fanout.node_id}/{conn.id}"
            await hub.deliver(item)

    asyncio.run(run())


@given(st.binary(max_size=512) | st.text(max_size=512))
def test_channel_frames_never_crash(data: bytes | str) -> None:
    result = _decode(data)
    assert result is None or isinstance(result, dict)
