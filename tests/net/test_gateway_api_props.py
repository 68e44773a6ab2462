"""Property tests of ``quality_score_from_stats``: bounded, total on garbage, monotone (more
loss, lost frames, latency or drops never score higher), and the issues it reports."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.feedback_protocol import KNOWN_ISSUES
from wavry.net.gateway_api import quality_score_from_stats

counts = st.integers(min_value=0, max_value=10**9)
stats_st = st.fixed_dictionaries(
    {
        "packets_expected": counts,
        "packets_lost_before_fec": counts,
        "packets_received": counts,
        "frames_lost": counts,
        "srtt_ms": st.floats(min_value=0, max_value=1e6, allow_nan=False),
        "drops": counts,
    }
)
PENALISED = ("packets_lost_before_fec", "frames_lost", "srtt_ms", "drops")


@settings(max_examples=400, deadline=None)
@given(stats=stats_st, key=st.sampled_from(PENALISED), more=st.integers(1, 10**6))
def test_more_trouble_never_scores_higher(stats: dict[str, Any], key: str, more: int) -> None:
    score, _ = quality_score_from_stats(stats)
    worse = {**stats, key: stats[key] + more}
    worse_score, worse_issues = quality_score_from_stats(worse)
    assert worse_score <= score
    assert 0 <= worse_score <= 100 and set(worse_issues) <= set(KNOWN_ISSUES)


@settings(max_examples=200, deadline=None)
@given(
    stats=st.dictionaries(
        st.sampled_from([*PENALISED, "packets_expected", "packets_received", "other"]),
        st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.floats(), counts),
        max_size=8,
    )
)
def test_any_input_gives_a_bounded_score(stats: dict[str, Any]) -> None:
    score, issues = quality_score_from_stats(stats)
    assert isinstance(score, int) and 0 <= score <= 100
    assert set(issues) <= set(KNOWN_ISSUES) and len(issues) == len(set(issues))


def test_examples() -> None:
    clean = {"packets_expected": 10_000, "packets_received": 10_000, "srtt_ms": 2.0}
    assert quality_score_from_stats(clean) == (100, [])
    assert quality_score_from_stats({}) == (0, ["no_media"])
    lossy = {**clean, "packets_lost_before_fec": 1_000}  # 10 %: the full loss penalty
    assert quality_score_from_stats(lossy) == (50, ["packet_loss"])
    slow = {**clean, "srtt_ms": 250.0, "frames_lost": 3, "drops": 2}
    assert quality_score_from_stats(slow) == (
        100 - 20 - 6 - 2,
        ["frame_loss", "high_latency", "drops"],
    )
    awful = {**lossy, "srtt_ms": 900.0, "frames_lost": 99, "drops": 99}
    assert quality_score_from_stats(awful)[0] == 0
    # the master counts a report above 50 as a success: a clean session must be one
    assert quality_score_from_stats({**clean, "packets_lost_before_fec": 100})[0] > 50
