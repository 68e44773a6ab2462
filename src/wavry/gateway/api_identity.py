"""Binding an account to a Wavry ID: the account asks for a challenge naming the Wavry ID, signs
``BIND_CONTEXT + user_id + "\\n" + challenge`` with that ID's Ed25519 key, and posts the
signature. Challenges are single use (deleted by the first verify attempt), expire, and are
bounded per account; a Wavry ID belongs to at most one account.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from wavry.gateway.deps import audit, context, rate_limit, require_user
from wavry.gateway.errors import ApiError
from wavry.gateway.schemas import (
    ChallengeRequest,
    ChallengeResponse,
    ChallengeVerifyRequest,
    ChallengeVerifyResponse,
    ErrorBody,
)
from wavry.rift.identity import InvalidWavryIdError, public_key_from_wavry_id, verify_signature
from wavry.storage.models import User, UserChallenge

__all__ = ["BIND_CONTEXT", "bind_message", "router"]

router = APIRouter(prefix="/auth/challenge", tags=["identity"])

BIND_CONTEXT = b"wavry-gateway-v1 bind account\n"
_ERRORS: dict[int | str, dict[str, object]] = {
    c: {"model": ErrorBody} for c in (400, 401, 409, 429)
}


class _Bound(Exception):
    """The Wavry ID is bound to another account."""


def bind_message(user_id: str, challenge: bytes) -> bytes:
    """The bytes the Wavry ID's key signs: context, the account id, a newline, the challenge."""
    return BIND_CONTEXT + user_id.encode() + b"\n" + challenge


@router.post("", response_model=ChallengeResponse, responses=_ERRORS)
async def challenge(body: ChallengeRequest, request: Request) -> ChallengeResponse:
    ctx = context(request)
    s = ctx.settings
    principal = await require_user(request, "bind_challenge")
    await rate_limit(request, f"challenge:{principal.user_id}", s.account_rate_limit,
                     s.account_rate_window_secs, action="bind_challenge")  # fmt: skip
    try:
        public_key_from_wavry_id(body.wavry_id)
    except InvalidWavryIdError as exc:
        raise ApiError(400, str(exc)) from None
    now = ctx.clock()
    raw = secrets.token_bytes(32)
    async with ctx.db() as db, db.begin():
        await db.execute(delete(UserChallenge).where(UserChallenge.expires_at <= now))
        pending = await db.scalar(
            select(func.count())
            .select_from(UserChallenge)
            .where(UserChallenge.user_id == principal.user_id)
        )
        if (pending or 0) >= s.challenges_per_user:
            raise ApiError(429, "too many pending challenges; use or let them expire")
        db.add(
            UserChallenge(
                challenge=raw.hex(),
                user_id=principal.user_id,
                wavry_id=body.wavry_id,
                created_at=now,
                expires_at=now + s.challenge_ttl_secs,
            )
        )
    return ChallengeResponse(
        challenge=raw.hex(),
        message_hex=bind_message(principal.user_id, raw).hex(),
        expires_at=now + s.challenge_ttl_secs,
    )


@router.post("/verify", response_model=ChallengeVerifyResponse, responses=_ERRORS)
async def verify(body: ChallengeVerifyRequest, request: Request) -> ChallengeVerifyResponse:
    ctx = context(request)
    principal = await require_user(request, "bind_verify")
    now = ctx.clock()
    challenge_hex = body.challenge.lower()
    async with ctx.db() as db, db.begin():
        # delete first: whatever happens next, this challenge cannot be used again
        row = await db.get(UserChallenge, challenge_hex)
        if row is not None:
            await db.delete(row)
    reason = None
    if row is None or row.user_id != principal.user_id:
        reason = "unknown or already used challenge"
    elif row.expires_at <= now:
        reason = "challenge expired; request a new one"
    elif not verify_signature(
        public_key_from_wavry_id(row.wavry_id),
        bytes.fromhex(body.signature_hex),
        bind_message(principal.user_id, bytes.fromhex(challenge_hex)),
    ):
        reason = "signature does not verify"
    if reason is not None or row is None:
        await audit(request, "bind_verify", "auth_failed", actor=f"user:{principal.user_id}",
                    target_id=principal.user_id, details={"reason": reason})  # fmt: skip
        raise ApiError(401, reason or "unknown challenge")
    try:
        async with ctx.db() as db, db.begin():
            other = await db.scalar(
                select(User.id).where(User.wavry_id == row.wavry_id, User.id != principal.user_id)
            )
            if other is not None:
                raise _Bound
            user = await db.get(User, principal.user_id)
            if user is None:
                raise ApiError(401, "missing, invalid or expired session token")
            user.wavry_id = row.wavry_id
    except (IntegrityError, _Bound):  # checked first; the unique constraint closes the race
        await audit(request, "bind_verify", "conflict", actor=f"user:{principal.user_id}",
                    target_type="wavry_id", target_id=row.wavry_id)  # fmt: skip
        raise ApiError(409, "this Wavry ID is bound to another account") from None
    ctx.metrics.inc("wavry_id_bound")
    await audit(request, "bind_verify", "ok", actor=f"user:{principal.user_id}",
                target_type="wavry_id", target_id=row.wavry_id)  # fmt: skip
    return ChallengeVerifyResponse(user_id=principal.user_id, wavry_id=row.wavry_id)
