"""Identity registration and login by Ed25519 challenge (the original answered 501).

Flow: ``POST /v1/auth/register {wavry_id, display_name}`` returns a 32-byte challenge; the client
signs ``REGISTER_CONTEXT + challenge`` with the identity key and posts it to
``/v1/auth/register/verify``. Login is the same with ``LOGIN_CONTEXT`` and yields a bearer token
(stored hashed). Challenges expire after a TTL, are deleted by the first verify attempt (single
use, so a failed attempt burns it), and the table is bounded in total and per identity.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from wavry.rift.identity import InvalidWavryIdError, public_key_from_wavry_id, verify_signature
from wavry.storage.models import AuthChallenge, AuthToken, Identity

__all__ = [
    "LOGIN_CONTEXT",
    "REGISTER_CONTEXT",
    "AuthFailure",
    "IdentityConfig",
    "IdentityService",
    "challenge_message",
    "token_hash",
]

REGISTER_CONTEXT = b"wavry-master-v1 register\n"
LOGIN_CONTEXT = b"wavry-master-v1 login\n"
_CONTEXTS = {"register": REGISTER_CONTEXT, "login": LOGIN_CONTEXT}


class AuthFailure(Exception):
    """Refused; ``status`` is the HTTP status, ``action`` names the audit event."""

    def __init__(self, status: int, reason: str, action: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.action = action


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    challenge_ttl: float = 300.0
    table_max: int = 10_000
    per_identity: int = 5
    token_ttl: float = 86_400.0


def challenge_message(purpose: str, challenge: bytes) -> bytes:
    """What the identity key signs: a purpose-specific context, then the challenge bytes."""
    return _CONTEXTS[purpose] + challenge


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _public_key(wavry_id: str, action: str) -> bytes:
    try:
        return public_key_from_wavry_id(wavry_id)
    except InvalidWavryIdError as exc:
        raise AuthFailure(400, str(exc), action) from None


class IdentityService:
    def __init__(self, cfg: IdentityConfig, rng: Callable[[int], bytes] = secrets.token_bytes):
        self.cfg = cfg
        self._rng = rng

    async def issue_challenge(
        self,
        session: AsyncSession,
        *,
        wavry_id: str,
        purpose: str,
        display_name: str | None,
        now: float,
    ) -> AuthChallenge:
        action = f"{purpose}_challenge"
        _public_key(wavry_id, action)
        identity = await session.get(Identity, wavry_id)
        if identity is not None and identity.banned:
            raise AuthFailure(403, "this Wavry ID is banned", action)
        if purpose == "register" and identity is not None:
            raise AuthFailure(409, "this Wavry ID is already registered; log in", action)
        if purpose == "login":
            if identity is None:
                raise AuthFailure(404, "unknown Wavry ID; register first", action)
        await session.execute(delete(AuthChallenge).where(AuthChallenge.expires_at <= now))
        total = await session.scalar(select(func.count()).select_from(AuthChallenge))
        if (total or 0) >= self.cfg.table_max:
            raise AuthFailure(429, "too many pending challenges; try again later", action)
        mine = await session.scalar(
            select(func.count())
            .select_from(AuthChallenge)
            .where(AuthChallenge.wavry_id == wavry_id)
        )
        if (mine or 0) >= self.cfg.per_identity:
            raise AuthFailure(429, "too many pending challenges for this Wavry ID", action)
        row = AuthChallenge(
            challenge=self._rng(32).hex(),
            wavry_id=wavry_id,
            purpose=purpose,
            display_name=display_name,
            created_at=now,
            expires_at=now + self.cfg.challenge_ttl,
        )
        session.add(row)
        await session.flush()
        return row

    async def _consume(
        self,
        session: AsyncSession,
        *,
        wavry_id: str,
        purpose: str,
        challenge_hex: str,
        signature_hex: str,
        now: float,
    ) -> AuthChallenge:
        action = f"{purpose}_verify"
        public_key = _public_key(wavry_id, action)
        # delete first: whatever happens next, this challenge cannot be used again
        row = (
            await session.scalars(
                delete(AuthChallenge)
                .where(AuthChallenge.challenge == challenge_hex.lower())
                .returning(AuthChallenge)
            )
        ).one_or_none()
        if row is None or row.wavry_id != wavry_id or row.purpose != purpose:
            raise AuthFailure(401, "unknown or already used challenge", action)
        if row.expires_at <= now:
            raise AuthFailure(401, "challenge expired; request a new one", action)
        try:
            signature = bytes.fromhex(signature_hex)
        except ValueError:
            raise AuthFailure(400, "signature_hex is not hex", action) from None
        if not verify_signature(
            public_key, signature, challenge_message(purpose, bytes.fromhex(row.challenge))
        ):
            raise AuthFailure(401, "signature does not verify", action)
        return row

    async def register(
        self,
        session: AsyncSession,
        *,
        wavry_id: str,
        challenge_hex: str,
        signature_hex: str,
        now: float,
    ) -> Identity:
        row = await self._consume(
            session,
            wavry_id=wavry_id,
            purpose="register",
            challenge_hex=challenge_hex,
            signature_hex=signature_hex,
            now=now,
        )
        if await session.get(Identity, wavry_id) is not None:
            raise AuthFailure(409, "this Wavry ID is already registered", "register_verify")
        identity = Identity(
            wavry_id=wavry_id,
            public_key=public_key_from_wavry_id(wavry_id),
            display_name=row.display_name or "",
            created_at=now,
            banned=False,
        )
        session.add(identity)
        await session.flush()
        return identity

    async def login(
        self,
        session: AsyncSession,
        *,
        wavry_id: str,
        challenge_hex: str,
        signature_hex: str,
        now: float,
    ) -> tuple[str, float]:
        await self._consume(
            session,
            wavry_id=wavry_id,
            purpose="login",
            challenge_hex=challenge_hex,
            signature_hex=signature_hex,
            now=now,
        )
        identity = await session.get(Identity, wavry_id)
        if identity is None or identity.banned:
            raise AuthFailure(403, "this Wavry ID may not log in", "login_verify")
        identity.last_login = now
        await session.execute(delete(AuthToken).where(AuthToken.expires_at <= now))
        token = secrets.token_urlsafe(32)
        expires = now + self.cfg.token_ttl
        session.add(
            AuthToken(
                token_hash=token_hash(token), wavry_id=wavry_id, created_at=now, expires_at=expires
            )
        )
        await session.flush()
        return token, expires

    async def authenticate(self, session: AsyncSession, token: str, now: float) -> Identity:
        row = await session.get(AuthToken, token_hash(token))
        if row is None or row.expires_at <= now:
            raise AuthFailure(401, "invalid or expired token; log in again", "token")
        identity = await session.get(Identity, row.wavry_id)
        if identity is None or identity.banned:
            raise AuthFailure(403, "this Wavry ID is banned", "token")
        return identity

    async def ban(self, session: AsyncSession, wavry_id: str, now: float) -> bool:
        """Ban a Wavry ID (registered or not, so it cannot register later) and revoke its tokens.

        Return whether it was registered."""
        public_key = _public_key(wavry_id, "admin_revoke")
        identity = await session.get(Identity, wavry_id)
        await session.execute(delete(AuthToken).where(AuthToken.wavry_id == wavry_id))
        registered = identity is not None
        if identity is None:
            identity = Identity(
                wavry_id=wavry_id, public_key=public_key, display_name="", created_at=now
            )
            session.add(identity)
        identity.banned = True
        await session.flush()
        return registered
