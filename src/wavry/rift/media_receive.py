"""Receive side of an established RIFT connection: loss detection, FEC, reassembly, playout.

Every authenticated packet feeds the NACK tracker and the statistics; video chunks feed the
FEC decoder and the frame reassembler; complete frames pass through the adaptive jitter buffer
in frame order. FEC rebuilds whole *sealed* datagrams, which the connection then pushes through
the normal authenticated receive path (header CRC, replay window, AEAD) — recovered data is
never trusted on the strength of the parity alone.
"""

from __future__ import annotations

from wavry.rift.config import RiftConfig
from wavry.rift.media.fec import FecDecoder, ParityShard
from wavry.rift.media.jitter import JitterBuffer
from wavry.rift.media.nack import NackTracker
from wavry.rift.media.reassembly import CompleteFrame, FrameReassembler, LostFrame
from wavry.rift.proto import rift_pb2
from wavry.rift.rx_stats import ReceiveStats

__all__ = ["MediaReceiver"]


class MediaReceiver:
    def __init__(self, config: RiftConfig) -> None:
        self._cfg = config
        self.fec = FecDecoder()
        self.nack = NackTracker()
        self.reassembler = FrameReassembler(deadline=config.reassembly_deadline_min)
        self.jitter: JitterBuffer[CompleteFrame] = JitterBuffer(max_delay=config.jitter_buffer_max)
        self.stats = ReceiveStats()
        self.last_complete_frame_id = 0
        self._lost: list[LostFrame] = []

    def on_packet(
        self,
        packet_id: int,
        size: int,
        now: float,
        *,
        retransmit_of: int,
        sender_us: int | None,
        recovered: bool,
    ) -> list[int]:
        """Account one authenticated packet; returns packet ids to NACK now."""
        # A packet FEC rebuilt counts as received (it fills its gap: congestion control reacts
        # to what FEC could not repair) and is reported in fec_recovered, which the sender adds
        # back when it sizes FEC. Counting it as lost would double-count a packet that was only
        # late: its original is then dropped as a replay and never reaches the statistics.
        self.stats.on_packet(packet_id, size, now, None if recovered else sender_us)
        if recovered:
            self.stats.on_recovered()
            self.nack.on_recovered(packet_id)
            return []
        if not self._cfg.nack_enabled:
            return []
        return self.nack.on_packet(packet_id, now, retransmit_of)

    def on_video_datagram(self, packet_id: int, datagram: bytes, now: float) -> list[bytes]:
        if not self._cfg.fec_enabled:
            return []
        return self.fec.add_datagram(packet_id, datagram, now)

    def on_parity(self, fec: rift_pb2.FecPacket, now: float) -> list[bytes]:
        # ParityShard.from_proto raises RemoteProtocolError(FEC_INVALID) on bad fields.
        return self.fec.add_parity(ParityShard.from_proto(fec), now)

    def on_chunk(self, chunk: rift_pb2.VideoChunk, now: float) -> None:
        self.reassembler.add_chunk(chunk, now)

    def poll(self, now: float) -> tuple[list[CompleteFrame], list[LostFrame]]:
        """Frames ready for presentation (in order, after playout delay) and frames lost."""
        lost: list[LostFrame] = []
        for item in self.reassembler.poll(now):
            if isinstance(item, CompleteFrame):
                self.last_complete_frame_id = item.frame_id
                # Smooth network jitter only: time the frame from when its encoding finished
                # (capture start + capture + encode durations), not from capture, so encode-time
                # variation (keyframes) is presented as soon as it arrives, not buffered.
                sent = (item.timestamp_us + item.capture_us + item.encode_us) / 1e6
                self.jitter.push(item, now, timestamp=sent)
            else:
                lost.append(item)
                for _ in range(min(item.frames, 1000)):
                    self.stats.on_frame_dropped()
        ready: list[CompleteFrame] = list(self.jitter.pop_ready(now))
        return ready, lost

    def retry_nacks(self, now: float) -> list[int]:
        return self.nack.poll(now) if self._cfg.nack_enabled else []

    def set_rtt(self, srtt: float) -> None:
        cfg = self._cfg
        deadline = min(
            cfg.reassembly_deadline_max,
            max(cfg.reassembly_deadline_min, cfg.reassembly_deadline_rtt_factor * srtt),
        )
        self.reassembler.set_deadline(deadline)
        # Re-ask for a packet once its retransmission is overdue: one RTT plus slack.
        self.nack.set_retry_interval(max(0.01, 1.25 * srtt + 0.005))

    def next_timer(self) -> float | None:
        times = [
            t
            for t in (
                self.reassembler.next_deadline(),
                self.jitter.next_release_time(),
                self.nack.next_timer() if self._cfg.nack_enabled else None,
            )
            if t is not None
        ]
        return min(times) if times else None

    def expire(self, now: float) -> None:
        self.fec.expire(now)
