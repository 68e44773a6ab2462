"""Identity endpoints (challenge registration and login), relay sessions/leases, feedback."""

from __future__ import annotations

import math

from fastapi import APIRouter, HTTPException, Request

from wavry.master.deps import bearer_token, client_ip, context, deny, tokens_equal
from wavry.master.feedback import FeedbackRefused, submit_feedback
from wavry.master.identity import AuthFailure
from wavry.master.leases import IssuedLease, LeaseRefused
from wavry.master.ratelimit import SlidingWindowLimiter
from wavry.master.schemas import (
    ChallengeResponse,
    ErrorBody,
    FeedbackRequest,
    FeedbackResponse,
    LeaseResponse,
    LoginRequest,
    LoginResponse,
    RegisteredResponse,
    RegisterRequest,
    SessionRequest,
    VerifyRequest,
)
from wavry.storage.models import Identity

__all__ = ["router"]

router = APIRouter()

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 429)
}


async def _limit(
    request: Request, limiter: SlidingWindowLimiter, key: str, action: str, actor: str
) -> None:
    now = context(request).clock()
    if not limiter.allow(key, now):
        retry = max(1, math.ceil(limiter.retry_after(key, now)))
        await deny(
            request,
            429,
            "rate limit exceeded; wait a moment",
            actor=actor,
            action=action,
            target_type="rate_limit",
            target_id=None,
            headers={"Retry-After": str(retry)},
        )


async def _auth_failed(request: Request, exc: AuthFailure, wavry_id: str) -> None:
    if exc.status in (401, 403, 429):
        await deny(
            request,
            exc.status,
            exc.reason,
            actor=wavry_id,
            action=exc.action,
            target_type="identity",
            target_id=wavry_id,
        )
    raise HTTPException(exc.status, exc.reason)


async def _challenge(
    request: Request, wavry_id: str, purpose: str, display_name: str | None
) -> ChallengeResponse:
    ctx = context(request)
    await _limit(request, ctx.auth_limiter, client_ip(request), f"{purpose}_challenge", wavry_id)
    now = ctx.clock()
    try:
        async with ctx.sessions() as session, session.begin():
            row = await ctx.identities.issue_challenge(
                session, wavry_id=wavry_id, purpose=purpose, display_name=display_name, now=now
            )
    except AuthFailure as exc:
        await _auth_failed(request, exc, wavry_id)
        raise
    return ChallengeResponse(
        wavry_id=wavry_id,
        challenge=row.challenge,
        expires_at=row.expires_at,
        ttl_secs=row.expires_at - now,
    )


@router.post(
    "/v1/auth/register", response_model=ChallengeResponse, tags=["identity"], responses=_ERRORS
)
async def register(body: RegisterRequest, request: Request) -> ChallengeResponse:
    return await _challenge(request, body.wavry_id, "register", body.display_name)


@router.post(
    "/v1/auth/register/verify",
    response_model=RegisteredResponse,
    status_code=201,
    tags=["identity"],
    responses=_ERRORS,
)
async def register_verify(body: VerifyRequest, request: Request) -> RegisteredResponse:
    ctx = context(request)
    await _limit(request, ctx.auth_limiter, client_ip(request), "register_verify", body.wavry_id)
    try:
        async with ctx.sessions() as session, session.begin():
            identity = await ctx.identities.register(
                session,
                wavry_id=body.wavry_id,
                challenge_hex=body.challenge,
                signature_hex=body.signature_hex,
                now=ctx.clock(),
            )
            name = identity.display_name
    except AuthFailure as exc:
        # the challenge row was deleted inside the rolled-back transaction: burn it for real
        await _burn(request, body.challenge)
        await _auth_failed(request, exc, body.wavry_id)
        raise
    return RegisteredResponse(wavry_id=body.wavry_id, display_name=name, registered=True)


async def _burn(request: Request, challenge: str) -> None:
    from sqlalchemy import delete

    from wavry.storage.models import AuthChallenge

    ctx = context(request)
    async with ctx.sessions() as session, session.begin():
        await session.execute(
            delete(AuthChallenge).where(AuthChallenge.challenge == challenge.lower())
        )


@router.post(
    "/v1/auth/login", response_model=ChallengeResponse, tags=["identity"], responses=_ERRORS
)
async def login(body: LoginRequest, request: Request) -> ChallengeResponse:
    return await _challenge(request, body.wavry_id, "login", None)


@router.post(
    "/v1/auth/login/verify", response_model=LoginResponse, tags=["identity"], responses=_ERRORS
)
async def login_verify(body: VerifyRequest, request: Request) -> LoginResponse:
    ctx = context(request)
    await _limit(request, ctx.auth_limiter, client_ip(request), "login_verify", body.wavry_id)
    try:
        async with ctx.sessions() as session, session.begin():
            token, expires = await ctx.identities.login(
                session,
                wavry_id=body.wavry_id,
                challenge_hex=body.challenge,
                signature_hex=body.signature_hex,
                now=ctx.clock(),
            )
    except AuthFailure as exc:
        await _burn(request, body.challenge)
        await _auth_failed(request, exc, body.wavry_id)
        raise
    await ctx.auditor.record(
        actor=body.wavry_id,
        action="login",
        target_type="identity",
        target_id=body.wavry_id,
        outcome="ok",
        ip=client_ip(request),
    )
    return LoginResponse(wavry_id=body.wavry_id, token=token, expires_at=expires)


