"""Relay state machine (pure) and the sweeper against the database with an injected clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from wavry.master.registry import (
    InvalidTransition,
    RegistrationRefused,
    Registry,
    RegistryConfig,
    RelayState,
    admin_transition,
    heartbeat_transition,
)
from wavry.storage import Relay, make_sessionmaker

CFG = RegistryConfig(probation_heartbeats=3, degraded_load_pct=95)
T0 = 1_000_000.0


def test_new_relay_earns_active_through_probation() -> None:
    state, healthy = RelayState.NEW, 0
    seen = []
    for _ in range(4):
        state, healthy = heartbeat_transition(state, healthy, 10, CFG)
        seen.append(state)
    assert seen == [
        RelayState.PROBATION,
        RelayState.PROBATION,
        RelayState.ACTIVE,
        RelayState.ACTIVE,
    ]


def test_load_degrades_and_recovers() -> None:
    assert heartbeat_transition(RelayState.ACTIVE, 5, 95, CFG) == (RelayState.DEGRADED, 5)
    assert heartbeat_transition(RelayState.DEGRADED, 5, 94, CFG) == (RelayState.ACTIVE, 6)
    assert heartbeat_transition(RelayState.DEGRADED, 0, 10, CFG) == (RelayState.PROBATION, 1)


def test_draining_stays_draining_and_banned_never_heartbeats() -> None:
    assert heartbeat_transition(RelayState.DRAINING, 2, 10, CFG) == (RelayState.DRAINING, 2)
    with pytest.raises(InvalidTransition):
        heartbeat_transition(RelayState.BANNED, 0, 10, CFG)


@given(
    state=st.sampled_from([s for s in RelayState if s is not RelayState.BANNED]),
    healthy=st.integers(0, 10),
    load=st.integers(0, 100),
)
def test_heartbeat_never_bans_or_quarantines(state: RelayState, healthy: int, load: int) -> None:
    new, count = heartbeat_transition(state, healthy, load, CFG)
    assert new not in (RelayState.BANNED, RelayState.QUARANTINED, RelayState.NEW)
    assert count >= healthy
    if state is not RelayState.DRAINING and load >= CFG.degraded_load_pct:
        assert new is RelayState.DEGRADED


def test_admin_transitions() -> None:
    for target in (RelayState.NEW, RelayState.DEGRADED, RelayState.QUARANTINED):
        with pytest.raises(InvalidTransition):
            admin_transition(RelayState.ACTIVE, target)
    assert admin_transition(RelayState.ACTIVE, RelayState.DRAINING) is RelayState.DRAINING
    assert admin_transition(RelayState.BANNED, RelayState.PROBATION) is RelayState.PROBATION
    with pytest.raises(InvalidTransition):
        admin_transition(RelayState.BANNED, RelayState.ACTIVE)


async def _register(registry: Registry, session, relay_id: str, ip: str, now: float) -> Relay:  # type: ignore[no-untyped-def]
    return await registry.register(
        session,
        relay_id=relay_id,
        endpoints=[f"{ip}:4000"],
        region=None,
        asn=None,
        max_sessions=10,
        max_bitrate_kbps=20_000,
        features=[],
        now=now,
    )


async def test_sweeper_quarantines_then_purges_with_injected_clock(engine: AsyncEngine) -> None:
    # assignable_max_age as long as quarantine: this test is about the sweeper's bookkeeping
    registry = Registry(
        RegistryConfig(quarantine_after=120.0, purge_after=600.0, assignable_max_age=120.0)
    )
    maker = make_sessionmaker(engine)
    async with maker() as s, s.begin():
        for n, rid in enumerate(("quiet", "chatty", "banned", "draining")):
            await _register(registry, s, rid, f"192.0.2.{n + 1}", T0)
        await registry.set_state(s, "banned", RelayState.BANNED)
        await registry.set_state(s, "draining", RelayState.DRAINING)

    async with maker() as s, s.begin():
        await registry.heartbeat(s, relay_id="chatty", load_pct=1, now=T0 + 100)
        result = await registry.sweep(s, T0 + 120.0)
    assert result.quarantined == () and result.purged == ()  # exactly at the limit: not yet

    async with maker() as s, s.begin():
        result = await registry.sweep(s, T0 + 120.5)
        assert result.quarantined == ("quiet",)
        assert [r.relay_id for r in await registry.assignable(s, T0 + 120.5)] == ["chatty"]
        # with the default 15 s (3 missed heartbeats) chatty, silent for 20.5 s, is not offered
        strict = Registry(RegistryConfig(quarantine_after=120.0))
        assert await strict.assignable(s, T0 + 120.5) == []

    # a quarantined relay's next heartbeat puts it back on probation, not straight to active
    async with maker() as s, s.begin():
        relay = await registry.heartbeat(s, relay_id="quiet", load_pct=1, now=T0 + 130)
        assert relay.state == RelayState.PROBATION and relay.healthy_heartbeats == 1

    async with maker() as s, s.begin():
        result = await registry.sweep(s, T0 + 600.5)
        # chatty last seen at T0+100 is quarantined; the silent ones purged, except the banned
        assert result.purged == ("draining",)
        assert result.quarantined == ("chatty", "quiet")
    async with maker() as s, s.begin():
        result = await registry.sweep(s, T0 + 731.0)
        assert result.purged == ("chatty", "quiet")
        assert [r.relay_id for r in await registry.all(s)] == ["banned"]


async def test_reregistration_keeps_draining_and_refuses_banned(engine: AsyncEngine) -> None:
    registry = Registry(RegistryConfig())
    maker = make_sessionmaker(engine)
    async with maker() as s, s.begin():
        await _register(registry, s, "d", "192.0.2.1", T0)
        await registry.set_state(s, "d", RelayState.DRAINING)
        relay = await _register(registry, s, "d", "192.0.2.1", T0 + 1)
        assert relay.state == RelayState.DRAINING
        await _register(registry, s, "b", "192.0.2.2", T0)
        await registry.set_state(s, "b", RelayState.BANNED)
        with pytest.raises(RegistrationRefused) as info:
            await _register(registry, s, "b", "192.0.2.2", T0 + 1)
        assert info.value.status == 403


async def test_banned_relays_do_not_count_against_the_subnet(engine: AsyncEngine) -> None:
    registry = Registry(RegistryConfig(sybil_max_per_subnet=1))
    maker = make_sessionmaker(engine)
    async with maker() as s, s.begin():
        await _register(registry, s, "a", "192.0.2.1", T0)
        with pytest.raises(RegistrationRefused):
            await _register(registry, s, "b", "192.0.2.2", T0)
        await registry.set_state(s, "a", RelayState.BANNED)
        await _register(registry, s, "b", "192.0.2.2", T0)
