"""Argon2id password hashing off the event loop, with a bounded number of concurrent hashes.

Production parameters (the original's, argon2 0.5 defaults): Argon2id v19, m=19456 KiB, t=2,
p=1, 16-byte salt, 32-byte tag, PHC string. Tests use cheaper ones through the settings.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["Argon2Params", "PasswordHasher"]


@dataclass(frozen=True, slots=True)
class Argon2Params:
    memory_kib: int = 19_456
    time_cost: int = 2
    parallelism: int = 1


class PasswordHasher:
    """``await hash(pw)`` / ``await verify(phc, pw)`` in worker threads.

    ``verify_dummy`` spends the same work on a fixed hash, so an unknown account costs as much
    time as a wrong password for a known one.
    """

    def __init__(self, params: Argon2Params, *, max_concurrency: int = 4) -> None:
        self.params = params
        self._argon = _Argon2(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._slots = asyncio.Semaphore(max_concurrency)
        self._dummy: str | None = None

    def hash_sync(self, password: str) -> str:
        return self._argon.hash(password)

    def verify_sync(self, phc: str, password: str) -> bool:
        try:
            return bool(self._argon.verify(phc, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self.hash_sync, password)

    async def verify(self, phc: str, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self.verify_sync, phc, password)

    async def verify_dummy(self, password: str) -> None:
        if self._dummy is None:
            self._dummy = await self.hash("wavry dummy password for unknown accounts")
        await self.verify(self._dummy, password)

    def needs_rehash(self, phc: str) -> bool:
        try:
            return bool(self._argon.check_needs_rehash(phc))
        except InvalidHashError:
            return True