async def _caller(request: Request, action: str) -> Identity:
    ctx = context(request)
    token = bearer_token(request)
    if token is None:
        await deny(
            request,
            401,
            "log in first (Authorization: Bearer <token from /v1/auth/login/verify>)",
            actor="anonymous",
            action=action,
            target_type="identity",
            target_id=None,
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        async with ctx.sessions() as session:
            return await ctx.identities.authenticate(session, token, ctx.clock())
    except AuthFailure as exc:
        await deny(
            request,
            exc.status,
            exc.reason,
            actor="anonymous",
            action=action,
            target_type="identity",
            target_id=None,
        )


def _lease_body(lease: IssuedLease) -> LeaseResponse:
    return LeaseResponse(
        session_id=lease.session_id,
        relay_id=lease.relay_id,
        relay_addr=lease.relay_addr,
        wavry_id=lease.wavry_id,
        role=lease.role,
        token=lease.token,
        key_id=lease.key_id,
        issued_at=lease.issued_at,
        expires_at=lease.expires_at,
        soft_kbps=lease.soft_kbps,
        hard_kbps=lease.hard_kbps,
    )


async def _lease_refused(request: Request, exc: LeaseRefused, actor: str, action: str) -> None:
    if exc.status in (403,):
        await deny(
            request, exc.status, exc.reason, actor=actor, action=action,
            target_type="session", target_id=None,
        )  # fmt: skip
    raise HTTPException(exc.status, exc.reason)


@router.post(
    "/v1/sessions",
    response_model=LeaseResponse,
    status_code=201,
    tags=["leases"],
    responses={**_ERRORS, 503: {"model": ErrorBody}},
)
async def open_session(body: SessionRequest, request: Request) -> LeaseResponse:
    """Open a relay session with ``target_wavry_id``; returns the requester's own lease."""
    ctx = context(request)
    caller = await _caller(request, "lease_request")
    await _limit(request, ctx.lease_limiter, caller.wavry_id, "lease_request", caller.wavry_id)
    try:
        async with ctx.sessions() as session, session.begin():
            lease = await ctx.issuer.open_session(
                session,
                requester=caller,
                target_id=body.target_wavry_id,
                requester_role=body.role,
                region=body.region,
                now=ctx.clock(),
            )
    except LeaseRefused as exc:
        await _lease_refused(request, exc, caller.wavry_id, "lease_request")
        raise
    return _lease_body(lease)


@router.post(
    "/v1/sessions/{session_id}/lease",
    response_model=LeaseResponse,
    tags=["leases"],
    responses={**_ERRORS, 410: {"model": ErrorBody}},
)
async def claim_lease(session_id: str, request: Request) -> LeaseResponse:
    """The caller's own lease for a session it is a peer of (how the target gets its lease)."""
    ctx = context(request)
    caller = await _caller(request, "lease_claim")
    await _limit(request, ctx.lease_limiter, caller.wavry_id, "lease_claim", caller.wavry_id)
    try:
        async with ctx.sessions() as session:
            lease = await ctx.issuer.claim(
                session, session_id=session_id, caller=caller, now=ctx.clock()
            )
    except LeaseRefused as exc:
        await _lease_refused(request, exc, caller.wavry_id, "lease_claim")
        raise
    return _lease_body(lease)


def _feedback_key(request: Request, wavry_id: str) -> str:
    """Feedback is limited per client address, except when the gateway forwards it (its service
    token): every user behind one gateway would share its address, so the limit is per Wavry ID
    then (the gateway limits each account as well)."""
    expected = context(request).settings.gateway_token
    token = bearer_token(request)
    if (
        expected is not None
        and token is not None
        and tokens_equal(token, expected.get_secret_value())
    ):
        return f"gateway:{wavry_id}"
    return client_ip(request)


@router.post("/v1/feedback", response_model=FeedbackResponse, tags=["feedback"], responses=_ERRORS)
async def feedback(body: FeedbackRequest, request: Request) -> FeedbackResponse:
    ctx = context(request)
    await _limit(request, ctx.feedback_limiter, _feedback_key(request, body.wavry_id), "feedback",
                 body.wavry_id)  # fmt: skip
    try:
        async with ctx.sessions() as session, session.begin():
            await submit_feedback(
                session,
                session_id=body.session_id,
                relay_id=body.relay_id,
                wavry_id=body.wavry_id,
                quality_score=body.quality_score,
                issues=body.issues,
                signature_hex=body.signature,
                now=ctx.clock(),
            )
    except FeedbackRefused as exc:
        if exc.status in (401, 403, 409):
            await deny(
                request,
                exc.status,
                exc.reason,
                actor=body.wavry_id,
                action="feedback",
                target_type="session",
                target_id=body.session_id,
            )
        raise HTTPException(exc.status, exc.reason) from None
    return FeedbackResponse(accepted=True)
