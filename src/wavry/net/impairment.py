"""A pure, seeded model of an impaired network path, in virtual time.

``ImpairmentLink.transmit(size, now)`` answers *when* (if ever) a datagram of ``size`` bytes sent
at ``now`` arrives: an empty list means it was dropped, two entries mean it was duplicated. The
model, in the order a datagram meets it:

1. **Bottleneck** (only when a bandwidth is set): a FIFO served at ``bandwidth_bps`` (which may
   change over time, ``bandwidth_schedule``). A datagram waits until everything queued before it
   has been serialised, then takes ``8 * size / bps`` seconds itself. When sending faster than the
   capacity the queue, and with it the delay, grows. Drop-tail: a datagram that would find more
   than ``queue_limit_s`` of waiting time or more than ``queue_limit_bytes`` queued ahead of it
   (itself included) is dropped (``dropped_queue``). The queue is kept as a single "busy until"
   time, so it costs O(1) memory whatever the backlog.
2. **Loss**, after the bottleneck (a lost datagram did use capacity, as on a lossy radio hop):
   independent random loss (``loss``, raised during ``loss_episodes``) combined with a
   Gilbert-Elliott two-state burst model (``dropped_loss``).
3. **Duplication** (``duplicate``): the copy travels independently (own jitter and reordering).
4. **Propagation**: ``delay`` plus jitter, uniform in ``[-jitter, +jitter]`` or normal with
   standard deviation ``jitter`` (``jitter_distribution``), never below zero; with probability
   ``reorder`` an extra delay uniform in ``[0, reorder_delay]`` is added. Jitter and the extra delay
   can reorder datagrams — intended: that *is* the reordering model.

Everything random is drawn from the injected ``RandomSource`` (``random.Random`` fits), so a seeded
run is reproducible bit for bit. Nothing here reads a clock.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

__all__ = [
    "QUEUE_DELAY_SAMPLES_CAP",
    "ImpairmentConfig",
    "ImpairmentLink",
    "RandomSource",
]

#: At most this many ``(enqueue_time, queue_delay)`` samples are kept (oldest dropped first).
QUEUE_DELAY_SAMPLES_CAP = 262_144

JitterDistribution = Literal["uniform", "normal"]


class RandomSource(Protocol):
    """What the link needs from a random generator (``random.Random`` satisfies it)."""

    def random(self) -> float: ...

    def uniform(self, a: float, b: float) -> float: ...

    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float: ...


def _check_fraction(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def _check_duration(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite duration >= 0 seconds, got {value!r}")


def _check_rate(name: str, value: float | None) -> None:
    if value is None:
        return
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 1.0):
        raise ValueError(f"{name} must be a finite rate >= 1 bit/s (or None), got {value!r}")


@dataclass(frozen=True, slots=True)
class ImpairmentConfig:
    """Impairments of one direction of a path. All times in seconds, rates in bit/s.

    Construction validates every field and raises ``ValueError`` on a bad one.
    """

    #: Independent random loss probability per datagram.
    loss: float = 0.0
    #: Gilbert-Elliott burst loss: per-datagram probability of moving good -> bad (0 disables).
    burst_p_good_to_bad: float = 0.0
    #: Gilbert-Elliott: per-datagram probability of moving bad -> good.
    burst_p_bad_to_good: float = 1.0
    #: Gilbert-Elliott: loss probability while in the bad state (the good state loses nothing).
    burst_loss_in_bad: float = 1.0
    #: One-way propagation delay.
    delay: float = 0.0
    #: Jitter amplitude: half-width of the uniform distribution, or the normal's std deviation.
    jitter: float = 0.0
    jitter_distribution: JitterDistribution = "uniform"
    #: Probability that a datagram gets an extra delay (reordering it behind later ones).
    reorder: float = 0.0
    #: The extra delay of a reordered datagram is uniform in ``[0, reorder_delay]``.
    reorder_delay: float = 0.010
    #: Probability that a datagram is delivered twice.
    duplicate: float = 0.0
    #: Bottleneck capacity; ``None`` = unlimited (no queue at all).
    bandwidth_bps: float | None = None
    #: Drop-tail limit as waiting time in the queue; ``None`` = no time limit.
    queue_limit_s: float | None = None
    #: Drop-tail limit as bytes queued (the arriving datagram included); ``None`` = no byte limit.
    queue_limit_bytes: int | None = None
    #: ``(start, end, loss)``: during ``[start, end)`` an extra independent loss probability.
    loss_episodes: tuple[tuple[float, float, float], ...] = ()
    #: ``(at, bps)``: from ``at`` on the capacity is ``bps`` (``None`` = unlimited); sorted by time.
    bandwidth_schedule: tuple[tuple[float, float | None], ...] = ()

    def __post_init__(self) -> None:
        for name in ("loss", "burst_p_good_to_bad", "burst_p_bad_to_good", "burst_loss_in_bad"):
            _check_fraction(name, getattr(self, name))
        _check_fraction("reorder", self.reorder)
        _check_fraction("duplicate", self.duplicate)
        for name in ("delay", "jitter", "reorder_delay"):
            _check_duration(name, getattr(self, name))
        if self.jitter_distribution not in ("uniform", "normal"):
            raise ValueError(
                f"jitter_distribution must be 'uniform' or 'normal', "
                f"got {self.jitter_distribution!r}"
            )
        _check_rate("bandwidth_bps", self.bandwidth_bps)
        if self.queue_limit_s is not None:
            _check_duration("queue_limit_s", self.queue_limit_s)
        if self.queue_limit_bytes is not None and not (
            isinstance(self.queue_limit_bytes, int) and 0 < self.queue_limit_bytes <= 2**53
        ):
            raise ValueError(
                f"queue_limit_bytes must be an int in 1..2**53, got {self.queue_limit_bytes!r}"
            )
        for episode in self.loss_episodes:
            if len(episode) != 3:
                raise ValueError(f"loss episode must be (start, end, loss), got {episode!r}")
            start, end, ep_loss = episode
            _check_duration("loss episode start", start)
            _check_duration("loss episode end", end)
            if end < start:
                raise ValueError(f"loss episode ends before it starts: {episode!r}")
            _check_fraction("loss episode loss", ep_loss)
        last_at = -math.inf
        for change in self.bandwidth_schedule:
            if len(change) != 2:
                raise ValueError(f"bandwidth change must be (at, bps), got {change!r}")
            at, bps = change
            _check_duration("bandwidth change time", at)
            _check_rate("bandwidth change rate", bps)
            if at < last_at:
                raise ValueError("bandwidth_schedule must be sorted by time")
            last_at = at

    # -- CLI string form -------------------------------------------------------------------

    @classmethod
    def parse(cls, spec: str) -> ImpairmentConfig:
        """Parse a CLI string such as ``"loss=5%,delay=20ms,rate=10mbit,queue=50ms"``.

        Comma-separated ``key=value`` items (whitespace around items ignored, keys
        case-insensitive). Keys:

        - ``loss``, ``reorder``, ``dup``/``duplicate``: a probability, ``5%`` or ``0.05``.
        - ``delay``, ``jitter``, ``reorder_delay``: a duration with unit ``us``, ``ms`` or ``s``.
        - ``jitter_dist``: ``uniform`` or ``normal``.
        - ``rate``/``bandwidth``: ``bit``, ``kbit``, ``mbit``, ``gbit`` or ``bps``, ``kbps``,
          ``mbps``, ``gbps`` (all *bits* per second, unlike tc's byte-based ``kbps``), or
          ``unlimited``.
        - ``queue``: a duration (``50ms``) or a byte size (``b``, ``kb``, ``kib``, ``mb``, ``mib``);
          at most one of each.
        - ``burst``: ``p_good_to_bad/p_bad_to_good/loss_in_bad``, each a probability.
        - ``rate_at`` (repeatable): ``10s/5mbit`` — capacity from t=10 s.
        - ``loss_episode`` (repeatable): ``10s/12s/20%`` — extra loss during [10 s, 12 s).

        Raises ``ValueError`` (and nothing else) naming the offending item on bad input.
        """
        return _parse_spec(spec)

    def to_spec(self) -> str:
        """The canonical spec string; ``ImpairmentConfig.parse(c.to_spec()) == c``."""
        defaults = ImpairmentConfig()
        items: list[str] = []
        if self.loss != defaults.loss:
            items.append(f"loss={self.loss!r}")
        if (
            self.burst_p_good_to_bad,
            self.burst_p_bad_to_good,
            self.burst_loss_in_bad,
        ) != (
            defaults.burst_p_good_to_bad,
            defaults.burst_p_bad_to_good,
            defaults.burst_loss_in_bad,
        ):
            items.append(
                f"burst={self.burst_p_good_to_bad!r}/{self.burst_p_bad_to_good!r}"
                f"/{self.burst_loss_in_bad!r}"
            )
        for key in ("delay", "jitter", "reorder_delay"):
            value = getattr(self, key)
            if value != getattr(defaults, key):
                items.append(f"{key}={value!r}s")
        if self.jitter_distribution != defaults.jitter_distribution:
            items.append(f"jitter_dist={self.jitter_distribution}")
        if self.reorder != defaults.reorder:
            items.append(f"reorder={self.reorder!r}")
        if self.duplicate != defaults.duplicate:
            items.append(f"dup={self.duplicate!r}")
        if self.bandwidth_bps is not None:
            items.append(f"rate={self.bandwidth_bps!r}bit")
        if self.queue_limit_s is not None:
            items.append(f"queue={self.queue_limit_s!r}s")
        if self.queue_limit_bytes is not None:
            items.append(f"queue={self.queue_limit_bytes}b")
        for start, end, ep_loss in self.loss_episodes:
            items.append(f"loss_episode={start!r}s/{end!r}s/{ep_loss!r}")
        for at, bps in self.bandwidth_schedule:
            rate = "unlimited" if bps is None else f"{bps!r}bit"
            items.append(f"rate_at={at!r}s/{rate}")
        return ",".join(items)


# -- parser ----------------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>[A-Za-z%]*)")
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_RATE_UNITS = {
    "bit": 1.0,
    "kbit": 1e3,
    "mbit": 1e6,
    "gbit": 1e9,
    "bps": 1.0,
    "kbps": 1e3,
    "mbps": 1e6,
    "gbps": 1e9,
}
_MAX_QUEUE_BYTES = float(2**53)  # beyond this a float no longer holds whole byte counts
_BYTE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1_000_000, "mib": 1 << 20}
_FRACTION_KEYS = {
    "loss": "loss",
    "reorder": "reorder",
    "dup": "duplicate",
    "duplicate": "duplicate",
}
_DURATION_KEYS = {"delay": "delay", "jitter": "jitter", "reorder_delay": "reorder_delay"}
_REPEATABLE = frozenset({"rate_at", "loss_episode", "queue"})


def _number(key: str, text: str) -> tuple[float, str]:
    match = _NUMBER_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{key}: cannot read a number in {text!r}")
    value = float(match["num"])
    if not math.isfinite(value):
        raise ValueError(f"{key}: number out of range in {text!r}")
    return value, match["unit"].lower()


def _fraction(key: str, text: str) -> float:
    value, unit = _number(key, text)
    if unit == "%":
        value /= 100.0
    elif unit:
        raise ValueError(f"{key}: expected a probability like 5% or 0.05, got {text!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{key}: probability must be within 0..1 (0%..100%), got {text!r}")
    return value


def _duration(key: str, text: str) -> float:
    value, unit = _number(key, text)
    if unit not in _DURATION_UNITS:
        raise ValueError(f"{key}: expected a duration with unit us, ms or s, got {text!r}")
    return value * _DURATION_UNITS[unit]


def _rate(key: str, text: str) -> float | None:
    if text.strip().lower() in ("unlimited", "none"):
        return None
    value, unit = _number(key, text)
    if unit not in _RATE_UNITS:
        raise ValueError(
            f"{key}: expected a rate like 10mbit (units: {', '.join(_RATE_UNITS)}), got {text!r}"
        )
    bps = value * _RATE_UNITS[unit]
    if not (math.isfinite(bps) and bps >= 1.0):
        raise ValueError(f"{key}: rate must be at least 1 bit/s, got {text!r}")
    return bps


def _split(key: str, text: str, count: int, shape: str) -> list[str]:
    parts = text.split("/")
    if len(parts) != count:
        raise ValueError(f"{key}: expected {shape}, got {text!r}")
    return parts


class _SpecBuilder:
    """Accumulates parsed items; one method per key family (table dispatch, no prefixes)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.episodes: list[tuple[float, float, float]] = []
        self.schedule: list[tuple[float, float | None]] = []

    def fraction(self, key: str, text: str) -> None:
        self.values[_FRACTION_KEYS[key]] = _fraction(key, text)

    def duration(self, key: str, text: str) -> None:
        self.values[_DURATION_KEYS[key]] = _duration(key, text)

    def jitter_dist(self, key: str, text: str) -> None:
        dist = text.strip().lower()
        if dist not in ("uniform", "normal"):
            raise ValueError(f"{key}: expected uniform or normal, got {text!r}")
        self.values["jitter_distribution"] = dist

    def rate(self, key: str, text: str) -> None:
        if "bandwidth_bps" in self.values:
            raise ValueError("rate given twice (rate and bandwidth are the same key)")
        self.values["bandwidth_bps"] = _rate(key, text)

    def queue(self, key: str, text: str) -> None:
        value, unit = _number(key, text)
        # Given twice only as one time limit plus one byte limit (both then apply).
        if unit in _DURATION_UNITS:
            if "queue_limit_s" in self.values:
                raise ValueError(f"{key}: time limit given twice")
            self.values["queue_limit_s"] = value * _DURATION_UNITS[unit]
        elif unit in _BYTE_UNITS:
            if "queue_limit_bytes" in self.values:
                raise ValueError(f"{key}: byte limit given twice")
            size = value * _BYTE_UNITS[unit]
            if not (1.0 <= size <= _MAX_QUEUE_BYTES and size == int(size)):
                raise ValueError(
                    f"{key}: byte limit must be a whole number in 1..2**53, got {text!r}"
                )
            self.values["queue_limit_bytes"] = int(size)
        else:
            raise ValueError(f"{key}: expected a duration (50ms) or a size (64kb), got {text!r}")

    def burst(self, key: str, text: str) -> None:
        good_bad, bad_good, in_bad = _split(key, text, 3, "p_good_to_bad/p_bad_to_good/loss")
        self.values["burst_p_good_to_bad"] = _fraction(key, good_bad)
        self.values["burst_p_bad_to_good"] = _fraction(key, bad_good)
        self.values["burst_loss_in_bad"] = _fraction(key, in_bad)

    def rate_at(self, key: str, text: str) -> None:
        at, rate = _split(key, text, 2, "time/rate like 10s/5mbit")
        self.schedule.append((_duration(key, at), _rate(key, rate)))

    def loss_episode(self, key: str, text: str) -> None:
        start_text, end_text, loss_text = _split(key, text, 3, "start/end/loss like 10s/12s/20%")
        start, end = _duration(key, start_text), _duration(key, end_text)
        if end < start:
            raise ValueError(f"{key}: ends before it starts: {text!r}")
        self.episodes.append((start, end, _fraction(key, loss_text)))


_HANDLERS: dict[str, Callable[[_SpecBuilder, str, str], None]] = {
    **{key: _SpecBuilder.fraction for key in _FRACTION_KEYS},
    **{key: _SpecBuilder.duration for key in _DURATION_KEYS},
    "jitter_dist": _SpecBuilder.jitter_dist,
    "rate": _SpecBuilder.rate,
    "bandwidth": _SpecBuilder.rate,
    "queue": _SpecBuilder.queue,
    "burst": _SpecBuilder.burst,
    "rate_at": _SpecBuilder.rate_at,
    "loss_episode": _SpecBuilder.loss_episode,
}


def _parse_spec(spec: str) -> ImpairmentConfig:
    if not isinstance(spec, str):
        raise ValueError(f"impairment spec must be a string, got {type(spec).__name__}")
    builder = _SpecBuilder()
    seen: set[str] = set()
    for raw_item in spec.split(","):
        item = raw_item.strip()
        if not item:
            continue
        key, sep, text = item.partition("=")
        key = key.strip().lower()
        if not sep:
            raise ValueError(f"impairment item {item!r} is not key=value")
        handler = _HANDLERS.get(key)
        if handler is None:
            raise ValueError(f"unknown impairment key {key!r} (known: {', '.join(_HANDLERS)})")
        if key in seen and key not in _REPEATABLE:
            raise ValueError(f"impairment key {key!r} given twice")
        seen.add(key)
        handler(builder, key, text)
    # replace() re-runs __post_init__, so the cross-field checks apply to parsed specs too.
    return replace(
        ImpairmentConfig(),
        **builder.values,
        loss_episodes=tuple(builder.episodes),
        bandwidth_schedule=tuple(sorted(builder.schedule, key=lambda change: change[0])),
    )


# -- the link ---------------------------------------------------------------------------------


class ImpairmentLink:
    """One direction of an impaired path. See the module docstring for the model."""

    def __init__(self, config: ImpairmentConfig, rng: RandomSource) -> None:
        self.config = config
        self._rng = rng
        # Capacity segments: _seg_starts[i] is where _seg_rates[i] begins (the first is -inf).
        self._seg_starts: list[float] = [-math.inf]
        self._seg_rates: list[float | None] = [config.bandwidth_bps]
        for at, bps in config.bandwidth_schedule:
            if at == self._seg_starts[-1]:
                self._seg_rates[-1] = bps
            else:
                self._seg_starts.append(at)
                self._seg_rates.append(bps)
        self._shaped = any(rate is not None for rate in self._seg_rates)
        self._busy_until = -math.inf
        self._bad_state = False
        self.sent = 0
        self.delivered = 0
        self.dropped_loss = 0
        self.dropped_queue = 0
        self.duplicated = 0
        #: Waiting time in the bottleneck queue of the last datagram that entered it.
        self.last_queue_delay = 0.0
        #: ``(enqueue_time, queue_delay)`` per datagram accepted by the bottleneck (bounded).
        self.queue_delay_samples: deque[tuple[float, float]] = deque(maxlen=QUEUE_DELAY_SAMPLES_CAP)

    # -- capacity helpers (piecewise-constant rate) --

    def bandwidth_at(self, t: float) -> float | None:
        """The bottleneck capacity in bit/s at time ``t`` (``None`` = unlimited)."""
        return self._seg_rates[bisect.bisect_right(self._seg_starts, t) - 1]

    def _finish_time(self, start: float, bits: float) -> float:
        """When serialising ``bits`` that begins at ``start`` completes."""
        i = bisect.bisect_right(self._seg_starts, start) - 1
        t = start
        while True:
            rate = self._seg_rates[i]
            seg_end = self._seg_starts[i + 1] if i + 1 < len(self._seg_starts) else math.inf
            if rate is None:
                return t
            capacity = rate * (seg_end - t)
            if bits <= capacity:
                return t + bits / rate
            bits -= capacity
            t = seg_end
            i += 1

    def _bits_between(self, t0: float, t1: float) -> float:
        """Bits the bottleneck serves in ``[t0, t1]`` (``inf`` across an unlimited segment)."""
        i = bisect.bisect_right(self._seg_starts, t0) - 1
        bits = 0.0
        t = t0
        while t < t1:
            rate = self._seg_rates[i]
            seg_end = self._seg_starts[i + 1] if i + 1 < len(self._seg_starts) else math.inf
            end = min(seg_end, t1)
            if rate is None:
                return math.inf
            bits += rate * (end - t)
            t = end
            i += 1
        return bits

    def queue_delay_at(self, now: float) -> float:
        """How long a datagram arriving at ``now`` would wait before its serialisation starts."""
        return max(0.0, self._busy_until - now)

    # -- the datagram path --

    def _loss_probability(self, now: float) -> float:
        keep = 1.0 - self.config.loss
        for start, end, ep_loss in self.config.loss_episodes:
            if start <= now < end:
                keep *= 1.0 - ep_loss
        cfg = self.config
        if cfg.burst_p_good_to_bad > 0.0 or self._bad_state:
            if self._bad_state:
                if self._rng.random() < cfg.burst_p_bad_to_good:
                    self._bad_state = False
            elif self._rng.random() < cfg.burst_p_good_to_bad:
                self._bad_state = True
            if self._bad_state:
                keep *= 1.0 - cfg.burst_loss_in_bad
        return 1.0 - keep

    def _propagation(self) -> float:
        cfg = self.config
        delay = cfg.delay
        if cfg.jitter > 0.0:
            if cfg.jitter_distribution == "uniform":
                delay += self._rng.uniform(-cfg.jitter, cfg.jitter)
            else:
                delay += self._rng.gauss(0.0, cfg.jitter)
            delay = max(0.0, delay)
        if cfg.reorder > 0.0 and self._rng.random() < cfg.reorder:
            delay += self._rng.uniform(0.0, cfg.reorder_delay)
        return delay

    def transmit(self, size: int, now: float) -> list[float]:
        """Send a ``size``-byte datagram at ``now``; return its delivery times (may be empty)."""
        cfg = self.config
        self.sent += 1
        departure = now
        if self._shaped:
            start = self._busy_until if self._busy_until > now else now
            wait = start - now
            bits = 8.0 * size
            if cfg.queue_limit_s is not None and wait > cfg.queue_limit_s:
                self.dropped_queue += 1
                return []
            if (
                cfg.queue_limit_bytes is not None
                and self._bits_between(now, start) + bits > 8.0 * cfg.queue_limit_bytes
            ):
                self.dropped_queue += 1
                return []
            departure = self._finish_time(start, bits)
            self._busy_until = departure
            self.last_queue_delay = wait
            self.queue_delay_samples.append((now, wait))
        p_loss = self._loss_probability(now)
        if p_loss > 0.0 and self._rng.random() < p_loss:
            self.dropped_loss += 1
            return []
        copies = 1
        if cfg.duplicate > 0.0 and self._rng.random() < cfg.duplicate:
            copies = 2
            self.duplicated += 1
        self.delivered += copies
        return [departure + self._propagation() for _ in range(copies)]

    @property
    def counters(self) -> dict[str, int]:
        """The link's counters by name (for reports and assertions)."""
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "dropped_loss": self.dropped_loss,
            "dropped_queue": self.dropped_queue,
            "duplicated": self.duplicated,
        }
