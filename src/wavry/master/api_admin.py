"""Admin endpoints, behind ``ADMIN_PANEL_TOKEN``; every action lands in the audit log."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Request

from wavry.master.deps import client_ip, context, require_admin
from wavry.master.identity import AuthFailure
from wavry.master.registry import InvalidTransition, RegistrationRefused, RelayState
from wavry.master.schemas import (
    AuditEntry,
    ErrorBody,
    RevokeRequest,
    RevokeResponse,
    UpdateStateRequest,
    UpdateStateResponse,
)

__all__ = ["router"]

router = APIRouter(prefix="/admin/api", tags=["admin"])

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409)
}


async def _record(request: Request, action: str, target_type: str, target: str, outcome: str,
                  details: dict[str, object]) -> None:  # fmt: skip
    await context(request).auditor.record(
        actor="admin",
        action=action,
        target_type=target_type,
        target_id=target,
        outcome=outcome,
        ip=client_ip(request),
        details=details,
    )


@router.post("/relays/update_state", response_model=UpdateStateResponse, responses=_ERRORS)
async def update_state(body: UpdateStateRequest, request: Request) -> UpdateStateResponse:
    await require_admin(request, "admin_relay_state")
    ctx = context(request)
    details: dict[str, object] = {"new_state": body.new_state}
    try:
        async with ctx.sessions() as session, session.begin():
            relay = await ctx.registry.set_state(session, body.relay_id, RelayState(body.new_state))
            state = relay.state
    except RegistrationRefused as exc:
        await _record(request, "admin_relay_state", "relay", body.relay_id, "failed", details)
        raise HTTPException(exc.status, exc.reason) from None
    except InvalidTransition as exc:
        await _record(request, "admin_relay_state", "relay", body.relay_id, "failed", details)
        raise HTTPException(409, str(exc)) from None
    await _record(request, "admin_relay_state", "relay", body.relay_id, "ok", details)
    return UpdateStateResponse(relay_id=body.relay_id, state=state)


@router.post("/sessions/revoke", response_model=RevokeResponse, responses=_ERRORS)
async def revoke(body: RevokeRequest, request: Request) -> RevokeResponse:
    """Ban a Wavry ID: its tokens are revoked and it gets no further leases or logins."""
    await require_admin(request, "admin_revoke")
    ctx = context(request)
    try:
        async with ctx.sessions() as session, session.begin():
            was_registered = await ctx.identities.ban(session, body.wavry_id, ctx.clock())
    except AuthFailure as exc:
        await _record(request, "admin_revoke", "identity", body.wavry_id, "failed", {})
        raise HTTPException(exc.status, exc.reason) from None
    await _record(request, "admin_revoke", "identity", body.wavry_id, "ok", {})
    return RevokeResponse(wavry_id=body.wavry_id, banned=True, was_registered=was_registered)


@router.get("/audit", response_model=list[AuditEntry], responses=_ERRORS)
async def audit(
    request: Request,
    limit: int = Query(default=100, ge=1, le=1000),
    action: str | None = Query(default=None, max_length=64),
) -> list[AuditEntry]:
    await require_admin(request, "admin_audit_read")
    rows = await context(request).auditor.recent(limit, action)
    return [
        AuditEntry(
            id=r.id,
            created_at=r.created_at,
            actor=r.actor,
            action=r.action,
            target_type=r.target_type,
            target_id=r.target_id,
            outcome=r.outcome,
            actor_ip_hash=r.actor_ip_hash,
            details=r.details,
        )
        for r in rows
    ]
