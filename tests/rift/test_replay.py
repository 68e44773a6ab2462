from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from wavry.rift.errors import LocalProtocolError
from wavry.rift.replay import MAX_PACKET_ID, MAX_WINDOW_SIZE, ReplayWindow


class ModelWindow:
    """The obvious (unbounded) reference: every id ever accepted, plus the highest."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.seen: set[int] = set()
        self.highest: int | None = None

    def check(self, pid: int) -> bool:
        if not 1 <= pid <= MAX_PACKET_ID:
            return False
        if self.highest is None or pid > self.highest:
            return True
        if self.highest - pid >= self.size:
            return False
        return pid not in self.seen

    def update(self, pid: int) -> None:
        self.seen.add(pid)
        self.highest = pid if self.highest is None else max(self.highest, pid)


def test_first_packet_passes_and_zero_never_does() -> None:
    w = ReplayWindow()
    assert w.highest is None
    assert not w.check(0)
    assert w.check(1000)
    w.update(1000)
    assert w.highest == 1000
    assert not w.check(0)
    assert not w.check(1000)


def test_window_edges() -> None:
    w = ReplayWindow(128)
    w.update(1000)
    assert w.check(1000 - 127)  # inside: offset 127
    assert not w.check(1000 - 128)  # outside: offset 128
    w.update(1000 - 127)
    assert not w.check(1000 - 127)
    assert w.check(1001)


def test_shift_keeps_history_inside_window() -> None:
    w = ReplayWindow(128)
    for pid in (10, 11, 13):
        w.update(pid)
    w.update(100)  # shift by 87: 10, 11, 13 are still inside
    assert not w.check(10) and not w.check(11) and not w.check(13)
    assert w.check(12) and w.check(99)


def test_jump_of_size_or_more_resets() -> None:
    w = ReplayWindow(128)
    w.update(5)
    w.update(5 + 128)  # exactly size: the old bitmap is dropped
    assert w.highest == 133
    assert not w.check(5)  # too old anyway
    assert w.check(6)  # offset 127, never seen
    assert not w.check(133)


def test_update_without_check_is_local_error() -> None:
    w = ReplayWindow(16)
    w.update(100)
    with pytest.raises(LocalProtocolError):
        w.update(100)
    with pytest.raises(LocalProtocolError):
        w.update(50)
    with pytest.raises(LocalProtocolError):
        w.update(0)


def test_size_limits() -> None:
    with pytest.raises(LocalProtocolError):
        ReplayWindow(0)
    with pytest.raises(LocalProtocolError):
        ReplayWindow(MAX_WINDOW_SIZE + 1)
    w = ReplayWindow(1)
    w.update(7)
    assert not w.check(6) and not w.check(7) and w.check(8)


def test_ids_beyond_u64_rejected() -> None:
    w = ReplayWindow()
    assert w.check(MAX_PACKET_ID)
    assert not w.check(MAX_PACKET_ID + 1)
    assert not w.check(-5)


def test_bitmap_stays_bounded() -> None:
    w = ReplayWindow(64)
    for pid in range(1, 5000, 3):
        w.update(pid)
    assert w._bitmap.bit_length() <= 64


@settings(max_examples=300)
@given(
    size=st.sampled_from([1, 2, 8, 64, 128]),
    steps=st.lists(
        st.tuples(st.integers(-300, 300), st.booleans(), st.booleans()), min_size=1, max_size=120
    ),
)
def test_matches_reference_model(size: int, steps: list[tuple[int, bool, bool]]) -> None:
    w = ReplayWindow(size)
    m = ModelWindow(size)
    base = 1000
    for delta, authentic, far in steps:
        pid = (m.highest or base) + delta + (10**6 if far else 0)
        expected = m.check(pid)
        assert w.check(pid) == expected
        assert w.check(pid) == expected  # check() is pure
        if expected and authentic:
            w.update(pid)
            m.update(pid)
        assert w.highest == m.highest


@given(st.lists(st.integers(1, 400), min_size=1, max_size=200))
def test_duplicates_always_rejected(pids: list[int]) -> None:
    w = ReplayWindow(128)
    accepted: set[int] = set()
    for pid in pids:
        if w.check(pid):
            assert pid not in accepted
            w.update(pid)
            accepted.add(pid)
        assert not w.check(pid)


class ReplayMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.window = ReplayWindow(32)
        self.model = ModelWindow(32)

    def _near(self, delta: int) -> int:
        return (self.model.highest or 500) + delta

    @rule(delta=st.integers(-70, 70))
    def receive_authentic(self, delta: int) -> None:
        pid = self._near(delta)
        ok = self.window.check(pid)
        assert ok == self.model.check(pid)
        if ok:
            self.window.update(pid)
            self.model.update(pid)

    @rule(delta=st.integers(-70, 70))
    def receive_forged(self, delta: int) -> None:
        # A forgery fails the AEAD, so only check() runs: the window must not move.
        pid = self._near(delta)
        before = self.window.highest
        assert self.window.check(pid) == self.model.check(pid)
        assert self.window.highest == before

    @rule(delta=st.integers(0, 70))
    def replay_old(self, delta: int) -> None:
        if self.model.highest is None:
            return
        pid = self.model.highest - delta
        if pid in self.model.seen:
            assert not self.window.check(pid)

    @invariant()
    def same_highest(self) -> None:
        assert self.window.highest == self.model.highest


TestReplayMachine = ReplayMachine.TestCase
