"""Rebuild video frames from ``VideoChunk`` messages and release them strictly in frame order.

Normative rules (docs/protocol.md, frame reassembly):

* Chunks are keyed by ``(frame_id, chunk_index)``. A chunk is **invalid** (the caller drops the
  datagram as ``DropReason.MEDIA_INVALID``) when ``chunk_count`` is 0 or above
  :data:`~wavry.rift.media.chunking.MAX_CHUNKS_PER_FRAME`, ``chunk_index >= chunk_count``, its
  ``chunk_count``, ``keyframe`` or ``timestamp_us`` disagree with earlier chunks of the frame,
  the frame would exceed ``max_frame_bytes``, or its ``frame_id`` is below the release point
  (the frame was already released, declared lost or skipped). Duplicate chunks are ignored.
* The **release point** is the lowest frame id not yet released. It starts at the ``frame_id``
  of the first chunk ever received (a receiver may join mid-stream); until the first frame is
  released or lost it may move back to a lower id that still fits the in-flight window, so
  reordering of the very first datagrams loses nothing. Frames are released strictly
  in ``frame_id`` order: a complete frame waits until every earlier id is released or lost.
* A seen frame is declared lost (``reason="deadline"``) once ``first_chunk_at + deadline`` has
  passed and it is still incomplete when it reaches the release point. A run of ids never seen
  at all is declared lost as **one** ``LostFrame`` whose ``frames`` field counts the ids, once the
  deadline has passed since the first chunk of any later frame arrived. Default deadline
  :data:`DEFAULT_DEADLINE` = 100 ms; the connection adapts it from the RTT (``set_deadline``).
* Bounds: frame ids in flight span at most ``max_frames_in_flight`` (default
  :data:`DEFAULT_MAX_FRAMES_IN_FLIGHT` = 64) ids from the release point; a chunk further ahead
  moves the release point forward and everything passed over is released (if complete) or lost
  with ``reason="evicted"``. Buffered chunk bytes are capped at ``max_buffered_bytes``
  (default 64 MiB) by evicting the oldest frames; one frame at ``max_frame_bytes``
  (default :data:`DEFAULT_MAX_FRAME_BYTES` = 16 MiB).
* **Keyframe skip:** when a keyframe completes while earlier frames are outstanding, waiting for
  them only delays the picture the decoder can restart from, so every earlier incomplete frame is
  declared lost with ``reason="skipped"`` (complete ones are still released first, in order).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from wavry.rift.errors import DropReason, LocalProtocolError, RemoteProtocolError
from wavry.rift.media.chunking import MAX_CHUNKS_PER_FRAME
from wavry.rift.proto import rift_pb2

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_BUFFERED_BYTES",
    "DEFAULT_MAX_FRAMES_IN_FLIGHT",
    "DEFAULT_MAX_FRAME_BYTES",
    "CompleteFrame",
    "FrameReassembler",
    "LostFrame",
    "LostReason",
    "ReassemblyEvent",
]

DEFAULT_DEADLINE = 0.1
DEFAULT_MAX_FRAMES_IN_FLIGHT = 64
DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024

_MAX_CHUNKS = MAX_CHUNKS_PER_FRAME

LostReason = Literal["deadline", "evicted", "skipped"]


@dataclass(frozen=True, slots=True)
class CompleteFrame:
    """Every chunk of a frame arrived; ``data`` is the encoded frame."""

    frame_id: int
    data: bytes
    keyframe: bool
    timestamp_us: int
    capture_us: int
    encode_us: int
    first_chunk_at: float
    completed_at: float
    chunk_count: int


@dataclass(frozen=True, slots=True)
class LostFrame:
    """A frame (or a run of ``frames`` consecutive never-seen ids) that will not be released.

    ``chunk_count`` is 0 when no chunk of the frame was seen.
    """

    frame_id: int
    reason: LostReason
    chunks_received: int
    chunk_count: int
    frames: int = 1


ReassemblyEvent = CompleteFrame | LostFrame


@dataclass(slots=True)
class _Partial:
    chunk_count: int
    keyframe: bool
    timestamp_us: int
    capture_us: int
    encode_us: int
    first_at: float
    chunks: dict[int, bytes] = field(default_factory=dict)
    size: int = 0
    completed_at: float | None = None


class FrameReassembler:
    """Sans-IO frame reassembly: ``add_chunk`` per received chunk, ``poll`` for ordered output.

    Call :meth:`poll` after every :meth:`add_chunk` and whenever :meth:`next_deadline` is due.
    """

    def __init__(
        self,
        *,
        deadline: float = DEFAULT_DEADLINE,
        max_frames_in_flight: int = DEFAULT_MAX_FRAMES_IN_FLIGHT,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        skip_to_keyframe: bool = True,
    ) -> None:
        if max_frames_in_flight < 1:
            raise LocalProtocolError("max_frames_in_flight must be >= 1")
        if not 1 <= max_frame_bytes <= max_buffered_bytes:
            raise LocalProtocolError("need 1 <= max_frame_bytes <= max_buffered_bytes")
        self.set_deadline(deadline)
        self._max_in_flight = max_frames_in_flight
        self._max_frame_bytes = max_frame_bytes
        self._max_buffered = max_buffered_bytes
        self._skip_to_keyframe = skip_to_keyframe
        self._next: int | None = None
        self._frames: dict[int, _Partial] = {}
        self._buffered = 0
        # Events produced inside add_chunk (evictions, skips), waiting for poll. A caller that
        # polls after each add_chunk never holds more than ~2 * max_frames_in_flight + 1.
        self._ready: deque[ReassemblyEvent] = deque()
        self._ready_cap = 4 * max_frames_in_flight + 8
        self._ready_at: float | None = None
        self._released_any = False
        self.duplicates = 0
        self.late_chunks = 0
        self.frames_completed = 0
        self.frames_lost = 0
        self.events_dropped = 0

    # -- configuration -------------------------------------------------------------------------

    @property
    def deadline(self) -> float:
        return self._deadline

    def set_deadline(self, seconds: float) -> None:
        """Change the per-frame deadline; applies to frames already pending too."""
        if not seconds >= 0.0:
            raise LocalProtocolError(f"deadline must be >= 0, got {seconds}")
        self._deadline = seconds

    @property
    def next_frame_id(self) -> int | None:
        """The release point (lowest frame id not yet released), None before the first chunk."""
        return self._next

    @property
    def pending_frames(self) -> int:
        return len(self._frames)

    # -- input ---------------------------------------------------------------------------------

    def add_chunk(self, chunk: rift_pb2.VideoChunk, now: float) -> None:
        """Store one chunk. Raises ``RemoteProtocolError(MEDIA_INVALID)`` for invalid chunks."""
        frame_id = chunk.frame_id
        count = chunk.chunk_count
        index = chunk.chunk_index
        payload = chunk.payload
        if not 1 <= count <= MAX_CHUNKS_PER_FRAME:
            raise _invalid(f"frame {frame_id}: chunk_count {count} outside 1..{_MAX_CHUNKS}")
        if index >= count:
            raise _invalid(f"frame {frame_id}: chunk_index {index} >= chunk_count {count}")
        if len(payload) > self._max_frame_bytes:
            raise _invalid(f"frame {frame_id} exceeds {self._max_frame_bytes} bytes")
        if self._next is None:
            self._next = frame_id
        elif frame_id < self._next and not self._released_any and self._fits_before(frame_id):
            self._next = frame_id  # reordering at the very start of the stream
        elif frame_id < self._next:
            self.late_chunks += 1
            raise _invalid(f"frame {frame_id} is older than the release point {self._next}")
        frame = self._frames.get(frame_id)
        if frame is not None:
            if (count, chunk.keyframe, chunk.timestamp_us) != (
                frame.chunk_count,
                frame.keyframe,
                frame.timestamp_us,
            ):
                raise _invalid(f"frame {frame_id}: chunk disagrees with earlier chunks")
            if index in frame.chunks:
                self.duplicates += 1
                return
            if frame.size + len(payload) > self._max_frame_bytes:
                raise _invalid(f"frame {frame_id} exceeds {self._max_frame_bytes} bytes")
        else:
            if frame_id >= self._next + self._max_in_flight:
                self._advance_to(frame_id - self._max_in_flight + 1, "evicted", now)
            frame = _Partial(
                chunk_count=count,
                keyframe=chunk.keyframe,
                timestamp_us=chunk.timestamp_us,
                capture_us=chunk.capture_us,
                encode_us=chunk.encode_us,
                first_at=now,
            )
            self._frames[frame_id] = frame
        frame.chunks[index] = payload
        frame.size += len(payload)
        self._buffered += len(payload)
        if len(frame.chunks) == count:
            frame.completed_at = now
            if self._skip_to_keyframe and frame.keyframe:
                self._advance_to(frame_id, "skipped", now)
        while self._buffered > self._max_buffered:
            self._advance_to(min(self._frames) + 1, "evicted", now)

    # -- output --------------------------------------------------------------------------------

    def poll(self, now: float) -> list[ReassemblyEvent]:
        """Release, in frame order, every frame that is complete or past its deadline."""
        while self._frames and self._next is not None:
            head = self._next
            frame = self._frames.get(head)
            if frame is None:
                if now < self._gap_deadline():
                    break
                first_seen = min(self._frames)
                self._emit_lost(head, "deadline", 0, 0, first_seen - head)
                self._next = first_seen
            elif frame.completed_at is not None or now >= frame.first_at + self._deadline:
                self._release(head, frame, "deadline")
                self._next = head + 1
            else:
                break
        events = list(self._ready)
        self._ready.clear()
        self._ready_at = None
        return events

    def next_deadline(self) -> float | None:
        """When :meth:`poll` next has something to do (may be in the past), or None."""
        if self._ready_at is not None:
            return self._ready_at
        if not self._frames or self._next is None:
            return None
        frame = self._frames.get(self._next)
        if frame is None:
            return self._gap_deadline()
        if frame.completed_at is not None:
            return frame.completed_at
        return frame.first_at + self._deadline

    # -- internals -----------------------------------------------------------------------------

    def _fits_before(self, frame_id: int) -> bool:
        return max(self._frames, default=frame_id) - frame_id < self._max_in_flight

    def _gap_deadline(self) -> float:
        # Ids below every pending frame were never seen: they are known missing since the
        # earliest first chunk of any later frame.
        return min(f.first_at for f in self._frames.values()) + self._deadline

    def _advance_to(self, target: int, reason: LostReason, now: float) -> None:
        """Move the release point to ``target``, releasing or losing everything before it."""
        if self._next is None or target <= self._next:
            return
        for frame_id in sorted(fid for fid in self._frames if fid < target):
            if frame_id > self._next:
                self._emit_lost(self._next, reason, 0, 0, frame_id - self._next)
            self._release(frame_id, self._frames[frame_id], reason)
            self._next = frame_id + 1
        if target > self._next:
            self._emit_lost(self._next, reason, 0, 0, target - self._next)
        self._next = target
        if self._ready and self._ready_at is None:
            self._ready_at = now

    def _release(self, frame_id: int, frame: _Partial, reason: LostReason) -> None:
        del self._frames[frame_id]
        self._buffered -= frame.size
        if frame.completed_at is None:
            self._emit_lost(frame_id, reason, len(frame.chunks), frame.chunk_count, 1)
            return
        self.frames_completed += 1
        self._push(
            CompleteFrame(
                frame_id=frame_id,
                data=b"".join(frame.chunks[i] for i in range(frame.chunk_count)),
                keyframe=frame.keyframe,
                timestamp_us=frame.timestamp_us,
                capture_us=frame.capture_us,
                encode_us=frame.encode_us,
                first_chunk_at=frame.first_at,
                completed_at=frame.completed_at,
                chunk_count=frame.chunk_count,
            )
        )

    def _emit_lost(
        self, frame_id: int, reason: LostReason, received: int, count: int, frames: int
    ) -> None:
        self.frames_lost += frames
        self._push(LostFrame(frame_id, reason, received, count, frames))

    def _push(self, event: ReassemblyEvent) -> None:
        self._released_any = True
        if len(self._ready) >= self._ready_cap:
            self._ready.popleft()
            self.events_dropped += 1
        self._ready.append(event)


def _invalid(detail: str) -> RemoteProtocolError:
    return RemoteProtocolError(DropReason.MEDIA_INVALID, detail)
