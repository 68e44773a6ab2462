"""TOTP 2FA: set up (password re-authentication), enable (first code), disable (password + code).

The original took the secret back from the client at enable and authenticated set-up with the
login body only; here set-up needs the session *and* the password, the pending secret stays on
the server (encrypted, expiring), and enable proves the authenticator has it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select

from wavry.gateway import totp as totp_codes
from wavry.gateway.api_auth import consume_totp
from wavry.gateway.deps import audit, context, rate_limit, require_user
from wavry.gateway.errors import ApiError
from wavry.gateway.schemas import (
    ErrorBody,
    TotpDisableRequest,
    TotpEnableRequest,
    TotpSetupRequest,
    TotpSetupResponse,
    TotpState,
)
from wavry.gateway.sessions import Principal
from wavry.gateway.totp import TotpUnavailable
from wavry.storage.models import User

__all__ = ["router"]

router = APIRouter(prefix="/auth/2fa", tags=["2fa"])

_ERRORS: dict[int | str, dict[str, object]] = {
    c: {"model": ErrorBody} for c in (400, 401, 409, 429, 503)
}


async def _limits(request: Request, principal: Principal, action: str) -> None:
    ctx = context(request)
    s = ctx.settings
    ip = ctx.client_ip(request)
    await rate_limit(request, f"2fa:{ip}", s.auth_rate_limit, s.auth_rate_window_secs,
                     action=action)  # fmt: skip
    await rate_limit(request, f"2fa-account:{principal.user_id}", s.account_rate_limit,
                     s.account_rate_window_secs, action=action)  # fmt: skip


async def _reauthenticate(
    request: Request, principal: Principal, password: str, action: str
) -> tuple[User, list[str]]:
    """The user, after the lockout check and the password; a wrong password counts as a failed
    login (a stolen session must not become an unlimited password oracle)."""
    ctx = context(request)
    async with ctx.db() as db:
        user = await db.get(User, principal.user_id)
    if user is None:
        raise ApiError(401, "missing, invalid or expired session token")
    keys = [f"email:{user.email}", f"ip:{ctx.hash_ip(ctx.client_ip(request))}"]
    async with ctx.db() as db:
        wait = await ctx.lockout.retry_after(db, keys, ctx.clock())
    if wait > 0:
        ctx.metrics.inc("lockouts")
        await audit(request, action, "locked_out", actor=f"user:{user.id}", target_id=user.id)
        raise ApiError(429, "too many failed attempts; try again later",
                       headers={"Retry-After": str(max(1, round(wait)))})  # fmt: skip
    if not await ctx.passwords.verify(user.password_hash, password):
        await _failure(request, user, keys, action, "wrong_password")
        raise ApiError(401, "wrong password")
    return user, keys


async def _failure(request: Request, user: User, keys: list[str], action: str, why: str) -> None:
    ctx = context(request)
    async with ctx.db() as db, db.begin():
        await ctx.lockout.record_failure(db, keys, ctx.clock())
    await audit(request, action, "auth_failed", actor=f"user:{user.id}", target_id=user.id,
                details={"reason": why})  # fmt: skip


@router.post("/setup", response_model=TotpSetupResponse, responses=_ERRORS)
async def setup(body: TotpSetupRequest, request: Request) -> TotpSetupResponse:
    """Start 2FA set-up: a new secret to show as a QR code (``otpauth_uri``) or to type in."""
    ctx = context(request)
    principal = await require_user(request, "totp_setup")
    await _limits(request, principal, "totp_setup")
    user, _keys = await _reauthenticate(request, principal, body.password, "totp_setup")
    if user.totp_secret_enc is not None:
        raise ApiError(409, "2FA is already enabled; disable it first")
    secret = totp_codes.generate_secret()
    try:
        sealed = ctx.totp.seal(secret, user.id)
    except TotpUnavailable as exc:
        raise ApiError(503, str(exc)) from None
    expires = ctx.clock() + ctx.settings.totp_setup_ttl_secs
    async with ctx.db() as db, db.begin():
        row = await db.get(User, user.id)
        if row is not None:
            row.totp_pending_enc = sealed
            row.totp_pending_expires_at = expires
    ctx.metrics.inc("totp_setup")
    await audit(request, "totp_setup", "ok", actor=f"user:{user.id}", target_id=user.id)
    return TotpSetupResponse(
        secret=totp_codes.b32encode(secret),
        otpauth_uri=totp_codes.otpauth_uri(
            secret, account=user.email, issuer=ctx.settings.totp_issuer
        ),
        expires_at=expires,
    )


@router.post("/enable", response_model=TotpState, responses=_ERRORS)
async def enable(body: TotpEnableRequest, request: Request) -> TotpState:
    """Turn 2FA on with the first code from the authenticator (proves it holds the secret)."""
    ctx = context(request)
    principal = await require_user(request, "totp_enable")
    await _limits(request, principal, "totp_enable")
    now = ctx.clock()
    async with ctx.db() as db, db.begin():
        user = await db.scalar(select(User).where(User.id == principal.user_id).with_for_update())
        if user is None:
            raise ApiError(401, "missing, invalid or expired session token")
        if user.totp_secret_enc is not None:
            raise ApiError(409, "2FA is already enabled")
        pending, expires = user.totp_pending_enc, user.totp_pending_expires_at
        if pending is None or expires is None or expires <= now:
            raise ApiError(409, "no 2FA set-up in progress (or it expired): call /auth/2fa/setup")
        try:
            secret = ctx.totp.open(pending, user.id)
        except ValueError:
            raise ApiError(409, "the pending 2FA secret is unreadable: set up again") from None
        step = totp_codes.verify(secret, body.code, now, last_step=None)
        if step is not None:
            user.totp_secret_enc = pending
            user.totp_last_step = step
            user.totp_pending_enc = None
            user.totp_pending_expires_at = None
    if step is None:
        await audit(request, "totp_enable", "auth_failed", actor=f"user:{principal.user_id}",
                    target_id=principal.user_id, details={"reason": "wrong_totp"})  # fmt: skip
        raise ApiError(401, "invalid 2FA code")
    ctx.metrics.inc("totp_enabled")
    await audit(request, "totp_enable", "ok", actor=f"user:{principal.user_id}",
                target_id=principal.user_id)  # fmt: skip
    return TotpState(totp_enabled=True)


@router.post("/disable", response_model=TotpState, responses=_ERRORS)
async def disable(body: TotpDisableRequest, request: Request) -> TotpState:
    """Turn 2FA off: needs the password and a current (not yet used) code."""
    ctx = context(request)
    principal = await require_user(request, "totp_disable")
    await _limits(request, principal, "totp_disable")
    user, keys = await _reauthenticate(request, principal, body.password, "totp_disable")
    if user.totp_secret_enc is None:
        raise ApiError(409, "2FA is not enabled")
    if not await consume_totp(request, user, body.code):
        await _failure(request, user, keys, "totp_disable", "wrong_totp")
        raise ApiError(401, "invalid 2FA code")
    async with ctx.db() as db, db.begin():
        row = await db.get(User, user.id)
        if row is not None:
            row.totp_secret_enc = None
            row.totp_last_step = None
            row.totp_pending_enc = None
            row.totp_pending_expires_at = None
        await ctx.lockout.clear(db, keys)
    ctx.metrics.inc("totp_disabled")
    await audit(request, "totp_disable", "ok", actor=f"user:{user.id}", target_id=user.id)
    return TotpState(totp_enabled=False)
