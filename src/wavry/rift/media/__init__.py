"""RIFT media transport building blocks (sans-IO): chunking, reassembly, FEC, NACK, jitter
buffer and pacing. The connection state machine wires them together; each module documents the
normative constants it defines."""

from __future__ import annotations

from wavry.rift.media.chunking import (
    DEFAULT_CHUNK_PAYLOAD,
    MAX_CHUNKS_PER_FRAME,
    chunk_count_for,
    chunk_frame,
)
from wavry.rift.media.fec import (
    MAX_DATA_SHARDS,
    MAX_PARITY_SHARDS,
    MAX_SHARD_LEN,
    FecDecoder,
    FecEncoder,
    ParityShard,
    group_size_for_ratio,
)
from wavry.rift.media.jitter import HasFrameId, JitterBuffer
from wavry.rift.media.nack import NackTracker, RetransmitHistory
from wavry.rift.media.pacer import Pacer
from wavry.rift.media.reassembly import (
    CompleteFrame,
    FrameReassembler,
    LostFrame,
    LostReason,
    ReassemblyEvent,
)

__all__ = [
    "DEFAULT_CHUNK_PAYLOAD",
    "MAX_CHUNKS_PER_FRAME",
    "MAX_DATA_SHARDS",
    "MAX_PARITY_SHARDS",
    "MAX_SHARD_LEN",
    "CompleteFrame",
    "FecDecoder",
    "FecEncoder",
    "FrameReassembler",
    "HasFrameId",
    "JitterBuffer",
    "LostFrame",
    "LostReason",
    "NackTracker",
    "Pacer",
    "ParityShard",
    "ReassemblyEvent",
    "RetransmitHistory",
    "chunk_count_for",
    "chunk_frame",
    "group_size_for_ratio",
]
