"""One client handshake over several candidate paths (docs/protocol.md §4.10).

Datagrams are moved by hand between a client ``Connection`` and host ``HostEndpoint``s with a
virtual clock, so every copy of MSG1 and which path answered are visible.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.rift import events as ev
from wavry.rift.config import HostOffer
from wavry.rift.connection import MAX_PATH_CANDIDATES, Connection, ConnectionState
from wavry.rift.header import HandshakeHeader, parse_header
from wavry.rift.host_endpoint import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.proto import rift_pb2

Address = tuple[str, int]
CLIENT: Address = ("10.2.0.2", 40000)
LAN: Address = ("10.1.0.2", 4444)
SRFLX: Address = ("203.0.113.11", 4444)
RELAY: Address = ("relay:0123456789ab", 4000)


def _rng(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def _hello() -> rift_pb2.Hello:
    return rift_pb2.Hello(
        client_name="t",
        supported_codecs=[rift_pb2.H264],
        max_resolution=rift_pb2.Resolution(width=640, height=360),
        max_fps=30,
    )


def _host(seed: int) -> tuple[HostEndpoint, Identity]:
    identity = Identity.generate(_rng(seed))
    return HostEndpoint(identity=identity, offer=HostOffer(), rng=_rng(seed + 7)), identity


def _client(host_id: str, first: Address, others: list[Address], now: float = 0.0) -> Connection:
    return Connection.client(
        identity=Identity.generate(_rng(99)),
        peer_addr=first,
        hello=_hello(),
        now=now,
        expected_host_id=host_id,
        candidates=others,
        rng=_rng(5),
    )


def _is_msg1(data: bytes) -> bool:
    header, _ = parse_header(data)
    return isinstance(header, HandshakeHeader) and header.packet_id == 0


class Paths:
    """Which candidate address reaches which host endpoint (None: the path is dead)."""

    def __init__(self, client: Connection, routes: dict[Address, HostEndpoint | None]) -> None:
        self.client = client
        self.routes = routes
        self.sent_to: list[Address] = []
        self.now = 0.0

    def step(self, dt: float = 0.01) -> None:
        self.now += dt
        c = self.client
        if (t := c.get_timer()) is not None and t <= self.now:
            c.handle_timer(self.now)
        for data, addr in c.datagrams_to_send(self.now):
            self.sent_to.append(addr)
            host = self.routes.get(addr)
            if host is not None:
                host.receive_datagram(data, CLIENT, self.now)
        for addr, host in self.routes.items():
            if host is None:
                continue
            for data, _dest in host.datagrams_to_send(self.now):
                # The reply comes back from the address the client sent to.
                c.receive_datagram(data, addr, self.now)
            while host.next_event() is not None:
                pass

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end and self.client.state is not ConnectionState.ESTABLISHED:
            self.step()


def _events(conn: Connection) -> list[ev.Event]:
    out = []
    while (e := conn.next_event()) is not None:
        out.append(e)
    return out


def test_msg1_goes_to_every_candidate_and_the_answering_path_wins() -> None:
    host, host_identity = _host(1)
    client = _client(host_identity.wavry_id, LAN, [SRFLX, RELAY])
    first = [addr for data, addr in client.datagrams_to_send(0.0) if _is_msg1(data)]
    assert first == [LAN, SRFLX, RELAY]
    assert client.path_candidates == [LAN, SRFLX, RELAY]
    # Only the reflexive address gets through (the LAN one is another network).
    client2 = _client(host_identity.wavry_id, LAN, [SRFLX, RELAY])
    paths = Paths(client2, {LAN: None, SRFLX: host, RELAY: None})
    paths.run(2.0)
    assert client2.state is ConnectionState.ESTABLISHED
    assert client2.peer_addr == SRFLX
    assert client2.path_candidates == []
    changed = [e for e in _events(client2) if isinstance(e, ev.PeerAddressChanged)]
    assert changed and changed[0].new == SRFLX
    # After MSG2 nothing goes to the losing paths any more.
    paths.sent_to.clear()
    for _ in range(50):
        paths.step()
    assert paths.sent_to and set(paths.sent_to) == {SRFLX}


def test_retransmissions_use_the_punching_schedule_on_every_path() -> None:
    host, host_identity = _host(2)
    client = _client(host_identity.wavry_id, LAN, [SRFLX])
    paths = Paths(client, {LAN: None, SRFLX: None})
    paths.run(1.6)
    lan_sends = paths.sent_to.count(LAN)
    # t = 0, 0.1, 0.3, 0.7, 1.5 (punch_retry 0.1 s doubling) -> five copies on each path
    assert lan_sends == 5
    assert paths.sent_to.count(SRFLX) == 5
    # A single-path client keeps the gentler schedule (0, 0.25, 0.75).
    single = _client(host_identity.wavry_id, LAN, [])
    p1 = Paths(single, {LAN: None})
    p1.run(1.0)
    assert p1.sent_to.count(LAN) == 3


def test_a_relay_added_later_gets_msg1_at_once_and_can_win() -> None:
    host, host_identity = _host(3)
    client = _client(host_identity.wavry_id, SRFLX, [])
    paths = Paths(client, {SRFLX: None, RELAY: host})
    paths.run(1.0)  # the direct path never answers
    assert client.state is ConnectionState.HANDSHAKE
    assert client.add_candidates([RELAY, RELAY, SRFLX], paths.now) == [RELAY]
    queued = client.datagrams_to_send(paths.now)
    assert [addr for data, addr in queued if _is_msg1(data)] == [RELAY]
    host.receive_datagram(queued[0][0], CLIENT, paths.now)
    paths.run(1.0)
    assert client.state is ConnectionState.ESTABLISHED
    assert client.peer_addr == RELAY
    assert client.add_candidates([("10.9.9.9", 1)], paths.now) == []


def test_a_stranger_on_one_path_does_not_end_the_attempt() -> None:
    stranger, _ = _host(4)
    host, host_identity = _host(5)
    client = _client(host_identity.wavry_id, LAN, [SRFLX])
    paths = Paths(client, {LAN: stranger, SRFLX: None})
    paths.run(0.05)  # the stranger answers first; the real host is not reachable yet
    assert client.state is ConnectionState.HANDSHAKE
    assert client.path_candidates == [SRFLX]
    assert client.stats().drops.get("handshake_failed", 0) >= 1
    paths.routes = {LAN: stranger, SRFLX: host}
    paths.run(2.0)
    assert client.state is ConnectionState.ESTABLISHED
    assert client.peer_addr == SRFLX


def test_a_stranger_on_the_only_path_closes_with_host_key_changed() -> None:
    stranger, _ = _host(6)
    _host_ep, host_identity = _host(7)
    client = _client(host_identity.wavry_id, LAN, [])
    paths = Paths(client, {LAN: stranger})
    paths.run(0.5)
    assert client.state is ConnectionState.CLOSED
    closed = [e for e in _events(client) if isinstance(e, ev.ConnectionClosed)]
    assert closed[-1].reason == rift_pb2.DISCONNECT_HOST_KEY_CHANGED


def test_candidates_are_bounded() -> None:
    _host_ep, host_identity = _host(8)
    many = [("10.0.0.1", p) for p in range(1, 100)]
    client = _client(host_identity.wavry_id, LAN, many)
    assert len(client.path_candidates) == MAX_PATH_CANDIDATES
    assert client.add_candidates([("10.0.0.2", 1)], 0.0) == []


@settings(max_examples=40, deadline=None)
@given(
    alive=st.lists(st.booleans(), min_size=1, max_size=6),
    stranger_at=st.integers(min_value=-1, max_value=5),
)
def test_any_live_path_establishes_and_only_live_paths_win(
    alive: list[bool], stranger_at: int
) -> None:
    host, host_identity = _host(9)
    stranger, _ = _host(10)
    addrs = [("192.0.2.1", 1000 + i) for i in range(len(alive))]
    routes: dict[Address, HostEndpoint | None] = {
        a: (host if ok else None) for a, ok in zip(addrs, alive, strict=True)
    }
    if 0 <= stranger_at < len(addrs):
        routes[addrs[stranger_at]] = stranger
    client = _client(host_identity.wavry_id, addrs[0], addrs[1:])
    paths = Paths(client, routes)
    paths.run(3.0)
    live = [a for a in addrs if routes[a] is host]
    if live:
        assert client.state is ConnectionState.ESTABLISHED
        assert client.peer_addr in live
    else:
        assert client.state is not ConnectionState.ESTABLISHED
