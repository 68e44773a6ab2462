"""Login sessions: bearer tokens of 256 random bits (64 hex chars), stored only as SHA-256.

``SessionStore`` works inside a caller's database transaction; the clock is an input.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from wavry.storage.models import User, UserBan, UserSession

__all__ = [
    "SESSION_ID_LENGTH",
    "Principal",
    "SessionStore",
    "ban_active",
    "session_id",
    "token_format_ok",
    "token_hash",
]

#: the public id of a session: this many leading hex characters of its token hash
SESSION_ID_LENGTH = 16
_TOKEN_RE = re.compile(r"[A-Za-z0-9_.-]{32,256}")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated account, as resolved from a session token."""

    user_id: str
    username: str
    token_hash: str


def token_format_ok(token: str) -> bool:
    """32..256 characters of ``[A-Za-z0-9_.-]`` (the original's rule)."""
    return bool(_TOKEN_RE.fullmatch(token))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def session_id(token_hash_hex: str) -> str:
    return token_hash_hex[:SESSION_ID_LENGTH]


def ban_active(now: float) -> ColumnElement[bool]:
    """SQL condition: the ban row is in force at ``now``."""
    return or_(UserBan.expires_at.is_(None), UserBan.expires_at > now)


class SessionStore:
    def __init__(
        self,
        *,
        ttl: float,
        max_per_user: int,
        rng: Callable[[int], str] = secrets.token_hex,
    ) -> None:
        self.ttl = ttl
        self.max_per_user = max_per_user
        self._rng = rng

    async def issue(
        self,
        db: AsyncSession,
        user_id: str,
        now: float,
        *,
        ip_hash: str | None = None,
        user_agent: str | None = None,
    ) -> tuple[str, UserSession]:
        """A new session; beyond ``max_per_user`` the oldest sessions are revoked."""
        token = self._rng(32)
        row = UserSession(
            token_hash=token_hash(token),
            user_id=user_id,
            created_at=now,
            expires_at=now + self.ttl,
            ip_hash=ip_hash,
            user_agent=(user_agent or "")[:256] or None,
        )
        db.add(row)
        await db.flush()
        live = (
            await db.scalars(
                select(UserSession.token_hash)
                .where(UserSession.user_id == user_id, UserSession.expires_at > now)
                .order_by(UserSession.created_at.desc(), UserSession.token_hash)
            )
        ).all()
        extra = [h for h in live if h != row.token_hash][self.max_per_user - 1 :]
        if extra:
            await db.execute(delete(UserSession).where(UserSession.token_hash.in_(extra)))
        return token, row

    async def resolve(self, db: AsyncSession, token: str, now: float) -> Principal | None:
        """The account behind a valid, unexpired token of a user who is not banned."""
        if not token_format_ok(token):
            return None
        digest = token_hash(token)
        row = (
            await db.execute(
                select(UserSession.expires_at, User.id, User.username)
                .join(User, User.id == UserSession.user_id)
                .where(UserSession.token_hash == digest)
            )
        ).one_or_none()
        if row is None or row.expires_at <= now:
            return None
        banned = await db.scalar(
            select(func.count())
            .select_from(UserBan)
            .where(UserBan.user_id == row.id, ban_active(now))
        )
        if banned:
            return None
        return Principal(user_id=row.id, username=row.username, token_hash=digest)

    async def revoke(self, db: AsyncSession, digest: str) -> bool:
        result = await db.execute(delete(UserSession).where(UserSession.token_hash == digest))
        return bool(getattr(result, "rowcount", 0))

    async def revoke_all(self, db: AsyncSession, user_id: str) -> list[str]:
        """Revoke every session of ``user_id``; return the revoked token hashes."""
        hashes = list(
            (
                await db.scalars(
                    select(UserSession.token_hash).where(UserSession.user_id == user_id)
                )
            ).all()
        )
        if hashes:
            await db.execute(delete(UserSession).where(UserSession.user_id == user_id))
        return hashes

    async def for_user(self, db: AsyncSession, user_id: str, now: float) -> list[UserSession]:
        return list(
            (
                await db.scalars(
                    select(UserSession)
                    .where(UserSession.user_id == user_id, UserSession.expires_at > now)
                    .order_by(UserSession.created_at.desc())
                )
            ).all()
        )

    async def find_by_id(
        self, db: AsyncSession, sid: str, *, user_id: str | None = None
    ) -> UserSession | None:
        """A session by its public id (hash prefix), optionally only among ``user_id``'s."""
        sid = sid.lower()
        if len(sid) != SESSION_ID_LENGTH or not all(c in "0123456789abcdef" for c in sid):
            return None
        query = select(UserSession).where(UserSession.token_hash.startswith(sid, autoescape=True))
        if user_id is not None:
            query = query.where(UserSession.user_id == user_id)
        rows = (await db.scalars(query.limit(2))).all()
        return rows[0] if len(rows) == 1 else None

    async def purge_expired(self, db: AsyncSession, now: float) -> int:
        result = await db.execute(delete(UserSession).where(UserSession.expires_at <= now))
        return int(getattr(result, "rowcount", 0) or 0)
