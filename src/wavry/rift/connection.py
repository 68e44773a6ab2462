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

import enum
import os
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from wavry.rift import events as ev
from wavry.rift.config import PROTOCOL_VERSION, HostOffer, RiftConfig
from wavry.rift.delta import DeltaConfig, DeltaController, DeltaSample
from wavry.rift.errors import DropReason, LocalProtocolError, RemoteProtocolError
from wavry.rift.header import (
    HANDSHAKE_HEADER_SIZE,
    TRANSPORT_HEADER_SIZE,
    HandshakeHeader,
    TransportHeader,
    parse_header,
)
from wavry.rift.identity import Identity, make_identity_payload, verify_identity_payload
from wavry.rift.media_receive import MediaReceiver
from wavry.rift.media_send import MediaSender
from wavry.rift.negotiation import Rejection, SessionParams, hello_ack, negotiate
from wavry.rift.noise import NoiseXX
from wavry.rift.packet_crypto import PacketOpener, PacketSealer
from wavry.rift.proto import rift_pb2
from wavry.rift.replay import ReplayWindow
from wavry.rift.trust import AllowList

__all__ = ["Admission", "Connection", "ConnectionState", "ConnectionStats"]

Address = tuple[str, int]
RandomBytes = Callable[[int], bytes]

_REJECT_LINGER = 2.0
#: A client tries at most this many paths at once (the host's candidates plus a relay).
MAX_PATH_CANDIDATES = 24
# Ids of recently delivered input/control packets, to apply a retransmission at most once.
_DELIVERED_MEMORY = 4096  # a refused connection answers repeated Hellos this long, then goes


class ConnectionState(enum.Enum):
    HANDSHAKE = "handshake"
    AWAIT_HELLO = "await_hello"
    AWAIT_HELLO_ACK = "await_hello_ack"
    ESTABLISHED = "established"
    CLOSED = "closed"


