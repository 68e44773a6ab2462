"""RelayLink without sockets, against the real sans-IO relay (``RelayCore``) where one is needed."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.relay.conftest import RELAY_ID, Master
from wavry.net.relay_link import (
    MAX_PAYLOAD,
    LinkState,
    RelayLink,
    RelayLinkClosedError,
    RelayPayloadTooLargeError,
    parse_relay_addr,
    reject_message,
)
from wavry.relay import wire
from wavry.relay.core import RelayConfig, RelayCore
from wavry.relay.wire import MessageType, RejectCode, Role
from wavry.rift.header import TransportHeader

MASTER = Master()
WALL0 = 1_700_000_000.0
RELAY = ("127.0.0.1", 4000)
A = ("10.0.0.1", 5000)  # client's address as the relay sees it
B = ("10.0.0.2", 6000)  # host's
SID = uuid.UUID("5f0c6d1e-8a4b-4c2d-9e3f-0123456789ab").bytes


class Clock:
    """Monotonic ``now`` and wall time moving together (wall = WALL0 + now)."""

    def __init__(self) -> None:
        self.now = 0.0

    def wall(self) -> float:
        return WALL0 + self.now


def link(
    clock: Clock,
    role: Role = Role.CLIENT,
    *,
    sid: bytes = SID,
    rid: str = RELAY_ID,
    ttl: float = 900.0,
) -> RelayLink:
    token = MASTER.lease(sid, role.claim, rid=rid, now=clock.wall(), ttl=ttl)
    return RelayLink(RELAY, sid, role, token, clock.now, wall=clock.wall)


def relay(**kw: float) -> RelayCore:
    return RelayCore(RELAY_ID, MASTER.verifier(), RelayConfig(**kw))  # type: ignore[arg-type]


def rift(pid: int, size: int = 200) -> bytes:
    head = TransportHeader(7, pid).encode()
    return head + bytes((pid + i) & 0xFF for i in range(size - len(head)))


class Net:
    """Two links and a RelayCore, moving datagrams by hand."""

    def __init__(self, clock: Clock, core: RelayCore | None = None, ttl: float = 900.0) -> None:
        self.clock = clock
        self.core = core or relay()
        self.client = link(clock, Role.CLIENT, ttl=ttl)
        self.host = link(clock, Role.SERVER, ttl=ttl)
        self.addr = {id(self.client): A, id(self.host): B}
        self.delivered: dict[int, list[bytes]] = {id(self.client): [], id(self.host): []}
        self.lost = False  # the relay is down: everything sent to it vanishes

    def other(self, lk: RelayLink) -> RelayLink:
        return self.host if lk is self.client else self.client

    def to_relay(self, lk: RelayLink, data: bytes) -> None:
        if self.lost:
            return
        now = self.clock.now
        answer = self.core.receive_datagram(data, self.addr[id(lk)], now, self.clock.wall())
        if answer is None:
            return
        out, dest = answer
        for peer in (self.client, self.host):
            if self.addr[id(peer)] == dest:
                payload = peer.receive(out, now)
                if payload is not None:
                    self.delivered[id(peer)].append(payload)

    def step(self, until: float, dt: float = 0.01) -> None:
        """Advance time, firing timers and flushing control traffic of both links."""
        while self.clock.now < until:
            self.clock.now = round(self.clock.now + dt, 6)
            for lk in (self.client, self.host):
                t = lk.get_timer()
                if t is not None and t <= self.clock.now:
                    lk.handle_timer(self.clock.now)
                for d in lk.datagrams_to_send(self.clock.now):
                    self.to_relay(lk, d)

    def send(self, lk: RelayLink, payload: bytes) -> None:
        wrapped = lk.wrap(payload)
        if wrapped is not None:
            self.to_relay(lk, wrapped)


# -- presentation -------------------------------------------------------------------------


def test_present_retransmission_schedule_and_timeout() -> None:
    clock = Clock()
    lk = link(clock)
    sent: list[float] = []
    while clock.now <= 12.0:
        t = lk.get_timer()
        if t is None:
            break
        clock.now = t
        lk.handle_timer(t)
        for d in lk.datagrams_to_send(t):
            assert wire.parse_lease_present(d).role is Role.CLIENT
            sent.append(round(t, 6))
    # 0, then gaps 0.2, 0.4, 0.8, 1.6, then capped at 2 s; nothing after the 10 s timeout.
    assert sent == [0.0, 0.2, 0.6, 1.4, 3.0, 5.0, 7.0, 9.0]
    assert lk.state is LinkState.TIMED_OUT and lk.closed
    assert lk.get_timer() is None
    assert "no answer from the relay" in (lk.reject_message or "")
    with pytest.raises(RelayLinkClosedError):
        lk.wrap(b"RI" + bytes(40))


def test_ack_binds_flushes_held_datagrams_and_measures_rtt() -> None:
    clock = Clock()
    lk = link(clock)
    [present] = lk.datagrams_to_send(0.0)
    assert wire.parse_header(present) == (MessageType.LEASE_PRESENT, SID)
    # RIFT datagrams wrapped before the ACK are held, not sent (the relay would drop them).
    assert lk.wrap(rift(1)) is None
    assert lk.wrap(rift(2)) is None
    clock.now = 0.05
    ack = wire.encode_lease_ack(SID, int((clock.wall() + 300) * 1000), 1000, 2000)
    assert lk.receive(ack, clock.now) is None
    assert lk.state is LinkState.BOUND
    held = lk.datagrams_to_send(clock.now)
    assert [wire.parse_header(d) for d in held] == [(MessageType.FORWARD, SID)] * 2
    assert [d[20:] for d in held] == [rift(1), rift(2)]
    st_ = lk.stats()
    assert st_.last_rtt_ms == pytest.approx(50.0)
    assert (st_.acks, st_.presents_sent, st_.forwarded_out) == (1, 1, 2)
    assert (st_.soft_kbps, st_.hard_kbps) == (1000, 2000)
    # bound: wraps go straight out
    out = lk.wrap(rift(3))
    assert out is not None and out[:20] == wire.HEADER.pack(0x57, 1, 0x10, 0, SID)


def test_wrap_receive_round_trip_through_the_real_relay_core() -> None:
    clock = Clock()
    net = Net(clock)
    net.step(0.05)
    assert net.client.state is LinkState.BOUND and net.host.state is LinkState.BOUND
    for pid in range(1, 50):
        net.send(net.client, rift(pid, 100 + pid))
        net.send(net.host, rift(pid, 1400))
    assert net.delivered[id(net.host)] == [rift(p, 100 + p) for p in range(1, 50)]
    assert net.delivered[id(net.client)] == [rift(p, 1400) for p in range(1, 50)]
    assert net.core.counters.packets_forwarded == 98
    assert net.client.stats().forwarded_in == 49 and net.host.stats().forwarded_out == 49


def test_payload_size_limit() -> None:
    clock = Clock()
    lk = link(clock)
    lk.receive(wire.encode_lease_ack(SID, int((WALL0 + 300) * 1000), 1, 1), 0.0)
    out = lk.wrap(bytes(MAX_PAYLOAD))
    assert out is not None and len(out) == 1500
    with pytest.raises(RelayPayloadTooLargeError) as err:
        lk.wrap(bytes(MAX_PAYLOAD + 1))
    assert err.value.size == 1481 and err.value.limit == 1480
    assert lk.stats().dropped_out == 1


# -- rejects ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "code", "words"),
    [
        ({"rid": "another-relay"}, RejectCode.WRONG_RELAY, "another relay"),
        ({"ttl": -60.0}, RejectCode.EXPIRED, "ask for a new relay"),
    ],
)
def test_reject_is_terminal_with_a_typed_reason(
    kw: dict[str, object], code: RejectCode, words: str
) -> None:
    clock = Clock()
    core = relay()
    # An expired token: issued long ago (iat..exp in the past beyond the 30 s skew).
    if "ttl" in kw:
        token = MASTER.lease(SID, "client", now=WALL0 - 7200, ttl=600.0)
        lk = RelayLink(RELAY, SID, Role.CLIENT, token, 0.0, wall=clock.wall)
    else:
        lk = link(clock, rid=str(kw["rid"]))
    for d in lk.datagrams_to_send(0.0):
        answer = core.receive_datagram(d, A, 0.0, clock.wall())
        assert answer is not None
        assert lk.receive(answer[0], 0.01) is None
    assert lk.state is LinkState.REJECTED
    assert lk.reject_code is code
    assert words in (lk.reject_message or "")
    assert lk.reject_message == reject_message(code)
    assert lk.get_timer() is None
    assert lk.datagrams_to_send(5.0) == []
    with pytest.raises(RelayLinkClosedError):
        lk.wrap(rift(1))


def test_rate_limited_reject_is_transient() -> None:
    clock = Clock()
    lk = link(clock)
    lk.datagrams_to_send(0.0)
    lk.receive(wire.encode_lease_reject(SID, RejectCode.RATE_LIMITED), 0.01)
    assert lk.state is LinkState.PRESENTING
    clock.now = 0.2
    lk.handle_timer(0.2)
    assert len(lk.datagrams_to_send(0.2)) == 1  # still presenting, paced
    lk.receive(wire.encode_lease_ack(SID, int((WALL0 + 300) * 1000), 1, 1), 0.25)
    assert lk.state is LinkState.BOUND


def test_other_sessions_and_garbage_are_counted_not_raised() -> None:
    clock = Clock()
    lk = link(clock)
    other = uuid.uuid4().bytes
    assert lk.receive(wire.encode_forward(other, rift(1)), 0.0) is None
    assert lk.receive(wire.encode_lease_reject(other, RejectCode.BANNED), 0.0) is None
    assert lk.receive(b"", 0.0) is None
    assert lk.receive(b"W\x01\x10\x00" + SID, 0.0) is None  # FORWARD without payload
    assert lk.receive(b"W\x01\x03\x00" + SID + b"\x00\x63", 0.0) is None  # unknown reason
    assert lk.state is LinkState.PRESENTING and lk.rejects == 0
    assert lk.stats().dropped_in == 5


# -- recovery -----------------------------------------------------------------------------


def test_silence_re_presents_and_a_restarted_relay_recovers() -> None:
    clock = Clock()
    net = Net(clock)
    net.step(0.05)
    pid = 0

    def traffic(until: float) -> None:
        nonlocal pid
        while clock.now < until:
            pid += 1
            net.send(net.client, rift(pid))
            net.send(net.host, rift(pid))
            net.step(clock.now + 0.05)

    traffic(2.0)
    assert net.client.rebinds == net.host.rebinds == 0  # steady traffic: no spurious presents
    got = len(net.delivered[id(net.host)])
    # The relay restarts (forgets every session) after 0.3 s of outage.
    net.lost = True
    traffic(2.3)
    net.core = relay()
    net.lost = False
    traffic(4.0)
    assert net.client.rebinds >= 1 and net.host.rebinds >= 1
    assert net.client.state is LinkState.BOUND and net.host.state is LinkState.BOUND
    after = net.delivered[id(net.host)][got:]
    assert after, "no traffic after the relay restart"
    # Recovered within ~1 s of the restart: silence_s (0.6) + paced presents.
    first = int.from_bytes(after[-1][8:16], "big")
    assert first == pid
    assert net.core.counters.sessions_created == 1


def test_network_changed_re_presents_from_the_new_address() -> None:
    clock = Clock()
    net = Net(clock)
    net.step(0.05)
    net.addr[id(net.client)] = ("10.0.0.1", 5999)  # NAT rebinding
    net.client.network_changed(clock.now)
    assert net.client.state is LinkState.REBINDING
    net.step(clock.now + 0.02)
    assert net.client.state is LinkState.BOUND
    assert net.core.counters.nat_rebind_events == 1
    net.send(net.host, rift(99))
    assert net.delivered[id(net.client)][-1] == rift(99)


def test_renew_before_relay_lease_expiry_then_lease_ending() -> None:
    clock = Clock()
    # Relay-side lease 10 s per ACK; the token itself lasts 25 s (+30 s skew at the relay).
    net = Net(clock, relay(lease_duration=10.0, idle_timeout=1000.0), ttl=25.0)
    net.step(0.05)
    first = net.client.lease_expires_unix
    assert first == pytest.approx(clock.wall() + 10.0, abs=0.1)
    pid = 0
    while clock.now < 54.5:
        pid += 1
        net.send(net.client, rift(pid))
        net.send(net.host, rift(pid))
        net.step(clock.now + 0.1)
        assert net.client.state is LinkState.BOUND
    assert net.client.renews_sent >= 5
    assert net.client.rebinds == 0
    # Renewals moved the relay-side expiry up to the token's exp + skew (25 + 30 s), no further.
    assert net.client.lease_expires_unix == pytest.approx(WALL0 + 55.0, abs=0.2)
    assert net.client.lease_ending
    # Past it the relay stops forwarding; the re-present is refused: the owner needs a new lease.
    while clock.now < 60.0 and not net.client.closed:
        pid += 1
        net.send(net.client, rift(pid))
        net.step(clock.now + 0.1)
    assert net.client.state is LinkState.REJECTED
    assert net.client.reject_code is RejectCode.EXPIRED


def test_renew_rejected_falls_back_to_presenting() -> None:
    clock = Clock()
    lk = link(clock)
    lk.datagrams_to_send(0.0)
    lk.receive(wire.encode_lease_ack(SID, int((clock.wall() + 10) * 1000), 1, 1), 0.0)
    t = lk.get_timer()
    assert t == pytest.approx(0.6)  # silence check first
    # keep traffic coming so only the renew timer (80% of 10 s) fires
    for k in range(1, 81):
        lk.receive(wire.encode_forward(SID, rift(k)), k * 0.1)
    clock.now = 8.0
    lk.handle_timer(8.0)
    [renew] = lk.datagrams_to_send(8.0)
    assert wire.parse_header(renew) == (MessageType.LEASE_RENEW, SID)
    # A relay that restarted does not know the session: reject EXPIRED to the renew.
    lk.receive(wire.encode_lease_reject(SID, RejectCode.EXPIRED), 8.01)
    assert lk.state is LinkState.REBINDING and lk.reject_code is None
    [present] = lk.datagrams_to_send(8.01)
    assert wire.parse_header(present) == (MessageType.LEASE_PRESENT, SID)
    # The same reject to a present is final.
    lk.receive(wire.encode_lease_reject(SID, RejectCode.EXPIRED), 8.02)
    assert lk.state is LinkState.REJECTED and lk.reject_code is RejectCode.EXPIRED


def test_parse_relay_addr() -> None:
    assert parse_relay_addr("203.0.113.5:4000") == ("203.0.113.5", 4000)
    assert parse_relay_addr("[2001:db8::1]:4000") == ("2001:db8::1", 4000)
    for bad in ("nope", "1.2.3.4:", ":80", "1.2.3.4:0", "1.2.3.4:70000", "[::1]4000"):
        with pytest.raises(ValueError):
            parse_relay_addr(bad)


# -- properties ---------------------------------------------------------------------------

_header = st.sampled_from([b"", b"W", b"W\x01", b"W\x01\x02\x00" + SID, b"W\x01\x03\x00" + SID])


@settings(max_examples=400, deadline=None)
@given(prefix=_header, body=st.binary(max_size=1600), now=st.floats(0, 100))
def test_receive_never_raises(prefix: bytes, body: bytes, now: float) -> None:
    clock = Clock()
    lk = link(clock)
    before = lk.stats()
    out = lk.receive(prefix + body, now)
    assert out is None or isinstance(out, bytes)
    after = lk.stats()
    # Every datagram lands somewhere: an ACK, a reject, a forward or a drop.
    moved = (after.acks + after.rejects + after.forwarded_in + after.dropped_in) - (
        before.acks + before.rejects + before.forwarded_in + before.dropped_in
    )
    assert moved == 1
    lk.datagrams_to_send(now)
    lk.get_timer()


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(min_size=1, max_size=MAX_PAYLOAD))
def test_wrap_then_receive_is_identity(payload: bytes) -> None:
    clock = Clock()
    lk = link(clock)
    lk.receive(wire.encode_lease_ack(SID, int((WALL0 + 300) * 1000), 1, 1), 0.0)
    wrapped = lk.wrap(payload)
    assert wrapped is not None
    # The relay forwards byte-identical, header included: the peer's link unwraps it.
    peer = link(clock, Role.SERVER)
    assert peer.receive(wrapped, 0.0) == payload


def test_from_signaling_relay_credentials() -> None:
    from wavry.gateway.signaling.messages import RelayCredentials

    clock = Clock()
    token = MASTER.lease(SID, "server", now=clock.wall())
    creds = RelayCredentials(
        target_username="alice",
        relay_id=RELAY_ID,
        addr="127.0.0.1:4000",
        session_id=str(uuid.UUID(bytes=SID)),
        lease=token,
        role="server",
        expires_at=clock.wall() + 900,
    )
    lk = RelayLink.from_credentials(creds, 0.0, wall=clock.wall)
    assert (lk.relay_addr, lk.session_id, lk.role) == (RELAY, SID, Role.SERVER)
    assert lk.token_expires_unix == clock.wall() + 900
    # And the relay accepts what it presents.
    [present] = lk.datagrams_to_send(0.0)
    answer = relay().receive_datagram(present, B, 0.0, clock.wall())
    assert answer is not None and lk.receive(answer[0], 0.01) is None
    assert lk.state is LinkState.BOUND


def test_token_exp_is_read_when_not_given() -> None:
    clock = Clock()
    lk = link(clock, ttl=600.0)
    assert lk.token_expires_unix == WALL0 + 600
    bad = RelayLink(RELAY, SID, Role.CLIENT, "not-a-paseto", 0.0, wall=clock.wall)
    assert bad.token_expires_unix is None


_ack = st.builds(
    lambda ms, soft, hard: wire.encode_lease_ack(SID, ms, soft, hard),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)
_reject = st.builds(
    lambda c: wire.HEADER.pack(0x57, 1, 3, 0, SID) + c.to_bytes(2, "big"),
    st.integers(0, 0xFFFF),
)
_fwd = st.builds(lambda p: wire.encode_forward(SID, p), st.binary(min_size=0, max_size=1480))
_action = st.one_of(
    st.tuples(st.just("rx"), st.one_of(_ack, _reject, _fwd, st.binary(max_size=64))),
    st.tuples(st.just("tick"), st.floats(0.0, 5.0)),
    st.tuples(st.just("wrap"), st.binary(min_size=1, max_size=1600)),
    st.tuples(st.just("moved"), st.just(b"")),
)


@settings(max_examples=300, deadline=None)
@given(actions=st.lists(_action, max_size=40))
def test_any_sequence_keeps_the_link_consistent(actions: list[tuple[str, object]]) -> None:
    clock = Clock()
    lk = link(clock)
    for kind, arg in actions:
        if kind == "rx":
            assert isinstance(arg, bytes)
            out = lk.receive(arg, clock.now)
            assert out is None or (arg[20:] == out and arg[2] == 0x10)
        elif kind == "tick":
            assert isinstance(arg, float)
            clock.now += arg
            lk.handle_timer(clock.now)
        elif kind == "wrap":
            assert isinstance(arg, bytes)
            try:
                lk.wrap(arg)
            except (RelayPayloadTooLargeError, RelayLinkClosedError):
                assert len(arg) > MAX_PAYLOAD or lk.closed
        else:
            lk.network_changed(clock.now)
        sent = lk.datagrams_to_send(clock.now)
        if lk.closed:
            assert sent == [] and lk.get_timer() is None
        else:
            assert lk.get_timer() is not None
        for d in sent:
            assert 20 <= len(d) <= 1500 and d[4:20] == SID
        assert lk.state is not LinkState.REJECTED or lk.reject_code is not None
