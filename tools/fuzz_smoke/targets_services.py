"""Fuzz targets outside the RIFT core: relay, master, gateway, input, impairment specs, media.

Gateway targets import modules that are still being written; when one is missing the target is
reported ``unavailable`` (a failure under ``CI=true`` or ``--strict``), never silently dropped.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from google.protobuf.message import DecodeError

from tools.fuzz_smoke.engine import Harness, Target, TargetUnavailable

_RELAY_ID = "relay-fuzz-1"
_WALL0 = 1_700_000_000.0
_MASTER_SEED = bytes(range(32))
_KID = "k-fuzz"
_SID = uuid.UUID(int=0xF022 << 64 | 1).bytes


def _wavry_id(n: int) -> str:
    from wavry.rift.identity import Identity

    return Identity.from_seed(bytes([n]) * 32).wavry_id


def _lease(role: str, **over: Any) -> str:
    from wavry.relay.lease import LeaseClaims, sign_lease

    fields: dict[str, Any] = {
        "sub": _wavry_id(1 if role == "client" else 2),
        "sid": str(uuid.UUID(bytes=_SID)),
        "role": role,
        "rid": _RELAY_ID,
        "iat": _WALL0,
        "nbf": _WALL0 - 5,
        "exp": _WALL0 + 900,
    }
    fields.update(over)
    return sign_lease(LeaseClaims(**fields), _MASTER_SEED, _KID)


def _verifier() -> Any:
    from wavry.relay.lease import LeaseVerifier, public_key_from_private

    return LeaseVerifier({_KID: public_key_from_private(_MASTER_SEED)})


# -- relay ----------------------------------------------------------------------------------------


def _relay_wire() -> Harness:
    from wavry.relay import wire

    seeds = [
        wire.encode_lease_present(_SID, wire.Role.CLIENT, "v4.public.token"),
        wire.encode_lease_ack(_SID, 1_700_000_000_000, 1000, 2000),
        wire.encode_lease_reject(_SID, wire.RejectCode.EXPIRED),
        wire.encode_lease_renew(_SID),
        wire.encode_forward(_SID, b"RI\x00\x01" + bytes(60)),
    ]
    by_type = {
        wire.MessageType.LEASE_PRESENT: wire.parse_lease_present,
        wire.MessageType.LEASE_ACK: wire.parse_lease_ack,
        wire.MessageType.LEASE_REJECT: wire.parse_lease_reject,
    }

    def call(data: bytes) -> None:
        kind, _ = wire.parse_header(data)
        for msg_type, parse in by_type.items():
            if msg_type is not kind:  # the other parsers must refuse it with the typed error
                try:
                    parse(data)
                except wire.RelayWireError:
                    continue
                raise AssertionError(f"{parse.__name__} accepted a {kind.name} datagram")
        if kind in by_type:
            by_type[kind](data)

    tokens = (b"W\x01", b"\x00" * 16, b"\x20\x00", b"\xff\xff")
    return Harness(seeds, call, (wire.RelayWireError,), 1600, tokens)


def _relay_lease() -> Harness:
    from wavry.relay.lease import LeaseRejected

    verifier = _verifier()
    seeds = [
        _lease("client").encode(),
        _lease("server", slimit=0, hlimit=2**32 - 1).encode(),
        _lease("client", rid="other").encode(),
    ]

    def call(data: bytes) -> None:
        token = data.decode("utf-8", "replace")
        verifier.verify(token, now=_WALL0, relay_id=_RELAY_ID, session_id=_SID, role="client")

    tokens = (b"v4.public.", b".", b"=", b"-", b"_")
    return Harness(seeds, call, (LeaseRejected,), 1200, tokens)


def _relay_lease_claims() -> Harness:
    """Claims documents signed with the trusted key: the checks *behind* the signature."""
    import pyseto

    from wavry.relay.lease import LeaseRejected

    verifier = _verifier()
    key = pyseto.Key.from_asymmetric_key_params(4, d=_MASTER_SEED)

    def body(token: str) -> bytes:
        import base64

        raw = base64.urlsafe_b64decode(token.split(".")[2] + "==")
        return raw[:-64]

    seeds = [body(_lease("client")), body(_lease("server", nbf=_WALL0 + 100))]

    def call(data: bytes) -> None:
        token = pyseto.encode(key, data).decode("ascii")
        if len(token) > 8192:
            return  # the wire refuses such tokens before the verifier sees them
        verifier.verify(token, now=_WALL0, relay_id=_RELAY_ID, session_id=_SID, role="client")

    return Harness(seeds, call, (LeaseRejected,), 1000, json=True)


def _relay_core() -> Harness:
    from wavry.relay import wire
    from wavry.relay.core import RelayConfig, RelayCore
    from wavry.rift.header import TransportHeader

    a, b = ("127.0.0.1", 1000), ("127.0.0.2", 2000)
    present_c = wire.encode_lease_present(_SID, wire.Role.CLIENT, _lease("client"))
    present_s = wire.encode_lease_present(_SID, wire.Role.SERVER, _lease("server"))
    forward = wire.encode_forward(_SID, TransportHeader(7, 1).encode() + bytes(100))
    seeds = [present_c, present_s, forward, wire.encode_lease_renew(_SID)]
    core = RelayCore(_RELAY_ID, _verifier(), RelayConfig(ip_rate_limit_pps=10**6))
    # a live session, so mutated FORWARDs from the peers' addresses take the fast path
    core.receive_datagram(present_c, a, 0.0, _WALL0)
    core.receive_datagram(present_s, b, 0.0, _WALL0)
    clock = [0.0]

    def call(data: bytes) -> None:
        clock[0] += 0.0005
        now = clock[0]
        addr = a if data[-1:] < b"\x80" else b
        core.receive_datagram(data, addr, now, _WALL0 + now)
        if core.get_timer() <= now:
            core.handle_timer(now)
        c = core.counters
        assert c.outcome_total() == c.packets_rx, "relay accounting invariant broken"

    return Harness(seeds, call, (), 1600, (b"W\x01\x10\x00", b"W\x01\x01\x00", b"RI\x00\x01"))


def _relay_fastpath() -> Harness:
    """The native FORWARD fast path against the pure-Python core: same answers, same counters."""
    from wavry.relay import fastpath, wire
    from wavry.relay.core import RelayConfig, RelayCore
    from wavry.rift.header import HandshakeHeader, TransportHeader

    if not fastpath.available():
        raise TargetUnavailable(f"relay fast path: {fastpath.unavailable_reason()}")
    a, b = ("127.0.0.1", 1000), ("127.0.0.2", 2000)
    present_c = wire.encode_lease_present(_SID, wire.Role.CLIENT, _lease("client", hlimit=2000))
    present_s = wire.encode_lease_present(_SID, wire.Role.SERVER, _lease("server"))
    seeds = [
        wire.encode_forward(_SID, TransportHeader(7, 1).encode() + bytes(100)),
        wire.encode_forward(_SID, HandshakeHeader(bytes(16), 0).encode() + bytes(40)),
        wire.encode_forward(_SID, (5).to_bytes(8, "big") + bytes(900)),
        present_c,
        wire.encode_lease_renew(_SID),
    ]
    cfg = RelayConfig(ip_rate_limit_pps=10**6, replay_window=64, min_soft_kbps=1000)
    pure = RelayCore(_RELAY_ID, _verifier(), cfg)
    fast = RelayCore(_RELAY_ID, _verifier(), cfg)
    fast.attach_fastpath(fastpath.load(cfg.replay_window), fastpath.counter_names())
    for core in (pure, fast):
        core.receive_datagram(present_c, a, 0.0, _WALL0)
        core.receive_datagram(present_s, b, 0.0, _WALL0)
    clock = [0.0]

    def call(data: bytes) -> None:
        clock[0] += 0.001
        now = clock[0]
        addr = a if data[-1:] < b"\x80" else b
        want = pure.receive_datagram(data, addr, now, _WALL0 + now)
        got = fast.receive_datagram(data, addr, now, _WALL0 + now)
        assert got == want, f"fast path answered {got!r}, the pure core {want!r}"
        for core in (pure, fast):
            if core.get_timer() <= now:
                core.handle_timer(now)
        assert fast.counters.as_dict() == pure.counters.as_dict(), "counters differ"

    return Harness(seeds, call, (), 1600, (b"W\x01\x10\x00", b"RI\x00\x01", b"\x00\x00\x00\x00"))


# -- net / input / media --------------------------------------------------------------------------


def _impairment() -> Harness:
    from wavry.net.impairment import ImpairmentConfig

    seeds = [
        b"loss=5%,delay=20ms,jitter=5ms,rate=8mbit",
        b"burst=0.01/0.3/0.5,reorder=2%,reorder_delay=3ms,dup=0.1%,jitter_dist=normal",
        b"queue=50ms,queue=64kb,rate_at=10s/5mbit,rate_at=20s/unlimited",
        b"loss_episode=10s/12s/20%,bandwidth=1gbit",
    ]

    def call(data: bytes) -> None:
        config = ImpairmentConfig.parse(data.decode("utf-8", "replace"))
        again = ImpairmentConfig.parse(config.to_spec())
        assert again == config, f"to_spec does not round-trip: {config.to_spec()!r}"

    tokens = tuple(
        t.encode()
        for t in (
            "loss=", "delay=", "jitter=", "rate=", "queue=", "burst=", "rate_at=", "dup=",
            "loss_episode=", "%", "ms", "us", "s", "kbit", "gbps", "kib", "e308", "nan", "inf",
            "/", ",", "-", ".", "1e-400", "unlimited",
        )
    )  # fmt: skip
    return Harness(seeds, call, (ValueError,), 400, tokens)


def _input_events() -> Harness:
    from wavry.input.events import InputDecodeError, from_proto, to_proto
    from wavry.rift.proto import rift_pb2 as pb

    msgs = [
        pb.InputMessage(timestamp_us=1, key=pb.Key(keycode=0x04, pressed=True)),
        pb.InputMessage(mouse_move=pb.MouseMove(x=0.5, y=0.5)),
        pb.InputMessage(mouse_relative=pb.MouseRelative(dx=-3.0, dy=4.0)),
        pb.InputMessage(mouse_button=pb.MouseButton(button=1, pressed=True)),
        pb.InputMessage(scroll=pb.Scroll(dx=0.0, dy=-1.0)),
        pb.InputMessage(
            gamepad=pb.Gamepad(
                gamepad_id=0,
                axes=[pb.GamepadAxis(axis=0, value=-0.5), pb.GamepadAxis(axis=4, value=1.0)],
                buttons=[pb.GamepadButton(button=0, pressed=True)],
            )
        ),
    ]

    def call(data: bytes) -> None:
        event = from_proto(pb.InputMessage.FromString(data))
        try:
            again = from_proto(to_proto(event, 0))
        except (TypeError, InputDecodeError) as exc:  # not every decoded event is sent back
            if isinstance(exc, InputDecodeError):
                raise AssertionError(f"a decoded event does not re-decode: {exc}") from None
            return
        assert again == event, "input event does not round-trip"

    return Harness(
        [m.SerializeToString() for m in msgs], call, (DecodeError, InputDecodeError), 300
    )


def _media_decoder() -> Harness:
    try:
        import av

        from wavry.media.decoder import VideoDecoder
        from wavry.rift.proto import rift_pb2
    except ImportError as exc:  # pragma: no cover - PyAV is a dependency
        raise TargetUnavailable(f"PyAV: {exc}") from None
    enc = av.CodecContext.create("libx264", "w")
    assert isinstance(enc, av.VideoCodecContext)
    enc.width, enc.height, enc.pix_fmt = 64, 64, "yuv420p"
    enc.options = {"preset": "ultrafast", "tune": "zerolatency"}
    seeds = []
    for i in range(3):
        frame = av.VideoFrame(64, 64, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(i * 40 + 7) % 256]) * plane.buffer_size)
        frame.pts = i
        seeds += [bytes(p) for p in enc.encode(frame)]
    seeds += [bytes(p) for p in enc.encode(None)]
    decoder = VideoDecoder(rift_pb2.H264, threads=1)

    def call(data: bytes) -> None:
        decoder.decode(data)  # documented: never raises on bad input

    tokens = (b"\x00\x00\x00\x01", b"\x00\x00\x01", b"\x65", b"\x67", b"\x68")
    return Harness(seeds, call, (), 4000, tokens)


def _mdns_txt() -> Harness:
    from zeroconf import ServiceInfo

    from wavry.net import mdns

    seeds = [
        ServiceInfo(
            mdns.SERVICE_TYPE,
            f"x.{mdns.SERVICE_TYPE}",
            port=4444,
            properties=props,
            addresses=[b"\x7f\x00\x00\x01"],
        ).text
        for props in (
            {"v": str(mdns.TXT_VERSION), "id": _wavry_id(3), "name": "host one"},
            {"v": str(mdns.TXT_VERSION), "id": _wavry_id(4)},
        )
    ]

    def call(data: bytes) -> None:
        try:
            info = ServiceInfo(
                mdns.SERVICE_TYPE,
                f"x.{mdns.SERVICE_TYPE}",
                port=4444,
                properties=data,
                addresses=[b"\x7f\x00\x00\x01"],
            )
        except ValueError:
            return  # zeroconf refuses to represent it: never reaches our code
        mdns._to_host(info)  # a private function on purpose: it is what reads the TXT record

    return Harness(seeds, call, (), 600, (b"v=", b"id=", b"name=", b"="))


# -- master ---------------------------------------------------------------------------------------


def _body_models(base: type, *modules: Any) -> list[type]:
    """Every request-body model (subclass of ``base``) defined in ``modules``, by name."""
    found = {
        obj
        for module in modules
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, base) and obj is not base
    }
    return sorted(found, key=lambda m: m.__name__)


def _bodies_harness(
    models: list[type], examples: dict[str, dict[str, Any]], check: Any = None
) -> Harness:
    """Input: one selector byte (which model) + a JSON body; ``model_validate_json``."""
    from pydantic import ValidationError

    seeds = [
        bytes([i]) + json.dumps(examples.get(m.__name__, {})).encode() for i, m in enumerate(models)
    ]

    def call(data: bytes) -> None:
        if not data:
            return
        body = models[data[0] % len(models)].model_validate_json(data[1:])  # type: ignore[attr-defined]
        if check is not None:
            check(body)

    return Harness(seeds, call, (ValidationError,), 1500, json=True)


def _master_bodies() -> Harness:
    from wavry.master import schemas
    from wavry.master.addresses import EndpointError, parse_endpoint

    hexsig = "ab" * 64
    examples: dict[str, dict[str, Any]] = {
        "RelayRegisterRequest": {
            "relay_id": "r1",
            "endpoints": ["10.1.1.1:4000", "[2001:db8::1]:4000"],
            "region": "eu",
            "asn": 64512,
            "max_sessions": 100,
            "max_bitrate_kbps": 20000,
            "features": ["ipv4"],
        },
        "HeartbeatRequest": {"relay_id": "r1", "load_pct": 50},
        "RegisterRequest": {"wavry_id": _wavry_id(5), "display_name": "me"},
        "LoginRequest": {"wavry_id": _wavry_id(5)},
        "VerifyRequest": {
            "wavry_id": _wavry_id(5),
            "challenge": "cd" * 32,
            "signature_hex": hexsig,
        },
        "SessionRequest": {"target_wavry_id": _wavry_id(6), "role": "server", "region": "eu"},
        "FeedbackRequest": {
            "session_id": str(uuid.UUID(bytes=_SID)),
            "relay_id": "r1",
            "wavry_id": _wavry_id(5),
            "quality_score": 90,
            "issues": ["jitter"],
            "signature": hexsig,
        },
        "UpdateStateRequest": {"relay_id": "r1", "new_state": "draining"},
        "RevokeRequest": {"wavry_id": _wavry_id(5)},
    }

    def check(body: Any) -> None:
        for endpoint in getattr(body, "endpoints", ()):
            try:
                parse_endpoint(endpoint)
            except EndpointError:
                pass

    models = _body_models(schemas._Body, schemas)  # the request bodies share this base
    return _bodies_harness(models, examples, check)


def _gateway_bodies() -> Harness:
    try:
        from wavry.gateway import api_admin, schemas
    except ImportError as exc:
        raise TargetUnavailable(f"wavry.gateway.schemas: {exc}") from None
    login = {"email": "alice@example.com", "password": "SuperSecurePass123!"}
    examples: dict[str, dict[str, Any]] = {
        "RegisterRequest": {
            **login,
            "username": "alice",
            "display_name": "Alice",
            "public_key": "ab" * 32,
        },
        "LoginRequest": {**login, "totp_code": "123456"},
        "RevokeSessionRequest": {"session_id": "0123456789abcdef"},
        "TotpSetupRequest": {"password": login["password"]},
        "TotpEnableRequest": {"code": "123456"},
        "TotpDisableRequest": {"password": login["password"], "code": "123456"},
        "ChallengeRequest": {"wavry_id": _wavry_id(5)},
        "ChallengeVerifyRequest": {"challenge": "cd" * 32, "signature_hex": "ab" * 64},
        "ShareRequest": {"username": "bob"},
        "BanRequest": {"user_id": "u1", "reason": "spam", "duration_hours": 24},
    }
    return _bodies_harness(_body_models(schemas._Body, schemas, api_admin), examples)


# -- gateway (being built: picked up when importable) ---------------------------------------------


def _signaling() -> Harness:
    try:
        from wavry.gateway.signaling import messages as m
    except ImportError as exc:
        raise TargetUnavailable(f"wavry.gateway.signaling.messages: {exc}") from None
    from wavry.rift.proto import rift_pb2

    hello = m.encode_hello(rift_pb2.Hello(client_name="c", max_fps=60))
    ack = m.encode_ack(rift_pb2.HelloAck(accepted=True, fps=60))
    docs: list[dict[str, Any]] = [
        {"type": "BIND", "token": "t" * 64, "role": "host"},
        {"type": "WATCH", "usernames": ["alice", "bob.b"]},
        {"type": "OFFER_RIFT", "target_username": "alice", "hello_b64": hello,
         "wavry_id": _wavry_id(7), "session_id": str(uuid.uuid4())},
        {"type": "ANSWER_RIFT", "target_username": "bob", "ack_b64": ack},
        {"type": "CANDIDATE", "target_username": "alice",
         "candidates": [{"addr": "192.0.2.1:4444", "type": "host"}]},
        {"type": "REQUEST_RELAY", "target_username": "alice", "region": "eu"},
        {"type": "BOUND", "user": "u1", "username": "alice", "role": "client"},
        {"type": "ERROR", "code": "RATE_LIMITED", "message": "slow down"},
        {"type": "PRESENCE", "username": "alice", "online": True},
        {"type": "RELAY_CREDENTIALS", "target_username": "alice", "relay_id": "r1",
         "addr": "192.0.2.9:4000", "session_id": str(uuid.UUID(bytes=_SID)), "lease": "v4.x",
         "role": "client", "expires_at": 1.0},
    ]  # fmt: skip
    seeds = [json.dumps(d).encode() for d in docs]

    def call(data: bytes) -> None:
        refused: list[Exception] = []
        for parse in (m.parse_client, m.parse_server):
            try:
                msg = parse(data)
            except m.SignalingError as exc:
                refused.append(exc)
                continue
            again = parse(m.dump(msg))
            assert again == msg, "signaling message does not round-trip through dump()"
            for attr, decode in (("hello_b64", m.decode_hello), ("ack_b64", m.decode_ack)):
                material = getattr(msg, attr, None)
                if material is not None:
                    try:
                        decode(material)
                    except m.HelloMaterialError:
                        pass
        if len(refused) == 2:
            raise refused[0]

    return Harness(seeds, call, (m.SignalingError,), 3000, json=True)


def _gateway_validation() -> Harness:
    try:
        from wavry.gateway import validation as v
    except ImportError as exc:
        raise TargetUnavailable(f"wavry.gateway.validation: {exc}") from None
    funcs = [
        v.normalize_email,
        v.normalize_username,
        v.normalize_display_name,
        v.normalize_password,
        v.normalize_public_key,
        v.normalize_totp_code,
    ]
    seeds = [
        b"\x00Alice.Example+tag@Example.COM",
        b"\x01alice_b",
        b"\x02Alice \xc3\xa9",
        b"\x03SuperSecurePass123!",
        b"\x04" + b"ab" * 32,
        b"\x05123 456",
    ]

    def call(data: bytes) -> None:
        if not data:
            return
        func = funcs[data[0] % len(funcs)]
        out = func(data[1:].decode("utf-8", "replace"))
        assert func(out) == out, f"{func.__name__} is not idempotent"

    return Harness(
        seeds, call, (ValueError,), 600, (b"@", b".", "\u202e".encode(), "\u00e9".encode())
    )


def _net_stun() -> Harness:
    """STUN Binding responses arriving on the streaming socket (``UdpDriver.stun_binding``)."""
    from wavry.net import stun

    txid = bytes(range(12))
    xor = stun.encode_xor_address("203.0.113.7", 40000, txid)
    xor6 = stun.encode_xor_address("2001:db8::7", 40000, txid)
    seeds = [
        stun.encode_response(
            stun.Method.BINDING, txid, [(stun.Attr.XOR_MAPPED_ADDRESS, xor)], fingerprint=True
        ),  # fmt: skip
        stun.encode_response(stun.Method.BINDING, txid, [(stun.Attr.XOR_MAPPED_ADDRESS, xor6)]),
        stun.encode_response(
            stun.Method.BINDING,
            txid,
            [(stun.Attr.MAPPED_ADDRESS, stun.encode_address("198.51.100.1", 9))],
        ),
        stun.encode_response(
            stun.Method.BINDING,
            txid,
            [(stun.Attr.ERROR_CODE, bytes([0, 0, 4, 20]) + b"nope")],
            error=True,
        ),  # fmt: skip
    ]

    def call(data: bytes) -> None:
        msg = stun.parse_message(data)
        # the driver's demultiplexer must never hide a message the parser accepts
        assert stun.looks_like_stun(data), "parsed STUN that the demultiplexer would not see"
        tx = stun.BindingTransaction(("192.0.2.1", 3478), 0.0, txid=msg.txid)
        tx.datagrams_to_send(0.0)
        tx.receive(msg, 0.1)
        if tx.result is not None:
            assert tx.error is None
        _ = msg.error_code, msg.error_reason

    tokens = (b"\x21\x12\xa4\x42", b"\x00\x20", b"\x00\x01", b"\x80\x28", b"\x00\x09")
    return Harness(seeds, call, (stun.StunError,), 1600, tokens)


def _net_relay_link() -> Harness:
    """Datagrams from a relay arriving at a peer's ``RelayLink`` (FORWARD, LEASE_ACK/REJECT,
    garbage): never raises, and a FORWARD for the session gives back its exact payload."""
    from wavry.net.relay_link import LinkState, RelayLink
    from wavry.relay import wire

    sid = bytes(range(1, 17))
    lease = "v4.public." + "A" * 120
    seeds = [
        wire.encode_forward(sid, b"RI" + bytes(40)),
        wire.encode_lease_ack(sid, 1_900_000_000_000, 20_000, 25_000),
        wire.encode_lease_reject(sid, wire.RejectCode.EXPIRED),
        wire.encode_lease_reject(sid, wire.RejectCode.RATE_LIMITED),
        wire.encode_lease_present(sid, wire.Role.CLIENT, lease),
        wire.encode_forward(bytes(range(2, 18)), b"x"),  # another session
    ]

    def call(data: bytes) -> None:
        link = RelayLink(("192.0.2.1", 4000), sid, wire.Role.CLIENT, lease, 0.0, wall=lambda: 1e9)
        link.datagrams_to_send(0.0)
        payload = link.receive(data, 0.1)
        if payload is not None:
            # only a FORWARD of this session yields a payload, and it is the rest, unchanged
            assert data[:2] == bytes([wire.MAGIC, wire.VERSION]) and data[4:20] == sid, data[:20]
            assert payload == data[wire.HEADER_SIZE :]
        link.handle_timer(5.0)
        link.datagrams_to_send(5.0)
        assert isinstance(link.state, LinkState)

    tokens = (b"W\x01\x10\x00", b"W\x01\x02\x00", b"W\x01\x03\x00", sid)
    return Harness(seeds, call, (), 1500, tokens)


# -- benchmarks -----------------------------------------------------------------------------------


def _bench_turn() -> Harness:
    """STUN/TURN answers from the TURN server ``wavry bench relay`` drives (coturn)."""
    import struct

    from wavry.bench import turn_client as t

    txid = bytes(range(12))
    relayed = t.encode_xor_address("127.0.0.1", 50000, txid)
    success = struct.pack(">HHI", 0x0103, 4 + len(relayed), t.MAGIC_COOKIE) + txid
    success += struct.pack(">HH", t.Attr.XOR_RELAYED_ADDRESS, len(relayed)) + relayed
    error = struct.pack(">HHI", 0x0113, 8 + 16 + 12, t.MAGIC_COOKIE) + txid
    error += struct.pack(">HH", t.Attr.ERROR_CODE, 4) + bytes([0, 0, 4, 1])
    error += struct.pack(">HH", t.Attr.REALM, 11) + b"wavry.bench\0"
    error += struct.pack(">HH", t.Attr.NONCE, 8) + b"abcdefgh"
    seeds = [
        success,
        error,
        t.encode_request(t.Method.BINDING, [], txid=txid),
        t.encode_request(
            t.Method.ALLOCATE,
            [(t.Attr.REQUESTED_TRANSPORT, bytes([17, 0, 0, 0]))],
            txid=txid,
            key=t.long_term_key("u", "r", "p"),
        ),
    ]
    xor_attrs = (t.Attr.XOR_RELAYED_ADDRESS, t.Attr.XOR_MAPPED_ADDRESS, t.Attr.XOR_PEER_ADDRESS)

    def call(data: bytes) -> None:
        msg = t.parse_message(data)
        _ = msg.error_code, msg.is_success
        for kind, value in msg.attrs:
            if kind in xor_attrs:
                t.decode_xor_address(value, msg.txid)

    tokens = (b"\x21\x12\xa4\x42", b"\x00\x16", b"\x00\x09", b"\x00\x08")
    return Harness(seeds, call, (t.StunError,), 1600, tokens)


TARGETS = [
    Target("relay.wire", ("wavry.relay.wire",), _relay_wire, "relay header and LEASE_* parsers"),
    Target(
        "relay.lease",
        ("wavry.relay.lease",),
        _relay_lease,
        "lease token (PASETO v4.public) verification",
    ),
    Target(
        "relay.lease_claims",
        ("wavry.relay.lease",),
        _relay_lease_claims,
        "claims JSON behind a valid signature",
    ),
    Target(
        "relay.core",
        ("wavry.relay.core", "wavry.relay.wire", "wavry.relay.lease"),
        _relay_core,
        "relay datagram handling incl. a live session (never raises; accounting invariant)",
    ),
    Target(
        "relay.fastpath",
        ("wavry.relay.fastpath", "wavry.relay.core"),
        _relay_fastpath,
        "native FORWARD fast path against the pure-Python core (same answers and counters)",
    ),
    Target(
        "net.impairment",
        ("wavry.net.impairment",),
        _impairment,
        "impairment spec strings (+ to_spec round trip)",
    ),
    Target("net.mdns", ("wavry.net.mdns",), _mdns_txt, "mDNS TXT records of discovered hosts"),
    Target(
        "net.stun",
        ("wavry.net.stun",),
        _net_stun,
        "STUN Binding responses on the streaming socket",
    ),
    Target(
        "net.relay_link",
        ("wavry.net.relay_link",),
        _net_relay_link,
        "relay datagrams at a peer's relay link (FORWARD unwrap, ACK/REJECT; never raises)",
    ),
    Target(
        "input.events",
        ("wavry.input.events",),
        _input_events,
        "InputMessage decode -> typed events (+ round trip)",
    ),
    Target(
        "media.decoder",
        ("wavry.media.decoder",),
        _media_decoder,
        "H.264 access units from the peer into the decoder (never raises)",
    ),
    Target(
        "master.bodies",
        ("wavry.master.schemas", "wavry.master.addresses"),
        _master_bodies,
        "every master request body schema (pydantic) + relay endpoint parsing",
    ),
    Target(
        "gateway.bodies",
        ("wavry.gateway.schemas", "wavry.gateway.api_admin", "wavry.gateway.validation"),
        _gateway_bodies,
        "every gateway request body schema (pydantic, with the account normalisers)",
    ),
    Target(
        "gateway.signaling",
        ("wavry.gateway.signaling.messages",),
        _signaling,
        "signaling frames (client and server side) + hello material",
    ),
    Target(
        "gateway.validation",
        ("wavry.gateway.validation",),
        _gateway_validation,
        "account field normalisers (email, username, password, ...)",
    ),
    Target(
        "bench.turn",
        ("wavry.bench.turn_client",),
        _bench_turn,
        "STUN/TURN messages from the TURN server of wavry bench relay",
    ),
]
