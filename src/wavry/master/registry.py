"""Relay registry: the state machine, registration with the sybil limit, heartbeats, the sweeper.

States::

    new ──heartbeat──▶ probation ──N healthy heartbeats──▶ active
     │                    ▲  │                              │  ▲
     │                    │  └──load >= degraded_pct──▶ degraded (back when load drops)
     └─silent > quarantine_after─▶ quarantined ──heartbeat──▶ probation (earns trust again)
    any ──admin──▶ draining (heartbeats keep it draining; never assigned)
    any ──admin──▶ banned (register/heartbeat refused; never purged, so the ban sticks)
    banned ──admin──▶ probation (unban)
    silent > purge_after (and not banned) ──▶ row deleted

The transition functions are pure; ``Registry`` applies them to the database with the clock the
caller passes in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wavry.master.addresses import EndpointError, parse_endpoint, subnet_of
from wavry.storage.models import Relay

__all__ = [
    "ADMIN_TARGETS",
    "ASSIGNABLE_STATES",
    "InvalidTransition",
    "RegistrationRefused",
    "RegistryConfig",
    "Registry",
    "RelayState",
    "SweepResult",
    "admin_transition",
    "heartbeat_transition",
]


class RelayState(StrEnum):
    NEW = "new"
    PROBATION = "probation"
    ACTIVE = "active"
    DEGRADED = "degraded"
    DRAINING = "draining"
    QUARANTINED = "quarantined"
    BANNED = "banned"


#: States a lease may be issued on (and only when seen within ``quarantine_after``).
ASSIGNABLE_STATES = frozenset(
    {RelayState.NEW, RelayState.PROBATION, RelayState.ACTIVE, RelayState.DEGRADED}
)
#: States an administrator may set; the others are reached only by events.
ADMIN_TARGETS = frozenset(
    {RelayState.DRAINING, RelayState.BANNED, RelayState.ACTIVE, RelayState.PROBATION}
)


class InvalidTransition(ValueError):
    """An administrator asked for a transition the state machine does not have."""


class RegistrationRefused(Exception):
    """Registration or heartbeat refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    probation_heartbeats: int = 3
    degraded_load_pct: int = 95
    quarantine_after: float = 120.0
    purge_after: float = 600.0
    sybil_max_per_subnet: int = 5
    ipv4_prefix: int = 24
    ipv6_prefix: int = 48
    min_bitrate_kbps: int = 10_000
    #: relays unseen for longer are not offered (3 missed heartbeats; never above quarantine)
    assignable_max_age: float = 15.0


def heartbeat_transition(
    state: RelayState, healthy: int, load_pct: int, cfg: RegistryConfig
) -> tuple[RelayState, int]:
    """State and healthy-heartbeat count after a heartbeat. Banned relays never get here."""
    if state is RelayState.BANNED:
        raise InvalidTransition("a banned relay does not heartbeat")
    if state is RelayState.DRAINING:
        return state, healthy
    if load_pct >= cfg.degraded_load_pct:
        return RelayState.DEGRADED, healthy
    healthy += 1
    if healthy >= cfg.probation_heartbeats:
        return RelayState.ACTIVE, healthy
    return RelayState.PROBATION, healthy


def admin_transition(state: RelayState, target: RelayState) -> RelayState:
    if target not in ADMIN_TARGETS:
        raise InvalidTransition(
            f"{target.value!r} is reached by events only; an administrator may set "
            + ", ".join(sorted(s.value for s in ADMIN_TARGETS))
        )
    if state is RelayState.BANNED and target not in (RelayState.BANNED, RelayState.PROBATION):
        raise InvalidTransition("a banned relay can only be unbanned into probation")
    return target


@dataclass(frozen=True, slots=True)
class SweepResult:
    quarantined: tuple[str, ...]
    purged: tuple[str, ...]