class Admission:
    """How many sessions a host lets be active at once (one controlling client by default)."""

    def __init__(self, max_active: int = 1) -> None:
        self.max_active = max_active
        self._active: set[int] = set()

    def try_admit(self, key: int) -> bool:
        if key in self._active:
            return True
        if len(self._active) >= self.max_active:
            return False
        self._active.add(key)
        return True

    def release(self, key: int) -> None:
        self._active.discard(key)

    @property
    def active(self) -> int:
        return len(self._active)


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    state: str
    srtt_ms: float | None
    packets_received: int
    packets_sent: int
    bytes_sent: int
    retransmits_sent: int
    fec_packets_sent: int
    fec_recovered: int
    frames_received: int
    frames_lost: int
    target_bitrate_kbps: int
    drops: dict[str, int]
    #: media receiver's view: packets lost before / after FEC repair, keyframes asked for
    packets_lost_before_fec: int = 0
    packets_expected: int = 0
    keyframe_requests: int = 0


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
        conn._queue_msg1()
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
        self._poll_media(now)

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
            self._retransmit_handshake(now)
        if self.state is ConnectionState.ESTABLISHED:
            self._established_timers(now)

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

    def request_keyframe(self, now: float) -> None:
        self._require_established()
        last = self._receiver.last_complete_frame_id
        req = rift_pb2.KeyframeRequest(last_complete_frame_id=last)
        self._sender.queue_control(rift_pb2.ControlMessage(keyframe_request=req))
        self._last_kf_request = now
        self._keyframe_requests += 1

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
            self._on_handshake_datagram(header, data, addr, now)
            return []
        if header.session_alias != self.alias:
            raise RemoteProtocolError(DropReason.UNKNOWN_ALIAS)
        if header.packet_id == 0:
            self._on_msg3(data, addr, now)
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

    def _poll_media(self, now: float) -> None:
        if self.state is not ConnectionState.ESTABLISHED:
            return
        ready, lost = self._receiver.poll(now)
        for f in ready:
            self._frames_received += 1
            self._emit(
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
            self._frames_lost += len(lost)
            for lf in lost:
                self._emit(ev.FrameLost(lf.frame_id, lf.reason))
            # "skipped" frames were dropped *because* a keyframe completed: no need to ask.
            needs_keyframe = any(lf.reason != "skipped" for lf in lost)
            interval = self.config.keyframe_request_interval
            if needs_keyframe and now - self._last_kf_request >= interval:
                self.request_keyframe(now)

    # ------------------------------------------------------------------ handshake
    def _on_handshake_datagram(
        self, header: HandshakeHeader, data: bytes, addr: Address, now: float
    ) -> None:
        if header.session_id != self._hsid or header.packet_id != 0:
            raise RemoteProtocolError(DropReason.UNKNOWN_HANDSHAKE)
        if not self.is_client:
            # A repeated MSG1: our MSG2 was lost. Answer with the cached bytes (same keys).
            if data != self._msg1:
                raise RemoteProtocolError(DropReason.DUPLICATE_HANDSHAKE)
            if self.state is ConnectionState.HANDSHAKE:
                self._raw_out.append(self._msg2)
            return
        if self.state is not ConnectionState.HANDSHAKE:
            raise RemoteProtocolError(DropReason.DUPLICATE_HANDSHAKE)
        try:
            payload = self._noise.read_message(data[HANDSHAKE_HEADER_SIZE:])
            remote_static = self._noise.remote_static
            assert remote_static is not None  # set by a successful MSG2
            peer = verify_identity_payload(payload, remote_static)
            if peer.session_alias == 0:
                raise RemoteProtocolError(DropReason.HANDSHAKE_FAILED, "host assigned no alias")
        except RemoteProtocolError:
            # A failed Noise state cannot be reused: start over with fresh keys and a new
            # handshake id, so one bad (or forged) MSG2 costs a round trip, not the session.
            self._restart_handshake(now)
            raise
        if self._expected_host_id is not None and peer.wavry_id != self._expected_host_id:
            if addr in self._candidates and len(self._candidates) > 1:
                # Another host answered on one of the paths: forget that path, keep trying.
                self._candidates.remove(addr)
                if self.peer_addr == addr:
                    self.peer_addr = self._candidates[0]
                self._restart_handshake(now)
                raise RemoteProtocolError(
                    DropReason.HANDSHAKE_FAILED, f"{addr} presented another host key"
                )
            self._set_closed(
                rift_pb2.DISCONNECT_HOST_KEY_CHANGED,
                f"host identity changed: expected {self._expected_host_id}, "
                f"got {peer.wavry_id}; refusing to connect",
                by_peer=False,
            )
            return
        self.alias = peer.session_alias
        self.peer_wavry_id = peer.wavry_id
        self._last_rx = now
        if addr != self.peer_addr:
            # The first path to answer wins (MSG2 is authenticated by the Noise handshake).
            old, self.peer_addr = self.peer_addr, addr
            self._emit(ev.PeerAddressChanged(old, addr))
        self._candidates = []
        self._raw_extra = []
        own = make_identity_payload(self._identity, self._noise.static_public)
        self._msg3 = TransportHeader(self.alias, 0).encode() + self._noise.write_message(own)
        self._raw_out.append(self._msg3)
        self._install_keys(now)
        self.state = ConnectionState.AWAIT_HELLO_ACK
        self._emit(ev.HandshakeCompleted(peer.wavry_id, self.alias))
        self._send_hello()
        self._retry_delay = self.config.handshake_retry_initial
        self._retry_at = now + self._retry_delay

    def _on_msg3(self, data: bytes, addr: Address, now: float) -> None:
        if self.is_client or self.state is not ConnectionState.HANDSHAKE:
            raise RemoteProtocolError(DropReason.DUPLICATE_HANDSHAKE)
        if self._noise.failed:
            raise RemoteProtocolError(DropReason.HANDSHAKE_FAILED, "handshake already failed")
        try:
            payload = self._noise.read_message(data[TRANSPORT_HEADER_SIZE:])
            remote_static = self._noise.remote_static
            assert remote_static is not None
            peer = verify_identity_payload(payload, remote_static)
        except RemoteProtocolError:
            # The Noise state is spent: forget this attempt (the client starts a new one when
            # its Hello goes unanswered).
            self._set_closed(rift_pb2.DISCONNECT_PROTOCOL_ERROR, "bad MSG3", by_peer=False)
            raise
        self.peer_wavry_id = peer.wavry_id
        self.peer_addr = addr
        self._last_rx = now
        self._install_keys(now)
        self.state = ConnectionState.AWAIT_HELLO
        self._emit(ev.HandshakeCompleted(peer.wavry_id, self.alias))

    def _restart_handshake(self, now: float) -> None:
        self._noise = NoiseXX(initiator=True, static_private=self._rng(32), rng=self._rng)
        self._hsid = bytes(4) + self._rng(12)
        self._msg1 = HandshakeHeader(self._hsid, 0).encode() + self._noise.write_message(b"")
        self._queue_msg1()
        self._retry_delay = (
            self.config.punch_retry if len(self._candidates) > 1
            else self.config.handshake_retry_initial
        )  # fmt: skip
        self._retry_at = now + self._retry_delay

    def _install_keys(self, now: float) -> None:
        send_key, recv_key = self._noise.transport_keys()
        self._sealer = PacketSealer(
            send_key, start_time=now, rekey_interval=self.config.rekey_interval
        )
        self._opener = PacketOpener(recv_key)

    def _send_hello(self) -> None:
        assert self._hello is not None
        self._sender.queue_control(rift_pb2.ControlMessage(hello=self._hello))

    def _queue_msg1(self) -> None:
        self._raw_out.append(self._msg1)
        self._raw_extra.extend((self._msg1, a) for a in self._candidates if a != self.peer_addr)

    def _retransmit_handshake(self, now: float) -> None:
        if self.state is ConnectionState.HANDSHAKE and self.is_client:
            self._queue_msg1()
        elif self.state is ConnectionState.AWAIT_HELLO_ACK:
            # MSG3 or the Hello (or the HelloAck) was lost: resend both; the Hello gets a new id.
            self._raw_out.append(self._msg3)
            self._send_hello()
        else:
            self._retry_at = None
            return
        self._retry_delay = min(self._retry_delay * 2, self.config.handshake_retry_max)
        self._retry_at = now + self._retry_delay

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

    def _on_hello(self, control: rift_pb2.ControlMessage, now: float) -> None:
        if self.is_client:
            raise RemoteProtocolError(DropReason.UNEXPECTED_MESSAGE, "hello sent to a client")
        if self._hello_ack is not None:  # duplicate Hello: our answer was lost
            self._sender.queue_control(rift_pb2.ControlMessage(hello_ack=self._hello_ack))
            return
        if self._pending_hello is not None:
            return  # waiting for the host user's decision; the client keeps retrying
        result = self._decide(control.hello)
        if result is None:
            self._pending_hello = rift_pb2.Hello.FromString(control.hello.SerializeToString())
            self._emit(ev.ApprovalRequired(self.peer_wavry_id or ""))
            return
        self._answer_hello(control.hello, result, now)

    def approve(self, now: float) -> None:
        """Host side: the user approved a client that is not on the allow-list."""
        hello = self._take_pending_hello()
        result = self._decide(hello, approved=True)
        assert result is not None
        self._answer_hello(hello, result, now)

    def deny(self, now: float, message: str = "refused by the host's user") -> None:
        hello = self._take_pending_hello()
        self._answer_hello(hello, Rejection(rift_pb2.REJECT_NOT_AUTHORIZED, message), now)

    def _take_pending_hello(self) -> rift_pb2.Hello:
        hello = self._pending_hello
        if hello is None:
            raise LocalProtocolError("no client is waiting for approval on this connection")
        self._pending_hello = None
        return hello

    def _answer_hello(
        self, hello: rift_pb2.Hello, result: SessionParams | Rejection, now: float
    ) -> None:
        self._hello_ack = hello_ack(result)
        if isinstance(result, Rejection):
            self._sender.queue_control(rift_pb2.ControlMessage(hello_ack=self._hello_ack))
            self._close_at = now + _REJECT_LINGER
            return
        self.params = result
        self._hello_ack.session_id = self._rng(16)
        self._hello_ack.session_alias = self.alias
        self._sender.queue_control(rift_pb2.ControlMessage(hello_ack=self._hello_ack))
        self._target_kbps = result.bitrate_kbps
        self._fps = result.fps
        ceiling = self._offer.max_bitrate_kbps
        if hello.max_bitrate_kbps:
            ceiling = max(self._offer.min_bitrate_kbps, min(ceiling, hello.max_bitrate_kbps))
        self._delta = DeltaController(
            DeltaConfig(
                min_bitrate_kbps=min(self._offer.min_bitrate_kbps, result.bitrate_kbps),
                max_bitrate_kbps=max(ceiling, result.bitrate_kbps),
            ),
            initial_bitrate_kbps=result.bitrate_kbps,
            initial_fps=result.fps,
            max_fps=result.fps,
        )
        self._sender.set_rate(result.bitrate_kbps, self.config.fec_ratio)
        self._establish(now)

    def _decide(
        self, hello: rift_pb2.Hello, *, approved: bool = False
    ) -> SessionParams | Rejection | None:
        """Policy, then negotiation. None = ask the host's user (approval mode)."""
        peer = self.peer_wavry_id or ""
        allowed = approved or self._allow_list is None or self._allow_list.allows(peer)
        if not allowed and self._approval_mode:
            return None
        if not allowed:
            return Rejection(
                rift_pb2.REJECT_NOT_AUTHORIZED,
                f"client {peer} is not paired with this host; on the host run "
                f"`wavry host --allow {peer}` to allow it",
            )
        result = negotiate(hello, self._offer)
        if isinstance(result, Rejection):
            return result
        if self._admission is not None and not self._admission.try_admit(self.alias):
            return Rejection(rift_pb2.REJECT_BUSY, "another client is connected to this host")
        return result

    def _on_hello_ack(self, control: rift_pb2.ControlMessage, now: float) -> None:
        if not self.is_client:
            raise RemoteProtocolError(DropReason.UNEXPECTED_MESSAGE, "hello_ack sent to a host")
        if self.state is not ConnectionState.AWAIT_HELLO_ACK:
            return  # a duplicate answer to a retransmitted Hello
        ack = control.hello_ack
        if not ack.accepted:
            self._emit(ev.SessionRejected(ack.reject_reason, ack.reject_message))
            self._set_closed(rift_pb2.DISCONNECT_REJECTED, ack.reject_message, by_peer=True)
            return
        res = ack.stream_resolution
        self.params = SessionParams(
            ack.selected_codec,
            res.width,
            res.height,
            ack.fps,
            ack.initial_bitrate_kbps,
            ack.keyframe_interval_ms,
        )
        self._target_kbps = ack.initial_bitrate_kbps
        self._establish(now)

    def _establish(self, now: float) -> None:
        assert self.params is not None and self.peer_wavry_id is not None
        self.state = ConnectionState.ESTABLISHED
        self._retry_at = None
        self._next_ping = now
        self._next_stats = now + self.config.stats_interval
        self._emit(ev.SessionEstablished(self.params, self.peer_wavry_id))
        self._established_timers(now)

    def _on_ping(self, control: rift_pb2.ControlMessage, now: float) -> None:
        pong = rift_pb2.Pong(timestamp_us=control.ping.timestamp_us)
        self._sender.queue_control(rift_pb2.ControlMessage(pong=pong))

    def _on_pong(self, control: rift_pb2.ControlMessage, now: float) -> None:
        sample = now - control.pong.timestamp_us / 1_000_000
        if not 0 <= sample < 60:
            raise RemoteProtocolError(DropReason.MALFORMED_MESSAGE, "pong from the future")
        self._srtt = sample if self._srtt is None else 0.875 * self._srtt + 0.125 * sample
        self._receiver.set_rtt(self._srtt)

    def _on_stats(self, control: rift_pb2.ControlMessage, now: float) -> None:
        if self._delta is None:
            return  # we send no media; nothing to adapt
        rtt_us = int(self._srtt * 1_000_000) if self._srtt is not None else None
        sample = DeltaSample.from_stats_report(control.stats, now=now, rtt_us=rtt_us)
        decision = self._delta.on_sample(sample)
        if decision.changed:
            self._target_kbps = decision.bitrate_kbps
            self._fec_ratio = decision.fec_ratio
            self._fps = decision.fps
            self._sender.set_rate(decision.bitrate_kbps, decision.fec_ratio)
            self._emit(
                ev.TargetBitrateChanged(decision.bitrate_kbps, decision.fps, decision.fec_ratio)
            )

    def _on_nack(self, control: rift_pb2.ControlMessage, now: float) -> None:
        self._sender.on_nack(list(control.nack.packet_ids), now)

    def _on_keyframe_request(self, control: rift_pb2.ControlMessage, now: float) -> None:
        last = control.keyframe_request.last_complete_frame_id
        self._emit(ev.KeyframeRequested(last))

    def _on_disconnect(self, control: rift_pb2.ControlMessage, now: float) -> None:
        d = control.disconnect
        self._set_closed(d.reason, d.message[:200], by_peer=True)

    # ------------------------------------------------------------------ timers, helpers
    def _established_timers(self, now: float) -> None:
        if self._next_ping is not None and now >= self._next_ping:
            ping = rift_pb2.Ping(timestamp_us=int(now * 1_000_000))
            self._sender.queue_control(rift_pb2.ControlMessage(ping=ping))
            self._next_ping = now + self.config.ping_interval
        if self._next_stats is not None and now >= self._next_stats:
            self._send_stats(now)
            self._next_stats = now + self.config.stats_interval
        nacks = self._receiver.retry_nacks(now)
        if nacks:
            nack = rift_pb2.Nack(packet_ids=nacks)
            self._sender.queue_control(rift_pb2.ControlMessage(nack=nack))
        self._receiver.expire(now)
        self._poll_media(now)

    def _send_stats(self, now: float) -> None:
        snap = self._receiver.stats.snapshot(now)
        self._lost_total += snap.lost_packets + snap.fec_recovered
        self._expected_total += snap.received_packets + snap.lost_packets
        if snap.received_packets == 0 and snap.lost_packets == 0:
            return
        report = snap.to_proto()
        if self._srtt is not None:
            report.rtt_us = int(self._srtt * 1_000_000)
        self._sender.queue_control(rift_pb2.ControlMessage(stats=report))

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
    "hello": Connection._on_hello,
    "hello_ack": Connection._on_hello_ack,
    "ping": Connection._on_ping,
    "pong": Connection._on_pong,
    "stats": Connection._on_stats,
    "nack": Connection._on_nack,
    "keyframe_request": Connection._on_keyframe_request,
    "disconnect": Connection._on_disconnect,
}
