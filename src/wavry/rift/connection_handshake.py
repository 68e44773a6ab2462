"""The Noise XX handshake of a :class:`~wavry.rift.connection.Connection`: MSG2 and MSG3
processing, restarts on a bad MSG2, transport keys, and MSG1/MSG3/Hello retransmission.

These are parts of the ``Connection`` state machine kept in their own module for size; they
read and write its private state, as its methods would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wavry.rift import events as ev
from wavry.rift.connection_types import Address, ConnectionState
from wavry.rift.errors import DropReason, RemoteProtocolError
from wavry.rift.header import (
    HANDSHAKE_HEADER_SIZE,
    TRANSPORT_HEADER_SIZE,
    HandshakeHeader,
    TransportHeader,
)
from wavry.rift.identity import make_identity_payload, verify_identity_payload
from wavry.rift.noise import NoiseXX
from wavry.rift.packet_crypto import PacketOpener, PacketSealer
from wavry.rift.proto import rift_pb2

if TYPE_CHECKING:
    from wavry.rift.connection import Connection


def on_handshake_datagram(
    conn: Connection, header: HandshakeHeader, data: bytes, addr: Address, now: float
) -> None:
    if header.session_id != conn._hsid or header.packet_id != 0:
        raise RemoteProtocolError(DropReason.UNKNOWN_HANDSHAKE)
    if not conn.is_client:
        # A repeated MSG1: our MSG2 was lost. Answer with the cached bytes (same keys).
        if data != conn._msg1:
            raise RemoteProtocolError(DropReason.DUPLICATE_HANDSHAKE)
        if conn.state is ConnectionState.HANDSHAKE:
            conn._raw_out.append(conn._msg2)
        return
    if conn.state is not ConnectionState.HANDSHAKE:
        raise RemoteProtocolError(DropReason.DUPLICATE_HANDSHAKE)
    try:
        payload = conn._noise.read_message(data[HANDSHAKE_HEADER_SIZE:])
        remote_static = conn._noise.remote_static
        assert remote_static is not None  # set by a successful MSG2
        peer = verify_identity_payload(payload, remote_static)
        if peer.session_alias == 0:
            raise RemoteProtocolError(DropReason.HANDSHAKE_FAILED, "host assigned no alias")
    except RemoteProtocolError:
        # A failed Noise state cannot be reused: start over with fresh keys and a new
        # handshake id, so one bad (or forged) MSG2 costs a round trip, not the session.
        restart_handshake(conn, now)
        raise
    if conn._expected_host_id is not None and peer.wavry_id != conn._expected_host_id:
        if addr in conn._candidates and len(conn._candidates) > 1:
            # Another host answered on one of the paths: forget that path, keep trying.
            conn._candidates.remove(addr)
            if conn.peer_addr == addr:
                conn.peer_addr = conn._candidates[0]
            restart_handshake(conn, now)
            raise RemoteProtocolError(
                DropReason.HANDSHAKE_FAILED, f"{addr} presented another host key"
            )
        conn._set_closed(
            rift_pb2.DISCONNECT_HOST_KEY_CHANGED,
            f"host identity changed: expected {conn._expected_host_id}, "
            f"got {peer.wavry_id}; refusing to connect",
            by_peer=False,
        )
        return
    conn.alias = peer.session_alias
    conn.peer_wavry_id = peer.wavry_id
    conn._last_rx = now
    if addr != conn.peer_addr:
        # The first path to answer wins (MSG2 is authenticated by the Noise handshake).
        old, conn.peer_addr = conn.peer_addr, addr
        conn._emit(ev.PeerAddressChanged(old, addr))
    conn._candidates = []
    conn._raw_extra = []
    own = make_identity_payload(conn._identity, conn._noise.static_public)
    conn._msg3 = TransportHeader(conn.alias, 0).encode() + conn._noise.write_message(own)
    conn._raw_out.append(conn._msg3)
    install_keys(conn, now)
    conn.state = ConnectionState.AWAIT_HELLO_ACK
    conn._emit(ev.HandshakeCompleted(peer.wavry_id, conn.alias))
    send_hello(conn)
    conn._retry_delay = conn.config.handshake_retry_initial
    conn._retry_at = now + conn._retry_delay


def on_msg3(conn: Connection, data: bytes, addr: Address, now: float) -> None:
    if conn.is_client or conn.state is not ConnectionState.HANDSHAKE:
        raise RemoteProtocolError(DropReason.DUPLICATE_HANDSHAKE)
    if conn._noise.failed:
        raise RemoteProtocolError(DropReason.HANDSHAKE_FAILED, "handshake already failed")
    try:
        payload = conn._noise.read_message(data[TRANSPORT_HEADER_SIZE:])
        remote_static = conn._noise.remote_static
        assert remote_static is not None
        peer = verify_identity_payload(payload, remote_static)
    except RemoteProtocolError:
        # The Noise state is spent: forget this attempt (the client starts a new one when
        # its Hello goes unanswered).
        conn._set_closed(rift_pb2.DISCONNECT_PROTOCOL_ERROR, "bad MSG3", by_peer=False)
        raise
    conn.peer_wavry_id = peer.wavry_id
    conn.peer_addr = addr
    conn._last_rx = now
    install_keys(conn, now)
    conn.state = ConnectionState.AWAIT_HELLO
    conn._emit(ev.HandshakeCompleted(peer.wavry_id, conn.alias))


def restart_handshake(conn: Connection, now: float) -> None:
    conn._noise = NoiseXX(initiator=True, static_private=conn._rng(32), rng=conn._rng)
    conn._hsid = bytes(4) + conn._rng(12)
    conn._msg1 = HandshakeHeader(conn._hsid, 0).encode() + conn._noise.write_message(b"")
    queue_msg1(conn)
    conn._retry_delay = (
        conn.config.punch_retry if len(conn._candidates) > 1
        else conn.config.handshake_retry_initial
    )  # fmt: skip
    conn._retry_at = now + conn._retry_delay


def install_keys(conn: Connection, now: float) -> None:
    send_key, recv_key = conn._noise.transport_keys()
    conn._sealer = PacketSealer(send_key, start_time=now, rekey_interval=conn.config.rekey_interval)
    conn._opener = PacketOpener(recv_key)


def send_hello(conn: Connection) -> None:
    assert conn._hello is not None
    conn._sender.queue_control(rift_pb2.ControlMessage(hello=conn._hello))


def queue_msg1(conn: Connection) -> None:
    conn._raw_out.append(conn._msg1)
    conn._raw_extra.extend((conn._msg1, a) for a in conn._candidates if a != conn.peer_addr)


def retransmit_handshake(conn: Connection, now: float) -> None:
    if conn.state is ConnectionState.HANDSHAKE and conn.is_client:
        queue_msg1(conn)
    elif conn.state is ConnectionState.AWAIT_HELLO_ACK:
        # MSG3 or the Hello (or the HelloAck) was lost: resend both; the Hello gets a new id.
        conn._raw_out.append(conn._msg3)
        send_hello(conn)
    else:
        conn._retry_at = None
        return
    conn._retry_delay = min(conn._retry_delay * 2, conn.config.handshake_retry_max)
    conn._retry_at = now + conn._retry_delay
