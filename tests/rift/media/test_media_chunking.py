from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.rift.errors import LocalProtocolError
from wavry.rift.media.chunking import (
    DEFAULT_CHUNK_PAYLOAD,
    MAX_CHUNKS_PER_FRAME,
    chunk_count_for,
    chunk_frame,
)
from wavry.rift.proto import rift_pb2

DET = settings(derandomize=True, deadline=None, max_examples=200)


def test_constants() -> None:
    assert DEFAULT_CHUNK_PAYLOAD == 1200
    assert MAX_CHUNKS_PER_FRAME == 8192


def test_empty_frame_is_one_empty_chunk() -> None:
    chunks = chunk_frame(7, b"", keyframe=True, timestamp_us=5)
    assert len(chunks) == 1
    (chunk,) = chunks
    assert (chunk.frame_id, chunk.chunk_index, chunk.chunk_count, chunk.payload) == (7, 0, 1, b"")
    assert chunk.keyframe is True


@pytest.mark.parametrize(("size", "count"), [(1, 1), (1200, 1), (1201, 2), (2400, 2), (2401, 3)])
def test_chunk_count_is_ceiling(size: int, count: int) -> None:
    assert len(chunk_frame(0, bytes(size), keyframe=False, timestamp_us=0)) == count
    assert chunk_count_for(size) == count


def test_shared_fields_are_copied_to_every_chunk() -> None:
    chunks = chunk_frame(
        9, bytes(5000), keyframe=True, timestamp_us=123, capture_us=4, encode_us=6, max_payload=1000
    )
    assert [c.chunk_index for c in chunks] == [0, 1, 2, 3, 4]
    for c in chunks:
        assert (c.frame_id, c.chunk_count, c.timestamp_us, c.keyframe) == (9, 5, 123, True)
        assert (c.capture_us, c.encode_us) == (4, 6)


def test_max_chunk_count_accepted_and_one_more_refused() -> None:
    assert (
        len(
            chunk_frame(
                0, bytes(MAX_CHUNKS_PER_FRAME), keyframe=False, timestamp_us=0, max_payload=1
            )
        )
        == MAX_CHUNKS_PER_FRAME
    )
    with pytest.raises(LocalProtocolError, match="8192"):
        chunk_frame(
            0, bytes(MAX_CHUNKS_PER_FRAME + 1), keyframe=False, timestamp_us=0, max_payload=1
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_payload": 0},
        {"capture_us": -1},
        {"encode_us": 2**32},
        {"timestamp_us": 2**64},
    ],
)
def test_out_of_range_arguments_are_local_errors(kwargs: dict[str, int]) -> None:
    args: dict[str, int] = {"timestamp_us": 0, **kwargs}
    with pytest.raises(LocalProtocolError):
        chunk_frame(0, b"abc", keyframe=False, **args)


def test_negative_frame_id_refused() -> None:
    with pytest.raises(LocalProtocolError):
        chunk_frame(-1, b"abc", keyframe=False, timestamp_us=0)


@DET
@given(data=st.binary(max_size=5000), max_payload=st.integers(1, 1500))
def test_chunks_concatenate_to_frame_and_survive_the_wire(data: bytes, max_payload: int) -> None:
    chunks = chunk_frame(3, data, keyframe=False, timestamp_us=1, max_payload=max_payload)
    assert b"".join(c.payload for c in chunks) == data
    assert all(len(c.payload) <= max_payload for c in chunks)
    assert all(len(c.payload) == max_payload for c in chunks[:-1])
    for c in chunks:
        parsed = rift_pb2.VideoChunk.FromString(c.SerializeToString())
        assert parsed == c
