"""Audit log: auth failures, policy denials and admin actions (who, what, outcome, hashed IP).

Each event is written in its own transaction, so a refused request (whose own transaction rolls
back) still leaves its audit row.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wavry.storage.models import AuditEvent

__all__ = ["Auditor", "hash_ip"]

log = logging.getLogger(__name__)


def hash_ip(key: bytes, ip: str) -> str:
    return hmac.new(key, ip.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


class Auditor:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], key: bytes, clock: Callable[[], float]
    ) -> None:
        self._sessions = sessions
        self._key = key
        self._clock = clock

    async def record(
        self,
        *,
        actor: str,
        action: str,
        target_type: str,
        target_id: str | None,
        outcome: str,
        ip: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        event = AuditEvent(
            created_at=self._clock(),
            actor=actor[:80],
            action=action[:64],
            target_type=target_type[:32],
            target_id=None if target_id is None else target_id[:80],
            outcome=outcome[:16],
            actor_ip_hash=hash_ip(self._key, ip),
            details=details,
        )
        async with self._sessions() as session, session.begin():
            session.add(event)
        log.info(
            "audit action=%s actor=%s target=%s:%s outcome=%s",
            action,
            actor,
            target_type,
            target_id,
            outcome,
        )

    async def recent(self, limit: int, action: str | None = None) -> list[AuditEvent]:
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if action:
            query = query.where(AuditEvent.action == action)
        async with self._sessions() as session:
            return list((await session.scalars(query)).all())
