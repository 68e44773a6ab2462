"""Session state machine: handshake, identity policy, negotiation, liveness, close, rebinding.

In-memory host/client pairs over the simulated network with a virtual clock starting at 0.0.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from wavry.net.impairment import ImpairmentConfig, ImpairmentLink
from wavry.net.simnet import SimNetwork
from wavry.rift import events as ev
from wavry.rift.config import HostOffer, RiftConfig
from wavry.rift.connection import Connection, ConnectionState
from wavry.rift.errors import DropReason, LocalProtocolError
from wavry.rift.header import HandshakeHeader, TransportHeader
from wavry.rift.host_endpoint import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.proto import rift_pb2
from wavry.rift.trust import AllowList

HOST = ("198.51.100.1", 4444)
CLIENT = ("203.0.113.7", 50000)


def _rng(seed: int) -> Callable[[int], bytes]:
    r = random.Random(seed)
    return r.randbytes


def hello(**kw: object) -> rift_pb2.Hello:
    base: dict[str, object] = {
        "client_name": "t",
        "supported_codecs": [rift_pb2.H264],
        "max_resolution": rift_pb2.Resolution(width=1280, height=720),
        "max_fps": 60,
    }
    base.update(kw)
    return rift_pb2.Hello(**base)  # type: ignore[arg-type]


@dataclass
class Pair:
    host: HostEndpoint
    client: Connection
    net: SimNetwork
    host_identity: Identity
    client_identity: Identity
    client_events: list[ev.Event] = field(default_factory=list)
    host_events: list[ev.Event] = field(default_factory=list)

    def run(self, until: float) -> None:
        self.net.run_until(until, on_step=lambda _t: self.drain())
        self.drain()

    def drain(self) -> None:
        while (e := self.client.next_event()) is not None:
            self.client_events.append(e)
        while (item := self.host.next_event()) is not None:
            self.host_events.append(item[1])

    def host_conn(self) -> Connection:
        (conn,) = self.host.connections.values()
        return conn

    def of(self, side: list[ev.Event], kind: type) -> list[ev.Event]:
        return [e for e in side if isinstance(e, kind)]


def make_pair(
    *,
    seed: int = 1,
    down: ImpairmentConfig | None = None,
    up: ImpairmentConfig | None = None,
    config: RiftConfig | None = None,
    allow: bool | None = None,
    pin: str | None = "host",
    client_hello: rift_pb2.Hello | None = None,
    offer: HostOffer | None = None,
    max_active: int = 1,
    approval: bool = False,
) -> Pair:
    host_id = Identity.generate(_rng(seed))
    client_id = Identity.generate(_rng(seed + 1000))
    cfg = config or RiftConfig()
    allow_list = None
    if allow is not None:
        allow_list = AllowList()
        if allow:
            allow_list.add(client_id.wavry_id)
    host = HostEndpoint(
        identity=host_id,
        offer=offer or HostOffer(),
        config=cfg,
        allow_list=allow_list,
        max_active_sessions=max_active,
        approval_mode=approval,
        rng=_rng(seed + 1),
    )
    client = Connection.client(
        identity=client_id,
        peer_addr=HOST,
        hello=client_hello or hello(),
        now=0.0,
        config=cfg,
        expected_host_id=host_id.wavry_id if pin == "host" else pin,
        rng=_rng(seed + 2),
    )
    net = SimNetwork(
        client,
        host,
        ImpairmentLink(up or ImpairmentConfig(delay=0.01), random.Random(seed + 3)),
        ImpairmentLink(down or ImpairmentConfig(delay=0.01), random.Random(seed + 4)),
        addr_a=CLIENT,
        addr_b=HOST,
    )
    return Pair(host, client, net, host_id, client_id)


def test_handshake_establishes_and_authenticates_both_identities() -> None:
    p = make_pair()
    p.run(0.2)
    assert p.client.state is ConnectionState.ESTABLISHED
    conn = p.host_conn()
    assert conn.state is ConnectionState.ESTABLISHED
    (hc,) = p.of(p.client_events, ev.HandshakeCompleted)
    assert isinstance(hc, ev.HandshakeCompleted)
    assert hc.peer_wavry_id == p.host_identity.wavry_id
    assert conn.peer_wavry_id == p.client_identity.wavry_id
    assert p.client.alias == conn.alias != 0
    (est,) = p.of(p.client_events, ev.SessionEstablished)
    assert isinstance(est, ev.SessionEstablished)
    assert (est.params.width, est.params.height, est.params.fps) == (1280, 720, 60)
    # 3 handshake messages + Hello/HelloAck over a 10 ms link: established by ~40 ms.
    assert p.client.srtt is not None and 0.019 < p.client.srtt < 0.03


class DropNth:
    """A 10 ms link that loses exactly the datagrams with the given ordinal numbers."""

    def __init__(self, drop: set[int]) -> None:
        self.drop = drop
        self.count = 0

    def transmit(self, size: int, now: float) -> list[float]:
        self.count += 1
        return [] if self.count in self.drop else [now + 0.01]


def test_handshake_recovers_from_each_lost_message() -> None:
    # client->host: MSG1 #1 lost, its retry arrives; MSG3+Hello (#3, #4) lost, retried later.
    # host->client: the first MSG2 is lost, the cached copy answers the retried MSG1.
    p = make_pair()
    p.net.link_ab = DropNth({1, 3, 4})
    p.net.link_ba = DropNth({1})
    p.run(0.9)
    assert p.client.state is ConnectionState.HANDSHAKE
    p.run(5.0)
    assert p.client.state is ConnectionState.ESTABLISHED
    assert p.host_conn().state is ConnectionState.ESTABLISHED
    assert len(p.host.connections) == 1


def test_handshake_survives_random_heavy_loss() -> None:
    lossy = ImpairmentConfig(loss=0.3, delay=0.01)
    p = make_pair(seed=5, down=lossy, up=lossy)
    p.run(10.0)
    assert p.client.state is ConnectionState.ESTABLISHED
    assert p.host_conn().state is ConnectionState.ESTABLISHED


def test_duplicate_msg1_is_answered_from_cache_without_new_session() -> None:
    p = make_pair()
    ((msg1, _),) = p.client.datagrams_to_send(0.0)
    p.host.receive_datagram(msg1, CLIENT, 0.0)
    first = p.host.datagrams_to_send(0.0)
    p.host.receive_datagram(msg1, CLIENT, 0.1)
    again = p.host.datagrams_to_send(0.1)
    assert first == again and len(p.host.connections) == 1


def test_handshake_times_out_with_a_clear_reason() -> None:
    dead = ImpairmentConfig(loss=1.0)
    p = make_pair(down=dead, up=dead)
    p.run(12.0)
    assert p.client.state is ConnectionState.CLOSED
    (closed,) = p.of(p.client_events, ev.ConnectionClosed)
    assert isinstance(closed, ev.ConnectionClosed)
    assert closed.reason == rift_pb2.DISCONNECT_HANDSHAKE_TIMEOUT
    assert "reachable" in closed.message


def test_pinned_host_key_mismatch_is_refused() -> None:
    other = Identity.generate(_rng(99)).wavry_id
    p = make_pair(pin=other)
    p.run(1.0)
    assert p.client.state is ConnectionState.CLOSED
    (closed,) = p.of(p.client_events, ev.ConnectionClosed)
    assert isinstance(closed, ev.ConnectionClosed)
    assert closed.reason == rift_pb2.DISCONNECT_HOST_KEY_CHANGED
    assert other in closed.message
    assert not p.of(p.client_events, ev.HandshakeCompleted)


def test_trust_on_first_use_reports_host_identity() -> None:
    p = make_pair(pin=None)
    p.run(0.5)
    (hc,) = p.of(p.client_events, ev.HandshakeCompleted)
    assert isinstance(hc, ev.HandshakeCompleted)
    assert hc.peer_wavry_id == p.host_identity.wavry_id


def test_allow_list_refuses_unknown_client_with_reason() -> None:
    p = make_pair(allow=False)
    p.run(3.0)
    (rej,) = p.of(p.client_events, ev.SessionRejected)
    assert isinstance(rej, ev.SessionRejected)
    assert rej.reason == rift_pb2.REJECT_NOT_AUTHORIZED
    assert p.client_identity.wavry_id in rej.message and "--allow" in rej.message
    assert p.client.state is ConnectionState.CLOSED
    assert not p.host.connections  # the refused session was reaped after lingering


def test_allow_list_admits_paired_client() -> None:
    p = make_pair(allow=True)
    p.run(0.5)
    assert p.client.state is ConnectionState.ESTABLISHED


def test_second_client_is_refused_as_busy() -> None:
    p = make_pair()
    p.run(0.3)
    intruder = Connection.client(
        identity=Identity.generate(_rng(77)),
        peer_addr=HOST,
        hello=hello(),
        now=0.3,
        rng=_rng(78),
    )
    other_addr = ("203.0.113.9", 1234)
    for _ in range(6):  # pump by hand: a third party on a lossless path
        for data, _ in intruder.datagrams_to_send(0.3):
            p.host.receive_datagram(data, other_addr, 0.3)
        for data, addr in p.host.datagrams_to_send(0.3):
            if addr == other_addr:
                intruder.receive_datagram(data, HOST, 0.3)
    rejected = []
    while (e := intruder.next_event()) is not None:
        rejected.append(e)
    rej = [e for e in rejected if isinstance(e, ev.SessionRejected)]
    assert rej and rej[0].reason == rift_pb2.REJECT_BUSY
    assert p.client.state is ConnectionState.ESTABLISHED


def test_no_common_codec_rejected() -> None:
    p = make_pair(client_hello=hello(supported_codecs=[rift_pb2.AV1]))
    p.run(1.0)
    (rej,) = p.of(p.client_events, ev.SessionRejected)
    assert isinstance(rej, ev.SessionRejected)
    assert rej.reason == rift_pb2.REJECT_NO_COMMON_CODEC


def test_idle_timeout_closes_both_sides() -> None:
    cfg = RiftConfig(idle_timeout=2.0)
    p = make_pair(config=cfg)
    p.run(0.5)
    p.net.link_ab = ImpairmentLink(ImpairmentConfig(loss=1.0), random.Random(1))
    p.net.link_ba = ImpairmentLink(ImpairmentConfig(loss=1.0), random.Random(2))
    p.run(3.0)
    assert p.client.state is ConnectionState.CLOSED
    closed = p.of(p.client_events, ev.ConnectionClosed)
    assert isinstance(closed[0], ev.ConnectionClosed)
    assert closed[0].reason == rift_pb2.DISCONNECT_IDLE_TIMEOUT and not closed[0].by_peer


def test_keepalive_prevents_idle_timeout() -> None:
    p = make_pair(config=RiftConfig(idle_timeout=2.0))
    p.run(10.0)
    assert p.client.state is ConnectionState.ESTABLISHED


def test_graceful_close_reaches_peer_with_reason() -> None:
    p = make_pair()
    p.run(0.3)
    p.net.schedule(0.4, lambda now: p.client.close(now, rift_pb2.DISCONNECT_NORMAL, "bye"))
    p.run(0.6)
    closed = p.of(p.host_events, ev.ConnectionClosed)
    assert len(closed) == 1 and isinstance(closed[0], ev.ConnectionClosed)
    assert closed[0].by_peer and closed[0].message == "bye"
    assert not p.host.connections


def test_nat_rebinding_moves_session_after_authenticated_packet() -> None:
    p = make_pair()
    p.run(0.3)
    conn = p.host_conn()
    new_addr = ("203.0.113.7", 50001)
    p.net.rebind_a(new_addr)
    p.run(2.0)
    assert conn.peer_addr == new_addr
    moved = p.of(p.host_events, ev.PeerAddressChanged)
    assert len(moved) == 1 and isinstance(moved[0], ev.PeerAddressChanged)
    assert moved[0].new == new_addr
    assert p.client.state is ConnectionState.ESTABLISHED


def test_forged_packet_from_new_address_does_not_move_session() -> None:
    p = make_pair()
    p.run(0.3)
    conn = p.host_conn()
    forged = TransportHeader(conn.alias, 10_000).encode() + bytes(64)
    p.host.receive_datagram(forged, ("192.0.2.99", 9), 0.31)
    assert conn.peer_addr == CLIENT
    assert conn.drops[DropReason.DECRYPT_FAILED] == 1


def test_replayed_packet_is_dropped() -> None:
    p = make_pair()
    p.run(0.3)
    conn = p.host_conn()
    p.client.send_input(rift_pb2.InputMessage(key=rift_pb2.Key(keycode=4, pressed=True)), 0.3)
    ((data, _),) = p.client.datagrams_to_send(0.3)
    p.host.receive_datagram(data, CLIENT, 0.31)
    p.host.receive_datagram(data, CLIENT, 0.32)
    inputs = []
    while (item := p.host.next_event()) is not None:
        if isinstance(item[1], ev.InputReceived):
            inputs.append(item[1])
    assert len(inputs) == 1 and inputs[0].message.key.keycode == 4
    assert conn.drops[DropReason.REPLAY] == 1


def test_priority_control_then_input_then_media() -> None:
    p = make_pair()
    p.run(0.3)
    conn = p.host_conn()
    conn.send_video_frame(b"v" * 3000, keyframe=True, timestamp_us=1, now=0.3)
    conn.send_control(rift_pb2.ControlMessage(clipboard=rift_pb2.ClipboardMessage(text="x")), 0.3)
    out = conn.datagrams_to_send(0.3)
    # Decrypt on the client to see the order of kinds.
    kinds = []
    for data, _ in out:
        p.client.receive_datagram(data, HOST, 0.31)
    while (e := p.client.next_event()) is not None:
        kinds.append(type(e).__name__)
    assert kinds[0] == "ControlReceived"
    assert "VideoFrameReceived" in kinds


def test_send_before_established_is_local_error() -> None:
    p = make_pair()
    with pytest.raises(LocalProtocolError):
        p.client.send_input(rift_pb2.InputMessage(), 0.0)


def test_rekey_epochs_roll_over_mid_session() -> None:
    p = make_pair(config=RiftConfig(rekey_interval=1.0))
    received: list[int] = []

    def send(now: float) -> None:
        if p.client.state is ConnectionState.ESTABLISHED:
            p.client.send_input(rift_pb2.InputMessage(timestamp_us=int(now * 1e6)), now)
        if now < 4.5:
            p.net.schedule(now + 0.05, send)

    p.net.schedule(0.3, send)
    p.net.run_until(5.0, on_step=lambda _t: p.drain())
    p.drain()
    received = [e.message.timestamp_us for e in p.of(p.host_events, ev.InputReceived)]  # type: ignore[attr-defined]
    assert len(received) >= 80
    assert p.client._sealer is not None and p.client._sealer.epoch >= 3
    assert p.client.state is ConnectionState.ESTABLISHED


def test_handshake_header_with_unknown_id_and_nonzero_pid_dropped() -> None:
    p = make_pair()
    p.host.receive_datagram(HandshakeHeader(bytes(16), 5).encode() + bytes(32), CLIENT, 0.0)
    assert p.host.drops[DropReason.UNKNOWN_HANDSHAKE] == 1
    assert not p.host.connections


@pytest.mark.parametrize("approve", [True, False])
def test_unknown_client_waits_for_host_user_decision(approve: bool) -> None:
    p = make_pair(allow=False, approval=True)
    p.run(3.0)
    (ask,) = p.of(p.host_events, ev.ApprovalRequired)
    assert isinstance(ask, ev.ApprovalRequired)
    assert ask.peer_wavry_id == p.client_identity.wavry_id
    assert p.client.state is ConnectionState.AWAIT_HELLO_ACK  # still waiting, not refused
    conn = p.host_conn()
    if approve:
        p.net.schedule(3.1, conn.approve)
    else:
        p.net.schedule(3.1, conn.deny)
    p.run(5.0)
    if approve:
        assert p.client.state is ConnectionState.ESTABLISHED
    else:
        (rej,) = p.of(p.client_events, ev.SessionRejected)
        assert isinstance(rej, ev.SessionRejected)
        assert rej.reason == rift_pb2.REJECT_NOT_AUTHORIZED
    with pytest.raises(LocalProtocolError):
        conn.approve(5.0)


def test_corrupted_msg2_restarts_handshake_without_raising() -> None:
    p = make_pair()
    ((msg1, _),) = p.client.datagrams_to_send(0.0)
    p.host.receive_datagram(msg1, CLIENT, 0.0)
    ((msg2, _),) = p.host.datagrams_to_send(0.0)
    bad = bytearray(msg2)
    bad[-5] ^= 0x40
    p.client.receive_datagram(bytes(bad), HOST, 0.01)  # fails authentication
    assert p.client.drops[DropReason.HANDSHAKE_FAILED] == 1
    p.client.receive_datagram(msg2, HOST, 0.02)  # the spent attempt's real MSG2: just dropped
    # The client started over with a fresh MSG1; the session completes through the network.
    p.run(3.0)
    assert p.client.state is ConnectionState.ESTABLISHED


def test_corrupted_msg3_is_dropped_not_raised() -> None:
    p = make_pair()
    ((msg1, _),) = p.client.datagrams_to_send(0.0)
    p.host.receive_datagram(msg1, CLIENT, 0.0)
    ((msg2, _),) = p.host.datagrams_to_send(0.0)
    p.client.receive_datagram(msg2, HOST, 0.01)
    msg3 = p.client.datagrams_to_send(0.01)[0][0]
    bad = bytearray(msg3)
    bad[-3] ^= 1
    p.host.receive_datagram(bytes(bad), CLIENT, 0.02)
    p.host.receive_datagram(msg3, CLIENT, 0.03)  # must not raise either
    assert (
        sum(p.host.drops.values())
        + sum(c.drops[DropReason.HANDSHAKE_FAILED] for c in p.host.connections.values())
        >= 1
    )


def test_retransmitted_key_event_is_applied_once() -> None:
    p = make_pair()
    p.run(0.3)
    key = rift_pb2.InputMessage(key=rift_pb2.Key(keycode=4, pressed=True))
    p.client.send_input(key, 0.3)
    ((original, _),) = p.client.datagrams_to_send(0.3)
    conn = p.host_conn()
    # The host never saw it and NACKs it; the client resends under a new packet id.
    pid = int.from_bytes(original[8:16], "big")
    p.client.receive_datagram(
        _sealed_from(conn, rift_pb2.ControlMessage(nack=rift_pb2.Nack(packet_ids=[pid]))),
        HOST,
        0.31,
    )
    resent = [d for d, _ in p.client.datagrams_to_send(0.31)]
    assert resent
    for data in resent:
        p.host.receive_datagram(data, CLIENT, 0.32)
    p.host.receive_datagram(original, CLIENT, 0.33)  # the original shows up late
    p.drain()
    keys = [e for e in p.host_events if isinstance(e, ev.InputReceived)]
    assert len(keys) == 1


def _sealed_from(conn: Connection, control: rift_pb2.ControlMessage) -> bytes:
    conn.send_control(control, 0.3)
    out = [d for d, _ in conn.datagrams_to_send(0.3)]
    return out[-1]


def test_hello_waits_for_approval_longer_than_idle_timeout() -> None:
    p = make_pair(allow=False, approval=True, config=RiftConfig(idle_timeout=2.0))
    p.run(8.0)  # well past the idle timeout: nobody answered the Hello yet
    assert p.client.state is ConnectionState.AWAIT_HELLO_ACK
    p.net.schedule(8.1, p.host_conn().approve)
    p.run(9.0)
    assert p.client.state is ConnectionState.ESTABLISHED


@pytest.mark.parametrize("fec_scheme", ["xor", "rs"])
def test_the_largest_datagram_fits_a_relayed_ipv6_path(fec_scheme: str) -> None:
    """At the largest ``chunk_payload`` a datagram plus the relay's 20-byte header still fits
    the UDP payload of a 1500-byte IPv6 packet (1452 bytes); the bound in RiftConfig exists
    for this."""
    cfg = RiftConfig(chunk_payload=1200, fec_scheme=fec_scheme)
    p = make_pair(config=cfg)
    p.run(0.3)
    conn = p.host_conn()
    rng = random.Random(4)
    sizes = []
    for i, n in enumerate((1, 1199, 1200, 1201, 30_000, 150_000)):
        conn.send_video_frame(rng.randbytes(n), keyframe=True, timestamp_us=i + 1, now=0.3)
        for t in range(40):  # let the pacer release everything
            sizes += [len(d) for d, _ in conn.datagrams_to_send(0.3 + t * 0.05)]
    biggest = max(sizes)
    assert 1300 < biggest and biggest + 20 <= 1500 - 40 - 8, biggest
    with pytest.raises(LocalProtocolError, match="chunk_payload"):
        RiftConfig(chunk_payload=1201)


def test_send_ping_goes_out_at_once_and_is_answered() -> None:
    p = make_pair()
    p.run(0.3)
    assert p.client.state is ConnectionState.ESTABLISHED
    p.client.datagrams_to_send(0.3)  # drain what the handshake left
    p.client.send_ping(0.31)
    out = p.client.datagrams_to_send(0.31)
    assert out, "the ping waited for the next ping_interval"
    for data, _ in out:
        p.host.receive_datagram(data, CLIENT, 0.315)
    for data, _ in p.host_conn().datagrams_to_send(0.315):
        p.client.receive_datagram(data, HOST, 0.32)
    assert p.client.srtt is not None and p.client.srtt < 0.1
    with pytest.raises(LocalProtocolError):
        make_pair().client.send_ping(0.0)  # not established yet
