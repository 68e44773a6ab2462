"""Rate limiting: the ``RateLimiter`` protocol and a bounded in-memory fixed-window limiter.

One replica uses ``InMemoryRateLimiter``; several replicas share limits through Redis
(``RedisRateLimiter`` in ``wavry.gateway.signaling.redis_backend``, chosen when
``WAVRY_REDIS_URL`` is set). Time is an input (``clock``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

__all__ = ["InMemoryRateLimiter", "RateLimiter"]


class RateLimiter(Protocol):
    async def hit(self, key: str, *, limit: int, window_secs: float) -> bool:
        """Count one event for ``key``; ``True`` if it is within ``limit`` per window."""
        ...


class InMemoryRateLimiter:
    """Fixed windows per key in a table of at most ``max_keys`` entries.

    When the table is full, entries whose window has ended are pruned (at most once per
    ``prune_interval`` seconds, so a key flood cannot make every request O(n)); if it is still
    full the new key is **denied** (fail closed) and counted in ``denied_full``.
    """

    def __init__(
        self,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float],
        prune_interval: float = 1.0,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys >= 1")
        self.max_keys = max_keys
        self._clock = clock
        self._prune_interval = prune_interval
        self._last_prune = float("-inf")
        #: key -> [window_end, count]
        self._windows: OrderedDict[str, list[float]] = OrderedDict()
        self.denied_full = 0

    async def hit(self, key: str, *, limit: int, window_secs: float) -> bool:
        return self.hit_sync(key, limit=limit, window_secs=window_secs)

    def hit_sync(self, key: str, *, limit: int, window_secs: float) -> bool:
        now = self._clock()
        entry = self._windows.get(key)
        if entry is None or now >= entry[0]:
            if entry is None and len(self._windows) >= self.max_keys:
                self._prune(now)
                if len(self._windows) >= self.max_keys:
                    self.denied_full += 1
                    return False
            entry = [now + window_secs, 0.0]
            self._windows[key] = entry
            self._windows.move_to_end(key)
        if entry[1] >= limit:
            return False
        entry[1] += 1
        return True

    def _prune(self, now: float) -> None:
        if now - self._last_prune < self._prune_interval:
            return
        self._last_prune = now
        for key in [k for k, (end, _) in self._windows.items() if now >= end]:
            del self._windows[key]

    def __len__(self) -> int:
        return len(self._windows)
