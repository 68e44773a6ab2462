"""Adaptive playout delay for decoded-order video frames (0–10 ms, latency first).

Normative behaviour (docs/protocol.md, jitter buffer; all times in seconds):

* Frames are pushed in order as they become available and released in the same order.
* **Jitter estimate** ``J`` (RFC 3550 §6.4.1 style, gain :data:`JITTER_GAIN` = 1/16 per frame):
  with sender media timestamps ``S`` (``push(..., timestamp=...)``), ``D = (R_j - R_i) - (S_j -
  S_i)`` between consecutive frames; without them, ``D`` is the deviation of the inter-arrival
  time from its own EWMA mean (gain 1/16), and an interval above :data:`PAUSE_FACTOR` (4) times
  that mean is a source pause and ignored. ``J += (min(|D|, max_delay) - J) / 16`` — a delay the
  buffer could never absorb does not inflate the estimate beyond ``max_delay``. Passing the
  timestamps is recommended (frames of a static desktop arrive irregularly by design).
* **Target delay:** ``desired = JITTER_MULTIPLIER (3) * J``, set to ``min_delay`` when below
  :data:`JITTER_DEADBAND` (0.5 ms, not worth delaying a frame for), clamped to
  ``[min_delay, max_delay]`` (defaults 0 and 10 ms). The target rises to ``desired`` at once
  (grow fast) and falls toward it by at most :data:`DECAY_PER_FRAME` (0.1 ms) per frame (decay
  slowly), so without jitter it returns to exactly ``min_delay`` (0: present as soon as decoded).
* **Release time:** with timestamps, frame ``i`` is due at ``S_i + base + target`` where ``base``
  is the minimum transit ``R - S`` over the last :data:`TRANSIT_WINDOW` (128) frames — frames that
  arrive early wait for their slot, late ones go at once; never later than ``R_i + target``.
  Without timestamps a frame is due at ``R_i + target``.
* **Bounds:** at most ``max_frames`` (default :data:`DEFAULT_MAX_FRAMES` = 32) frames wait; the
  oldest beyond that are due immediately. If the caller still does not pop, frames beyond
  ``4 * max_frames`` are dropped (oldest first, counted in ``dropped``).
"""

from __future__ import annotations

from collections import deque
from typing import Generic, Protocol, TypeVar

from wavry.rift.errors import LocalProtocolError

__all__ = [
    "DECAY_PER_FRAME",
    "DEFAULT_MAX_DELAY",
    "DEFAULT_MAX_FRAMES",
    "JITTER_DEADBAND",
    "JITTER_GAIN",
    "JITTER_MULTIPLIER",
    "PAUSE_FACTOR",
    "TRANSIT_WINDOW",
    "HasFrameId",
    "JitterBuffer",
]

DEFAULT_MAX_DELAY = 0.010
DEFAULT_MAX_FRAMES = 32
JITTER_GAIN = 1.0 / 16.0
JITTER_MULTIPLIER = 3.0
JITTER_DEADBAND = 0.0005
DECAY_PER_FRAME = 0.0001
TRANSIT_WINDOW = 128
PAUSE_FACTOR = 4.0


class HasFrameId(Protocol):
    @property
    def frame_id(self) -> int: ...


F = TypeVar("F", bound=HasFrameId)


class JitterBuffer(Generic[F]):
    """Holds frames for an adaptive target delay so that presentation is evenly paced."""

    def __init__(
        self,
        *,
        min_delay: float = 0.0,
        max_delay: float = DEFAULT_MAX_DELAY,
        max_frames: int = DEFAULT_MAX_FRAMES,
    ) -> None:
        if not 0.0 <= min_delay <= max_delay or max_frames < 1:
            raise LocalProtocolError("need 0 <= min_delay <= max_delay and max_frames >= 1")
        self._min = min_delay
        self._max = max_delay
        self._max_frames = max_frames
        self._target = min_delay
        self._jitter = 0.0
        self._queue: deque[tuple[float, float, F]] = deque()  # (release at, arrival, frame)
        self._last_arrival: float | None = None
        self._last_timestamp: float | None = None
        self._mean_interval: float | None = None
        # Monotonic deque of (frame number, transit) for the windowed minimum transit.
        self._transits: deque[tuple[int, float]] = deque()
        self._pushed = 0
        self.dropped = 0

    @property
    def target_delay(self) -> float:
        return self._target

    @property
    def jitter(self) -> float:
        """Current jitter estimate ``J`` in seconds."""
        return self._jitter

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, frame: F, now: float, *, timestamp: float | None = None) -> None:
        """Add the next frame; ``timestamp`` is its sender media time in seconds, if known."""
        self._update_jitter(now, timestamp)
        self._update_target()
        release = now + self._target
        if timestamp is not None:
            base = self._track_transit(now - timestamp)
            release = min(release, max(now, timestamp + base + self._target))
        if self._queue:
            # Keep release times monotonic so the head is always the first one due.
            release = max(release, self._queue[-1][0])
        self._queue.append((release, now, frame))
        self._pushed += 1
        while len(self._queue) > 4 * self._max_frames:
            self._queue.popleft()
            self.dropped += 1

    def pop_ready(self, now: float) -> list[F]:
        """Frames due at ``now``, in push order (overflow beyond ``max_frames`` goes first)."""
        out: list[F] = []
        queue = self._queue
        while queue and (len(queue) > self._max_frames or queue[0][0] <= now):
            out.append(queue.popleft()[2])
        return out

    def next_release_time(self) -> float | None:
        """When the head frame is due (may be in the past), or None if empty."""
        if not self._queue:
            return None
        if len(self._queue) > self._max_frames:
            return self._queue[0][1]
        return self._queue[0][0]

    def _update_jitter(self, now: float, timestamp: float | None) -> None:
        last_arrival, last_ts = self._last_arrival, self._last_timestamp
        self._last_arrival, self._last_timestamp = now, timestamp
        if last_arrival is None:
            return
        interval = now - last_arrival
        if timestamp is not None and last_ts is not None:
            deviation = interval - (timestamp - last_ts)
        elif self._mean_interval is None:
            self._mean_interval = interval
            return
        elif interval > PAUSE_FACTOR * self._mean_interval:
            return  # the source paused (static screen), not network jitter
        else:
            deviation = interval - self._mean_interval
            self._mean_interval += (interval - self._mean_interval) * JITTER_GAIN
        # A delay the buffer could never absorb must not inflate the estimate beyond it.
        deviation = min(abs(deviation), self._max)
        self._jitter += (deviation - self._jitter) * JITTER_GAIN

    def _update_target(self) -> None:
        desired = JITTER_MULTIPLIER * self._jitter
        if desired < JITTER_DEADBAND:
            desired = self._min
        desired = min(self._max, max(self._min, desired))
        if desired >= self._target:
            self._target = desired
        else:
            self._target = max(desired, self._target - DECAY_PER_FRAME)

    def _track_transit(self, transit: float) -> float:
        index = self._pushed
        transits = self._transits
        while transits and transits[-1][1] >= transit:
            transits.pop()
        transits.append((index, transit))
        while transits[0][0] <= index - TRANSIT_WINDOW:
            transits.popleft()
        return transits[0][1]
