"""Selection scoring properties, region/ASN diversity, and the weighted pick."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from wavry.master.addresses import EndpointError, parse_endpoint, subnet_of
from wavry.master.selection import (
    RelaySnapshot,
    SelectionConfig,
    candidates,
    pick,
    region_distance,
    score,
)

CFG = SelectionConfig()
NOW = 10_000.0
STATES = ["new", "probation", "active", "degraded", "draining", "quarantined", "banned"]

relays = st.builds(
    RelaySnapshot,
    relay_id=st.text("abcdef", min_size=1, max_size=4),
    state=st.sampled_from(STATES),
    load_pct=st.integers(0, 100),
    last_seen=st.floats(NOW - 400, NOW),
    success_count=st.integers(0, 1000),
    failure_count=st.integers(0, 1000),
    feedback_score=st.floats(0, 100),
    region=st.sampled_from([None, "eu-west", "eu-north", "us-east"]),
    asn=st.sampled_from([None, 1, 2, 3]),
)


@given(relays)
def test_score_bounds_and_state_gate(r: RelaySnapshot) -> None:
    s = score(r, NOW, CFG)
    assert 0.0 <= s <= 100.0
    if r.state in ("draining", "quarantined", "banned") or NOW - r.last_seen > CFG.max_age:
        assert s == 0.0


@given(relays, st.integers(0, 99))
def test_more_load_never_scores_higher(r: RelaySnapshot, load: int) -> None:
    lighter = RelaySnapshot(**{**_fields(r), "load_pct": load})
    heavier = RelaySnapshot(**{**_fields(r), "load_pct": load + 1})
    assert score(heavier, NOW, CFG) <= score(lighter, NOW, CFG)


@given(relays)
def test_success_and_feedback_never_lower_the_score(r: RelaySnapshot) -> None:
    better = RelaySnapshot(
        **{**_fields(r), "success_count": r.success_count + 1,
           "feedback_score": min(100.0, r.feedback_score + 1)}
    )  # fmt: skip
    assert score(better, NOW, CFG) >= score(r, NOW, CFG)


@given(relays, st.floats(0, 200), st.floats(0, 200))
def test_older_never_scores_higher(r: RelaySnapshot, a: float, b: float) -> None:
    young, old = sorted((a, b))
    assert score(RelaySnapshot(**{**_fields(r), "last_seen": NOW - old}), NOW, CFG) <= score(
        RelaySnapshot(**{**_fields(r), "last_seen": NOW - young}), NOW, CFG
    )


def test_reference_points() -> None:
    perfect = RelaySnapshot("p", "active", 0, NOW, success_count=10**6, feedback_score=100.0)
    assert score(perfect, NOW, CFG) > 99.99
    fresh = RelaySnapshot("f", "active", 0, NOW)
    assert score(fresh, NOW, CFG) == 67.5
    assert score(RelaySnapshot("n", "new", 0, NOW), NOW, CFG) == 67.5 * 0.25


@given(st.lists(relays, max_size=30), st.sampled_from([None, "eu-west", "us-east"]))
def test_candidates_diversity_and_order(rs: list[RelaySnapshot], region: str | None) -> None:
    cands = candidates(rs, now=NOW, region=region, cfg=CFG)
    assert len(cands) <= CFG.max_candidates
    per_asn: dict[int, int] = {}
    for c in cands:
        assert c.score > 0
        if c.relay.asn is not None:
            per_asn[c.relay.asn] = per_asn.get(c.relay.asn, 0) + 1
    assert all(n <= CFG.per_asn for n in per_asn.values())
    keys = [(c.distance, -c.score) for c in cands]
    assert keys == sorted(keys)


def test_region_distance() -> None:
    assert region_distance(None, "x") == 0
    assert region_distance("eu-west", "eu-west") == 0
    assert region_distance("eu-west", "eu-north") == 1
    assert region_distance("eu-west", None) == 2
    assert region_distance("eu-west", "us-east") == 3


def test_pick_prefers_the_nearest_tier_and_weights_by_score() -> None:
    near = RelaySnapshot("near", "active", 50, NOW, region="eu-west")
    far = RelaySnapshot("far", "active", 0, NOW, region="us-east")
    cands = candidates([near, far], now=NOW, region="eu-west", cfg=CFG)
    rng = random.Random(1)
    assert {pick(cands, rng).relay.relay_id for _ in range(50)} == {"near"}  # type: ignore[union-attr]
    good = RelaySnapshot("good", "active", 0, NOW)
    weak = RelaySnapshot("weak", "new", 90, NOW)
    cands = candidates([good, weak], now=NOW, region=None, cfg=CFG)
    counts = {"good": 0, "weak": 0}
    for _ in range(1000):
        counts[pick(cands, rng).relay.relay_id] += 1  # type: ignore[union-attr]
    assert counts["good"] > counts["weak"] > 0
    assert pick([], rng) is None


def test_endpoints_and_subnets() -> None:
    assert subnet_of(parse_endpoint("10.0.0.1:1")) == "10.0.0.0/24"
    assert subnet_of(parse_endpoint("10.0.0.10:1")) == "10.0.0.0/24"
    assert subnet_of(parse_endpoint("[2001:db8:aa:bb::1]:1")) == "2001:db8:aa::/48"
    assert subnet_of(parse_endpoint("[::ffff:10.1.2.3]:9")) == "10.1.2.0/24"
    assert str(parse_endpoint("[2001:DB8::1]:5")) == "[2001:db8::1]:5"
    for bad in (
        "0.0.0.0:1",
        "[::]:1",
        "224.0.0.1:1",
        "host:1",
        "1.2.3.4",
        "1.2.3.4:70000",
        "::1:5",
    ):
        try:
            parse_endpoint(bad)
        except EndpointError:
            continue
        raise AssertionError(bad)


def _fields(r: RelaySnapshot) -> dict[str, object]:
    return {name: getattr(r, name) for name in RelaySnapshot.__slots__}  # type: ignore[attr-defined]
