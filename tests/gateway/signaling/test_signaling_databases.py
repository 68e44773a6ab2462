"""The signaling path on both databases: SQLite (the default) and a real PostgreSQL."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.gateway.signaling.conftest import GatewayFactory
from wavry.storage import make_engine, upgrade


async def test_offer_answer_and_policy(
    gateway_factory: GatewayFactory, any_database_url: str
) -> None:
    engine: AsyncEngine = make_engine(any_database_url)
    try:
        await upgrade(engine)
        async with gateway_factory(engine=engine) as gw:
            bob, carol, dave = [await gw.register(n) for n in ("bob", "carol", "dave")]
            await gw.share(bob, "carol")
            host = await gw.bind(bob, "host")
            client = await gw.bind(carol, "client")
            stranger = await gw.bind(dave, "client")
            offer = {"type": "OFFER_RIFT", "target_username": "bob", "hello_b64": "AAAA"}
            await stranger.send(offer)
            await stranger.expect_error("not_shared")
            await client.send(offer)
            assert (await host.expect("OFFER_RIFT"))["target_username"] == "carol"
            await host.send({"type": "ANSWER_RIFT", "target_username": "carol", "ack_b64": "AAAA"})
            await client.expect("ANSWER_RIFT")
            await host.silent(0.1)
    finally:
        await engine.dispose()
