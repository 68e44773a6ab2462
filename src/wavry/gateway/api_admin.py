"""Admin API behind ``ADMIN_PANEL_TOKEN`` (>= 32 characters, constant-time compare), used by the
dashboard at ``/admin``. The admin rate limit is checked before the token; every mutation and
every refused token lands in the audit log.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select

from wavry.gateway.deps import context, rate_limit, tokens_equal
from wavry.gateway.errors import ApiError
from wavry.gateway.schemas import ErrorBody, RevokeResponse, _Body
from wavry.gateway.sessions import ban_active, session_id
from wavry.storage.models import User, UserBan, UserSession

__all__ = ["router"]

router = APIRouter(prefix="/admin/api", tags=["admin"])

_ERRORS: dict[int | str, dict[str, object]] = {
    c: {"model": ErrorBody} for c in (400, 401, 403, 404, 429)
}
RELAYS_MAX_BYTES = 1 << 20
RECENT = 20


class AdminUser(BaseModel):
    id: str
    email: str
    username: str
    display_name: str
    wavry_id: str | None
    has_totp: bool
    created_at: float
    banned: bool


class AdminSession(BaseModel):
    id: str
    user_id: str
    username: str
    created_at: float
    expires_at: float
    user_agent: str | None = None


class AdminBan(BaseModel):
    user_id: str
    username: str
    reason: str
    created_at: float
    expires_at: float | None


class Overview(BaseModel):
    users_total: int
    sessions_active: int
    recent_users: list[AdminUser]
    recent_sessions: list[AdminSession]
    active_bans: list[AdminBan]


class UserList(BaseModel):
    users: list[AdminUser]


class AdminSessionList(BaseModel):
    sessions: list[AdminSession]


class AdminRevokeRequest(_Body):
    session_id: str = Field(min_length=16, max_length=16, pattern=r"^[0-9a-fA-F]+$")


class BanRequest(_Body):
    user_id: str = Field(min_length=1, max_length=36)
    reason: str = Field(min_length=1, max_length=500)
    #: omit for a permanent ban
    duration_hours: float | None = Field(default=None, gt=0, le=24 * 365 * 10)


class UnbanRequest(_Body):
    user_id: str = Field(min_length=1, max_length=36)


class Success(BaseModel):
    success: bool


class AuditEvent(BaseModel):
    id: int
    created_at: float
    actor: str
    action: str
    target_type: str
    target_id: str | None
    outcome: str
    actor_ip_hash: str
    details: dict[str, Any] | None


class AuditList(BaseModel):
    events: list[AuditEvent]


class RelaysView(BaseModel):
    master_url: str
    relays: list[dict[str, Any]]


def _admin_token(request: Request) -> str | None:
    token = request.headers.get("x-admin-token", "").strip()
    if token:
        return token
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def _record(
    request: Request, action: str, outcome: str, target_type: str, target: str | None,
    details: dict[str, Any] | None = None, actor: str = "admin",
) -> None:  # fmt: skip
    ctx = context(request)
    await ctx.auditor.record(actor=actor, action=action, target_type=target_type,
                             target_id=target, outcome=outcome, ip=ctx.client_ip(request),
                             details=details)  # fmt: skip


async def require_admin(request: Request, action: str) -> None:
    ctx = context(request)
    s = ctx.settings
    ip = ctx.client_ip(request)
    await rate_limit(request, f"admin:{ip}", s.admin_rate_limit, s.admin_rate_window_secs,
                     action=action)  # fmt: skip
    expected = s.admin_panel_token
    if expected is None:
        await _record(request, action, "denied", "admin", None, {"reason": "disabled"},
                      actor="anonymous")  # fmt: skip
        raise ApiError(403, "admin API disabled: set ADMIN_PANEL_TOKEN (at least 32 characters)")
    given = _admin_token(request)
    if given is None or not tokens_equal(given, expected.get_secret_value()):
        ctx.metrics.inc("admin_auth_failures")
        await _record(request, action, "auth_failed", "admin", None, actor="anonymous")
        raise ApiError(401, "admin token missing or wrong", headers={"WWW-Authenticate": "Bearer"})


def _admin_user(user: User, banned: bool) -> AdminUser:
    return AdminUser(
        id=user.id,
        email=user.email,
        username=user.username,
        display_name=user.display_name,
        wavry_id=user.wavry_id,
        has_totp=user.totp_secret_enc is not None,
        created_at=user.created_at,
        banned=banned,
    )


async def _banned_ids(db: Any, ids: list[str], now: float) -> set[str]:
    if not ids:
        return set()
    rows = await db.scalars(
        select(UserBan.user_id).where(UserBan.user_id.in_(ids), ban_active(now))
    )
    return set(rows.all())


async def _sessions(db: Any, now: float, user_id: str | None, limit: int) -> list[AdminSession]:
    query = (
        select(UserSession, User.username)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.expires_at > now)
        .order_by(UserSession.created_at.desc())
        .limit(limit)
    )
    if user_id is not None:
        query = query.where(UserSession.user_id == user_id)
    rows = (await db.execute(query)).all()
    return [
        AdminSession(id=session_id(s.token_hash), user_id=s.user_id, username=username,
                     created_at=s.created_at, expires_at=s.expires_at, user_agent=s.user_agent)
        for s, username in rows
    ]  # fmt: skip


@router.get("/overview", response_model=Overview, responses=_ERRORS)
async def overview(request: Request) -> Overview:
    await require_admin(request, "admin_overview")
    ctx = context(request)
    now = ctx.clock()
    async with ctx.db() as db:
        users_total = await db.scalar(select(func.count()).select_from(User)) or 0
        sessions_active = (
            await db.scalar(
                select(func.count()).select_from(UserSession).where(UserSession.expires_at > now)
            )
            or 0
        )
        users = list(
            (await db.scalars(select(User).order_by(User.created_at.desc()).limit(RECENT))).all()
        )
        banned = await _banned_ids(db, [u.id for u in users], now)
        sessions = await _sessions(db, now, None, RECENT)
        bans = (
            await db.execute(
                select(UserBan, User.username)
                .join(User, User.id == UserBan.user_id)
                .where(ban_active(now))
                .order_by(UserBan.created_at.desc())
                .limit(200)
            )
        ).all()
    return Overview(
        users_total=users_total,
        sessions_active=sessions_active,
        recent_users=[_admin_user(u, u.id in banned) for u in users],
        recent_sessions=sessions,
        active_bans=[
            AdminBan(
                user_id=b.user_id,
                username=name,
                reason=b.reason,
                created_at=b.created_at,
                expires_at=b.expires_at,
            )
            for b, name in bans
        ],  # fmt: skip
    )


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@router.get("/users", response_model=UserList, responses=_ERRORS)
async def users(
    request: Request,
    query: str = Query(default="", max_length=254),
    limit: int = Query(default=50, ge=1, le=500),
) -> UserList:
    await require_admin(request, "admin_users")
    ctx = context(request)
    stmt = select(User).order_by(User.created_at.desc()).limit(limit)
    term = query.strip().lower()
    if term:
        pattern = _like(term)
        stmt = stmt.where(
            or_(
                User.email.like(pattern, escape="\\"),
                User.username.like(pattern, escape="\\"),
                func.lower(User.display_name).like(pattern, escape="\\"),
                User.id == term,
            )
        )
    async with ctx.db() as db:
        rows = list((await db.scalars(stmt)).all())
        banned = await _banned_ids(db, [u.id for u in rows], ctx.clock())
    return UserList(users=[_admin_user(u, u.id in banned) for u in rows])


@router.get("/sessions", response_model=AdminSessionList, responses=_ERRORS)
async def sessions(
    request: Request,
    user_id: str | None = Query(default=None, max_length=36),
    limit: int = Query(default=100, ge=1, le=1000),
) -> AdminSessionList:
    await require_admin(request, "admin_sessions")
    ctx = context(request)
    async with ctx.db() as db:
        rows = await _sessions(db, ctx.clock(), user_id or None, limit)
    return AdminSessionList(sessions=rows)


@router.post("/sessions/revoke", response_model=RevokeResponse, responses=_ERRORS)
async def revoke(body: AdminRevokeRequest, request: Request) -> RevokeResponse:
    await require_admin(request, "admin_revoke_session")
    ctx = context(request)
    async with ctx.db() as db, db.begin():
        row = await ctx.session_store.find_by_id(db, body.session_id)
        user_id, digest = (row.user_id, row.token_hash) if row is not None else (None, None)
        revoked = digest is not None and await ctx.session_store.revoke(db, digest)
    if revoked and user_id is not None and digest is not None:
        await ctx.sessions_revoked(user_id, [digest])
    await _record(request, "revoke_session", "success" if revoked else "not_found", "session",
                  body.session_id.lower(), {"user_id": user_id})  # fmt: skip
    return RevokeResponse(revoked=revoked)


@router.post("/ban", response_model=Success, responses=_ERRORS)
async def ban(body: BanRequest, request: Request) -> Success:
    """Ban an account (optionally for ``duration_hours``): its sessions are revoked at once and
    logins are refused until the ban ends."""
    await require_admin(request, "ban_user")
    ctx = context(request)
    now = ctx.clock()
    expires = None if body.duration_hours is None else now + body.duration_hours * 3600.0
    async with ctx.db() as db, db.begin():
        user = await db.get(User, body.user_id)
        if user is None:
            await _record(request, "ban_user", "not_found", "user", body.user_id)
            raise ApiError(404, "no such user")
        existing = await db.get(UserBan, body.user_id)
        if existing is None:
            db.add(UserBan(user_id=user.id, reason=body.reason.strip(), created_at=now,
                           expires_at=expires))  # fmt: skip
        else:
            existing.reason, existing.created_at, existing.expires_at = (
                body.reason.strip(), now, expires)  # fmt: skip
        revoked = await ctx.session_store.revoke_all(db, user.id)
    await ctx.sessions_revoked(body.user_id, revoked)
    ctx.metrics.inc("bans")
    await _record(request, "ban_user", "success", "user", body.user_id,
                  {"reason": body.reason[:200], "duration_hours": body.duration_hours,
                   "sessions_revoked": len(revoked)})  # fmt: skip
    return Success(success=True)


@router.post("/unban", response_model=Success, responses=_ERRORS)
async def unban(body: UnbanRequest, request: Request) -> Success:
    await require_admin(request, "unban_user")
    ctx = context(request)
    async with ctx.db() as db, db.begin():
        existing = await db.get(UserBan, body.user_id)
        if existing is not None:
            await db.delete(existing)
    await _record(request, "unban_user", "success" if existing else "not_found", "user",
                  body.user_id)  # fmt: skip
    return Success(success=True)


@router.get("/audit", response_model=AuditList, responses=_ERRORS)
async def audit_log(
    request: Request,
    limit: int = Query(default=200, ge=1, le=1000),
    action: str | None = Query(default=None, max_length=64),
) -> AuditList:
    await require_admin(request, "admin_audit_read")
    rows = await context(request).auditor.recent(limit, action)
    return AuditList(
        events=[
            AuditEvent(id=r.id, created_at=r.created_at, actor=r.actor, action=r.action,
                       target_type=r.target_type, target_id=r.target_id, outcome=r.outcome,
                       actor_ip_hash=r.actor_ip_hash, details=r.details)
            for r in rows
        ]
    )  # fmt: skip


@router.get(
    "/relays",
    response_model=RelaysView,
    responses={**_ERRORS, 502: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def relays(request: Request) -> RelaysView:
    """The relays as the master sees them (``GET <master>/v1/relays``)."""
    await require_admin(request, "admin_relays")
    ctx = context(request)
    master = ctx.settings.master_url
    if master is None:
        raise ApiError(503, "no master configured: set WAVRY_GATEWAY_MASTER_URL")
    try:
        async with httpx.AsyncClient(timeout=5.0) as http:
            resp = await http.get(f"{master}/v1/relays")
    except httpx.HTTPError as exc:
        raise ApiError(502, f"master at {master} unreachable: {type(exc).__name__}") from None
    if resp.status_code != 200 or len(resp.content) > RELAYS_MAX_BYTES:
        raise ApiError(502, f"master at {master} answered {resp.status_code}")
    try:
        data = resp.json()
    except ValueError:
        raise ApiError(502, f"master at {master} answered with invalid JSON") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ApiError(502, f"master at {master} answered with an unexpected shape")
    return RelaysView(master_url=master, relays=data)
