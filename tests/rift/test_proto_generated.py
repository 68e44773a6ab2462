"""The committed protobuf bindings match rift.proto, and the original's field numbers hold."""

from __future__ import annotations

from pathlib import Path

from tools.gen_proto import OUTPUTS, PROTO_DIR, generate
from wavry.rift.proto import rift_pb2


def test_generated_code_is_reproducible(tmp_path: Path) -> None:
    generate(tmp_path)
    for name in OUTPUTS:
        assert (tmp_path / name).read_bytes() == (PROTO_DIR / name).read_bytes(), (
            f"{name} drifted from rift.proto: run `uv run python -m tools.gen_proto`"
        )


def _fields(message: type) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}  # type: ignore[attr-defined]


def test_original_field_numbers_are_kept() -> None:
    assert _fields(rift_pb2.Message) == {"control": 1, "input": 2, "media": 3, "retransmit_of": 4}
    control = _fields(rift_pb2.ControlMessage)
    original = [
        "hello", "hello_ack", "ping", "pong", "stats", "congestion", "rfi", "monitor_list",
        "select_monitor", "nack", "encoder_control", "pose_update", "vr_timing",
        "hand_pose_update", "clipboard", "file_header", "file_status", "latency",
    ]  # fmt: skip
    assert [control[n] for n in original] == list(range(1, 19))
    assert control["disconnect"] == 19 and control["keyframe_request"] == 20
    hello = _fields(rift_pb2.Hello)
    assert hello["client_name"] == 1 and hello["public_addr"] == 8
    ack = _fields(rift_pb2.HelloAck)
    assert ack["session_id"] == 7 and ack["session_alias"] == 8 and ack["public_addr"] == 9
    video = _fields(rift_pb2.VideoChunk)
    assert [video[n] for n in ("frame_id", "chunk_index", "chunk_count", "timestamp_us")] == [
        1, 2, 3, 4,
    ]  # fmt: skip
    assert video["payload"] == 6 and video["encode_us"] == 8
    fec = _fields(rift_pb2.FecPacket)
    assert fec["group_id"] == 1 and fec["shard_lengths"] == 6
    media = _fields(rift_pb2.MediaMessage)
    assert media == {"video": 1, "fec": 2, "audio": 3, "file_chunk": 4}
    inp = _fields(rift_pb2.InputMessage)
    assert inp["timestamp_us"] == 1 and inp["gamepad"] == 6
    assert rift_pb2.Codec.Value("H264") == 1 and rift_pb2.Codec.Value("HEVC") == 0
    assert rift_pb2.Platform.Value("QUEST") == 4
    assert _fields(rift_pb2.StatsReport)["jitter_us"] == 5