class Registry:
    """Relay rows in the database, changed only through the state machine above."""

    def __init__(self, cfg: RegistryConfig) -> None:
        self.cfg = cfg

    async def register(
        self,
        session: AsyncSession,
        *,
        relay_id: str,
        endpoints: Sequence[str],
        region: str | None,
        asn: int | None,
        max_sessions: int,
        max_bitrate_kbps: int,
        features: Sequence[str],
        now: float,
    ) -> Relay:
        if not relay_id.strip():
            raise RegistrationRefused(400, "relay_id must not be empty")
        if not endpoints:
            raise RegistrationRefused(400, "endpoints must not be empty")
        try:
            parsed = [parse_endpoint(e) for e in endpoints]
        except EndpointError as exc:
            raise RegistrationRefused(400, str(exc)) from None
        if max_bitrate_kbps < self.cfg.min_bitrate_kbps:
            raise RegistrationRefused(
                400,
                f"relay must support at least {self.cfg.min_bitrate_kbps} kbps "
                f"(max_bitrate_kbps={max_bitrate_kbps})",
            )
        subnet = subnet_of(
            parsed[0], ipv4_prefix=self.cfg.ipv4_prefix, ipv6_prefix=self.cfg.ipv6_prefix
        )
        existing = await session.get(Relay, relay_id)
        if existing is not None and existing.state == RelayState.BANNED:
            raise RegistrationRefused(403, "relay is banned")
        if self.cfg.sybil_max_per_subnet > 0:
            count = await session.scalar(
                select(func.count())
                .select_from(Relay)
                .where(
                    Relay.subnet == subnet,
                    Relay.relay_id != relay_id,
                    Relay.state != RelayState.BANNED,
                )
            )
            if (count or 0) >= self.cfg.sybil_max_per_subnet:
                raise RegistrationRefused(
                    403,
                    f"too many relays in {subnet} (limit {self.cfg.sybil_max_per_subnet})",
                )
        canonical = [str(e) for e in parsed]
        if existing is None:
            relay = Relay(
                relay_id=relay_id,
                registered_at=now,
                success_count=0,
                failure_count=0,
                feedback_score=50.0,
            )
            session.add(relay)
        else:
            relay = existing
        relay.endpoints = canonical
        relay.subnet = subnet
        relay.region = region
        relay.asn = asn
        relay.max_sessions = max_sessions
        relay.max_bitrate_kbps = max_bitrate_kbps
        relay.features = list(features)
        relay.load_pct = 0
        relay.last_seen = now
        if existing is None or existing.state != RelayState.DRAINING:
            relay.state = RelayState.NEW
            relay.healthy_heartbeats = 0
        await session.flush()
        return relay

    async def heartbeat(
        self, session: AsyncSession, *, relay_id: str, load_pct: int, now: float
    ) -> Relay:
        relay = await session.get(Relay, relay_id)
        if relay is None:
            raise RegistrationRefused(404, "unknown relay; register again")
        state = RelayState(relay.state)
        if state is RelayState.BANNED:
            raise RegistrationRefused(403, "relay is banned")
        new_state, healthy = heartbeat_transition(
            state, relay.healthy_heartbeats, load_pct, self.cfg
        )
        relay.state = new_state
        relay.healthy_heartbeats = healthy
        relay.load_pct = load_pct
        relay.last_seen = now
        await session.flush()
        return relay

    async def set_state(self, session: AsyncSession, relay_id: str, target: RelayState) -> Relay:
        relay = await session.get(Relay, relay_id)
        if relay is None:
            raise RegistrationRefused(404, "unknown relay")
        new_state = admin_transition(RelayState(relay.state), target)
        if new_state is RelayState.PROBATION:
            relay.healthy_heartbeats = 0
        relay.state = new_state
        await session.flush()
        return relay

    async def sweep(self, session: AsyncSession, now: float) -> SweepResult:
        """Quarantine relays silent past ``quarantine_after``; delete those silent past
        ``purge_after`` (banned rows stay so the ban sticks)."""
        purge_before = now - self.cfg.purge_after
        purged = (
            await session.scalars(
                delete(Relay)
                .where(Relay.last_seen < purge_before, Relay.state != RelayState.BANNED)
                .returning(Relay.relay_id)
            )
        ).all()
        quarantine_before = now - self.cfg.quarantine_after
        quarantined = (
            await session.scalars(
                update(Relay)
                .where(
                    Relay.last_seen < quarantine_before,
                    Relay.state.in_([s.value for s in ASSIGNABLE_STATES]),
                )
                .values(state=RelayState.QUARANTINED, healthy_heartbeats=0)
                .returning(Relay.relay_id)
            )
        ).all()
        return SweepResult(quarantined=tuple(sorted(quarantined)), purged=tuple(sorted(purged)))

    async def all(self, session: AsyncSession) -> list[Relay]:
        return list((await session.scalars(select(Relay).order_by(Relay.relay_id))).all())

    async def assignable(self, session: AsyncSession, now: float) -> list[Relay]:
        rows = await session.scalars(
            select(Relay).where(
                Relay.state.in_([s.value for s in ASSIGNABLE_STATES]),
                Relay.last_seen
                >= now - min(self.cfg.assignable_max_age, self.cfg.quarantine_after),
            )
        )
        return list(rows.all())
