"""Token-bucket pacer for media datagrams.

Normative behaviour (docs/protocol.md, pacing):

* Tokens (bytes) accrue at ``rate_bps / 8`` per second up to ``burst_bytes`` (default
  :data:`DEFAULT_BURST_BYTES` = 3 × 1500). The bucket starts full.
* A datagram of ``size`` bytes may go when the bucket holds ``min(size, burst_bytes)`` tokens
  (so a datagram larger than the burst is not blocked forever); sending it removes ``size``
  tokens, which may leave the bucket in debt.
* The rate is never below ``min_rate_bps`` (default :data:`DEFAULT_MIN_RATE_BPS` = 100 kbit/s).
  The connection paces media at a multiple of the encoder's target bitrate (e.g. 1.5×) so a
  frame's chunks spread over less than one frame interval; control and input bypass the pacer.
"""

from __future__ import annotations

from wavry.rift.errors import LocalProtocolError

__all__ = ["DEFAULT_BURST_BYTES", "DEFAULT_MIN_RATE_BPS", "Pacer"]

DEFAULT_BURST_BYTES = 3 * 1500
DEFAULT_MIN_RATE_BPS = 100_000.0

# Float rounding can leave a bucket a hair short of the requested size at exactly the time
# time_until_send promised; without slack the caller would spin on microsecond waits.
_EPSILON_BYTES = 1e-6


class Pacer:
    """Decides when the next media datagram may be sent. Sans-IO: time is passed in."""

    def __init__(
        self,
        *,
        rate_bps: float,
        burst_bytes: int = DEFAULT_BURST_BYTES,
        min_rate_bps: float = DEFAULT_MIN_RATE_BPS,
    ) -> None:
        if burst_bytes < 1 or not min_rate_bps > 0.0:
            raise LocalProtocolError("burst_bytes and min_rate_bps must be positive")
        self._burst = float(burst_bytes)
        self._min_rate = float(min_rate_bps)
        self._rate = self._min_rate
        self.set_rate(rate_bps)
        self._tokens = self._burst
        self._last: float | None = None

    @property
    def rate_bps(self) -> float:
        return self._rate

    @property
    def burst_bytes(self) -> int:
        return int(self._burst)

    def set_rate(self, bps: float, *, now: float | None = None) -> None:
        """Change the rate (clamped to ``min_rate_bps``). Pass ``now`` to credit the old rate
        up to this instant first."""
        if bps != bps:  # NaN
            raise LocalProtocolError("rate must be a number")
        if now is not None:
            self._refill(now)
        self._rate = max(self._min_rate, float(bps))

    def tokens(self, now: float) -> float:
        """Bytes that could go at ``now`` (negative while in debt)."""
        self._refill(now)
        return self._tokens

    def time_until_send(self, size: int, now: float) -> float:
        """Seconds until a datagram of ``size`` bytes may go; 0.0 if it may go now."""
        self._refill(now)
        needed = min(float(size), self._burst) - self._tokens
        if needed <= _EPSILON_BYTES:
            return 0.0
        return needed * 8.0 / self._rate

    def on_sent(self, size: int, now: float) -> None:
        """Account for a sent datagram of ``size`` bytes."""
        self._refill(now)
        self._tokens -= size

    def _refill(self, now: float) -> None:
        last = self._last
        self._last = now if last is None else max(last, now)
        if last is not None and now > last:
            self._tokens = min(self._burst, self._tokens + (now - last) * self._rate / 8.0)
