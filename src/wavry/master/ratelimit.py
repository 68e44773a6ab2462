"""In-memory sliding-window rate limiter with a bounded key table.

Per process: with several master replicas each enforces its own window (documented in
docs/master.md). Time is an input.
"""

from __future__ import annotations

from collections import OrderedDict, deque

__all__ = ["SlidingWindowLimiter"]


class SlidingWindowLimiter:
    """At most ``limit`` events per ``window`` seconds per key."""

    def __init__(self, limit: int, window: float, *, max_keys: int = 100_000) -> None:
        if limit < 1 or window <= 0 or max_keys < 1:
            raise ValueError("limit >= 1, window > 0, max_keys >= 1")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def allow(self, key: str, now: float) -> bool:
        """Record an event for ``key`` at ``now`` if within the limit; return whether it was."""
        events = self._events.get(key)
        if events is None:
            if len(self._events) >= self.max_keys:
                self._evict(now)
            events = deque()
            self._events[key] = events
        else:
            self._events.move_to_end(key)
        cutoff = now - self.window
        while events and events[0] <= cutoff:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True

    def retry_after(self, key: str, now: float) -> float:
        events = self._events.get(key)
        if not events or len(events) < self.limit:
            return 0.0
        return max(0.0, events[0] + self.window - now)

    def _evict(self, now: float) -> None:
        cutoff = now - self.window
        for key in [k for k, ev in self._events.items() if not ev or ev[-1] <= cutoff]:
            del self._events[key]
        while len(self._events) >= self.max_keys:
            # still full of live keys: forget the least recently used one
            self._events.popitem(last=False)

    def __len__(self) -> int:
        return len(self._events)
