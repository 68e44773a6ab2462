"""One RIFT session between a host and a client, as a sans-IO state machine.

Pull API (aioquic/h11 style)::

    conn.receive_datagram(data, addr, now)      # feed what the socket received
    for data, addr in conn.datagrams_to_send(now): sock.sendto(data, addr)
    while (event := conn.next_event()) is not None: ...
    timer = conn.get_timer(); ... conn.handle_timer(now)

States::

    client: HANDSHAKE --MSG2--> AWAIT_HELLO_ACK --HelloAck--> ESTABLISHED
    host:   HANDSHAKE --MSG3--> AWAIT_HELLO     --Hello-->    ESTABLISHED
    any:    --close/Disconnect/idle/timeout--> CLOSED

Network input never raises: every bad datagram is dropped and counted under a ``DropReason``.
The wire format, handshake transcript and key schedule are specified in docs/protocol.md.
"""

from __future__ import annotations

import os
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Sequence

from google.protobuf.message import DecodeError

from wavry.rift import connection_control, connection_handshake, connection_hello
from wavry.rift import events as ev
from wavry.rift.config import PROTOCOL_VERSION, HostOffer, RiftConfig
from wavry.rift.connection_types import (
    Address,
    Admission,
    ConnectionState,
    ConnectionStats,
    RandomBytes,
)
from wavry.rift.delta import DeltaController
from wavry.rift.errors import DropReason, LocalProtocolError, RemoteProtocolError
from wavry.rift.header import HANDSHAKE_HEADER_SIZE, HandshakeHeader, TransportHeader, parse_header
from wavry.rift.identity import Identity, make_identity_payload
from wavry.rift.media_receive import MediaReceiver
from wavry.rift.media_send import MediaSender
from wavry.rift.negotiation import SessionParams
from wavry.rift.noise import NoiseXX
from wavry.rift.packet_crypto import PacketOpener, PacketSealer
from wavry.rift.proto import rift_pb2
from wavry.rift.replay import ReplayWindow
from wavry.rift.trust import AllowList

__all__ = ["Admission", "Connection", "ConnectionState", "ConnectionStats"]

#: A client tries at most this many paths at once (the host's candidates plus a relay).
MAX_PATH_CANDIDATES = 24
# Ids of recently delivered input/control packets, to apply a retransmission at most once.
_DELIVERED_MEMORY = 4096


