"""Request helpers shared by the API modules: context, tokens, rate limits, audit."""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING, Any

from fastapi import Request

from wavry.gateway.errors import ApiError
from wavry.gateway.sessions import Principal, token_format_ok

if TYPE_CHECKING:
    from wavry.gateway.app import GatewayContext

__all__ = [
    "audit",
    "context",
    "email_ref",
    "rate_limit",
    "require_user",
    "session_token",
    "tokens_equal",
]


#: audit rows for refused session tokens per client address and minute
AUDIT_401_PER_MIN = 10


def context(request: Request) -> GatewayContext:
    ctx: GatewayContext = request.app.state.gateway
    return ctx


def session_token(request: Request) -> str | None:
    """The session token from ``X-Session-Token`` or ``Authorization: Bearer``."""
    token = request.headers.get("x-session-token", "").strip()
    if token:
        return token
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def tokens_equal(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def email_ref(email: str) -> str:
    """What the audit log records for an email: a short hash (the log is not a mailing list)."""
    return "email:" + hashlib.sha256(email.encode()).hexdigest()[:16]


async def audit(
    request: Request,
    action: str,
    outcome: str,
    *,
    actor: str = "anonymous",
    target_type: str = "user",
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    ctx = context(request)
    await ctx.auditor.record(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        outcome=outcome,
        ip=ctx.client_ip(request),
        details=details,
    )


async def rate_limit(
    request: Request, key: str, limit: int, window_secs: float, *, action: str
) -> None:
    """Count one hit on ``key``; over the limit -> audit and 429 with ``Retry-After``."""
    ctx = context(request)
    if await ctx.hit(key, limit, window_secs):
        return
    # one audit row per key and window: a flood must not become a flood of database writes
    if await ctx.limiter.hit(f"audit:{key}", limit=1, window_secs=window_secs):
        await audit(request, action, "rate_limited", details={"limit": key.split(":", 1)[0]})
    raise ApiError(
        429, "too many requests; try again later", headers={"Retry-After": str(int(window_secs))}
    )


async def require_user(request: Request, action: str) -> Principal:
    """The signed-in account, or 401 (missing, malformed, expired, revoked token or banned)."""
    ctx = context(request)
    token = session_token(request)
    principal = None
    if token is not None and token_format_ok(token):
        principal = await ctx.resolve_token(token)
    if principal is None:
        reason = "missing" if token is None else "invalid_token"
        # audited, but at most AUDIT_401_PER_MIN rows per address and minute
        ip = ctx.client_ip(request)
        if await ctx.limiter.hit(f"audit-401:{ip}", limit=AUDIT_401_PER_MIN, window_secs=60.0):
            await audit(request, action, "auth_failed", details={"reason": reason})
        raise ApiError(
            401, "missing, invalid or expired session token", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal
