"""Accounts and sessions: register, login (password + optional TOTP), logout, session listing
and revocation by the user.

Errors never tell whether an email has an account: an unknown email and a wrong password get the
same 401 and cost the same Argon2 work; lockouts count failures for unknown emails too; a ban is
only revealed after the right password; registration conflicts say "email or username".
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from wavry.gateway import totp as totp_codes
from wavry.gateway.deps import audit, context, email_ref, rate_limit, require_user, session_token
from wavry.gateway.errors import ApiError
from wavry.gateway.schemas import (
    AuthResponse,
    ErrorBody,
    LoginRequest,
    LogoutResponse,
    MeResponse,
    RegisterRequest,
    RevokeResponse,
    RevokeSessionRequest,
    SessionEntry,
    SessionInfo,
    SessionList,
    UserInfo,
)
from wavry.gateway.sessions import ban_active, session_id, token_format_ok, token_hash
from wavry.storage.models import User, UserBan, UserSession

__all__ = ["auth_response", "consume_totp", "router", "user_info"]

router = APIRouter(tags=["auth"])

GENERIC_LOGIN_FAILURE = "invalid email or password"
REGISTER_CONFLICT = "that email or username is not available"


class _Taken(Exception):
    """The email or the username already has an account."""


def _errors(*codes: int) -> dict[int | str, dict[str, object]]:
    return {code: {"model": ErrorBody} for code in codes}


def user_info(user: User) -> UserInfo:
    return UserInfo(
        id=user.id,
        email=user.email,
        username=user.username,
        display_name=user.display_name,
        public_key=user.public_key,
        wavry_id=user.wavry_id,
        totp_enabled=user.totp_secret_enc is not None,
        created_at=user.created_at,
    )


def auth_response(user: User, token: str, row: UserSession) -> AuthResponse:
    return AuthResponse(
        user=user_info(user),
        session=SessionInfo(
            token=token,
            id=session_id(row.token_hash),
            user_id=user.id,
            created_at=row.created_at,
            expires_at=row.expires_at,
        ),
        token=token,
        user_id=user.id,
        email=user.email,
        username=user.username,
        totp_required=False,
    )


@router.post(
    "/auth/register", status_code=201, response_model=AuthResponse, responses=_errors(400, 409, 429)
)
async def register(body: RegisterRequest, request: Request) -> AuthResponse:
    ctx = context(request)
    s = ctx.settings
    ip = ctx.client_ip(request)
    await rate_limit(request, f"register:{ip}", s.auth_rate_limit, s.auth_rate_window_secs,
                     action="register")  # fmt: skip
    ctx.metrics.inc("register_attempts")
    # hash first: a conflict costs the same time as a success
    password_hash = await ctx.passwords.hash(body.password)
    now = ctx.clock()
    user = User(
        id=str(uuid.uuid4()),
        email=body.email,
        username=body.username,
        display_name=body.display_name,
        public_key=body.public_key,
        password_hash=password_hash,
        created_at=now,
    )
    try:
        async with ctx.db() as db, db.begin():
            taken = await db.scalar(
                select(User.id).where((User.email == body.email) | (User.username == body.username))
            )
            if taken is not None:
                raise _Taken
            db.add(user)
            await db.flush()
            token, row = await ctx.session_store.issue(
                db, user.id, now, ip_hash=ctx.hash_ip(ip),
                user_agent=request.headers.get("user-agent"),
            )  # fmt: skip
    except (IntegrityError, _Taken):  # checked first; the unique constraints close the race
        await audit(request, "register", "conflict", target_id=email_ref(body.email),
                    details={"username": body.username})  # fmt: skip
        raise ApiError(409, REGISTER_CONFLICT) from None
    ctx.metrics.inc("register_success")
    await audit(request, "register", "ok", actor=f"user:{user.id}", target_id=user.id)
    return auth_response(user, token, row)


async def _login_failure(
    request: Request, keys: list[str], reason: str, target: str | None, message: str
) -> ApiError:
    ctx = context(request)
    async with ctx.db() as db, db.begin():
        lock = await ctx.lockout.record_failure(db, keys, ctx.clock())
    ctx.metrics.inc("login_failures")
    await audit(request, "login", "auth_failed", target_id=target,
                details={"reason": reason, "locked_for": round(lock)})  # fmt: skip
    return ApiError(401, message)


@router.post("/auth/login", response_model=AuthResponse, responses=_errors(400, 401, 403, 429))
async def login(body: LoginRequest, request: Request) -> AuthResponse:
    ctx = context(request)
    s = ctx.settings
    ip = ctx.client_ip(request)
    await rate_limit(request, f"login:{ip}", s.auth_rate_limit, s.auth_rate_window_secs,
                     action="login")  # fmt: skip
    await rate_limit(request, f"login-account:{body.email}", s.account_rate_limit,
                     s.account_rate_window_secs, action="login")  # fmt: skip
    ctx.metrics.inc("login_attempts")
    keys = [f"email:{body.email}", f"ip:{ctx.hash_ip(ip)}"]
    async with ctx.db() as db:
        wait, had_failures = await ctx.lockout.status(db, keys, ctx.clock())
        user = await db.scalar(select(User).where(User.email == body.email))
    if wait > 0:
        ctx.metrics.inc("lockouts")
        await audit(request, "login", "locked_out", target_id=email_ref(body.email),
                    details={"retry_after": round(wait)})  # fmt: skip
        raise ApiError(429, "too many failed attempts; try again later",
                       headers={"Retry-After": str(max(1, round(wait)))})  # fmt: skip
    if user is None:
        await ctx.passwords.verify_dummy(body.password)
        raise await _login_failure(request, keys, "unknown_account", email_ref(body.email),
                                   GENERIC_LOGIN_FAILURE)  # fmt: skip
    if not await ctx.passwords.verify(user.password_hash, body.password):
        raise await _login_failure(request, keys, "wrong_password", user.id, GENERIC_LOGIN_FAILURE)
    now = ctx.clock()
    async with ctx.db() as db:
        ban = await db.scalar(select(UserBan).where(UserBan.user_id == user.id, ban_active(now)))
    if ban is not None:
        await audit(request, "login", "denied", target_id=user.id, details={"reason": "banned"})
        raise ApiError(403, f"account suspended: {ban.reason}")
    if user.totp_secret_enc is not None:
        await _check_totp(request, user, body.totp_code, keys)
    async with ctx.db() as db, db.begin():
        if had_failures:
            await ctx.lockout.clear(db, keys)
        if ctx.passwords.needs_rehash(user.password_hash):
            db_user = await db.get(User, user.id)
            if db_user is not None:
                db_user.password_hash = await ctx.passwords.hash(body.password)
        token, row = await ctx.session_store.issue(
            db, user.id, now, ip_hash=ctx.hash_ip(ip), user_agent=request.headers.get("user-agent")
        )
    ctx.metrics.inc("login_success")
    await audit(request, "login", "ok", actor=f"user:{user.id}", target_id=user.id)
    return auth_response(user, token, row)


async def _check_totp(request: Request, user: User, code: str | None, keys: list[str]) -> None:
    """Verify a TOTP code for ``user`` and burn its step; failures count toward the lockout."""
    if code is None:
        await audit(request, "login", "totp_required", target_id=user.id)
        raise ApiError(401, "2FA required", extra={"totp_required": True})
    if not await consume_totp(request, user, code):
        raise await _login_failure(request, keys, "wrong_totp", user.id, "invalid 2FA code")


async def consume_totp(request: Request, user: User, code: str) -> bool:
    """True if ``code`` is valid for ``user`` now and newer than the last accepted step (which it
    then becomes, atomically: two requests with the same code cannot both pass)."""
    ctx = context(request)
    if user.totp_secret_enc is None:
        return False
    try:
        secret = ctx.totp.open(user.totp_secret_enc, user.id)
    except ValueError:
        await audit(request, "totp_verify", "error", target_id=user.id,
                    details={"reason": "secret unreadable"})  # fmt: skip
        raise ApiError(500, "2FA is misconfigured on the server") from None
    now = ctx.clock()
    step = totp_codes.verify(secret, code, now, last_step=user.totp_last_step)
    if step is None:
        if totp_codes.verify(secret, code, now, last_step=None) is not None:
            ctx.metrics.inc("totp_replay_refused")
        return False
    async with ctx.db() as db, db.begin():
        result = await db.execute(
            update(User)
            .where(
                User.id == user.id,
                or_(User.totp_last_step.is_(None), User.totp_last_step < step),
            )
            .values(totp_last_step=step)
        )
    if not getattr(result, "rowcount", 0):
        ctx.metrics.inc("totp_replay_refused")
        return False
    user.totp_last_step = step
    return True


@router.post("/auth/logout", response_model=LogoutResponse, responses=_errors(400, 429))
async def logout(request: Request) -> LogoutResponse:
    ctx = context(request)
    s = ctx.settings
    token = session_token(request)
    if token is None or not token_format_ok(token):
        raise ApiError(400, "missing or malformed session token")
    ip = ctx.client_ip(request)
    digest = token_hash(token)
    await rate_limit(request, f"logout:{ip}", s.post_auth_rate_limit,
                     s.post_auth_rate_window_secs, action="logout")  # fmt: skip
    async with ctx.db() as db, db.begin():
        row = await db.get(UserSession, digest)
        user_id = row.user_id if row is not None else None
        revoked = await ctx.session_store.revoke(db, digest) if row is not None else False
    if revoked and user_id is not None:
        ctx.metrics.inc("logout")
        await ctx.sessions_revoked(user_id, [digest])
        await audit(request, "logout", "ok", actor=f"user:{user_id}", target_id=user_id)
    return LogoutResponse(revoked=revoked)


@router.get("/auth/me", response_model=MeResponse, responses=_errors(401))
async def me(request: Request) -> MeResponse:
    principal = await require_user(request, "me")
    async with context(request).db() as db:
        user = await db.get(User, principal.user_id)
    if user is None:
        raise ApiError(401, "missing, invalid or expired session token")
    return MeResponse(user=user_info(user))


@router.get("/auth/sessions", response_model=SessionList, responses=_errors(401))
async def list_sessions(request: Request) -> SessionList:
    ctx = context(request)
    principal = await require_user(request, "sessions_list")
    async with ctx.db() as db:
        rows = await ctx.session_store.for_user(db, principal.user_id, ctx.clock())
    return SessionList(
        sessions=[
            SessionEntry(
                id=session_id(r.token_hash),
                created_at=r.created_at,
                expires_at=r.expires_at,
                user_agent=r.user_agent,
                current=r.token_hash == principal.token_hash,
            )
            for r in rows
        ]
    )


@router.post("/auth/sessions/revoke", response_model=RevokeResponse, responses=_errors(400, 401))
async def revoke_session(body: RevokeSessionRequest, request: Request) -> RevokeResponse:
    ctx = context(request)
    principal = await require_user(request, "session_revoke")
    async with ctx.db() as db, db.begin():
        row = await ctx.session_store.find_by_id(db, body.session_id, user_id=principal.user_id)
        digest = row.token_hash if row is not None else None
        revoked = digest is not None and await ctx.session_store.revoke(db, digest)
    if revoked and digest is not None:
        await ctx.sessions_revoked(principal.user_id, [digest])
    await audit(request, "session_revoke", "ok" if revoked else "not_found",
                actor=f"user:{principal.user_id}", target_type="session",
                target_id=body.session_id)  # fmt: skip
    return RevokeResponse(revoked=revoked)
