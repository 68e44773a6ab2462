"""Hello/HelloAck negotiation of a :class:`~wavry.rift.connection.Connection`: the host's
policy (allow-list, approval by its user, admission) and negotiation, the client's handling of
the answer, and entering ``ESTABLISHED``.

These are parts of the ``Connection`` state machine kept in their own module for size; they
read and write its private state, as its methods would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wavry.rift import events as ev
from wavry.rift.connection_control import established_timers
from wavry.rift.connection_types import ConnectionState
from wavry.rift.delta import DeltaConfig, DeltaController
from wavry.rift.errors import DropReason, LocalProtocolError, RemoteProtocolError
from wavry.rift.negotiation import Rejection, SessionParams, hello_ack, negotiate
from wavry.rift.proto import rift_pb2

if TYPE_CHECKING:
    from wavry.rift.connection import Connection

_REJECT_LINGER = 2.0  # a refused connection answers repeated Hellos this long, then goes


def on_hello(conn: Connection, control: rift_pb2.ControlMessage, now: float) -> None:
    if conn.is_client:
        raise RemoteProtocolError(DropReason.UNEXPECTED_MESSAGE, "hello sent to a client")
    if conn._hello_ack is not None:  # duplicate Hello: our answer was lost
        conn._sender.queue_control(rift_pb2.ControlMessage(hello_ack=conn._hello_ack))
        return
    if conn._pending_hello is not None:
        return  # waiting for the host user's decision; the client keeps retrying
    result = decide(conn, control.hello)
    if result is None:
        conn._pending_hello = rift_pb2.Hello.FromString(control.hello.SerializeToString())
        conn._emit(ev.ApprovalRequired(conn.peer_wavry_id or ""))
        return
    answer_hello(conn, control.hello, result, now)


def approve(conn: Connection, now: float) -> None:
    """Host side: the user approved a client that is not on the allow-list."""
    hello = take_pending_hello(conn)
    result = decide(conn, hello, approved=True)
    assert result is not None
    answer_hello(conn, hello, result, now)


def deny(conn: Connection, now: float, message: str = "refused by the host's user") -> None:
    hello = take_pending_hello(conn)
    answer_hello(conn, hello, Rejection(rift_pb2.REJECT_NOT_AUTHORIZED, message), now)


def take_pending_hello(conn: Connection) -> rift_pb2.Hello:
    hello = conn._pending_hello
    if hello is None:
        raise LocalProtocolError("no client is waiting for approval on this connection")
    conn._pending_hello = None
    return hello


def answer_hello(
    conn: Connection, hello: rift_pb2.Hello, result: SessionParams | Rejection, now: float
) -> None:
    conn._hello_ack = hello_ack(result)
    if isinstance(result, Rejection):
        conn._sender.queue_control(rift_pb2.ControlMessage(hello_ack=conn._hello_ack))
        conn._close_at = now + _REJECT_LINGER
        return
    conn.params = result
    conn._hello_ack.session_id = conn._rng(16)
    conn._hello_ack.session_alias = conn.alias
    conn._sender.queue_control(rift_pb2.ControlMessage(hello_ack=conn._hello_ack))
    conn._target_kbps = result.bitrate_kbps
    conn._fps = result.fps
    ceiling = conn._offer.max_bitrate_kbps
    if hello.max_bitrate_kbps:
        ceiling = max(conn._offer.min_bitrate_kbps, min(ceiling, hello.max_bitrate_kbps))
    conn._delta = DeltaController(
        DeltaConfig(
            min_bitrate_kbps=min(conn._offer.min_bitrate_kbps, result.bitrate_kbps),
            max_bitrate_kbps=max(ceiling, result.bitrate_kbps),
        ),
        initial_bitrate_kbps=result.bitrate_kbps,
        initial_fps=result.fps,
        max_fps=result.fps,
    )
    conn._sender.set_rate(result.bitrate_kbps, conn.config.fec_ratio)
    establish(conn, now)


def decide(
    conn: Connection, hello: rift_pb2.Hello, *, approved: bool = False
) -> SessionParams | Rejection | None:
    """Policy, then negotiation. None = ask the host's user (approval mode)."""
    peer = conn.peer_wavry_id or ""
    allowed = approved or conn._allow_list is None or conn._allow_list.allows(peer)
    if not allowed and conn._approval_mode:
        return None
    if not allowed:
        return Rejection(
            rift_pb2.REJECT_NOT_AUTHORIZED,
            f"client {peer} is not paired with this host; on the host run "
            f"`wavry host --allow {peer}` to allow it",
        )
    result = negotiate(hello, conn._offer)
    if isinstance(result, Rejection):
        return result
    if conn._admission is not None and not conn._admission.try_admit(conn.alias):
        return Rejection(rift_pb2.REJECT_BUSY, "another client is connected to this host")
    return result


def on_hello_ack(conn: Connection, control: rift_pb2.ControlMessage, now: float) -> None:
    if not conn.is_client:
        raise RemoteProtocolError(DropReason.UNEXPECTED_MESSAGE, "hello_ack sent to a host")
    if conn.state is not ConnectionState.AWAIT_HELLO_ACK:
        return  # a duplicate answer to a retransmitted Hello
    ack = control.hello_ack
    if not ack.accepted:
        conn._emit(ev.SessionRejected(ack.reject_reason, ack.reject_message))
        conn._set_closed(rift_pb2.DISCONNECT_REJECTED, ack.reject_message, by_peer=True)
        return
    res = ack.stream_resolution
    conn.params = SessionParams(
        ack.selected_codec,
        res.width,
        res.height,
        ack.fps,
        ack.initial_bitrate_kbps,
        ack.keyframe_interval_ms,
    )
    conn._target_kbps = ack.initial_bitrate_kbps
    establish(conn, now)


def establish(conn: Connection, now: float) -> None:
    assert conn.params is not None and conn.peer_wavry_id is not None
    conn.state = ConnectionState.ESTABLISHED
    conn._retry_at = None
    conn._next_ping = now
    conn._next_stats = now + conn.config.stats_interval
    conn._emit(ev.SessionEstablished(conn.params, conn.peer_wavry_id))
    established_timers(conn, now)
