"""Service routes: leases for a relay session on behalf of the gateway.

The gateway has already authenticated both peers (session tokens) and applied the access policy
(owner or shared account), so it asks for both leases at once with its service token
(``Authorization: Bearer $WAVRY_MASTER_GATEWAY_TOKEN``, compared in constant time). Each peer's
lease carries the role *that peer* presents to the relay: the requester (the RIFT client, which
connects) gets ``requester_role`` (default ``client``), the target the other role. The gateway
hands each lease only to its own peer. The two Wavry IDs may be equal (one account's client
reaching the same account's host: the roles tell the peers apart). Without
``WAVRY_MASTER_GATEWAY_TOKEN`` the route answers 403. Every refusal and every issued pair is
audited.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from wavry.master.deps import bearer_token, client_ip, context, deny, tokens_equal
from wavry.master.leases import LeaseRefused
from wavry.master.schemas import ErrorBody, LeaseResponse
from wavry.rift.identity import InvalidWavryIdError, public_key_from_wavry_id

__all__ = ["ServiceSessionRequest", "ServiceSessionResponse", "router"]

router = APIRouter()

_ACTOR = "service:gateway"
_ACTION = "service_lease"


class ServiceSessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Wavry ID of the peer that asked for the relay (the RIFT client in the gateway's use)
    requester_wavry_id: str = Field(min_length=43, max_length=43)
    target_wavry_id: str = Field(min_length=43, max_length=43)
    #: the role the requester presents to the relay; the target gets the other one
    requester_role: Literal["client", "server"] = "client"
    region: str | None = Field(default=None, max_length=64)
    #: opaque labels for the audit log (e.g. the gateway's user ids); never interpreted
    requester_label: str | None = Field(default=None, max_length=64)
    target_label: str | None = Field(default=None, max_length=64)
    #: relays that just failed this requester: another one is chosen when one is assignable
    exclude_relay_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=8
    )

    @field_validator("requester_wavry_id", "target_wavry_id")
    @classmethod
    def _canonical(cls, value: str) -> str:
        try:
            public_key_from_wavry_id(value)
        except InvalidWavryIdError:
            raise ValueError("not a canonical Wavry ID") from None
        return value


class ServiceSessionResponse(BaseModel):
    session_id: str
    relay_id: str
    relay_addr: str
    expires_at: float
    requester: LeaseResponse
    target: LeaseResponse


async def _require_gateway(request: Request) -> None:
    expected = context(request).settings.gateway_token
    if expected is None:
        await deny(
            request,
            403,
            "gateway lease route disabled: set WAVRY_MASTER_GATEWAY_TOKEN (at least 32 "
            "characters) here and the same value as WAVRY_GATEWAY_MASTER_TOKEN on the gateway",
            actor=_ACTOR,
            action=_ACTION,
            target_type="session",
            target_id=None,
        )
    given = bearer_token(request)
    if given is None or not tokens_equal(given, expected.get_secret_value()):
        await deny(
            request,
            401,
            "gateway service token missing or wrong",
            actor="anonymous",
            action=_ACTION,
            target_type="session",
            target_id=None,
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.post(
    "/v1/leases/session",
    response_model=ServiceSessionResponse,
    status_code=201,
    tags=["leases"],
    responses={code: {"model": ErrorBody} for code in (400, 401, 403, 429, 503)},
)
async def service_session(body: ServiceSessionRequest, request: Request) -> ServiceSessionResponse:
    """Open a relay session between two Wavry IDs; returns each peer's own lease (gateway only)."""
    await _require_gateway(request)
    ctx = context(request)
    now = ctx.clock()
    limiter_key = f"service:{body.requester_wavry_id}"
    if not ctx.lease_limiter.allow(limiter_key, now):
        retry = max(1, math.ceil(ctx.lease_limiter.retry_after(limiter_key, now)))
        await deny(
            request,
            429,
            "lease rate limit exceeded for this requester; wait a moment",
            actor=_ACTOR,
            action=_ACTION,
            target_type="identity",
            target_id=body.requester_wavry_id,
            headers={"Retry-After": str(retry)},
        )
    try:
        async with ctx.sessions() as session, session.begin():
            mine, theirs = await ctx.issuer.open_pair(
                session,
                requester_id=body.requester_wavry_id,
                target_id=body.target_wavry_id,
                requester_role=body.requester_role,
                region=body.region,
                now=now,
                exclude=frozenset(body.exclude_relay_ids),
            )
    except LeaseRefused as exc:
        if exc.status == 403:
            await deny(
                request, exc.status, exc.reason, actor=_ACTOR, action=_ACTION,
                target_type="identity", target_id=body.requester_wavry_id,
            )  # fmt: skip
        raise HTTPException(exc.status, exc.reason) from None
    await ctx.auditor.record(
        actor=_ACTOR,
        action=_ACTION,
        target_type="session",
        target_id=mine.session_id,
        outcome="ok",
        ip=client_ip(request),
        details={
            "relay_id": mine.relay_id,
            "requester": body.requester_wavry_id,
            "target": body.target_wavry_id,
            "requester_role": mine.role,
            "requester_label": body.requester_label,
            "target_label": body.target_label,
        },
    )
    return ServiceSessionResponse(
        session_id=mine.session_id,
        relay_id=mine.relay_id,
        relay_addr=mine.relay_addr,
        expires_at=mine.expires_at,
        requester=LeaseResponse(**asdict(mine)),
        target=LeaseResponse(**asdict(theirs)),
    )
