"""Lockout with exponential backoff per account and per client address.

Keys are ``email:<normalised email>`` (recorded for unknown emails too, so a lock does not tell
whether an account exists) and ``ip:<hmac of the address>``. After ``threshold`` failures within
``reset`` seconds a key is locked for ``base * 2**(failures - threshold)`` seconds (capped at
``max_lock``); while locked, attempts are refused before any password is checked. Success clears
both keys. Works inside the caller's transaction; the clock is an input.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wavry.storage.models import LoginFailure

__all__ = ["Lockout", "LockoutPolicy"]


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    threshold: int = 5
    base: float = 60.0
    max_lock: float = 3600.0
    reset: float = 86_400.0

    def lock_for(self, failures: int) -> float:
        """Seconds a key with ``failures`` recent failures stays locked (0 below the threshold)."""
        if failures < self.threshold:
            return 0.0
        exponent = min(failures - self.threshold, 32)
        return float(min(self.max_lock, self.base * (2**exponent)))


class Lockout:
    def __init__(self, policy: LockoutPolicy) -> None:
        self.policy = policy

    async def status(self, db: AsyncSession, keys: list[str], now: float) -> tuple[float, bool]:
        """(seconds until every key is unlocked (0 = not locked), whether any key has failures)."""
        rows = (
            await db.scalars(
                select(LoginFailure.locked_until).where(LoginFailure.identifier.in_(keys))
            )
        ).all()
        return max([0.0, *(until - now for until in rows)]), bool(rows)

    async def retry_after(self, db: AsyncSession, keys: list[str], now: float) -> float:
        """Seconds until every key is unlocked (0 = not locked)."""
        return (await self.status(db, keys, now))[0]

    async def record_failure(self, db: AsyncSession, keys: list[str], now: float) -> float:
        """Count one failure on every key; return the longest resulting lock (0 = none)."""
        longest = 0.0
        for key in keys:
            row = await db.get(LoginFailure, key, with_for_update=True)
            if row is None:
                try:
                    async with db.begin_nested():
                        first = LoginFailure(
                            identifier=key,
                            count=1,
                            last_failure=now,
                            locked_until=now + self.policy.lock_for(1),
                        )
                        db.add(first)
                    longest = max(longest, self.policy.lock_for(1))
                    continue
                except IntegrityError:  # a concurrent first failure: count on the existing row
                    row = await db.get(
                        LoginFailure, key, with_for_update=True, populate_existing=True
                    )
                    if row is None:
                        continue
            count = 1 if now - row.last_failure > self.policy.reset else row.count + 1
            lock = self.policy.lock_for(count)
            await db.execute(
                update(LoginFailure)
                .where(LoginFailure.identifier == key)
                .values(count=count, last_failure=now, locked_until=now + lock)
            )
            longest = max(longest, lock)
        return longest

    async def clear(self, db: AsyncSession, keys: list[str]) -> None:
        await db.execute(delete(LoginFailure).where(LoginFailure.identifier.in_(keys)))

    async def purge(self, db: AsyncSession, now: float) -> int:
        """Forget keys whose failures are older than ``reset`` and whose lock has ended."""
        result = await db.execute(
            delete(LoginFailure).where(
                LoginFailure.last_failure < now - self.policy.reset,
                LoginFailure.locked_until <= now,
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