class Connection:
    """A RIFT session. Build with :meth:`client` or (through ``HostEndpoint``) :meth:`accept`."""

    def __init__(
        self,
        *,
        is_client: bool,
        identity: Identity,
        peer_addr: Address,
        now: float,
        config: RiftConfig,
        rng: RandomBytes,
    ) -> None:
        self.is_client = is_client
        self.config = config
        self.state = ConnectionState.HANDSHAKE
        self.peer_addr = peer_addr
        self.peer_wavry_id: str | None = None
        self.params: SessionParams | None = None
        self.alias = 0
        self._identity = identity
        self._rng = rng
        self._noise = NoiseXX(initiator=is_client, static_private=rng(32), rng=rng)
        self._hsid = b""
        self._sealer: PacketSealer | None = None
        self._opener: PacketOpener | None = None
        self._replay = ReplayWindow(128)
        self._raw_out: list[bytes] = []  # handshake datagrams (not sealed)
        self._delivered: OrderedDict[int, None] = OrderedDict()
        self._events: deque[ev.Event] = deque()
        self._drops: Counter[DropReason] = Counter()
        self._created = now
        self._last_rx = now
        self._retry_at: float | None = None
        self._retry_delay = config.handshake_retry_initial
        self._msg1 = b""
        #: client only, until MSG2: every address MSG1 goes to (the first is ``peer_addr``)
        self._candidates: list[Address] = []
        self._raw_extra: list[tuple[bytes, Address]] = []  # MSG1 copies to other candidates
        self._msg2 = b""
        self._msg3 = b""
        self._hello: rift_pb2.Hello | None = None
        self._expected_host_id: str | None = None
        self._offer = HostOffer()
        self._allow_list: AllowList | None = None
        self._approval_mode = False
        self._pending_hello: rift_pb2.Hello | None = None
        self._admission: Admission | None = None
        self._hello_ack: rift_pb2.HelloAck | None = None
        self._close_at: float | None = None
        self._next_ping: float | None = None
        self._next_stats: float | None = None
        self._srtt: float | None = None
        self._last_kf_request = -1.0
        self._sender = MediaSender(config, bitrate_kbps=self._offer.bitrate_kbps, now=now)
        self._receiver = MediaReceiver(config)
        self._delta: DeltaController | None = None
        self._target_kbps = self._offer.bitrate_kbps
        self._fec_ratio = config.fec_ratio
        self._fps = self._offer.fps
        self._frames_received = 0
        self._frames_lost = 0
        self._packets_received = 0
        self._lost_total = 0
        self._expected_total = 0
        self._keyframe_requests = 0

    # ------------------------------------------------------------------ construction
    @classmethod
    def client(
        cls,
        *,
        identity: Identity,
        peer_addr: Address,
        hello: rift_pb2.Hello,
        now: float,
        config: RiftConfig | None = None,
        expected_host_id: str | None = None,
        candidates: Sequence[Address] = (),
        rng: RandomBytes = os.urandom,
    ) -> Connection:
        """Start a client session: queues MSG1 at once.

        ``expected_host_id`` pins the host's Wavry ID (from known-hosts); ``None`` is trust on
        first use: the application records ``HandshakeCompleted.peer_wavry_id``.

        ``candidates`` are further addresses of the same host (hole punching: LAN, reflexive,
        relay). MSG1 goes to every one of them, retransmitted on the punching schedule
        (``config.punch_retry``), and the first valid MSG2 picks the path: ``peer_addr``
        becomes its source. With candidates, a MSG2 from a host presenting another key drops
        that address and restarts the handshake on the others (a stranger on a LAN address must
        not end the attempt); it closes the connection only when no address is left.
        """
        conn = cls(
            is_client=True,
            identity=identity,
            peer_addr=peer_addr,
            now=now,
            config=config or RiftConfig(),
            rng=rng,
        )
        hello = rift_pb2.Hello.FromString(hello.SerializeToString())
        hello.protocol_version = PROTOCOL_VERSION
        conn._hello = hello
        conn._expected_host_id = expected_host_id
        conn._candidates = [peer_addr]
        for addr in candidates:
            if addr not in conn._candidates and len(conn._candidates) < MAX_PATH_CANDIDATES:
                conn._candidates.append(addr)
        if len(conn._candidates) > 1:
            conn._retry_delay = config.punch_retry if config else RiftConfig().punch_retry
        conn._hsid = bytes(4) + rng(12)
        conn._msg1 = HandshakeHeader(conn._hsid, 0).encode() + conn._noise.write_message(b"")
        connection_handshake.queue_msg1(conn)
        conn._retry_at = now + conn._retry_delay
        return conn

    @classmethod
    def accept(
        cls,
        *,
        identity: Identity,
        peer_addr: Address,
        handshake_id: bytes,
        msg1: bytes,
        alias: int,
        now: float,
        offer: HostOffer,
        config: RiftConfig | None = None,
        allow_list: AllowList | None = None,
        admission: Admission | None = None,
        approval_mode: bool = False,
        rng: RandomBytes = os.urandom,
    ) -> Connection:
        """Answer a client's MSG1 (the whole datagram). Raises ``RemoteProtocolError`` if bad."""
        conn = cls(
            is_client=False,
            identity=identity,
            peer_addr=peer_addr,
            now=now,
            config=config or RiftConfig(),
            rng=rng,
        )
        conn._offer = offer
        conn._target_kbps = offer.bitrate_kbps
        conn._allow_list = allow_list
        conn._approval_mode = approval_mode
        conn._admission = admission
        conn._hsid = handshake_id
        conn.alias = alias
        conn._noise.read_message(msg1[HANDSHAKE_HEADER_SIZE:])
        payload = make_identity_payload(identity, conn._noise.static_public, session_alias=alias)
        conn._msg1 = msg1
        conn._msg2 = HandshakeHeader(handshake_id, 0).encode() + conn._noise.write_message(payload)
        conn._raw_out.append(conn._msg2)
        return conn

    # ------------------------------------------------------------------ public API
    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        if self.state is ConnectionState.CLOSED:
            self._drops[DropReason.CLOSED] += 1
            return
        work = [(data, False)]
        while work:
            datagram, recovered = work.pop()
            try:
                work.extend((d, True) for d in self._receive_one(datagram, addr, now, recovered))
            except RemoteProtocolError as exc:
                self._drops[exc.reason] += 1
            except DecodeError:
                self._drops[DropReason.MALFORMED_MESSAGE] += 1
        connection_control.poll_media(self, now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        out = self._raw_out
        self._raw_out = []
        if self._sealer is not None and self.state is not ConnectionState.CLOSED:
            self._sender.drain(self._seal, now, out)
        sent = [(d, self.peer_addr) for d in out]
        if self._raw_extra:
            sent.extend(self._raw_extra)
            self._raw_extra = []
        return sent

    @property
    def path_candidates(self) -> list[Address]:
        """The addresses a client handshake still tries (empty once a path is chosen)."""
        return list(self._candidates) if self.state is ConnectionState.HANDSHAKE else []

    def add_candidates(self, addrs: Sequence[Address], now: float) -> list[Address]:
        """Try more addresses for the host while the handshake runs (e.g. a relay that became
        available after the direct paths had their chance). MSG1 goes to the new ones at once.
        Returns the addresses actually added (none after MSG2, duplicates or past the cap)."""
        if not self.is_client or self.state is not ConnectionState.HANDSHAKE:
            return []
        added = [a for a in dict.fromkeys(addrs) if a not in self._candidates]
        added = added[: max(0, MAX_PATH_CANDIDATES - len(self._candidates))]
        self._candidates.extend(added)
        self._raw_extra.extend((self._msg1, a) for a in added)
        if added and self._retry_at is not None:
            # New paths get the fast punching schedule, not the backed-off one.
            self._retry_delay = min(self._retry_delay, self.config.punch_retry)
            self._retry_at = min(self._retry_at, now + self._retry_delay)
        return added

    def next_event(self) -> ev.Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        if self.state is ConnectionState.CLOSED:
            return None
        times: list[float] = []
        if self.state is ConnectionState.ESTABLISHED:
            times.append(self._last_rx + self.config.idle_timeout)
        elif self.state is ConnectionState.HANDSHAKE:
            times.append(self._created + self.config.handshake_timeout)
        else:
            times.append(self._created + self.config.hello_timeout)
        for t in (self._retry_at, self._close_at, self._next_ping, self._next_stats):
            if t is not None:
                times.append(t)
        if self.state is ConnectionState.ESTABLISHED:
            for t in (self._receiver.next_timer(), self._sender.next_send_time()):
                if t is not None:
                    times.append(t)
        return min(times)

    def handle_timer(self, now: float) -> None:
        if self.state is ConnectionState.CLOSED:
            return
        if self._close_at is not None and now >= self._close_at:
            self._set_closed(rift_pb2.DISCONNECT_REJECTED, "refused", by_peer=False)
            return
        limit = self.config.handshake_timeout
        waiting = self.state in (ConnectionState.AWAIT_HELLO, ConnectionState.AWAIT_HELLO_ACK)
        if waiting:
            limit = self.config.hello_timeout
        if self.state is not ConnectionState.ESTABLISHED and now - self._created >= limit:
            what = "host" if self.is_client else "client"
            self._set_closed(
                rift_pb2.DISCONNECT_HANDSHAKE_TIMEOUT,
                f"no answer from the {what} within {limit:g} s (is it running and reachable?"
                " is UDP blocked?)",
                by_peer=False,
            )
            return
        # Before the session is established the handshake/hello limits above apply (a Hello
        # may wait minutes for a host user's approval while the host stays silent).
        established = self.state is ConnectionState.ESTABLISHED
        if established and now - self._last_rx >= self.config.idle_timeout:
            self.close(now, rift_pb2.DISCONNECT_IDLE_TIMEOUT, "peer silent", by_timeout=True)
            return
        if self._retry_at is not None and now >= self._retry_at:
            connection_handshake.retransmit_handshake(self, now)
        if self.state is ConnectionState.ESTABLISHED:
            connection_control.established_timers(self, now)

    def close(
        self,
        now: float,
        reason: rift_pb2.DisconnectReason = rift_pb2.DISCONNECT_NORMAL,
        message: str = "",
        *,
        by_timeout: bool = False,
    ) -> None:
        """Say goodbye (best effort) and stop. Idempotent."""
        if self.state is ConnectionState.CLOSED:
            return
        if self._sealer is not None:
            bye = rift_pb2.Disconnect(reason=reason, message=message[:200])
            self._sender.queue_control(rift_pb2.ControlMessage(disconnect=bye))
            self._sender.drain(self._seal, now, self._raw_out)
        self._set_closed(reason, message, by_peer=False)

    def send_video_frame(
        self,
        data: bytes,
        *,
        keyframe: bool,
        timestamp_us: int,
        now: float,
        capture_us: int = 0,
        encode_us: int = 0,
    ) -> int:
        self._require_established()
        return self._sender.queue_video_frame(
            data,
            keyframe=keyframe,
            timestamp_us=timestamp_us,
            capture_us=capture_us,
            encode_us=encode_us,
        )

    def send_audio(self, payload: bytes, *, timestamp_us: int, now: float) -> None:
        self._require_established()
        self._sender.queue_audio(payload, timestamp_us)

    def send_input(self, event: rift_pb2.InputMessage, now: float) -> None:
        self._require_established()
        self._sender.queue_input(event)

    def send_control(self, control: rift_pb2.ControlMessage, now: float) -> None:
        """Application-level control (monitor list, clipboard, file transfer, latency)."""
        self._require_established()
        self._sender.queue_control(control, store=True)

    def send_ping(self, now: float) -> None:
        """A ping now instead of at the next ``ping_interval``: shows the peer this side's new
        address at once after a NAT rebinding (the peer adopts it at the first authenticated
        packet, and a client that receives video sends little else)."""
        self._require_established()
        ping = rift_pb2.Ping(timestamp_us=int(now * 1_000_000))
        self._sender.queue_control(rift_pb2.ControlMessage(ping=ping))

    def request_keyframe(self, now: float) -> None:
        self._require_established()
        last = self._receiver.last_complete_frame_id
        req = rift_pb2.KeyframeRequest(last_complete_frame_id=last)
        self._sender.queue_control(rift_pb2.ControlMessage(keyframe_request=req))
        self._last_kf_request = now
        self._keyframe_requests += 1

    def approve(self, now: float) -> None:
        """Host side: the user approved a client that is not on the allow-list."""
        connection_hello.approve(self, now)

    def deny(self, now: float, message: str = "refused by the host's user") -> None:
        connection_hello.deny(self, now, message)

    @property
    def send_queue_length(self) -> int:
        """Messages queued but not yet sealed (media waiting on the pacer, mostly)."""
        return self._sender.pending

    @property
    def next_frame_id(self) -> int:
        return self._sender.next_frame_id

    @property
    def target_bitrate_kbps(self) -> int:
        """DELTA's whole send budget (media + FEC parity), kbit/s."""
        return self._target_kbps

    @property
    def encoder_bitrate_kbps(self) -> int:
        """What the video encoder should aim for: the budget less what FEC, retransmissions
        and packet headers measurably take of it."""
        return max(1, int(self._target_kbps * self._sender.efficiency))

    @property
    def target_fps(self) -> int:
        return self._fps

    @property
    def srtt(self) -> float | None:
        return self._srtt

    def stats(self) -> ConnectionStats:
        c = self._sender.counters
        return ConnectionStats(
            state=self.state.value,
            srtt_ms=None if self._srtt is None else self._srtt * 1000,
            packets_received=self._packets_received,
            packets_sent=c.packets_sent,
            bytes_sent=c.bytes_sent,
            retransmits_sent=c.retransmits_sent,
            fec_packets_sent=c.fec_packets_sent,
            fec_recovered=self._receiver.fec.recovered,
            frames_received=self._frames_received,
            frames_lost=self._frames_lost,
            target_bitrate_kbps=self._target_kbps,
            drops={reason.value: n for reason, n in self._drops.items()},
            packets_lost_before_fec=self._lost_total,
            packets_expected=self._expected_total,
            keyframe_requests=self._keyframe_requests,
        )

    @property
    def drops(self) -> Counter[DropReason]:
        return self._drops

    # ------------------------------------------------------------------ receive path
    def _receive_one(self, data: bytes, addr: Address, now: float, recovered: bool) -> list[bytes]:
        header, size = parse_header(data)
        if isinstance(header, HandshakeHeader):
            connection_handshake.on_handshake_datagram(self, header, data, addr, now)
            return []
        if header.session_alias != self.alias:
            raise RemoteProtocolError(DropReason.UNKNOWN_ALIAS)
        if header.packet_id == 0:
            connection_handshake.on_msg3(self, data, addr, now)
            return []
        opener = self._opener
        if opener is None:
            raise RemoteProtocolError(DropReason.WRONG_STATE, "no keys yet")
        pid = header.packet_id
        if not self._replay.check(pid):
            raise RemoteProtocolError(DropReason.REPLAY)
        highest = self._replay.highest
        plaintext = opener.open(data[:size], pid, data[size:])
        self._replay.update(pid)
        msg = rift_pb2.Message.FromString(plaintext)
        self._last_rx = now
        self._packets_received += 1
        if addr != self.peer_addr and (highest is None or pid > highest):
            # Accept a new address only from a fresh authenticated packet (NAT rebinding).
            old, self.peer_addr = self.peer_addr, addr
            self._emit(ev.PeerAddressChanged(old, addr))
        return self._dispatch(msg, pid, data, now, recovered)

    def _dispatch(
        self, msg: rift_pb2.Message, pid: int, data: bytes, now: float, recovered: bool
    ) -> list[bytes]:
        kind = msg.WhichOneof("content")
        established = self.state is ConnectionState.ESTABLISHED
        sender_us: int | None = None
        if kind == "media" and msg.media.WhichOneof("content") == "video":
            sender_us = msg.media.video.send_us or None
        if established:
            nacks = self._receiver.on_packet(
                pid,
                len(data),
                now,
                retransmit_of=msg.retransmit_of,
                sender_us=sender_us,
                recovered=recovered,
            )
            if nacks:
                nack = rift_pb2.Nack(packet_ids=nacks)
                self._sender.queue_control(rift_pb2.ControlMessage(nack=nack))
        if kind != "media":
            if pid in self._delivered or (
                msg.retransmit_of and not self._first_copy(msg.retransmit_of)
            ):
                raise RemoteProtocolError(DropReason.REPLAY, "already delivered")
            self._remember_delivered(pid)
        if kind == "control":
            self._on_control(msg.control, now)
            return []
        if not established:
            raise RemoteProtocolError(DropReason.WRONG_STATE, f"{kind} before the session")
        if kind == "input":
            self._emit(ev.InputReceived(msg.input))
            return []
        if kind == "media":
            return self._on_media(msg.media, pid, data, now, recovered)
        raise RemoteProtocolError(DropReason.MALFORMED_MESSAGE, "empty message")

    def _first_copy(self, original_id: int) -> bool:
        """Input and control must not be applied twice (a key press twice is two presses):
        a retransmission counts only if its original was not delivered, and then the
        original id is remembered so that, arriving late, it is dropped."""
        if original_id in self._delivered:
            return False
        self._remember_delivered(original_id)
        return True

    def _remember_delivered(self, packet_id: int) -> None:
        delivered = self._delivered
        delivered[packet_id] = None
        if len(delivered) > _DELIVERED_MEMORY:
            delivered.popitem(last=False)

    def _on_media(
        self, media: rift_pb2.MediaMessage, pid: int, data: bytes, now: float, recovered: bool
    ) -> list[bytes]:
        kind = media.WhichOneof("content")
        if kind == "video":
            rebuilt = [] if recovered else self._receiver.on_video_datagram(pid, data, now)
            self._receiver.on_chunk(media.video, now)
            return rebuilt
        if kind == "fec":
            return self._receiver.on_parity(media.fec, now)
        if kind == "audio":
            self._emit(ev.AudioReceived(media.audio.timestamp_us, media.audio.payload))
            return []
        if kind == "file_chunk":
            raise RemoteProtocolError(DropReason.UNEXPECTED_MESSAGE, "file transfer not enabled")
        raise RemoteProtocolError(DropReason.MALFORMED_MESSAGE, "empty media message")

    # ------------------------------------------------------------------ control
    def _on_control(self, control: rift_pb2.ControlMessage, now: float) -> None:
        kind = control.WhichOneof("content")
        handler = _CONTROL_HANDLERS.get(kind or "")
        if handler is not None:
            handler(self, control, now)
            return
        if self.state is not ConnectionState.ESTABLISHED:
            raise RemoteProtocolError(DropReason.WRONG_STATE, f"{kind} before the session")
        if kind is None:
            raise RemoteProtocolError(DropReason.MALFORMED_MESSAGE, "empty control message")
        self._emit(ev.ControlReceived(control))

    # ------------------------------------------------------------------ helpers
    def _seal(self, body: bytes, now: float) -> tuple[int, bytes]:
        sealer = self._sealer
        assert sealer is not None
        pid = sealer.next_packet_id(now)
        header = TransportHeader(self.alias, pid).encode()
        return pid, header + sealer.seal(header, pid, body)

    def _emit(self, event: ev.Event) -> None:
        if len(self._events) >= self.config.max_events:
            self._events.popleft()  # the application stopped reading; keep the newest
        self._events.append(event)

    def _set_closed(
        self, reason: rift_pb2.DisconnectReason, message: str, *, by_peer: bool
    ) -> None:
        if self.state is ConnectionState.CLOSED:
            return
        self.state = ConnectionState.CLOSED
        if self._admission is not None:
            self._admission.release(self.alias)
        self._emit(ev.ConnectionClosed(reason, message, by_peer))

    def _require_established(self) -> None:
        if self.state is not ConnectionState.ESTABLISHED:
            raise LocalProtocolError(f"connection is {self.state.value}, not established")


_CONTROL_HANDLERS: dict[str, Callable[[Connection, rift_pb2.ControlMessage, float], None]] = {
    "hello": connection_hello.on_hello,
    "hello_ack": connection_hello.on_hello_ack,
    "ping": connection_control.on_ping,
    "pong": connection_control.on_pong,
    "stats": connection_control.on_stats,
    "nack": connection_control.on_nack,
    "keyframe_request": connection_control.on_keyframe_request,
    "disconnect": connection_control.on_disconnect,
}
