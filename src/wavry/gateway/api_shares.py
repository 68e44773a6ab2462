"""Host sharing: an account lets other accounts connect to its hosts (signaling checks it
through ``GatewayContext.may_connect``)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from sqlalchemy import delete, select

from wavry.gateway.deps import audit, context, rate_limit, require_user
from wavry.gateway.errors import ApiError
from wavry.gateway.schemas import (
    ErrorBody,
    ShareEntry,
    ShareList,
    ShareRequest,
    ShareResponse,
    UnshareResponse,
)
from wavry.gateway.validation import normalize_username
from wavry.storage.models import HostShare, User

__all__ = ["MAX_SHARES_PER_USER", "router"]

router = APIRouter(tags=["shares"])

MAX_SHARES_PER_USER = 256
_ERRORS: dict[int | str, dict[str, object]] = {
    c: {"model": ErrorBody} for c in (400, 401, 404, 409, 429)
}


@router.get("/v1/shares", response_model=ShareList, responses=_ERRORS)
async def list_shares(request: Request) -> ShareList:
    ctx = context(request)
    principal = await require_user(request, "shares_list")
    async with ctx.db() as db:
        mine = (
            await db.execute(
                select(User.username, User.display_name, HostShare.created_at)
                .join(User, User.id == HostShare.shared_with_user_id)
                .where(HostShare.owner_user_id == principal.user_id)
                .order_by(User.username)
            )
        ).all()
        theirs = (
            await db.execute(
                select(User.username, User.display_name, HostShare.created_at)
                .join(User, User.id == HostShare.owner_user_id)
                .where(HostShare.shared_with_user_id == principal.user_id)
                .order_by(User.username)
            )
        ).all()
    return ShareList(
        shared_with=[ShareEntry(username=u, display_name=d, created_at=c) for u, d, c in mine],
        shared_by=[ShareEntry(username=u, display_name=d, created_at=c) for u, d, c in theirs],
    )


@router.post("/v1/shares", response_model=ShareResponse, responses=_ERRORS)
async def share(body: ShareRequest, request: Request) -> ShareResponse:
    ctx = context(request)
    s = ctx.settings
    principal = await require_user(request, "share")
    await rate_limit(request, f"shares:{principal.user_id}", s.post_auth_rate_limit,
                     s.post_auth_rate_window_secs, action="share")  # fmt: skip
    if body.username == principal.username:
        raise ApiError(400, "an account always reaches its own hosts; no share needed")
    async with ctx.db() as db, db.begin():
        target = await db.scalar(select(User.id).where(User.username == body.username))
        if target is None:
            raise ApiError(404, "no such user")
        existing = await db.get(HostShare, (principal.user_id, target))
        if existing is None:
            count = len(
                (
                    await db.scalars(
                        select(HostShare.shared_with_user_id)
                        .where(HostShare.owner_user_id == principal.user_id)
                        .limit(MAX_SHARES_PER_USER)
                    )
                ).all()
            )
            if count >= MAX_SHARES_PER_USER:
                raise ApiError(409, f"at most {MAX_SHARES_PER_USER} shares per account")
            db.add(HostShare(owner_user_id=principal.user_id, shared_with_user_id=target,
                             created_at=ctx.clock()))  # fmt: skip
    await audit(request, "share", "ok", actor=f"user:{principal.user_id}", target_id=target,
                details={"created": existing is None})  # fmt: skip
    return ShareResponse(
        owner=principal.username, shared_with=body.username, created=existing is None
    )


@router.delete("/v1/shares/{username}", response_model=UnshareResponse, responses=_ERRORS)
async def unshare(
    request: Request, username: str = Path(min_length=3, max_length=64)
) -> UnshareResponse:
    ctx = context(request)
    principal = await require_user(request, "unshare")
    try:
        name = normalize_username(username)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    async with ctx.db() as db, db.begin():
        target = await db.scalar(select(User.id).where(User.username == name))
        removed = False
        if target is not None:
            result = await db.execute(
                delete(HostShare).where(
                    HostShare.owner_user_id == principal.user_id,
                    HostShare.shared_with_user_id == target,
                )
            )
            removed = bool(getattr(result, "rowcount", 0))
    await audit(request, "unshare", "ok" if removed else "not_found",
                actor=f"user:{principal.user_id}", target_id=target)  # fmt: skip
    return UnshareResponse(removed=removed)
