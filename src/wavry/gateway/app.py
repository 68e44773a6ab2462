"""The gateway's FastAPI application: ``create_app(settings)``.

Everything the routes (and the signaling WebSocket) need lives in one ``GatewayContext`` on
``app.state.gateway``; the clock is an input so tests drive time. The schema is NOT created here:
the CLI (or a test fixture) runs the Alembic migrations first.

Optional parts plug in without editing this file: a module ``wavry.gateway.signaling.ws`` or
``wavry.gateway.dashboard`` that exists is included, through its ``install(app, ctx)`` function if
it has one, else its ``router``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import importlib
import ipaddress
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection

from wavry import __version__
from wavry.gateway.errors import ApiError, error_response
from wavry.gateway.lockout import Lockout, LockoutPolicy
from wavry.gateway.metrics import Metrics
from wavry.gateway.middleware import EdgeMiddleware
from wavry.gateway.passwords import Argon2Params, PasswordHasher
from wavry.gateway.ratelimit import InMemoryRateLimiter, RateLimiter
from wavry.gateway.sessions import Principal, SessionStore
from wavry.gateway.settings import GatewaySettings
from wavry.gateway.totp import TotpSecretBox
from wavry.http_openapi import openapi_with_400
from wavry.master.audit import Auditor
from wavry.storage.engine import make_engine, make_sessionmaker
from wavry.storage.models import HostShare, User, UserBan, UserChallenge

__all__ = ["GatewayContext", "RevocationHook", "build_context", "create_app", "run_sweeper"]

log = logging.getLogger(__name__)

#: called with (user_id, revoked token hashes) after sessions are revoked (logout, revoke, ban)
RevocationHook = Callable[[str, list[str]], Awaitable[None]]
LifecycleHook = Callable[[], Awaitable[None]]


@dataclass
class GatewayContext:
    settings: GatewaySettings
    engine: AsyncEngine
    db: async_sessionmaker[AsyncSession]
    auditor: Auditor
    clock: Callable[[], float]
    passwords: PasswordHasher
    session_store: SessionStore
    limiter: RateLimiter
    lockout: Lockout
    totp: TotpSecretBox
    metrics: Metrics
    ip_key: bytes
    started_at: float
    owns_engine: bool
    revocation_hooks: list[RevocationHook] = field(default_factory=list)
    startup_hooks: list[LifecycleHook] = field(default_factory=list)
    shutdown_hooks: list[LifecycleHook] = field(default_factory=list)
    sweeps: int = 0

    # --- the interface used by signaling (wavry.gateway.signaling) ---

    async def resolve_token(self, token: str) -> Principal | None:
        """The account behind a valid, unexpired session token of a user who is not banned."""
        async with self.db() as db:
            return await self.session_store.resolve(db, token, self.clock())

    async def may_connect(self, sender: Principal, target_username: str) -> tuple[bool, str]:
        """Whether ``sender`` may reach hosts of ``target_username``.

        ``(True, "ok")`` for the same account or when the target's owner shares with the sender;
        otherwise ``(False, "unknown_target")`` or ``(False, "not_shared")``.
        """
        name = target_username.strip().lower()
        # One Core query on a bare connection: this runs for every first offer and relay
        # request, and an ORM session plus two round trips cost ~1.2 ms of gateway CPU.
        query = (
            select(User.id, HostShare.owner_user_id)
            .outerjoin(
                HostShare,
                (HostShare.owner_user_id == User.id)
                & (HostShare.shared_with_user_id == sender.user_id),
            )
            .where(User.username == name)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return False, "unknown_target"
        target_id, shared_owner = row
        if target_id == sender.user_id or shared_owner is not None:
            return True, "ok"
        return False, "not_shared"

    def client_ip(self, conn: HTTPConnection) -> str:
        """The client address; proxy headers are honoured only with WAVRY_TRUST_PROXY_HEADERS.

        Behind ``trusted_proxy_hops`` proxies that each append to X-Forwarded-For, the client is
        that many entries from the right (entries further left are client-controlled).
        """
        peer = conn.client.host if conn.client else "unknown"
        if not self.settings.trust_proxy_headers:
            return peer
        forwarded = [p.strip() for p in conn.headers.get("x-forwarded-for", "").split(",")]
        forwarded = [p for p in forwarded if p]
        hops = self.settings.trusted_proxy_hops
        candidate = forwarded[-hops] if len(forwarded) >= hops else None
        if candidate is None:
            candidate = conn.headers.get("x-real-ip", "").strip() or None
        if candidate is not None:
            with contextlib.suppress(ValueError):
                return str(ipaddress.ip_address(candidate.strip("[]")))
        return peer

    # --- helpers for the API modules ---

    def hash_ip(self, ip: str) -> str:
        return hmac.new(self.ip_key, ip.encode("utf-8", "replace"), hashlib.sha256).hexdigest()

    async def hit(self, key: str, limit: int, window_secs: float) -> bool:
        allowed = await self.limiter.hit(key, limit=limit, window_secs=window_secs)
        if not allowed:
            self.metrics.inc("rate_limited")
        return allowed

    async def sessions_revoked(self, user_id: str, token_hashes: list[str]) -> None:
        """Tell listeners (signaling) that these sessions are gone; never raises."""
        if not token_hashes:
            return
        self.metrics.inc("sessions_revoked", len(token_hashes))
        for hook in list(self.revocation_hooks):
            try:
                await hook(user_id, token_hashes)
            except Exception:  # noqa: BLE001 - a listener's bug must not fail the revocation
                log.exception("session revocation hook failed")


def _ip_key(settings: GatewaySettings) -> bytes:
    if settings.audit_ip_key is not None:
        return settings.audit_ip_key.get_secret_value().encode()
    path = Path(settings.data_dir) / "gateway-ip-hash.key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    key = secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key.hex() + "\n")
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    except OSError as exc:
        log.warning("cannot persist the address-hash key (%s): using a per-process key", exc)
    return key


def _make_limiter(settings: GatewaySettings, clock: Callable[[], float]) -> RateLimiter:
    if settings.redis_url is not None:
        module = importlib.import_module("wavry.gateway.signaling.redis_backend")
        limiter: RateLimiter = module.RedisRateLimiter.from_url(
            settings.redis_url.get_secret_value()
        )
        return limiter
    return InMemoryRateLimiter(max_keys=settings.rate_max_keys, clock=clock)


def build_context(
    settings: GatewaySettings,
    *,
    engine: AsyncEngine | None = None,
    clock: Callable[[], float] = time.time,
    limiter: RateLimiter | None = None,
) -> GatewayContext:
    owns_engine = engine is None
    if engine is None:
        engine = make_engine(settings.resolved_database_url())
    db = make_sessionmaker(engine)
    ip_key = _ip_key(settings)
    return GatewayContext(
        settings=settings,
        engine=engine,
        db=db,
        auditor=Auditor(db, ip_key, clock),
        clock=clock,
        passwords=PasswordHasher(
            Argon2Params(
                memory_kib=settings.argon2_memory_kib,
                time_cost=settings.argon2_time_cost,
                parallelism=settings.argon2_parallelism,
            ),
            max_concurrency=settings.argon2_max_concurrency,
        ),
        session_store=SessionStore(
            ttl=settings.session_ttl_secs, max_per_user=settings.max_sessions_per_user
        ),
        limiter=limiter if limiter is not None else _make_limiter(settings, clock),
        lockout=Lockout(
            LockoutPolicy(
                threshold=settings.lockout_threshold,
                base=settings.lockout_base_secs,
                max_lock=settings.lockout_max_secs,
                reset=settings.lockout_reset_secs,
            )
        ),
        totp=TotpSecretBox(
            settings.totp_key(),
            allow_plaintext=settings.totp_plaintext_allowed,
            previous_keys=settings.totp_previous_keys(),
        ),
        metrics=Metrics(),
        ip_key=ip_key,
        started_at=clock(),
        owns_engine=owns_engine,
    )


async def sweep_once(ctx: GatewayContext) -> None:
    """Purge expired sessions, stale failure records, ended bans and expired challenges."""
    now = ctx.clock()
    async with ctx.db() as db, db.begin():
        await ctx.session_store.purge_expired(db, now)
        await ctx.lockout.purge(db, now)
        await db.execute(delete(UserBan).where(UserBan.expires_at <= now))
        await db.execute(delete(UserChallenge).where(UserChallenge.expires_at <= now))
        await db.execute(
            update(User)
            .where(User.totp_pending_expires_at <= now)
            .values(totp_pending_enc=None, totp_pending_expires_at=None)
        )
    ctx.sweeps += 1


async def run_sweeper(ctx: GatewayContext) -> None:
    while True:
        await asyncio.sleep(ctx.settings.sweep_interval_secs)
        try:
            await sweep_once(ctx)
        except Exception:  # noqa: BLE001 - top of a task: log and keep sweeping
            log.exception("gateway sweeper pass failed")


def _include_optional(app: FastAPI, ctx: GatewayContext, name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            return  # that part is not built in
        raise
    install = getattr(module, "install", None)
    if install is not None:
        install(app, ctx)
    elif getattr(module, "router", None) is not None:
        app.include_router(module.router)


def create_app(
    settings: GatewaySettings | None = None,
    *,
    engine: AsyncEngine | None = None,
    clock: Callable[[], float] = time.time,
    limiter: RateLimiter | None = None,
    run_background: bool = True,
) -> FastAPI:
    settings = settings if settings is not None else GatewaySettings()
    ctx = build_context(settings, engine=engine, clock=clock, limiter=limiter)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for hook in ctx.startup_hooks:
            await hook()
        task = asyncio.create_task(run_sweeper(ctx)) if run_background else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for hook in reversed(ctx.shutdown_hooks):
                try:
                    await hook()
                except Exception:  # noqa: BLE001 - shut the rest down regardless
                    log.exception("gateway shutdown hook failed")
            aclose = getattr(ctx.limiter, "aclose", None)
            if aclose is not None:
                await aclose()
            if ctx.owns_engine:
                await ctx.engine.dispose()

    app = FastAPI(
        title="Wavry gateway",
        version=__version__,
        description="Accounts (Argon2id, TOTP 2FA, sessions), host sharing, Wavry ID binding, "
        "admin API and signaling.",
        lifespan=lifespan,
    )
    app.state.gateway = ctx

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.extra, exc.headers)

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), None, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        ctx.metrics.inc("validation_errors")
        detail = [
            {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", ""))}
            for err in exc.errors()
        ]
        return JSONResponse({"error": "invalid request", "detail": detail}, status_code=400)

    from wavry.gateway import (
        api_admin,
        api_auth,
        api_connect,
        api_identity,
        api_misc,
        api_shares,
        api_totp,
    )

    app.include_router(api_misc.router)
    app.include_router(api_auth.router)
    app.include_router(api_totp.router)
    app.include_router(api_identity.router)
    app.include_router(api_shares.router)
    app.include_router(api_connect.router)
    app.include_router(api_admin.router)
    for optional in ("wavry.gateway.signaling.ws", "wavry.gateway.dashboard"):
        _include_optional(app, ctx, optional)

    origins = ["*"] if settings.cors_allow_any else list(settings.allowed_origins)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["content-type", "authorization", "x-session-token", "x-admin-token"],
        max_age=600,
    )
    app.add_middleware(EdgeMiddleware, ctx=ctx)
    app.openapi = lambda: openapi_with_400(app)  # type: ignore[method-assign]
    return app
