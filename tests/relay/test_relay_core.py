"""Sans-IO relay core: every rule on a virtual clock, and the accounting invariant."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.relay.conftest import RELAY_ID, WALL0, Master, Sids, wavry_id
from wavry.relay import wire
from wavry.relay.core import OUTCOMES, RelayConfig, RelayCore
from wavry.relay.wire import MessageType, RejectCode, Role
from wavry.rift.header import HandshakeHeader, TransportHeader

MASTER = Master()
A = ("127.0.0.1", 1000)
B = ("127.0.0.2", 2000)


class Rig:
    def __init__(self, **cfg: object) -> None:
        self.core = RelayCore(RELAY_ID, MASTER.verifier(), RelayConfig(**cfg))  # type: ignore[arg-type]
        self.now = 0.0
        self.sids = Sids()

    def send(self, data: bytes, addr: tuple[str, int]) -> tuple[bytes, tuple[str, int]] | None:
        out = self.core.receive_datagram(data, addr, self.now, WALL0 + self.now)
        c = self.core.counters
        assert c.outcome_total() == c.packets_rx
        return out  # type: ignore[return-value]

    def present(self, sid: bytes, role: Role, addr: tuple[str, int], **kw: object) -> bytes:
        token = MASTER.lease(sid, role.claim, now=WALL0 + self.now, **kw)  # type: ignore[arg-type]
        out = self.send(wire.encode_lease_present(sid, role, token), addr)
        assert out is not None and out[1] == addr
        return out[0]

    def pair(self) -> bytes:
        sid = self.sids.new()
        assert self.present(sid, Role.CLIENT, A)[2] == MessageType.LEASE_ACK
        assert self.present(sid, Role.SERVER, B)[2] == MessageType.LEASE_ACK
        return sid


def rift(pid: int, alias: int = 7, body: bytes = b"x" * 100) -> bytes:
    return TransportHeader(alias, pid).encode() + body


def code(data: bytes) -> RejectCode:
    return wire.parse_lease_reject(data).code


def test_forward_both_ways_byte_identical() -> None:
    r = Rig()
    sid = r.pair()
    up = wire.encode_forward(sid, rift(1))
    assert r.send(up, A) == (up, B)
    down = wire.encode_forward(sid, rift(1, alias=9))
    assert r.send(down, B) == (down, A)
    assert r.core.counters.packets_forwarded == 2
    assert r.core.active_sessions == 1


def test_ack_contents() -> None:
    r = Rig(lease_duration=300.0)
    sid = r.sids.new()
    ack = wire.parse_lease_ack(r.present(sid, Role.CLIENT, A, slimit=10, hlimit=5))
    # soft is floored at 1000 kbps, hard never below soft
    assert (ack.soft_kbps, ack.hard_kbps) == (1000, 1000)
    assert ack.expires_unix_ms == int((WALL0 + 300) * 1000)
    short = r.sids.new()
    ack = wire.parse_lease_ack(r.present(short, Role.CLIENT, A, ttl=100))
    assert ack.expires_unix_ms == int((WALL0 + 130) * 1000)  # token exp + skew, not 300 s


def test_forward_needs_both_peers_and_known_address() -> None:
    r = Rig()
    sid = r.sids.new()
    r.present(sid, Role.CLIENT, A)
    assert r.send(wire.encode_forward(sid, rift(1)), A) is None
    assert r.core.counters.session_not_active_packets == 1
    r.present(sid, Role.SERVER, B)
    stranger = ("127.0.0.3", 3000)
    assert r.send(wire.encode_forward(sid, rift(2)), stranger) is None
    assert r.core.counters.unknown_peer_packets == 1
    assert r.send(wire.encode_forward(r.sids.new(), rift(2)), A) is None
    assert r.core.counters.session_not_found_packets == 1


def test_forward_from_unknown_address_never_rebinds() -> None:
    r = Rig()
    sid = r.pair()
    moved = ("127.0.0.1", 1001)
    assert r.send(wire.encode_forward(sid, rift(1)), moved) is None
    assert r.send(wire.encode_forward(sid, rift(2)), B) == (wire.encode_forward(sid, rift(2)), A)
    assert r.core.counters.nat_rebind_events == 0


def test_nat_rebind_by_represent() -> None:
    r = Rig()
    sid = r.pair()
    assert r.send(wire.encode_forward(sid, rift(1)), A) is not None
    moved = ("127.0.0.1", 1001)
    assert r.present(sid, Role.CLIENT, moved)[2] == MessageType.LEASE_ACK
    assert r.core.counters.nat_rebind_events == 1
    data = wire.encode_forward(sid, rift(2))
    assert r.send(data, moved) == (data, B)
    assert r.send(wire.encode_forward(sid, rift(3)), A) is None  # old address is gone
    back = wire.encode_forward(sid, rift(1, alias=9))
    assert r.send(back, B) == (back, moved)
    # the replay window survives the rebind: id 1 was already relayed
    assert r.send(wire.encode_forward(sid, rift(1)), moved) is None
    assert r.core.counters.replay_dropped_packets == 1


def test_role_locked_to_first_identity() -> None:
    r = Rig()
    sid = r.pair()
    rej = r.present(sid, Role.CLIENT, ("127.0.0.9", 9), sub=wavry_id(9))
    assert code(rej) is RejectCode.INVALID_SIGNATURE
    assert r.core.counters.auth_reject_packets == 1


def test_replay_window() -> None:
    r = Rig()
    sid = r.pair()
    for pid in (5, 3, 4):
        assert r.send(wire.encode_forward(sid, rift(pid)), A) is not None
    for pid in (5, 3):
        assert r.send(wire.encode_forward(sid, rift(pid)), A) is None
    assert r.core.counters.replay_dropped_packets == 2
    # non-RIFT payloads use their first 8 bytes
    raw = wire.encode_forward(sid, (100).to_bytes(8, "big") + b"opaque")
    assert r.send(raw, A) is not None and r.send(raw, A) is None
    # RIFT handshakes (packet id 0) are resent byte-identical by design and pass
    hs = wire.encode_forward(sid, HandshakeHeader(bytes(4) + b"h" * 12, 0).encode() + b"e" * 32)
    assert r.send(hs, A) is not None and r.send(hs, A) is not None
    # a RIFT-looking payload with a bad CRC is invalid; too short for a sequence too
    bad = bytearray(wire.encode_forward(sid, rift(200)))
    bad[20 + 17] ^= 0xFF
    assert r.send(bytes(bad), A) is None
    assert r.send(wire.encode_forward(sid, b"short"), A) is None
    assert r.core.counters.invalid_packets == 2


def test_bandwidth_hard_cap_per_second() -> None:
    r = Rig()
    sid = r.sids.new()
    r.present(sid, Role.CLIENT, A, slimit=1000, hlimit=1000)  # 125 000 bytes per second
    r.present(sid, Role.SERVER, B)
    sent = 0
    for pid in range(1, 200):
        if r.send(wire.encode_forward(sid, rift(pid, body=b"x" * 1182)), A) is not None:
            sent += 1
    assert sent == 125_000 // 1220
    assert r.core.counters.bandwidth_dropped_packets == 199 - sent
    r.now += 1.0
    assert r.send(wire.encode_forward(sid, rift(500)), A) is not None


def test_ip_rate_limit_on_control_and_strangers() -> None:
    r = Rig(ip_rate_limit_pps=3)
    sid = r.pair()  # 2 presents from 2 IPs
    for pid in range(1, 20):  # peers' forwards are not IP-limited
        assert r.send(wire.encode_forward(sid, rift(pid)), A) is not None
    assert r.send(wire.encode_lease_renew(sid), A)[0][2] == MessageType.LEASE_ACK  # type: ignore[index]
    assert r.send(wire.encode_lease_renew(sid), A)[0][2] == MessageType.LEASE_ACK  # type: ignore[index]
    out = r.send(wire.encode_lease_renew(sid), A)
    assert out is not None and code(out[0]) is RejectCode.RATE_LIMITED
    assert r.send(wire.encode_forward(sid, rift(99)), ("127.0.0.1", 5)) is None  # same IP
    assert r.core.counters.rate_limited_packets == 2
    r.now += 1.0
    assert r.send(wire.encode_lease_renew(sid), A)[0][2] == MessageType.LEASE_ACK  # type: ignore[index]


def test_identity_rate_limit() -> None:
    r = Rig(identity_rate_limit_pps=2)
    sid = r.sids.new()
    addrs = [(f"127.0.1.{i}", 1) for i in range(1, 4)]
    assert r.present(sid, Role.CLIENT, addrs[0])[2] == MessageType.LEASE_ACK
    assert r.present(sid, Role.CLIENT, addrs[1])[2] == MessageType.LEASE_ACK
    assert code(r.present(sid, Role.CLIENT, addrs[2])) is RejectCode.RATE_LIMITED
    assert r.core.counters.identity_rate_limited_packets == 1


def test_ip_table_bounded_fails_closed() -> None:
    r = Rig(ip_table_size=2)
    for i in range(3):
        r.send(wire.encode_lease_renew(r.sids.new()), (f"127.0.2.{i}", 1))
    assert r.core.counters.session_not_found_packets == 2
    assert r.core.counters.rate_limited_packets == 1


def test_load_shed_and_session_full() -> None:
    r = Rig(max_sessions=4, load_shed_threshold_pct=50)
    r.pair()
    r.pair()
    assert r.core.overloaded
    rej = r.present(r.sids.new(), Role.CLIENT, A)
    assert code(rej) is RejectCode.SESSION_FULL
    assert r.core.counters.overload_shed_packets == 1
    r2 = Rig(max_sessions=1, load_shed_threshold_pct=100)
    r2.pair()
    assert code(r2.present(r2.sids.new(), Role.CLIENT, A)) is RejectCode.SESSION_FULL
    assert r2.core.counters.session_full_rejects == 1


def test_lease_reject_codes() -> None:
    r = Rig()
    sid = r.sids.new()
    assert code(r.present(sid, Role.CLIENT, A, rid="elsewhere")) is RejectCode.WRONG_RELAY
    expired = MASTER.lease(sid, "client", now=WALL0 - 2000)
    out = r.send(wire.encode_lease_present(sid, Role.CLIENT, expired), A)
    assert out is not None and code(out[0]) is RejectCode.EXPIRED
    # wrong role: a server lease presented as client
    token = MASTER.lease(sid, "server", now=WALL0)
    out = r.send(wire.encode_lease_present(sid, Role.CLIENT, token), A)
    assert out is not None and code(out[0]) is RejectCode.INVALID_SIGNATURE
    r.core.banned.add(wavry_id(1))
    assert code(r.present(sid, Role.CLIENT, A)) is RejectCode.BANNED
    c = r.core.counters
    assert (c.wrong_relay_rejects, c.expired_lease_rejects, c.auth_reject_packets) == (1, 1, 1)
    assert c.banned_rejects == 1 and r.core.session_count == 0


def test_no_master_key_rejects() -> None:
    core = RelayCore(RELAY_ID, None)
    sid = Sids().new()
    out = core.receive_datagram(
        wire.encode_lease_present(sid, Role.CLIENT, MASTER.lease(sid, "client")), A, 0.0, WALL0
    )
    assert out is not None and code(out[0]) is RejectCode.INVALID_SIGNATURE


def test_renew() -> None:
    r = Rig(lease_duration=100.0)
    sid = r.pair()
    stranger = ("127.0.0.3", 1)
    assert code(r.send(wire.encode_lease_renew(sid), stranger)[0]) is RejectCode.INVALID_SIGNATURE  # type: ignore[index]
    assert code(r.send(wire.encode_lease_renew(r.sids.new()), A)[0]) is RejectCode.EXPIRED  # type: ignore[index]
    r.now = 90.0
    ack = wire.parse_lease_ack(r.send(wire.encode_lease_renew(sid), A)[0])  # type: ignore[index]
    assert ack.expires_unix_ms == int((WALL0 + 190) * 1000)
    # B did not renew: its relay lease ran out, forwarding stops both ways
    r.now = 101.0
    assert r.send(wire.encode_forward(sid, rift(1)), A) is None
    assert code(r.send(wire.encode_lease_renew(sid), B)[0]) is RejectCode.EXPIRED  # type: ignore[index]
    # renewals never pass the token's exp (900 s + 30 s skew)
    for t in (180.0, 270.0, 360.0, 450.0, 540.0, 630.0, 720.0, 810.0, 900.0):
        r.now = t
        r.send(wire.encode_lease_renew(sid), A)
    r.now = 929.0
    ack = wire.parse_lease_ack(r.send(wire.encode_lease_renew(sid), A)[0])  # type: ignore[index]
    assert ack.expires_unix_ms == int((WALL0 + 930) * 1000)
    r.now = 931.0
    assert code(r.send(wire.encode_lease_renew(sid), A)[0]) is RejectCode.EXPIRED  # type: ignore[index]


def test_cleanup_idle_and_expired() -> None:
    r = Rig(idle_timeout=60.0, lease_duration=300.0, cleanup_interval=10.0)
    idle = r.pair()
    r.now = 50.0
    busy = r.pair()
    assert r.core.get_timer() == 10.0
    r.now = 61.0
    r.core.handle_timer(r.now)
    assert r.core.session_count == 1 and r.core.counters.cleanup_idle_sessions == 1
    assert r.send(wire.encode_forward(idle, rift(1)), A) is None
    for t in range(62, 400, 30):
        r.now = float(t)
        assert r.send(wire.encode_forward(busy, rift(t)), A) is not None or t >= 350
        r.core.handle_timer(r.now)
    assert r.core.session_count == 0
    assert r.core.counters.cleanup_expired_sessions == 1


def test_control_types_from_peers_are_invalid() -> None:
    r = Rig()
    sid = r.sids.new()
    for data in (
        wire.encode_lease_ack(sid, 1, 1, 1),
        wire.encode_lease_reject(sid, RejectCode.EXPIRED),
        b"W\x01\x20\x00" + sid,
        b"W\x01\x10\x00" + bytes(16) + b"12345678",
        b"W\x01\x04\x00" + bytes(16),
        b"junk",
    ):
        assert r.send(data, A) is None
    assert r.core.counters.invalid_packets == 6


def test_backpressure_counted_as_outcome() -> None:
    r = Rig()
    r.core.note_backpressure_drop(100)
    c = r.core.counters
    assert c.packets_rx == 1 == c.backpressure_dropped_packets == c.outcome_total()
    assert c.as_dict()["dropped_packets"] == 1


def test_counter_names_are_declared() -> None:
    from wavry.relay.core import Counters

    assert set(Counters.__annotations__) == set(Counters.__slots__)
    assert set(OUTCOMES) <= set(Counters.__slots__)


@pytest.mark.parametrize("cfg", [{"max_sessions": 0}, {"load_shed_threshold_pct": 40}])
def test_config_validation(cfg: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        RelayConfig(**cfg)  # type: ignore[arg-type]


# -- the accounting invariant ----------------------------------------------------------------

ADDRS = [("127.0.0.1", 1), ("127.0.0.1", 2), ("127.0.0.2", 1), ("127.0.0.3", 7)]
_SIDS = [Sids().new(), Sids(n=5).new(), bytes(16)]
_TOKENS = {
    (i, role, rid, age): MASTER.lease(sid, role, sub=wavry_id(s), rid=rid, now=WALL0 - age)
    for i, sid in enumerate(_SIDS[:2])
    for role in ("client", "server")
    for s in (1, 2)
    for rid in (RELAY_ID, "other")
    for age in (0, 5000)
}

_action = st.one_of(
    st.tuples(
        st.just("present"),
        st.integers(0, 1),
        st.sampled_from(["client", "server"]),
        st.sampled_from([RELAY_ID, "other"]),
        st.sampled_from([0, 5000]),
        st.sampled_from(list(Role)),
        st.integers(0, 3),
    ),
    st.tuples(st.just("forward"), st.integers(0, 2), st.integers(0, 40), st.integers(0, 3)),
    st.tuples(st.just("renew"), st.integers(0, 2), st.integers(0, 3)),
    st.tuples(st.just("junk"), st.binary(max_size=64), st.integers(0, 3)),
    st.tuples(st.just("tick"), st.floats(0, 120)),
    st.tuples(st.just("backpressure"), st.integers(0, 1500)),
)


@settings(max_examples=150)
@given(st.lists(_action, max_size=60), st.integers(1, 4), st.integers(2, 50))
def test_every_datagram_has_exactly_one_outcome(
    actions: list[tuple[object, ...]], max_sessions: int, pps: int
) -> None:
    core = RelayCore(
        RELAY_ID,
        MASTER.verifier(),
        RelayConfig(
            max_sessions=max_sessions,
            load_shed_threshold_pct=50,
            ip_rate_limit_pps=pps,
            identity_rate_limit_pps=pps,
            idle_timeout=30.0,
            lease_duration=60.0,
            cleanup_interval=5.0,
        ),
    )
    now = 0.0
    c = core.counters
    for act in actions:
        kind = act[0]
        out = None
        if kind == "present":
            _, i, role, rid, age, wire_role, a = act
            token = _TOKENS[(i, role, rid, age)]  # type: ignore[index]
            data = wire.encode_lease_present(_SIDS[i], wire_role, token)  # type: ignore[index,arg-type]
            out = core.receive_datagram(data, ADDRS[a], now, WALL0 + now)  # type: ignore[index]
        elif kind == "forward":
            _, i, pid, a = act
            data = b"W\x01\x10\x00" + _SIDS[i] + rift(pid)  # type: ignore[index,arg-type]
            out = core.receive_datagram(data, ADDRS[a], now, WALL0 + now)  # type: ignore[index]
        elif kind == "renew":
            _, i, a = act
            data = b"W\x01\x04\x00" + _SIDS[i]  # type: ignore[index]
            out = core.receive_datagram(data, ADDRS[a], now, WALL0 + now)  # type: ignore[index]
        elif kind == "junk":
            out = core.receive_datagram(act[1], ADDRS[act[2]], now, WALL0 + now)  # type: ignore[arg-type,index]
        elif kind == "tick":
            now += act[1]  # type: ignore[operator]
            core.handle_timer(now)
        else:
            core.note_backpressure_drop(act[1])  # type: ignore[arg-type]
        assert c.outcome_total() == c.packets_rx
        assert core.session_count <= max_sessions
        if out is not None and out[0][2] == MessageType.FORWARD:
            assert out[0] == data
    assert c.packets_forwarded + c.lease_ack_packets + c.dropped_packets == c.packets_rx
