"""Send side of an established RIFT connection: priority queues, pacing, FEC, retransmission.

Messages are queued as protobuf objects and sealed only when they leave (``drain``), so packet
ids increase in the order datagrams hit the wire. That keeps the receiver's gap detection exact
and lets FEC groups be formed from datagrams as they are actually sent.

Priority: control > input > media. Control and input are never paced; media is paced at
``pacing_gain`` x the target bitrate.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from wavry.rift.config import RiftConfig
from wavry.rift.media.chunking import chunk_frame
from wavry.rift.media.fec import FecEncoder, ParityShard, group_size_for_ratio
from wavry.rift.media.nack import RetransmitHistory
from wavry.rift.media.pacer import Pacer
from wavry.rift.proto import rift_pb2

__all__ = ["MediaSender", "SealFn"]

#: Seals a serialized Message: returns (packet_id, datagram).
SealFn = Callable[[bytes, float], tuple[int, bytes]]

# Typical sealed size of a full chunk; the pacer needs an estimate before sealing.
_OVERHEAD = 18 + 16 + 48
_RS_MAX_GROUP = 32
_EFFICIENCY_WINDOW = 512 * 1024  # bytes on the wire before the counters are halved


@dataclass(slots=True)
class _Item:
    message: rift_pb2.Message
    store: bool = False  # keep for retransmission
    fec: bool = False  # include in an FEC group
    frame_end: bool = False  # last chunk of a frame: close the FEC group after it
    size_hint: int = 0


@dataclass(slots=True)
class SendCounters:
    packets_sent: int = 0
    bytes_sent: int = 0
    media_packets_sent: int = 0
    retransmits_sent: int = 0
    fec_packets_sent: int = 0
    queue_dropped: int = 0
    nack_unknown: int = 0


class MediaSender:
    def __init__(self, config: RiftConfig, *, bitrate_kbps: int, now: float) -> None:
        self._cfg = config
        self._control: deque[_Item] = deque()
        self._input: deque[_Item] = deque()
        self._media: deque[_Item] = deque()
        self._pacer = Pacer(
            rate_bps=bitrate_kbps * 1000 * config.pacing_gain, burst_bytes=config.pacing_burst_bytes
        )
        self._history = RetransmitHistory(
            capacity=config.retransmit_history, max_age=config.retransmit_max_age
        )
        scheme = "rs" if config.fec_scheme == "rs" else "xor"
        self._scheme = scheme
        if scheme == "rs":
            # Groups close at each frame's end; parity per group follows the FEC ratio.
            self._fec = FecEncoder(
                scheme="rs",
                group_size=_RS_MAX_GROUP,
                parity_count=config.fec_parity,
                parity_ratio=config.fec_ratio,
            )
        else:
            self._fec = FecEncoder(scheme="xor", group_size=group_size_for_ratio(config.fec_ratio))
        self._fec_ratio = config.fec_ratio
        # Bytes of video payload vs all media bytes on the wire (FEC, retransmissions, headers),
        # decayed by halving: how much of the budget the encoder may actually use.
        self._useful_bytes = 0.0
        self._wire_bytes = 0.0
        self._fec_enabled = config.fec_enabled
        self._next_frame_id = 0
        self._pace_until: float | None = None
        self.counters = SendCounters()

    # -- queueing -------------------------------------------------------------------------
    def queue_control(self, control: rift_pb2.ControlMessage, *, store: bool = False) -> None:
        self._push(self._control, _Item(rift_pb2.Message(control=control), store=store))

    def queue_input(self, event: rift_pb2.InputMessage) -> None:
        # Key, button and gamepad transitions must not be lost (a lost key-up means a stuck
        # key), so they are retransmitted on NACK; pointer motion is superseded by the next one.
        reliable = event.WhichOneof("event") in ("key", "mouse_button", "gamepad")
        self._push(self._input, _Item(rift_pb2.Message(input=event), store=reliable))

    def queue_audio(self, payload: bytes, timestamp_us: int) -> None:
        audio = rift_pb2.AudioPacket(timestamp_us=timestamp_us, payload=payload)
        msg = rift_pb2.Message(media=rift_pb2.MediaMessage(audio=audio))
        # Audio jumps the video queue: it is small and late audio is useless.
        self._media.appendleft(_Item(msg, size_hint=len(payload) + _OVERHEAD))

    def queue_video_frame(
        self,
        data: bytes,
        *,
        keyframe: bool,
        timestamp_us: int,
        capture_us: int = 0,
        encode_us: int = 0,
    ) -> int:
        frame_id = self._next_frame_id
        self._next_frame_id += 1
        chunks = chunk_frame(
            frame_id,
            data,
            keyframe=keyframe,
            timestamp_us=timestamp_us,
            capture_us=capture_us,
            encode_us=encode_us,
            max_payload=self._cfg.chunk_payload,
        )
        last = len(chunks) - 1
        for i, chunk in enumerate(chunks):
            msg = rift_pb2.Message(media=rift_pb2.MediaMessage(video=chunk))
            item = _Item(msg, store=True, fec=True, frame_end=i == last)
            item.size_hint = len(chunk.payload) + _OVERHEAD
            self._push(self._media, item)
        return frame_id

    def _push(self, queue: deque[_Item], item: _Item) -> None:
        if len(queue) >= self._cfg.max_send_queue:
            queue.popleft()  # drop the oldest: fresh data is worth more in real time
            self.counters.queue_dropped += 1
        queue.append(item)

    # -- NACK and rate --------------------------------------------------------------------
    def on_nack(self, packet_ids: list[int], now: float) -> None:
        resend: list[_Item] = []
        for pid in packet_ids[:256]:
            body = self._history.take(pid, now)
            if body is None:
                self.counters.nack_unknown += 1
                continue
            msg = rift_pb2.Message()
            msg.ParseFromString(body)
            msg.retransmit_of = pid
            resend.append(_Item(msg, store=True, size_hint=len(body) + _OVERHEAD))
        # Retransmissions go ahead of new media: the receiver is waiting on them.
        self._media.extendleft(reversed(resend))

    def set_rate(self, bitrate_kbps: int, fec_ratio: float) -> None:
        self._pacer.set_rate(bitrate_kbps * 1000 * self._cfg.pacing_gain)
        self._fec_ratio = fec_ratio
        if self._scheme == "xor":
            self._fec.set_group_size(group_size_for_ratio(fec_ratio))
        else:
            self._fec.set_parity_ratio(min(1.0, max(fec_ratio, 0.01)))

    @property
    def efficiency(self) -> float:
        """Share of media wire bytes that is video payload (the rest: FEC, resends, headers)."""
        if self._wire_bytes < 64 * 1024:
            return 0.93 / (1.0 + self._fec_ratio)  # a prior until enough was measured
        return max(0.2, min(1.0, self._useful_bytes / self._wire_bytes))

    @property
    def next_frame_id(self) -> int:
        return self._next_frame_id

    @property
    def pending(self) -> int:
        return len(self._control) + len(self._input) + len(self._media)

    def next_send_time(self) -> float | None:
        """When paced media may go next (None when nothing is waiting on the pacer)."""
        return self._pace_until if self._media else None

    # -- draining -------------------------------------------------------------------------
    def drain(self, seal: SealFn, now: float, out: list[bytes]) -> None:
        for queue in (self._control, self._input):
            while queue:
                self._emit(queue.popleft(), seal, now, out)
        self._pace_until = None
        media = self._media
        while media:
            item = media[0]
            wait = self._pacer.time_until_send(item.size_hint, now)
            if wait > 0:
                self._pace_until = now + wait
                return
            media.popleft()
            pid, datagram = self._emit(item, seal, now, out)
            self._pacer.on_sent(len(datagram), now)
            self.counters.media_packets_sent += 1
            self._wire_bytes += len(datagram)
            if item.fec:  # an original video chunk (retransmissions are not FEC-grouped)
                self._useful_bytes += len(item.message.media.video.payload)
            if self._wire_bytes > _EFFICIENCY_WINDOW:
                self._wire_bytes /= 2
                self._useful_bytes /= 2
            if item.fec and self._fec_enabled:
                parity = self._fec.add(pid, datagram)
                if item.frame_end:
                    parity += self._fec.flush()
                self._queue_parity(parity)

    def _queue_parity(self, shards: list[ParityShard]) -> None:
        items = [
            _Item(
                rift_pb2.Message(media=rift_pb2.MediaMessage(fec=s.to_proto())),
                size_hint=len(s.payload) + _OVERHEAD + 8 * len(s.packet_ids),
            )
            for s in shards
        ]
        # Parity follows its group immediately, before the next frame's chunks.
        self._media.extendleft(reversed(items))
        self.counters.fec_packets_sent += len(items)

    def _emit(self, item: _Item, seal: SealFn, now: float, out: list[bytes]) -> tuple[int, bytes]:
        msg = item.message
        if msg.HasField("media") and msg.media.HasField("video"):
            # Send time (not capture time) drives the receiver's queuing-delay estimate.
            msg.media.video.send_us = int(now * 1_000_000)
        body = msg.SerializeToString()
        pid, datagram = seal(body, now)
        if item.store:
            self._history.store(pid, body, now)
        if msg.retransmit_of:
            self.counters.retransmits_sent += 1
        self.counters.packets_sent += 1
        self.counters.bytes_sent += len(datagram)
        out.append(datagram)
        return pid, datagram
