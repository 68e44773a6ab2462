from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.rift.errors import DropReason, LocalProtocolError, RemoteProtocolError
from wavry.rift.media.chunking import chunk_frame
from wavry.rift.media.reassembly import (
    CompleteFrame,
    FrameReassembler,
    LostFrame,
    ReassemblyEvent,
)
from wavry.rift.proto import rift_pb2

DET = settings(derandomize=True, deadline=None, max_examples=150)


def chunks(
    frame_id: int, size: int = 3000, *, keyframe: bool = False, max_payload: int = 1000
) -> list[rift_pb2.VideoChunk]:
    data = bytes((frame_id + i) % 256 for i in range(size))
    return chunk_frame(
        frame_id, data, keyframe=keyframe, timestamp_us=frame_id % 2**32, max_payload=max_payload
    )


def feed(r: FrameReassembler, cs: list[rift_pb2.VideoChunk], now: float) -> None:
    for c in cs:
        r.add_chunk(c, now)


def summary(events: list[ReassemblyEvent]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for e in events:
        if isinstance(e, CompleteFrame):
            out.append(("ok", e.frame_id))
        else:
            out.append(("lost", e.frame_id, e.reason, e.chunks_received, e.chunk_count, e.frames))
    return out


def test_complete_frame_carries_metadata_and_data() -> None:
    r = FrameReassembler()
    cs = chunk_frame(5, b"x" * 2500, keyframe=True, timestamp_us=77, capture_us=3, encode_us=4)
    r.add_chunk(cs[2], 1.0)
    r.add_chunk(cs[0], 1.001)
    assert r.poll(1.001) == []
    r.add_chunk(cs[1], 1.002)
    (frame,) = r.poll(1.002)
    assert frame == CompleteFrame(
        frame_id=5,
        data=b"x" * 2500,
        keyframe=True,
        timestamp_us=77,
        capture_us=3,
        encode_us=4,
        first_chunk_at=1.0,
        completed_at=1.002,
        chunk_count=3,
    )
    assert r.next_frame_id == 6
    assert r.frames_completed == 1


def test_frames_are_released_strictly_in_order() -> None:
    r = FrameReassembler(skip_to_keyframe=False)
    feed(r, chunks(1), 0.0)
    feed(r, chunks(2), 0.0)
    r.add_chunk(chunks(0)[0], 0.0)
    feed(r, chunks(1), 0.0)  # late duplicates are ignored, frame 1 not yet released
    assert r.duplicates == 3
    assert r.poll(0.01) == []
    feed(r, chunks(0)[1:], 0.02)
    assert summary(r.poll(0.02)) == [("ok", 0), ("ok", 1), ("ok", 2)]
    assert r.next_frame_id == 3


def test_incomplete_frame_is_lost_exactly_at_its_deadline() -> None:
    r = FrameReassembler(deadline=0.1)
    r.add_chunk(chunks(0)[0], 1.0)
    feed(r, chunks(1), 1.05)
    assert r.next_deadline() == pytest.approx(1.1)
    assert r.poll(1.0999) == []
    assert summary(r.poll(1.1)) == [("lost", 0, "deadline", 1, 3, 1), ("ok", 1)]
    assert r.next_deadline() is None
    assert r.frames_lost == 1


def test_wholly_unseen_ids_are_one_lost_event_timed_from_the_next_frame() -> None:
    r = FrameReassembler(deadline=0.1)
    feed(r, chunks(0), 0.0)
    feed(r, chunks(3), 0.01)
    assert summary(r.poll(0.01)) == [("ok", 0)]
    assert r.next_deadline() == pytest.approx(0.11)
    assert r.poll(0.1) == []
    assert summary(r.poll(0.11)) == [("lost", 1, "deadline", 0, 0, 2), ("ok", 3)]
    assert r.frames_lost == 2


def test_gap_deadline_uses_earliest_later_arrival() -> None:
    r = FrameReassembler(deadline=0.125)
    feed(r, chunks(0), 0.0)
    r.poll(0.0)
    r.add_chunk(chunks(3)[0], 0.25)
    r.add_chunk(chunks(2)[0], 0.5)
    assert r.next_deadline() == 0.375
    assert r.poll(0.374) == []
    assert summary(r.poll(0.375)) == [("lost", 1, "deadline", 0, 0, 1)]
    # Frame 2 arrived at 0.5 and keeps its own deadline.
    assert r.next_deadline() == 0.625


def test_complete_frame_past_deadline_is_still_released() -> None:
    r = FrameReassembler(deadline=0.05)
    feed(r, chunks(0), 0.0)
    assert r.next_deadline() == 0.0
    assert summary(r.poll(10.0)) == [("ok", 0)]


def test_set_deadline_applies_to_pending_frames() -> None:
    r = FrameReassembler(deadline=0.1)
    r.add_chunk(chunks(0)[0], 0.0)
    r.set_deadline(0.03)
    assert r.deadline == 0.03
    assert r.next_deadline() == pytest.approx(0.03)
    assert summary(r.poll(0.03)) == [("lost", 0, "deadline", 1, 3, 1)]
    with pytest.raises(LocalProtocolError):
        r.set_deadline(-1.0)


def test_join_mid_stream_starts_at_first_frame_seen() -> None:
    r = FrameReassembler()
    feed(r, chunks(1000), 0.0)
    assert r.next_frame_id == 1000
    assert summary(r.poll(0.0)) == [("ok", 1000)]


def test_reordering_before_the_first_release_moves_the_start_back() -> None:
    r = FrameReassembler(max_frames_in_flight=4)
    r.add_chunk(chunks(10)[0], 0.0)
    r.add_chunk(chunks(8)[0], 0.0)
    assert r.next_frame_id == 8
    with pytest.raises(RemoteProtocolError):
        r.add_chunk(chunks(6)[0], 0.0)  # would not fit the in-flight window with frame 10
    feed(r, chunks(8)[1:], 0.0)
    assert summary(r.poll(0.0)) == [("ok", 8)]
    with pytest.raises(RemoteProtocolError):
        r.add_chunk(chunks(7)[0], 0.0)  # something was released: the start is fixed


def test_window_overflow_evicts_oldest() -> None:
    r = FrameReassembler(max_frames_in_flight=4, skip_to_keyframe=False)
    for fid in range(4):
        r.add_chunk(chunks(fid)[0], 0.0)
    feed(r, chunks(5), 0.001)  # frame 5 needs ids 2..5 in flight: 0 and 1 are evicted
    assert r.next_frame_id == 2
    assert summary(r.poll(0.001)) == [
        ("lost", 0, "evicted", 1, 3, 1),
        ("lost", 1, "evicted", 1, 3, 1),
    ]
    assert r.pending_frames == 3


def test_huge_frame_id_jump_is_bounded_work() -> None:
    r = FrameReassembler(max_frames_in_flight=8)
    feed(r, chunks(0), 0.0)
    r.add_chunk(chunks(1)[0], 0.0)
    r.add_chunk(chunks(2**60)[0], 0.1)
    assert summary(r.poll(0.1)) == [
        ("ok", 0),
        ("lost", 1, "evicted", 1, 3, 1),
        ("lost", 2, "evicted", 0, 0, 2**60 - 7 - 2),
    ]
    assert r.next_frame_id == 2**60 - 7
    assert r.pending_frames == 1


def test_completed_keyframe_skips_outstanding_frames() -> None:
    r = FrameReassembler(deadline=1.0)
    r.add_chunk(chunks(0)[0], 0.0)
    feed(r, chunks(1), 0.0)  # complete, released before the keyframe
    r.add_chunk(chunks(2)[1], 0.0)
    feed(r, chunks(5, keyframe=True), 0.01)
    assert r.next_deadline() == 0.01
    assert summary(r.poll(0.01)) == [
        ("lost", 0, "skipped", 1, 3, 1),
        ("ok", 1),
        ("lost", 2, "skipped", 1, 3, 1),
        ("lost", 3, "skipped", 0, 0, 2),
        ("ok", 5),
    ]


def test_keyframe_skip_can_be_disabled() -> None:
    r = FrameReassembler(deadline=1.0, skip_to_keyframe=False)
    r.add_chunk(chunks(0)[0], 0.0)
    feed(r, chunks(1, keyframe=True), 0.0)
    assert r.poll(0.5) == []
    assert summary(r.poll(1.0)) == [("lost", 0, "deadline", 1, 3, 1), ("ok", 1)]


def test_incomplete_keyframe_does_not_skip() -> None:
    r = FrameReassembler(deadline=1.0)
    r.add_chunk(chunks(0)[0], 0.0)
    r.add_chunk(chunks(1, keyframe=True)[0], 0.0)
    assert r.poll(0.5) == []


def test_byte_budget_evicts_oldest_frames() -> None:
    r = FrameReassembler(max_frame_bytes=3000, max_buffered_bytes=5000, skip_to_keyframe=False)
    r.add_chunk(chunks(0)[0], 0.0)
    r.add_chunk(chunks(0)[1], 0.0)
    r.add_chunk(chunks(1)[0], 0.0)
    r.add_chunk(chunks(2)[0], 0.0)
    r.add_chunk(chunks(2)[1], 0.0)  # 5000 buffered: fits
    assert r.poll(0.0) == []
    r.add_chunk(chunks(2)[2], 0.0)  # 6000: frame 0 goes
    assert summary(r.poll(0.0)) == [("lost", 0, "evicted", 2, 3, 1)]


def invalid(r: FrameReassembler, chunk: rift_pb2.VideoChunk) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        r.add_chunk(chunk, 0.0)
    assert info.value.reason is DropReason.MEDIA_INVALID


def test_inconsistent_chunks_are_media_invalid_and_change_nothing() -> None:
    r = FrameReassembler(max_frame_bytes=5000)
    first = chunks(10)
    r.add_chunk(first[0], 0.0)
    invalid(r, rift_pb2.VideoChunk(frame_id=10, chunk_index=0, chunk_count=0))
    invalid(r, rift_pb2.VideoChunk(frame_id=10, chunk_index=0, chunk_count=8193))
    invalid(r, rift_pb2.VideoChunk(frame_id=10, chunk_index=3, chunk_count=3))
    invalid(r, rift_pb2.VideoChunk(frame_id=10, chunk_index=1, chunk_count=4, timestamp_us=10000))
    bad_key = rift_pb2.VideoChunk()
    bad_key.CopyFrom(first[1])
    bad_key.keyframe = True
    invalid(r, bad_key)
    big = rift_pb2.VideoChunk()
    big.CopyFrom(first[1])
    big.payload = bytes(4001)
    invalid(r, big)
    invalid(r, rift_pb2.VideoChunk(frame_id=11, chunk_index=0, chunk_count=1, payload=bytes(5001)))
    feed(r, first[1:], 0.0)
    assert summary(r.poll(0.0)) == [("ok", 10)]
    assert r.late_chunks == 0
    invalid(r, first[0])  # frame already released
    invalid(r, rift_pb2.VideoChunk(frame_id=9, chunk_index=0, chunk_count=1))
    assert r.late_chunks == 2


def test_constructor_rejects_nonsense() -> None:
    with pytest.raises(LocalProtocolError):
        FrameReassembler(max_frames_in_flight=0)
    with pytest.raises(LocalProtocolError):
        FrameReassembler(max_frame_bytes=10, max_buffered_bytes=5)


@DET
@given(
    seed=st.integers(0, 2**32),
    loss=st.floats(0.0, 0.5),
    frames=st.integers(1, 40),
    max_in_flight=st.integers(1, 16),
)
def test_random_delivery_releases_a_gapless_ordered_sequence(
    seed: int, loss: float, frames: int, max_in_flight: int
) -> None:
    rnd = random.Random(seed)
    originals: dict[int, bytes] = {}
    wire: list[rift_pb2.VideoChunk] = []
    for fid in range(frames):
        data = rnd.randbytes(rnd.randrange(0, 4000))
        originals[fid] = data
        wire.extend(
            chunk_frame(fid, data, keyframe=rnd.random() < 0.2, timestamp_us=fid, max_payload=500)
        )
    wire = [c for c in wire if rnd.random() >= loss]
    wire += rnd.sample(wire, len(wire) // 5)  # duplicates
    rnd.shuffle(wire)
    r = FrameReassembler(deadline=0.05, max_frames_in_flight=max_in_flight)
    events: list[ReassemblyEvent] = []
    now = 0.0
    for c in wire:
        now += rnd.random() * 0.01
        try:
            r.add_chunk(c, now)
        except RemoteProtocolError as exc:
            assert exc.reason is DropReason.MEDIA_INVALID
            assert "older than the release point" in exc.detail
        assert r.pending_frames <= max_in_flight
        events += r.poll(now)
    events += r.poll(now + 10.0)
    assert r.pending_frames == 0
    if not events:
        return
    expected = events[0].frame_id
    for e in events:
        assert e.frame_id == expected
        if isinstance(e, CompleteFrame):
            assert e.data == originals[e.frame_id]
            expected += 1
        else:
            assert isinstance(e, LostFrame)
            assert e.frames >= 1
            expected += e.frames
    assert r.next_frame_id == expected


@DET
@given(
    st.lists(
        st.builds(
            rift_pb2.VideoChunk,
            frame_id=st.integers(0, 2**64 - 1),
            chunk_index=st.integers(0, 2**32 - 1),
            chunk_count=st.integers(0, 2**32 - 1),
            timestamp_us=st.integers(0, 3),
            keyframe=st.booleans(),
            payload=st.binary(max_size=64),
        ),
        max_size=30,
    )
)
def test_arbitrary_chunks_only_raise_media_invalid(cs: list[rift_pb2.VideoChunk]) -> None:
    r = FrameReassembler(max_frames_in_flight=8, max_frame_bytes=256, max_buffered_bytes=1024)
    now = 0.0
    for c in cs:
        now += 0.01
        try:
            r.add_chunk(c, now)
        except RemoteProtocolError as exc:
            assert exc.reason is DropReason.MEDIA_INVALID
        r.poll(now)
        assert r.pending_frames <= 8
