"""Fuzz targets of the RIFT core (``wavry.rift``): everything a datagram from the network reaches.

Seeds are real protocol output made here with fixed keys, so mutations start from inputs that pass
the outer checks (CRC, AEAD, protobuf) and reach the logic behind them.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from google.protobuf.message import DecodeError

from tools.fuzz_smoke.engine import Harness, Target

if TYPE_CHECKING:
    from wavry.rift.host_endpoint import HostEndpoint
    from wavry.rift.proto import rift_pb2

_HOST = ("127.0.0.1", 4444)
_CLIENT = ("127.0.0.1", 50000)
_RIFT_TOKENS = (b"RI", b"RI\x00\x01", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff")


def _rng(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


# -- physical header ------------------------------------------------------------------------------


def _header() -> Harness:
    from wavry.rift.errors import RemoteProtocolError
    from wavry.rift.header import HandshakeHeader, TransportHeader, parse_header

    seeds = [
        HandshakeHeader(bytes(4) + bytes(range(12)), 0).encode() + b"\x11" * 32,
        HandshakeHeader(bytes(4) + b"\xff" * 12, 2**64 - 1).encode(),
        TransportHeader(7, 1).encode() + b"payload",
        TransportHeader(0xFFFFFFFF, 2**40).encode() + bytes(1200),
        TransportHeader(1, 0).encode() + bytes(64),
    ]

    def call(data: bytes) -> None:
        header, size = parse_header(data)
        assert header.encode() == data[:size], "parse_header/encode do not round-trip"

    return Harness(seeds, call, (RemoteProtocolError,), 2100, _RIFT_TOKENS)


# -- AEAD open path -------------------------------------------------------------------------------


def _packet_open() -> Harness:
    from wavry.rift.errors import RemoteProtocolError
    from wavry.rift.header import TransportHeader, parse_header
    from wavry.rift.packet_crypto import PacketOpener, PacketSealer

    key = bytes(range(32))
    sealer = PacketSealer(key, start_time=0.0, epoch_bits=8)
    seeds = []
    for now in (0.0, 0.0, 0.0, 1.0):
        pid = sealer.next_packet_id(now)
        header = TransportHeader(9, pid).encode()
        seeds.append(header + sealer.seal(header, pid, b"plaintext %d" % pid * 3))
    # a packet of the next key epochs (epoch_bits=8 makes them reachable)
    for _ in range(300):
        pid = sealer.next_packet_id(2.0)
    header = TransportHeader(9, pid).encode()
    seeds.append(header + sealer.seal(header, pid, b"epoch"))
    opener = PacketOpener(key, epoch_bits=8)

    def call(data: bytes) -> None:
        header, size = parse_header(data)
        if isinstance(header, TransportHeader):
            opener.open(data[:size], header.packet_id, data[size:])

    return Harness(seeds, call, (RemoteProtocolError,), 1600, _RIFT_TOKENS)


# -- Noise XX handshake messages and the identity payload -----------------------------------------


def _noise() -> Harness:
    from wavry.rift.errors import RemoteProtocolError
    from wavry.rift.identity import Identity, make_identity_payload, verify_identity_payload
    from wavry.rift.noise import NoiseXX

    host_id, client_id = Identity.from_seed(b"h" * 32), Identity.from_seed(b"c" * 32)
    s_i, e_i, s_r, e_r = (bytes([n]) * 32 for n in (1, 2, 3, 4))

    def initiator() -> NoiseXX:
        return NoiseXX(initiator=True, static_private=s_i, ephemeral_private=e_i)

    def responder() -> NoiseXX:
        return NoiseXX(initiator=False, static_private=s_r, ephemeral_private=e_r)

    ini, resp = initiator(), responder()
    msg1 = ini.write_message(b"")
    resp.read_message(msg1)
    msg2 = resp.write_message(make_identity_payload(host_id, resp.static_public, session_alias=5))
    ini.read_message(msg2)
    msg3 = ini.write_message(make_identity_payload(client_id, ini.static_public))
    seeds = [b"\x00" + msg1, b"\x01" + msg2, b"\x02" + msg3, b"\x00" + bytes(32)]

    def call(data: bytes) -> None:
        if not data:
            return
        which, message = data[0] % 3, data[1:]
        if which == 0:  # host reads MSG1
            responder().read_message(message)
            return
        if which == 1:  # client reads MSG2 and checks the host's identity binding
            side = initiator()
            side.write_message(b"")
        else:  # host reads MSG3 and checks the client's identity binding
            side = responder()
            side.read_message(msg1)
            side.write_message(b"")
        payload = side.read_message(message)
        remote = side.remote_static
        assert remote is not None, "a successful read left no remote static key"
        verify_identity_payload(payload, remote)

    return Harness(seeds, call, (RemoteProtocolError,), 400)


def _identity_payload() -> Harness:
    from wavry.rift.errors import IdentityError
    from wavry.rift.identity import (
        Identity,
        InvalidWavryIdError,
        make_identity_payload,
        public_key_from_wavry_id,
        verify_identity_payload,
    )

    ident = Identity.from_seed(b"i" * 32)
    static = bytes(range(32))
    seeds = [
        make_identity_payload(ident, static, session_alias=77),
        make_identity_payload(ident, static),
        b"\x01" + ident.wavry_id.encode(),  # the text form goes through the Wavry ID decoder
    ]

    def call(data: bytes) -> None:
        if data[:1] == b"\x01":
            public_key_from_wavry_id(data[1:].decode("utf-8", "replace"))
            return
        verify_identity_payload(data, static)

    return Harness(seeds, call, (IdentityError, InvalidWavryIdError), 400)


# -- protobuf messages: top-level decode, negotiation, statistics ---------------------------------


def _seed_messages() -> list[rift_pb2.Message]:
    from wavry.rift.proto import rift_pb2 as pb

    hello = pb.Hello(
        client_name="fuzz",
        supported_codecs=[pb.H264, pb.HEVC],
        max_resolution=pb.Resolution(width=1920, height=1080),
        max_fps=60,
        protocol_version=1,
        max_bitrate_kbps=8000,
        keyframe_interval_ms=2000,
    )
    controls = [
        pb.ControlMessage(hello=hello),
        pb.ControlMessage(
            hello_ack=pb.HelloAck(
                accepted=True,
                selected_codec=pb.H264,
                stream_resolution=pb.Resolution(width=1280, height=720),
                fps=60,
                session_alias=7,
            )
        ),
        pb.ControlMessage(ping=pb.Ping(timestamp_us=123456)),
        pb.ControlMessage(pong=pb.Pong(timestamp_us=123456)),
        pb.ControlMessage(
            stats=pb.StatsReport(
                period_ms=50,
                received_packets=100,
                lost_packets=3,
                rtt_us=20_000,
                jitter_us=500,
                queue_delay_us=1000,
                received_bytes=120_000,
                fec_recovered=2,
                frames_dropped=1,
            )
        ),
        pb.ControlMessage(nack=pb.Nack(packet_ids=[3, 4, 9, 2**40])),
        pb.ControlMessage(keyframe_request=pb.KeyframeRequest(last_complete_frame_id=4)),
        pb.ControlMessage(clipboard=pb.ClipboardMessage(text="hello")),
        pb.ControlMessage(congestion=pb.CongestionControl(target_bitrate_kbps=5000, target_fps=30)),
        pb.ControlMessage(disconnect=pb.Disconnect(reason=pb.DISCONNECT_NORMAL, message="bye")),
    ]
    inputs = [
        pb.InputMessage(timestamp_us=5, key=pb.Key(keycode=0x04, pressed=True)),
        pb.InputMessage(mouse_move=pb.MouseMove(x=0.5, y=0.25)),
        pb.InputMessage(
            gamepad=pb.Gamepad(
                gamepad_id=1,
                axes=[pb.GamepadAxis(axis=0, value=0.5)],
                buttons=[pb.GamepadButton(button=1, pressed=True)],
            )
        ),
    ]
    media = [
        pb.MediaMessage(
            video=pb.VideoChunk(
                frame_id=1,
                chunk_index=0,
                chunk_count=2,
                timestamp_us=1000,
                keyframe=True,
                payload=b"\x00\x00\x00\x01\x65" + bytes(40),
                send_us=77,
            )
        ),
        pb.MediaMessage(
            fec=pb.FecPacket(
                group_id=1,
                first_packet_id=10,
                shard_count=3,
                parity_index=0,
                payload=bytes(60),
                shard_lengths=[60, 40, 20],
                packet_ids=[0, 1, 2],
                parity_count=1,
                scheme=pb.FEC_XOR,
            )
        ),
        pb.MediaMessage(audio=pb.AudioPacket(timestamp_us=9, payload=b"opus")),
    ]
    msgs = [pb.Message(control=c) for c in controls]
    msgs += [pb.Message(input=i) for i in inputs]
    msgs += [pb.Message(media=m) for m in media]
    msgs.append(pb.Message(control=controls[2], retransmit_of=5))
    return msgs


def _message_seeds() -> list[bytes]:
    return [m.SerializeToString() for m in _seed_messages()]


def _proto() -> Harness:
    from wavry.rift.config import HostOffer
    from wavry.rift.delta import DeltaSample
    from wavry.rift.negotiation import negotiate
    from wavry.rift.proto import rift_pb2

    offer = HostOffer()

    def call(data: bytes) -> None:
        msg = rift_pb2.Message.FromString(data)
        if msg.WhichOneof("content") != "control":
            return
        control = msg.control
        kind = control.WhichOneof("content")
        if kind == "hello":
            negotiate(control.hello, offer)
        elif kind == "stats":
            DeltaSample.from_stats_report(control.stats, now=1.0)
            DeltaSample.from_stats_report(control.stats, now=1.0, rtt_us=1000)

    return Harness(_message_seeds(), call, (DecodeError,), 1400)


# -- media: chunk reassembly and FEC parity ------------------------------------------------------


def _media() -> Harness:
    from wavry.rift.errors import RemoteProtocolError
    from wavry.rift.media.fec import FecDecoder, ParityShard
    from wavry.rift.media.reassembly import FrameReassembler
    from wavry.rift.proto import rift_pb2

    seeds = [m.media.SerializeToString() for m in _seed_messages() if m.HasField("media")]
    state = {"now": 0.0, "n": 0}
    reassembler = FrameReassembler()
    fec = FecDecoder()

    def call(data: bytes) -> None:
        state["now"] += 0.002
        state["n"] += 1
        now = state["now"]
        media = rift_pb2.MediaMessage.FromString(data)
        kind = media.WhichOneof("content")
        try:
            if kind == "video":
                reassembler.add_chunk(media.video, now)
                # the FEC seed's group covers packets 10..12
                fec.add_datagram(10 + int(state["n"]) % 3, data, now)
            elif kind == "fec":
                fec.add_parity(ParityShard.from_proto(media.fec), now)
        finally:
            reassembler.poll(now)
            fec.expire(now)

    return Harness(seeds, call, (DecodeError, RemoteProtocolError), 1400)


# -- whole receive paths: host endpoint and an established session --------------------------------


def _host_endpoint() -> Harness:
    from wavry.rift.connection import Connection
    from wavry.rift.crc import crc16_kermit
    from wavry.rift.host_endpoint import HostEndpoint
    from wavry.rift.identity import Identity
    from wavry.rift.proto import rift_pb2

    def endpoint() -> HostEndpoint:
        return HostEndpoint(identity=Identity.from_seed(b"e" * 32), rng=_rng(7))

    client = Connection.client(
        identity=Identity.from_seed(b"f" * 32),
        peer_addr=_HOST,
        hello=rift_pb2.Hello(),
        now=0.0,
        rng=_rng(8),
    )
    msg1 = client.datagrams_to_send(0.0)[0][0]
    seeds = [msg1, msg1[:30] + bytes(32), msg1[:4] + b"\x00\x00\x00\x07" + msg1[8:18] + b"x" * 50]
    current: list[HostEndpoint] = [endpoint()]
    calls = [0]

    def call(data: bytes) -> None:
        calls[0] += 1
        if len(data) >= 30 and data[-1] & 1:
            # Half the inputs get a correct CRC (and a fresh handshake id), so mutations reach
            # the handshake code behind the header check instead of dying at BAD_CRC.
            hsid = hashlib.blake2b(data, digest_size=12).digest()
            body = data[:4] + bytes(4) + hsid + data[20:28]
            data = body + crc16_kermit(body).to_bytes(2, "big") + data[30:]
        if calls[0] % 48 == 0:  # stay under max_connections so new handshakes keep going deep
            current[0] = endpoint()
        ep, now = current[0], 0.01 * calls[0]
        ep.receive_datagram(data, _CLIENT, now)
        ep.datagrams_to_send(now)
        while ep.next_event() is not None:
            pass

    return Harness(seeds, call, (), 2100, _RIFT_TOKENS)


class _SessionPair:
    """An established client/host pair; rebuilt when a fuzzed message closed either side."""

    def __init__(self) -> None:
        self.now = 1.0
        self._build()

    def _build(self) -> None:
        from wavry.bench.rift_bench import established_pair

        self.client, self.host = established_pair()

    def ensure_open(self) -> None:
        from wavry.rift.connection import ConnectionState

        if (
            self.client.state is not ConnectionState.ESTABLISHED
            or self.host.state is not ConnectionState.ESTABLISHED
        ):
            self._build()

    def exchange(self) -> None:
        """Deliver real traffic both ways (keeps the session alive) and drop events."""
        for data, _ in self.host.datagrams_to_send(self.now):
            self.client.receive_datagram(data, _HOST, self.now)
        for data, _ in self.client.datagrams_to_send(self.now):
            self.host.receive_datagram(data, _CLIENT, self.now)
        for conn in (self.client, self.host):
            timer = conn.get_timer()
            if timer is not None and timer <= self.now:
                conn.handle_timer(self.now)
            while conn.next_event() is not None:
                pass


def _session_raw() -> Harness:
    """Raw datagrams into both sides of a live session (mutations of real sealed traffic)."""
    from wavry.rift.proto import rift_pb2

    pair = _SessionPair()
    pair.host.send_video_frame(b"k" * 3000, keyframe=True, timestamp_us=1, now=1.0)
    pair.host.send_control(
        rift_pb2.ControlMessage(clipboard=rift_pb2.ClipboardMessage(text="x")), 1.0
    )
    seeds = [d for d, _ in pair.host.datagrams_to_send(1.0)]
    pair.client.send_input(rift_pb2.InputMessage(key=rift_pb2.Key(keycode=4)), 1.0)
    seeds += [d for d, _ in pair.client.datagrams_to_send(1.0)]

    def call(data: bytes) -> None:
        pair.now += 0.001
        pair.ensure_open()
        pair.client.receive_datagram(data, _HOST, pair.now)
        pair.host.receive_datagram(data, _CLIENT, pair.now)
        pair.exchange()

    return Harness(seeds, call, (), 1600, _RIFT_TOKENS)


def _session_sealed() -> Harness:
    """Mutated *plaintexts*, sealed with the session's real keys: the fuzz reaches the protobuf
    decode and every message handler behind the AEAD (control, input, video, FEC, audio)."""
    pair = _SessionPair()
    state = {"n": 0}

    def call(data: bytes) -> None:
        state["n"] += 1
        pair.now += 0.001
        pair.ensure_open()
        sender, receiver, addr = (
            (pair.client, pair.host, _CLIENT) if state["n"] % 2 else (pair.host, pair.client, _HOST)
        )
        # a private method on purpose: the fuzz needs datagrams that pass the AEAD
        _, datagram = sender._seal(data, pair.now)
        receiver.receive_datagram(datagram, addr, pair.now)
        pair.exchange()

    return Harness(_message_seeds(), call, (), 1300)


def _trust_files() -> Harness:
    from wavry.rift.identity import Identity
    from wavry.rift.trust import AllowList, KnownHosts, TrustFileError

    wid = Identity.from_seed(b"t" * 32).wavry_id
    seeds = [
        f"# allow list\n{wid} laptop\n".encode(),
        f"\x01host.example {wid}\n192.0.2.1:4444 {wid}\n".encode(),
    ]

    def call(data: bytes) -> None:
        text = data.decode("utf-8", "replace")
        if data[:1] == b"\x01":
            known = KnownHosts.parse(text[1:])
            assert KnownHosts.parse(known.dumps()) == known, "known-hosts round trip"
        else:
            allow = AllowList.parse(text)
            assert AllowList.parse(allow.dumps()) == allow, "allow-list round trip"

    return Harness(seeds, call, (TrustFileError,), 600, (b"\n", b" ", b"#", b"\r", wid.encode()))


TARGETS = [
    Target("rift.header", ("wavry.rift.header",), _header, "RIFT physical header parse + CRC"),
    Target(
        "rift.packet_open",
        ("wavry.rift.packet_crypto", "wavry.rift.header"),
        _packet_open,
        "datagram -> header -> PacketOpener.open (AEAD, key epochs)",
    ),
    Target(
        "rift.noise",
        ("wavry.rift.noise", "wavry.rift.identity"),
        _noise,
        "Noise XX MSG1/MSG2/MSG3 processing + identity binding",
    ),
    Target(
        "rift.identity",
        ("wavry.rift.identity",),
        _identity_payload,
        "IdentityPayload verification and Wavry ID decoding",
    ),
    Target(
        "rift.proto",
        ("wavry.rift.proto.rift_pb2", "wavry.rift.negotiation", "wavry.rift.delta"),
        _proto,
        "protobuf Message decode, Hello negotiation, StatsReport -> DELTA sample",
    ),
    Target(
        "rift.media",
        ("wavry.rift.media.reassembly", "wavry.rift.media.fec"),
        _media,
        "MediaMessage decode -> chunk reassembly / FEC parity validation",
    ),
    Target(
        "rift.host_endpoint",
        ("wavry.rift.host_endpoint", "wavry.rift.connection", "wavry.rift.connection_handshake"),
        _host_endpoint,
        "datagrams into a listening host (handshake demultiplexing, MSG1 answers)",
    ),
    Target(
        "rift.session_raw",
        ("wavry.rift.connection", "wavry.rift.connection_control", "wavry.rift.media_receive"),
        _session_raw,
        "raw datagrams into an established session, both sides (never raises)",
    ),
    Target(
        "rift.session_sealed",
        (
            "wavry.rift.connection",
            "wavry.rift.connection_control",
            "wavry.rift.connection_hello",
            "wavry.rift.media_receive",
            "wavry.rift.media_send",
        ),
        _session_sealed,
        "fuzzed plaintexts sealed with live keys: every message handler (never raises)",
    ),
    Target(
        "rift.trust",
        ("wavry.rift.trust",),
        _trust_files,
        "allow-list and known-hosts text formats (+ round trip)",
    ),
]
