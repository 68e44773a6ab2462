"""Relay-facing and public endpoints: health, readiness, keys, register, heartbeat, list."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from wavry.master.deps import context, deny, require_relay_token
from wavry.master.registry import RegistrationRefused
from wavry.master.schemas import (
    ErrorBody,
    HealthBody,
    HeartbeatRequest,
    HeartbeatResponse,
    PublicKeyEntry,
    ReadyBody,
    RelayInfo,
    RelayRegisterRequest,
    RelayRegisterResponse,
    WellKnownBody,
)

__all__ = ["router"]

router = APIRouter()

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404)
}


async def _counts(request: Request) -> tuple[int, int]:
    ctx = context(request)
    async with ctx.sessions() as session:
        registered = len(await ctx.registry.all(session))
        assignable = len(await ctx.registry.assignable(session, ctx.clock()))
    return registered, assignable


@router.get("/health", response_model=HealthBody, tags=["ops"])
async def health(request: Request) -> HealthBody:
    ctx = context(request)
    registered, assignable = await _counts(request)
    return HealthBody(
        status="ok",
        ready=assignable > 0,
        uptime_secs=max(0.0, ctx.clock() - ctx.started_at),
        relays_registered=registered,
        relays_assignable=assignable,
        signing_key_id=ctx.keys.kid,
        provisioned_signing_key=ctx.keys.provisioned,
        lease_ttl_secs=ctx.settings.lease_ttl_secs,
    )


@router.get("/ready", response_model=ReadyBody, tags=["ops"], responses={503: {"model": ReadyBody}})
async def ready(request: Request) -> JSONResponse:
    ctx = context(request)
    _, assignable = await _counts(request)
    body = ReadyBody(
        ready=assignable > 0,
        relays_assignable=assignable,
        provisioned_signing_key=ctx.keys.provisioned,
        signing_key_id=ctx.keys.kid,
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


_STATES = ("new", "probation", "active", "degraded", "draining", "quarantined", "banned")


@router.get("/metrics", response_class=PlainTextResponse, tags=["ops"])
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text: relays by state, assignable relays, sweeps, uptime."""
    ctx = context(request)
    async with ctx.sessions() as session:
        relays = await ctx.registry.all(session)
        assignable = len(await ctx.registry.assignable(session, ctx.clock()))
    by_state = dict.fromkeys(_STATES, 0)
    for relay in relays:
        by_state[relay.state] = by_state.get(relay.state, 0) + 1
    lines = [
        "# HELP wavry_master_relays Registered relays by state.",
        "# TYPE wavry_master_relays gauge",
        *(f'wavry_master_relays{{state="{state}"}} {n}' for state, n in sorted(by_state.items())),
        "# HELP wavry_master_relays_assignable Relays that would be offered for a lease now.",
        "# TYPE wavry_master_relays_assignable gauge",
        f"wavry_master_relays_assignable {assignable}",
        "# HELP wavry_master_sweeps_total Completed registry sweeps.",
        "# TYPE wavry_master_sweeps_total counter",
        f"wavry_master_sweeps_total {ctx.sweeps}",
        "# HELP wavry_master_uptime_seconds Seconds since the master started.",
        "# TYPE wavry_master_uptime_seconds gauge",
        f"wavry_master_uptime_seconds {max(0.0, ctx.clock() - ctx.started_at):.3f}",
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


@router.get("/.well-known/wavry-id", response_model=WellKnownBody, tags=["keys"])
async def well_known(request: Request) -> WellKnownBody:
    keys = context(request).keys
    return WellKnownBody(
        public_key=keys.public_key.hex(),
        key_id=keys.kid,
        version="1.0",
        keys=[
            PublicKeyEntry(key_id=kid, public_key=pub.hex(), active=kid == keys.kid)
            for kid, pub in sorted(keys.trusted.items())
        ],
    )


@router.post(
    "/v1/relays/register",
    response_model=RelayRegisterResponse,
    tags=["relays"],
    responses=_ERRORS,
)
async def register_relay(body: RelayRegisterRequest, request: Request) -> RelayRegisterResponse:
    ctx = context(request)
    await require_relay_token(request, body.relay_id, "relay_register")
    try:
        async with ctx.sessions() as session, session.begin():
            relay = await ctx.registry.register(
                session,
                relay_id=body.relay_id,
                endpoints=body.endpoints,
                region=body.region,
                asn=body.asn,
                max_sessions=body.max_sessions,
                max_bitrate_kbps=body.max_bitrate_kbps,
                features=body.features,
                now=ctx.clock(),
            )
            state = relay.state
    except RegistrationRefused as exc:
        if exc.status == 403:
            await deny(
                request,
                403,
                exc.reason,
                actor=f"relay:{body.relay_id}",
                action="relay_register",
                target_type="relay",
                target_id=body.relay_id,
            )
        raise HTTPException(exc.status, exc.reason) from None
    return RelayRegisterResponse(
        relay_id=body.relay_id,
        state=state,
        heartbeat_interval_ms=ctx.settings.heartbeat_interval_ms,
        master_public_key=ctx.keys.public_key.hex(),
        master_key_id=ctx.keys.kid,
        trusted_keys={kid: pub.hex() for kid, pub in ctx.keys.trusted.items()},
    )


@router.post(
    "/v1/relays/heartbeat", response_model=HeartbeatResponse, tags=["relays"], responses=_ERRORS
)
async def heartbeat(body: HeartbeatRequest, request: Request) -> HeartbeatResponse:
    ctx = context(request)
    await require_relay_token(request, body.relay_id, "relay_heartbeat")
    try:
        async with ctx.sessions() as session, session.begin():
            relay = await ctx.registry.heartbeat(
                session, relay_id=body.relay_id, load_pct=body.load_pct, now=ctx.clock()
            )
            state = relay.state
    except RegistrationRefused as exc:
        if exc.status == 403:
            await deny(
                request,
                403,
                exc.reason,
                actor=f"relay:{body.relay_id}",
                action="relay_heartbeat",
                target_type="relay",
                target_id=body.relay_id,
            )
        raise HTTPException(exc.status, exc.reason) from None
    return HeartbeatResponse(
        ok=True, state=state, heartbeat_interval_ms=ctx.settings.heartbeat_interval_ms
    )


@router.get("/v1/relays", response_model=list[RelayInfo], tags=["relays"])
async def list_relays(request: Request) -> list[RelayInfo]:
    ctx = context(request)
    now = ctx.clock()
    async with ctx.sessions() as session:
        relays = await ctx.registry.all(session)
    return [
        RelayInfo(
            relay_id=r.relay_id,
            endpoints=list(r.endpoints),
            region=r.region,
            asn=r.asn,
            load_pct=r.load_pct,
            last_seen_ms_ago=max(0, int((now - r.last_seen) * 1000)),
            max_sessions=r.max_sessions,
            max_bitrate_kbps=r.max_bitrate_kbps,
            state=r.state,
            success_count=r.success_count,
            failure_count=r.failure_count,
            feedback_score=round(r.feedback_score, 3),
        )
        for r in relays
    ]
