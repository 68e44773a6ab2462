"""Relay sessions and their leases: one lease per peer, each with the role THAT peer presents.

The original gave the requester ``role="server"`` and the target ``"client"`` while the native
client always presents as client, so the requester's lease failed the relay's role check. Here the
requester says which role it will present (``client`` by default: the side that connects) and the
target gets the other one. Each peer fetches only its own lease, authenticated as itself: the
requester in the response to ``POST /v1/sessions``, the target from
``POST /v1/sessions/{id}/lease`` — a lease never travels through the other peer.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from wavry.master.keys import MasterKeys
from wavry.master.registry import Registry
from wavry.master.selection import RelaySnapshot, SelectionConfig, candidates, pick
from wavry.relay.lease import LeaseClaims, sign_lease
from wavry.storage.models import Identity, Relay, RelaySession

__all__ = ["IssuedLease", "LeaseConfig", "LeaseIssuer", "LeaseRefused", "other_role"]

ROLES = ("client", "server")
#: session rows are kept this long past expiry so peers can still send feedback
FEEDBACK_WINDOW = 3600.0


class LeaseRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def other_role(role: str) -> str:
    return "server" if role == "client" else "client"


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    ttl: float = 900.0
    soft_kbps: int = 50_000
    hard_kbps: int = 100_000


@dataclass(frozen=True, slots=True)
class IssuedLease:
    session_id: str
    relay_id: str
    relay_addr: str
    wavry_id: str
    role: str
    token: str
    key_id: str
    issued_at: float
    expires_at: float
    soft_kbps: int
    hard_kbps: int


def _snapshot(relay: Relay) -> RelaySnapshot:
    return RelaySnapshot(
        relay_id=relay.relay_id,
        state=relay.state,
        load_pct=relay.load_pct,
        last_seen=relay.last_seen,
        success_count=relay.success_count,
        failure_count=relay.failure_count,
        feedback_score=relay.feedback_score,
        region=relay.region,
        asn=relay.asn,
    )


class LeaseIssuer:
    def __init__(
        self,
        cfg: LeaseConfig,
        keys: MasterKeys,
        registry: Registry,
        selection: SelectionConfig,
        *,
        rng: random.Random | None = None,
        uuid_factory: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        self.cfg = cfg
        self.keys = keys
        self.registry = registry
        self.selection = selection
        self._rng = rng or random.Random()
        self._uuid = uuid_factory

    def _lease(
        self, row: RelaySession, relay: Relay, wavry_id: str, now: float, role: str | None = None
    ) -> IssuedLease:
        if role is None:
            role = (
                row.requester_role if wavry_id == row.requester else other_role(row.requester_role)
            )
        expires = min(row.expires_at, now + self.cfg.ttl)
        claims = LeaseClaims(
            sub=wavry_id,
            sid=row.session_id,
            role=role,
            rid=relay.relay_id,
            iat=now,
            nbf=now,
            exp=expires,
            slimit=self.cfg.soft_kbps,
            hlimit=self.cfg.hard_kbps,
        )
        token = sign_lease(claims, self.keys.seed, self.keys.kid)
        return IssuedLease(
            session_id=row.session_id,
            relay_id=relay.relay_id,
            relay_addr=relay.endpoints[0],
            wavry_id=wavry_id,
            role=role,
            token=token,
            key_id=self.keys.kid,
            issued_at=now,
            expires_at=expires,
            soft_kbps=self.cfg.soft_kbps,
            hard_kbps=self.cfg.hard_kbps,
        )

    async def open_session(
        self,
        session: AsyncSession,
        *,
        requester: Identity,
        target_id: str,
        requester_role: str,
        region: str | None,
        now: float,
    ) -> IssuedLease:
        target = await session.get(Identity, target_id)
        if target is None and target_id != requester.wavry_id:
            raise LeaseRefused(404, "unknown target Wavry ID")
        row, relay = await self._open(
            session,
            requester_id=requester.wavry_id,
            target_id=target_id,
            requester_role=requester_role,
            region=region,
            now=now,
        )
        return self._lease(row, relay, requester.wavry_id, now)

    async def open_pair(
        self,
        session: AsyncSession,
        *,
        requester_id: str,
        target_id: str,
        requester_role: str,
        region: str | None,
        now: float,
        exclude: frozenset[str] = frozenset(),
    ) -> tuple[IssuedLease, IssuedLease]:
        """Open a session for a trusted service (the gateway) that has authenticated both peers
        itself: returns (requester's lease, target's lease), each with that peer's own role. The
        Wavry IDs need not be registered here, but a banned one is refused. They may be equal:
        one account's client reaching the same account's host (the roles tell them apart)."""
        requester = await session.get(Identity, requester_id)
        if requester is not None and requester.banned:
            raise LeaseRefused(403, "the requester Wavry ID is banned")
        row, relay = await self._open(
            session,
            requester_id=requester_id,
            target_id=target_id,
            requester_role=requester_role,
            region=region,
            now=now,
            allow_same=True,
            exclude=exclude,
        )
        other = other_role(requester_role)
        return (
            self._lease(row, relay, requester_id, now, requester_role),
            self._lease(row, relay, target_id, now, other),
        )

    async def _open(
        self,
        session: AsyncSession,
        *,
        requester_id: str,
        target_id: str,
        requester_role: str,
        region: str | None,
        now: float,
        allow_same: bool = False,
        exclude: frozenset[str] = frozenset(),
    ) -> tuple[RelaySession, Relay]:
        if requester_role not in ROLES:
            raise LeaseRefused(400, "role must be 'client' or 'server'")
        if target_id == requester_id and not allow_same:
            raise LeaseRefused(400, "a session needs two different Wavry IDs")
        target = await session.get(Identity, target_id)
        if target is not None and target.banned:
            raise LeaseRefused(403, "the target Wavry ID is banned")
        relays = await self.registry.assignable(session, now)
        # A relay that just failed the requester is skipped while another one is assignable
        # (it may still look alive here until it misses its heartbeats); if it is the only
        # one, it is offered anyway: it may have been restarting.
        relays = [r for r in relays if r.relay_id not in exclude] or relays
        cands = candidates(
            (_snapshot(r) for r in relays), now=now, region=region, cfg=self.selection
        )
        chosen = pick(cands, self._rng)
        if chosen is None:
            raise LeaseRefused(503, "no relay available")
        relay = next(r for r in relays if r.relay_id == chosen.relay.relay_id)
        await session.execute(
            delete(RelaySession).where(RelaySession.expires_at <= now - FEEDBACK_WINDOW)
        )
        row = RelaySession(
            session_id=str(self._uuid()),
            relay_id=relay.relay_id,
            requester=requester_id,
            requester_role=requester_role,
            target=target_id,
            created_at=now,
            expires_at=now + self.cfg.ttl,
        )
        session.add(row)
        await session.flush()
        return row, relay

    async def claim(
        self, session: AsyncSession, *, session_id: str, caller: Identity, now: float
    ) -> IssuedLease:
        """The caller's own lease for a session it is a peer of."""
        row = await session.get(RelaySession, session_id)
        if row is None or row.expires_at <= now:
            raise LeaseRefused(404, "unknown or expired session")
        if caller.wavry_id not in (row.requester, row.target):
            raise LeaseRefused(403, "not a peer of this session")
        relay = await session.get(Relay, row.relay_id)
        if relay is None or relay.state in ("banned", "quarantined"):
            raise LeaseRefused(410, "the session's relay is gone; open a new session")
        return self._lease(row, relay, caller.wavry_id, now)
