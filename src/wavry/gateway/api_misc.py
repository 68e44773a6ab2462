"""Operations endpoints: ``/``, ``/health``, ``/ready``, ``/metrics`` (Prometheus text)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import func, select, text

from wavry import __version__
from wavry.gateway.deps import context
from wavry.storage.models import User, UserSession

__all__ = ["router"]

router = APIRouter(tags=["ops"])


class RootBody(BaseModel):
    service: str
    version: str


class HealthBody(BaseModel):
    status: str
    version: str
    uptime_secs: float
    database: str
    totp_available: bool
    admin_enabled: bool


class ReadyBody(BaseModel):
    ready: bool
    database: str


@router.get("/", response_model=RootBody)
async def root() -> RootBody:
    return RootBody(service="Wavry Gateway Online", version=__version__)


async def _database_ok(request: Request) -> bool:
    try:
        async with context(request).db() as db:
            await db.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any database failure means "not ready"
        return False
    return True


@router.get("/health", response_model=HealthBody)
async def health(request: Request) -> HealthBody:
    """Liveness and a summary; always 200 while the process serves HTTP."""
    ctx = context(request)
    db_ok = await _database_ok(request)
    return HealthBody(
        status="ok" if db_ok else "degraded",
        version=__version__,
        uptime_secs=round(max(0.0, ctx.clock() - ctx.started_at), 3),
        database="ok" if db_ok else "unavailable",
        totp_available=ctx.totp.available,
        admin_enabled=ctx.settings.admin_panel_token is not None,
    )


@router.get("/ready", response_model=ReadyBody, responses={503: {"model": ReadyBody}})
async def ready(request: Request) -> JSONResponse:
    """200 when the database answers, else 503 (take this replica out of the balancer)."""
    db_ok = await _database_ok(request)
    body = ReadyBody(ready=db_ok, database="ok" if db_ok else "unavailable")
    return JSONResponse(body.model_dump(), status_code=200 if db_ok else 503)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> PlainTextResponse:
    ctx = context(request)
    text_out = await ctx.metrics.render()
    now = ctx.clock()
    try:
        async with ctx.db() as db:
            users = await db.scalar(select(func.count()).select_from(User))
            active = await db.scalar(
                select(func.count()).select_from(UserSession).where(UserSession.expires_at > now)
            )
    except Exception:  # noqa: BLE001 - a scrape must not fail because the database did
        users = active = None
    extra = [
        "# HELP wavry_gateway_up 1 while the gateway serves",
        "# TYPE wavry_gateway_up gauge",
        "wavry_gateway_up 1",
    ]
    if users is not None:
        extra += ["# HELP wavry_gateway_users Accounts", "# TYPE wavry_gateway_users gauge",
                  f"wavry_gateway_users {users}"]  # fmt: skip
        extra += ["# HELP wavry_gateway_sessions_active Unexpired sessions",
                  "# TYPE wavry_gateway_sessions_active gauge",
                  f"wavry_gateway_sessions_active {active}"]  # fmt: skip
    return PlainTextResponse(
        text_out + "\n".join(extra) + "\n", media_type="text/plain; version=0.0.4"
    )
