"""The master's FastAPI application: ``create_app(settings)``.

Everything the routes need lives in one ``MasterContext`` on ``app.state.master``; the clock and
random sources are inputs so tests drive time. The schema is NOT created here: the CLI (or the
test fixture) runs the Alembic migrations first.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from wavry import __version__
from wavry.http_openapi import openapi_with_400
from wavry.master.audit import Auditor
from wavry.master.identity import IdentityConfig, IdentityService
from wavry.master.keys import MasterKeys, load_keys
from wavry.master.leases import LeaseConfig, LeaseIssuer
from wavry.master.ratelimit import SlidingWindowLimiter
from wavry.master.registry import Registry, RegistryConfig
from wavry.master.selection import SelectionConfig
from wavry.master.settings import MasterSettings
from wavry.storage.engine import database_url, make_engine, make_sessionmaker

__all__ = ["MasterContext", "create_app", "run_sweeper"]

log = logging.getLogger(__name__)


@dataclass
class MasterContext:
    settings: MasterSettings
    keys: MasterKeys
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    registry: Registry
    identities: IdentityService
    issuer: LeaseIssuer
    auditor: Auditor
    clock: Callable[[], float]
    started_at: float
    owns_engine: bool
    lease_limiter: SlidingWindowLimiter
    auth_limiter: SlidingWindowLimiter
    feedback_limiter: SlidingWindowLimiter
    sweeps: int = field(default=0)


def _audit_key(settings: MasterSettings, keys: MasterKeys) -> bytes:
    if settings.audit_ip_key is not None:
        return settings.audit_ip_key.get_secret_value().encode()
    return hashlib.sha256(b"wavry-master-v1 audit ip\n" + keys.seed).digest()


def build_context(
    settings: MasterSettings,
    *,
    engine: AsyncEngine | None = None,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    challenge_rng: Callable[[int], bytes] = secrets.token_bytes,
) -> MasterContext:
    keys = load_keys(settings)
    owns_engine = engine is None
    if engine is None:
        url = settings.database_url or database_url(
            {"WAVRY_DATA_DIR": str(settings.data_dir)}, filename="master.db"
        )
        engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    # A relay that missed `selection_missed_heartbeats` heartbeats is most likely gone: neither
    # offered in leases nor counted as assignable by /ready (quarantine comes much later).
    heartbeat_secs = settings.heartbeat_interval_ms / 1000.0
    stale_after = min(
        settings.quarantine_after_secs, settings.selection_missed_heartbeats * heartbeat_secs
    )
    registry = Registry(
        RegistryConfig(
            assignable_max_age=stale_after,
            probation_heartbeats=settings.probation_heartbeats,
            degraded_load_pct=settings.degraded_load_pct,
            quarantine_after=settings.quarantine_after_secs,
            purge_after=settings.purge_after_secs,
            sybil_max_per_subnet=settings.sybil_max_per_subnet,
            ipv4_prefix=settings.sybil_ipv4_prefix,
            ipv6_prefix=settings.sybil_ipv6_prefix,
            min_bitrate_kbps=settings.min_relay_bitrate_kbps,
        )
    )
    issuer = LeaseIssuer(
        LeaseConfig(
            ttl=float(settings.lease_ttl_secs),
            soft_kbps=settings.lease_soft_kbps,
            hard_kbps=settings.lease_hard_kbps,
        ),
        keys,
        registry,
        SelectionConfig(max_age=stale_after, fresh_for=2 * heartbeat_secs),
        rng=rng,
    )
    identities = IdentityService(
        IdentityConfig(
            challenge_ttl=settings.challenge_ttl_secs,
            table_max=settings.challenge_table_max,
            per_identity=settings.challenges_per_identity,
            token_ttl=settings.token_ttl_secs,
        ),
        rng=challenge_rng,
    )
    return MasterContext(
        settings=settings,
        keys=keys,
        engine=engine,
        sessions=sessions,
        registry=registry,
        identities=identities,
        issuer=issuer,
        auditor=Auditor(sessions, _audit_key(settings, keys), clock),
        clock=clock,
        started_at=clock(),
        owns_engine=owns_engine,
        lease_limiter=SlidingWindowLimiter(
            settings.lease_rate_limit, settings.lease_rate_window_secs
        ),
        auth_limiter=SlidingWindowLimiter(settings.auth_rate_limit_per_min, 60.0),
        feedback_limiter=SlidingWindowLimiter(settings.feedback_rate_limit_per_min, 60.0),
    )


async def run_sweeper(ctx: MasterContext) -> None:
    """Sweep the registry every ``sweep_interval_secs`` until cancelled."""
    while True:
        await asyncio.sleep(ctx.settings.sweep_interval_secs)
        try:
            async with ctx.sessions() as session, session.begin():
                result = await ctx.registry.sweep(session, ctx.clock())
            ctx.sweeps += 1
            if result.quarantined or result.purged:
                log.info(
                    "sweeper: quarantined %d relay(s), purged %d",
                    len(result.quarantined),
                    len(result.purged),
                )
        except Exception:  # noqa: BLE001 - top of a task: log and keep sweeping
            log.exception("sweeper pass failed")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(
    settings: MasterSettings | None = None,
    *,
    engine: AsyncEngine | None = None,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    challenge_rng: Callable[[int], bytes] = secrets.token_bytes,
    run_background: bool = True,
) -> FastAPI:
    settings = settings if settings is not None else MasterSettings()
    ctx = build_context(settings, engine=engine, clock=clock, rng=rng, challenge_rng=challenge_rng)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(run_sweeper(ctx)) if run_background else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if ctx.owns_engine:
                await ctx.engine.dispose()

    app = FastAPI(
        title="Wavry master",
        version=__version__,
        description="Relay registry, relay selection, signed relay leases, identities.",
        lifespan=lifespan,
    )
    app.state.master = ctx

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", ""))}
            for err in exc.errors()
        ]
        return JSONResponse({"error": "invalid request", "detail": detail}, status_code=400)

    from wavry.master import api_admin, api_identity, api_relays, api_service

    app.include_router(api_relays.router)
    app.include_router(api_identity.router)
    app.include_router(api_service.router)
    app.include_router(api_admin.router)

    app.openapi = lambda: openapi_with_400(app)  # type: ignore[method-assign]
    return app
