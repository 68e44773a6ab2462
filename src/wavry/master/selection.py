"""Relay selection: score, region/ASN diversity, weighted pick (reference §6.3, fixed).

Score of a relay (0..100)::

    success   = (successes + 1) / (successes + failures + 2)     # Laplace: 0.5 with no reports
    feedback  = feedback_score / 100        # EWMA of verified scores, 0.5 at first
    headroom  = 1 - load_pct / 100
    base      = 100 * (0.40 * success + 0.25 * feedback + 0.35 * headroom)
    score     = base * freshness(age) * STATE_FACTOR[state]

    freshness(age) = 1.0 (age <= fresh_for), 0.65 (<= max_age), 0 beyond

    fresh_for = 2 heartbeat intervals (10 s by default); max_age = the master's
    ``selection_missed_heartbeats`` (3) heartbeat intervals, capped by the quarantine delay: a relay
    that missed three heartbeats is most likely gone, and handing out leases for it makes both
    peers wait for a dead relay (measured: a killed relay won 8 of 9 picks while the 120 s
    quarantine delay ran — docs/control-plane-resilience.md).
    STATE_FACTOR   = active 1.0, probation 0.65, degraded 0.4, new 0.25, others 0

Candidates: score > 0, ordered by region distance (0 same region, 1 same area, i.e. the part
before the first ``-``, 2 relay with no region, 3 elsewhere; all 0 when no region was asked for),
then score. At most ``per_asn`` relays per ASN (relays with no ASN are not grouped) and
``max_candidates`` in all. The pick is random, weighted by score, among the candidates of the
nearest distance tier — so load spreads over good relays instead of piling onto the top one.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "STATE_FACTOR",
    "RelaySnapshot",
    "ScoredRelay",
    "SelectionConfig",
    "candidates",
    "freshness",
    "pick",
    "region_distance",
    "score",
]

STATE_FACTOR: dict[str, float] = {
    "active": 1.0,
    "probation": 0.65,
    "degraded": 0.4,
    "new": 0.25,
}

W_SUCCESS = 0.40
W_FEEDBACK = 0.25
W_HEADROOM = 0.35


@dataclass(frozen=True, slots=True)
class SelectionConfig:
    #: relays unseen for longer are not candidates (3 missed heartbeats by default)
    max_age: float = 15.0
    #: relays seen within this long get full freshness (2 heartbeat intervals)
    fresh_for: float = 10.0
    per_asn: int = 2
    max_candidates: int = 10


@dataclass(frozen=True, slots=True)
class RelaySnapshot:
    relay_id: str
    state: str
    load_pct: int
    last_seen: float
    success_count: int = 0
    failure_count: int = 0
    feedback_score: float = 50.0
    region: str | None = None
    asn: int | None = None


@dataclass(frozen=True, slots=True)
class ScoredRelay:
    relay: RelaySnapshot
    score: float
    distance: int


def freshness(age: float, max_age: float, fresh_for: float = 10.0) -> float:
    if age <= min(fresh_for, max_age):
        return 1.0
    if age <= max_age:
        return 0.65
    return 0.0


def score(relay: RelaySnapshot, now: float, cfg: SelectionConfig) -> float:
    factor = STATE_FACTOR.get(relay.state, 0.0)
    if factor == 0.0:
        return 0.0
    success = (relay.success_count + 1) / (relay.success_count + relay.failure_count + 2)
    feedback = min(100.0, max(0.0, relay.feedback_score)) / 100.0
    headroom = 1.0 - min(100, max(0, relay.load_pct)) / 100.0
    base = 100.0 * (W_SUCCESS * success + W_FEEDBACK * feedback + W_HEADROOM * headroom)
    return base * freshness(max(0.0, now - relay.last_seen), cfg.max_age, cfg.fresh_for) * factor


def region_distance(wanted: str | None, relay_region: str | None) -> int:
    if not wanted:
        return 0
    if not relay_region:
        return 2
    if relay_region == wanted:
        return 0
    if relay_region.split("-", 1)[0] == wanted.split("-", 1)[0]:
        return 1
    return 3


def candidates(
    relays: Iterable[RelaySnapshot], *, now: float, region: str | None, cfg: SelectionConfig
) -> list[ScoredRelay]:
    scored = [
        ScoredRelay(r, s, region_distance(region, r.region))
        for r in relays
        if (s := score(r, now, cfg)) > 0.0
    ]
    scored.sort(key=lambda c: (c.distance, -c.score, c.relay.relay_id))
    per_asn: dict[int, int] = {}
    out: list[ScoredRelay] = []
    for cand in scored:
        asn = cand.relay.asn
        if asn is not None:
            if per_asn.get(asn, 0) >= cfg.per_asn:
                continue
            per_asn[asn] = per_asn.get(asn, 0) + 1
        out.append(cand)
        if len(out) >= cfg.max_candidates:
            break
    return out


def pick(cands: Sequence[ScoredRelay], rng: random.Random) -> ScoredRelay | None:
    """Weighted random choice in the nearest tier of ``cands`` (ordered as ``candidates``)."""
    if not cands:
        return None
    tier = [c for c in cands if c.distance == cands[0].distance]
    total = sum(c.score for c in tier)
    r = rng.random() * total
    acc = 0.0
    for cand in tier:
        acc += cand.score
        if r < acc:
            return cand
    return tier[-1]
