"""Control messages of an established :class:`~wavry.rift.connection.Connection` (ping/pong,
stats and DELTA, NACK, keyframe requests, disconnect), its periodic timers, and the delivery of
received frames (and keyframe requests for lost ones) to the application.

These are parts of the ``Connection`` state machine kept in their own module for size; they
read and write its private state, as its methods would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wavry.rift import events as ev
from wavry.rift.connection_types import ConnectionState
from wavry.rift.delta import DeltaSample
from wavry.rift.errors import DropReason, RemoteProtocolError
from wavry.rift.proto import rift_pb2

if TYPE_CHECKING:
    from wavry.rift.connection import Connection


def on_ping(conn: Connection, control: rift_pb2.ControlMessage, now: float) -> None:
    pong = rift_pb2.Pong(timestamp_us=control.ping.timestamp_us)
    conn._sender.queue_control(rift_pb2.ControlMessage(pong=pong))


def on_pong(conn: Connection, control: rift_pb2.ControlMessage, now: float) -> None:
    sample = now - control.pong.timestamp_us / 1_000_000
    if not 0 <= sample < 60:
        raise RemoteProtocolError(DropReason.MALFORMED_MESSAGE, "pong from the future")
    conn._srtt = sample if conn._srtt is None else 0.875 * conn._srtt + 0.125 * sample
    conn._receiver.set_rtt(conn._srtt)


def on_stats(conn: Connection, control: rift_pb2.ControlMessage, now: float) -> None:
    if conn._delta is None:
        return  # we send no media; nothing to adapt
    rtt_us = int(conn._srtt * 1_000_000) if conn._srtt is not None else None
    sample = DeltaSample.from_stats_report(control.stats, now=now, rtt_us=rtt_us)
    decision = conn._delta.on_sample(sample)
    if decision.changed:
        conn._target_kbps = decision.bitrate_kbps
        conn._fec_ratio = decision.fec_ratio
        conn._fps = decision.fps
        conn._sender.set_rate(decision.bitrate_kbps, decision.fec_ratio)
        conn._emit(ev.TargetBitrateChanged(decision.bitrate_kbps, decision.fps, decision.fec_ratio))


def on_nack(conn: Connection, control: rift_pb2.ControlMessage, now: float) -> None:
    conn._sender.on_nack(list(control.nack.packet_ids), now)


def on_keyframe_request(conn: Connection, control: rift_pb2.ControlMessage, now: float) -> None:
    last = control.keyframe_request.last_complete_frame_id
    conn._emit(ev.KeyframeRequested(last))


def on_disconnect(conn: Connection, control: rift_pb2.ControlMessage, now: float) -> None:
    d = control.disconnect
    conn._set_closed(d.reason, d.message[:200], by_peer=True)


def established_timers(conn: Connection, now: float) -> None:
    if conn._next_ping is not None and now >= conn._next_ping:
        ping = rift_pb2.Ping(timestamp_us=int(now * 1_000_000))
        conn._sender.queue_control(rift_pb2.ControlMessage(ping=ping))
        conn._next_ping = now + conn.config.ping_interval
    if conn._next_stats is not None and now >= conn._next_stats:
        send_stats(conn, now)
        conn._next_stats = now + conn.config.stats_interval
    nacks = conn._receiver.retry_nacks(now)
    if nacks:
        nack = rift_pb2.Nack(packet_ids=nacks)
        conn._sender.queue_control(rift_pb2.ControlMessage(nack=nack))
    conn._receiver.expire(now)
    poll_media(conn, now)


def send_stats(conn: Connection, now: float) -> None:
    snap = conn._receiver.stats.snapshot(now)
    conn._lost_total += snap.lost_packets + snap.fec_recovered
    conn._expected_total += snap.received_packets + snap.lost_packets
    if snap.received_packets == 0 and snap.lost_packets == 0:
        return
    report = snap.to_proto()
    if conn._srtt is not None:
        report.rtt_us = int(conn._srtt * 1_000_000)
    conn._sender.queue_control(rift_pb2.ControlMessage(stats=report))


def poll_media(conn: Connection, now: float) -> None:
    if conn.state is not ConnectionState.ESTABLISHED:
        return
    ready, lost = conn._receiver.poll(now)
    for f in ready:
        conn._frames_received += 1
        conn._emit(
            ev.VideoFrameReceived(
                f.frame_id,
                f.data,
                f.keyframe,
                f.timestamp_us,
                f.capture_us,
                f.encode_us,
                f.first_chunk_at,
                now,
            )
        )
    if lost:
        conn._frames_lost += len(lost)
        for lf in lost:
            conn._emit(ev.FrameLost(lf.frame_id, lf.reason))
        # "skipped" frames were dropped *because* a keyframe completed: no need to ask.
        needs_keyframe = any(lf.reason != "skipped" for lf in lost)
        interval = conn.config.keyframe_request_interval
        if needs_keyframe and now - conn._last_kf_request >= interval:
            conn.request_keyframe(now)
