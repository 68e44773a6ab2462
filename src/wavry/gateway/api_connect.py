"""Routes a client uses around a session: relay feedback and connect by Wavry ID.

- ``POST /v1/relay-feedback``: clients know only the gateway, so the gateway forwards a peer's
  signed quality report to the master's ``POST /v1/feedback`` (the master verifies the signature
  and that the Wavry ID is a peer of the session). The gateway first checks that the report is
  signed in the name of the caller's own bound Wavry ID: an account cannot report for another.
- ``GET /v1/hosts/by-wavry-id/{wavry_id}``: the username of the account bound to a Wavry ID, only
  when the caller may connect to that account's hosts (``GatewayContext.may_connect``, the policy
  signaling applies to offers); otherwise the same 404 as for an unknown ID, so the route does
  not tell who has bound which key.
"""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from sqlalchemy import select

from wavry.gateway.deps import audit, context, rate_limit, require_user
from wavry.gateway.errors import ApiError
from wavry.gateway.schemas import (
    ErrorBody,
    HostByWavryIdResponse,
    RelayFeedbackRequest,
    RelayFeedbackResponse,
)
from wavry.gateway.signaling.master_client import MasterClient, MasterError, MasterErrorKind
from wavry.storage.models import User

__all__ = ["NOT_FOUND", "router"]

router = APIRouter(tags=["connect"])

#: one answer for "no such Wavry ID" and "not yours to reach"
NOT_FOUND = "no host you may connect to has that Wavry ID"
_ERRORS: dict[int | str, dict[str, object]] = {
    c: {"model": ErrorBody} for c in (400, 401, 403, 404, 409, 429, 502, 503, 504)
}


def _master(request: Request) -> MasterClient | None:
    # signaling owns the master client (service token, time budget); no signaling, no master
    service = getattr(request.app.state, "signaling", None)
    master: MasterClient | None = getattr(service, "master", None)
    return master


async def _bound_wavry_id(request: Request, user_id: str) -> str | None:
    async with context(request).db() as db:
        wavry_id: str | None = await db.scalar(select(User.wavry_id).where(User.id == user_id))
    return wavry_id


@router.post("/v1/relay-feedback", response_model=RelayFeedbackResponse, responses=_ERRORS)
async def relay_feedback(body: RelayFeedbackRequest, request: Request) -> RelayFeedbackResponse:
    ctx = context(request)
    s = ctx.settings
    principal = await require_user(request, "relay_feedback")
    await rate_limit(request, f"relay-feedback:{principal.user_id}", s.post_auth_rate_limit,
                     s.post_auth_rate_window_secs, action="relay_feedback")  # fmt: skip
    actor = f"user:{principal.user_id}"
    bound = await _bound_wavry_id(request, principal.user_id)
    if bound != body.wavry_id:
        reason = "no_bound_wavry_id" if bound is None else "not_own_wavry_id"
        ctx.metrics.inc("relay_feedback_refused")
        await audit(request, "relay_feedback", "refused", actor=actor, target_type="session",
                    target_id=body.session_id, details={"reason": reason})  # fmt: skip
        if bound is None:
            raise ApiError(
                403, "this account has no bound Wavry ID; `wavry login` binds this machine's"
            )
        raise ApiError(403, "feedback must be signed by this account's bound Wavry ID")
    master = _master(request)
    if master is None:
        raise ApiError(
            503,
            "relay feedback is not available: this gateway has no master configured "
            "(WAVRY_GATEWAY_MASTER_URL and WAVRY_GATEWAY_MASTER_TOKEN)",
        )
    try:
        await master.submit_feedback(
            session_id=body.session_id,
            relay_id=body.relay_id,
            wavry_id=body.wavry_id,
            quality_score=body.quality_score,
            issues=list(body.issues),
            signature=body.signature,
        )
    except MasterError as exc:
        status, message, headers = _map_master_error(exc)
        ctx.metrics.inc("relay_feedback_refused" if status < 500 else "relay_feedback_failed")
        await audit(request, "relay_feedback", "refused" if status < 500 else "failed",
                    actor=actor, target_type="session", target_id=body.session_id,
                    details={"status": exc.status, "kind": exc.kind.value})  # fmt: skip
        raise ApiError(status, message, headers=headers) from None
    ctx.metrics.inc("relay_feedback_forwarded")
    details = {"relay_id": body.relay_id, "quality_score": body.quality_score}
    await audit(request, "relay_feedback", "ok", actor=actor, target_type="session",
                target_id=body.session_id, details=details)  # fmt: skip
    return RelayFeedbackResponse(accepted=True)


def _map_master_error(exc: MasterError) -> tuple[int, str, dict[str, str] | None]:
    """A master refusal as the gateway's status and a message a user can act on."""
    status, message = exc.status, exc.message
    if exc.kind is MasterErrorKind.RATE_LIMITED:
        return 429, "too many feedback reports; try again later", {"Retry-After": "60"}
    if exc.kind is MasterErrorKind.REFUSED:
        if status == 401:  # the master's 401 here is the report's signature, not our token
            return 403, "the feedback signature does not verify", None
        if status in (400, 403, 404, 409):
            return status, f"the master refused the feedback: {message}", None
        return 400, f"the master refused the feedback: {message}", None
    if exc.kind is MasterErrorKind.UNAVAILABLE and "in time" in message:
        return 504, "the master did not answer in time; try again later", None
    return 502, f"cannot deliver the feedback to the master: {message}", None


@router.get(
    "/v1/hosts/by-wavry-id/{wavry_id}", response_model=HostByWavryIdResponse, responses=_ERRORS
)
async def host_by_wavry_id(
    request: Request,
    wavry_id: str = Path(min_length=43, max_length=43, pattern=r"^[A-Za-z0-9_-]{43}$"),
) -> HostByWavryIdResponse:
    ctx = context(request)
    s = ctx.settings
    principal = await require_user(request, "host_by_wavry_id")
    await rate_limit(request, f"by-wavry-id:{principal.user_id}", s.post_auth_rate_limit,
                     s.post_auth_rate_window_secs, action="host_by_wavry_id")  # fmt: skip
    async with ctx.engine.connect() as conn:
        username = (
            await conn.execute(select(User.username).where(User.wavry_id == wavry_id))
        ).scalar_one_or_none()
    # the policy query runs for an unknown ID too, so both refusals take about the same time
    allowed, _ = await ctx.may_connect(principal, username or "")
    if username is None or not allowed:
        raise ApiError(404, NOT_FOUND)
    return HostByWavryIdResponse(username=username, wavry_id=wavry_id)
