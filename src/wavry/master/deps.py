"""Request helpers shared by the API modules: context, client address, bearer checks."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, NoReturn

from fastapi import HTTPException, Request

if TYPE_CHECKING:
    from wavry.master.app import MasterContext

__all__ = [
    "bearer_token",
    "client_ip",
    "context",
    "deny",
    "require_admin",
    "require_relay_token",
    "tokens_equal",
]


def context(request: Request) -> MasterContext:
    ctx: MasterContext = request.app.state.master
    return ctx


def client_ip(request: Request) -> str:
    # The direct peer only: X-Forwarded-For is not trusted (see docs/master.md).
    return request.client.host if request.client else "unknown"


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def tokens_equal(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode("utf-8", "replace"), expected.encode())


async def deny(
    request: Request,
    status: int,
    reason: str,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | None,
    headers: dict[str, str] | None = None,
) -> NoReturn:
    """Write the audit row for a refusal, then raise it as an HTTP error."""
    outcome = {401: "auth_failed", 429: "rate_limited"}.get(status, "denied")
    await context(request).auditor.record(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        outcome=outcome,
        ip=client_ip(request),
        details={"status": status, "reason": reason},
    )
    raise HTTPException(status, reason, headers=headers)


async def require_relay_token(request: Request, relay_id: str, action: str) -> None:
    expected = context(request).settings.relay_auth_token
    if expected is None:
        return  # dev mode: announced loudly at start-up
    given = bearer_token(request)
    if given is None or not tokens_equal(given, expected.get_secret_value()):
        await deny(
            request,
            401,
            "relay service token missing or wrong",
            actor=f"relay:{relay_id}",
            action=action,
            target_type="relay",
            target_id=relay_id,
            headers={"WWW-Authenticate": "Bearer"},
        )


async def require_admin(request: Request, action: str) -> None:
    expected = context(request).settings.admin_panel_token
    if expected is None:
        await deny(
            request,
            403,
            "admin API disabled: set ADMIN_PANEL_TOKEN (at least 32 characters)",
            actor="admin",
            action=action,
            target_type="admin",
            target_id=None,
        )
    given = bearer_token(request)
    if given is None or not tokens_equal(given, expected.get_secret_value()):
        await deny(
            request,
            401,
            "admin token missing or wrong",
            actor="anonymous",
            action=action,
            target_type="admin",
            target_id=None,
            headers={"WWW-Authenticate": "Bearer"},
        )
