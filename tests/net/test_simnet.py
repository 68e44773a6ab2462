from __future__ import annotations

import random

import pytest

from wavry.net.impairment import ImpairmentConfig, ImpairmentLink
from wavry.net.simnet import TIMER_EPSILON, Address, SimNetwork

A: Address = ("10.0.0.1", 1000)
B: Address = ("10.0.0.2", 2000)


class Echo:
    """Replies to every datagram with the same bytes, to the source address."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, Address, float]] = []
        self._out: list[tuple[bytes, Address]] = []

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        self.received.append((data, addr, now))
        self._out.append((data, addr))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        raise AssertionError("echo has no timer")


class Pinger:
    """Sends a numbered datagram to ``peer`` every ``interval`` and records the replies."""

    def __init__(self, peer: Address, interval: float, count: int) -> None:
        self.peer = peer
        self.interval = interval
        self.count = count
        self.sent = 0
        self.next_send: float | None = 0.0
        self.replies: list[tuple[int, float]] = []
        self.timer_calls: list[float] = []
        self._out: list[tuple[bytes, Address]] = []

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        if len(data) == 4:
            self.replies.append((int.from_bytes(data, "big"), now))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        return self.next_send

    def handle_timer(self, now: float) -> None:
        self.timer_calls.append(now)
        assert self.next_send is not None and now >= self.next_send
        self._out.append((self.sent.to_bytes(4, "big"), self.peer))
        self.sent += 1
        self.next_send = None if self.sent >= self.count else self.next_send + self.interval


def plain(delay: float = 0.0) -> ImpairmentLink:
    return ImpairmentLink(ImpairmentConfig(delay=delay), random.Random(0))


def test_ping_echo_round_trip_is_twice_the_delay() -> None:
    pinger, echo = Pinger(B, 0.1, 5), Echo()
    net = SimNetwork(pinger, echo, plain(0.010), plain(0.015), addr_a=A, addr_b=B)
    net.run_until(1.0)
    assert net.now == 1.0
    assert [seq for seq, _ in pinger.replies] == [0, 1, 2, 3, 4]
    for seq, at in pinger.replies:
        assert at == pytest.approx(seq * 0.1 + 0.025)
    assert [addr for _, addr, _ in echo.received] == [A] * 5
    assert pinger.timer_calls == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert net.timer_fires == 5
    assert net.delivered_to_a == net.delivered_to_b == 5


def test_run_until_stops_at_the_horizon_and_resumes() -> None:
    pinger, echo = Pinger(B, 0.1, 10), Echo()
    net = SimNetwork(pinger, echo, plain(0.05), plain(0.05), addr_a=A, addr_b=B)
    steps: list[float] = []
    net.run_until(0.25, on_step=steps.append)
    assert len(pinger.replies) == 2  # replies to pings 0 and 1 arrive at 0.1 and 0.2
    assert steps == sorted(steps) and all(t <= 0.25 for t in steps)
    net.run_until(2.0)
    assert len(pinger.replies) == 10


def test_lossy_link_and_determinism() -> None:
    def run() -> list[tuple[int, float]]:
        pinger, echo = Pinger(B, 0.001, 2000), Echo()
        cfg = ImpairmentConfig(loss=0.2, delay=0.01, jitter=0.005)
        net = SimNetwork(
            pinger,
            echo,
            ImpairmentLink(cfg, random.Random(1)),
            ImpairmentLink(cfg, random.Random(2)),
            addr_a=A,
            addr_b=B,
        )
        net.run_until(5.0)
        return pinger.replies

    first = run()
    assert first == run()
    assert 0.55 < len(first) / 2000 < 0.73  # 0.8 * 0.8 = 64 % survive both ways
    received_times = [t for _, t in first]
    assert received_times == sorted(received_times)


def test_bandwidth_limited_link_spaces_deliveries() -> None:
    pinger, echo = Pinger(B, 0.0001, 100), Echo()  # far faster than the link
    link_ab = ImpairmentLink(ImpairmentConfig(bandwidth_bps=32_000), random.Random(0))
    net = SimNetwork(pinger, echo, link_ab, plain(), addr_a=A, addr_b=B)
    net.run_until(1.0)
    arrivals = [t for _, _, t in echo.received]
    gaps = {round(b - a, 9) for a, b in zip(arrivals, arrivals[1:], strict=False)}
    assert gaps == {0.001}  # 4 bytes at 32 kbit/s = 1 ms each


class Sink(Echo):
    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        self.received.append((data, addr, now))


def test_schedule_and_inject() -> None:
    sink, echo = Sink(), Echo()
    net = SimNetwork(sink, echo, plain(0.01), plain(0.01), addr_a=A, addr_b=B)
    calls: list[float] = []
    net.schedule(0.5, calls.append)
    net.inject("b", b"\xde\xad", ("192.0.2.9", 9), at=0.2)
    net.inject("b", b"hello", A, at=0.3)
    net.run_until(1.0)
    assert calls == [0.5]
    assert echo.received[0] == (b"\xde\xad", ("192.0.2.9", 9), 0.2)
    # The echo to the stranger is misrouted (not a's address); the one to a arrives 10 ms later.
    assert net.misrouted == 1
    ((data, src, at),) = sink.received
    assert (data, src) == (b"hello", B)
    assert at == pytest.approx(0.31)
    with pytest.raises(ValueError):
        net.inject("c", b"", A, at=1.0)  # type: ignore[arg-type]


def test_rebind_changes_the_source_address() -> None:
    pinger, echo = Pinger(B, 0.1, 4), Echo()
    net = SimNetwork(pinger, echo, plain(0.01), plain(0.01), addr_a=A, addr_b=B)
    new_addr: Address = ("10.0.0.99", 4242)
    net.schedule(0.15, lambda _now: net.rebind_a(new_addr))
    net.run_until(1.0)
    assert [addr for _, addr, _ in echo.received] == [A, A, new_addr, new_addr]
    assert len(pinger.replies) == 4  # echo replies to the new address reach a
    assert net.addr_a == new_addr
    with pytest.raises(ValueError):
        net.rebind_a(B)


def test_replies_to_the_old_address_are_lost_after_rebind() -> None:
    class StaleServer(Echo):
        def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
            self.received.append((data, addr, now))
            self._out.append((data, A))  # keeps answering the first address it learnt

    pinger, server = Pinger(B, 0.1, 4), StaleServer()
    net = SimNetwork(pinger, server, plain(0.01), plain(0.01), addr_a=A, addr_b=B)
    net.schedule(0.15, lambda _now: net.rebind_a(("10.0.0.99", 4242)))
    net.run_until(1.0)
    assert len(pinger.replies) == 2
    assert net.misrouted == 2


def test_a_stalled_timer_cannot_freeze_time() -> None:
    class Stuck(Echo):
        def __init__(self) -> None:
            super().__init__()
            self.fires = 0

        def get_timer(self) -> float | None:
            return 0.0  # always due: a buggy endpoint

        def handle_timer(self, now: float) -> None:
            self.fires += 1

    stuck = Stuck()
    net = SimNetwork(stuck, Echo(), plain(), plain(), addr_a=A, addr_b=B)
    net.run_until(100 * TIMER_EPSILON)
    assert net.timer_stalls == stuck.fires
    assert 90 <= stuck.fires <= 101
    assert net.now == pytest.approx(100 * TIMER_EPSILON)


def test_endpoints_need_distinct_addresses() -> None:
    with pytest.raises(ValueError):
        SimNetwork(Echo(), Echo(), plain(), plain(), addr_a=A, addr_b=A)


def test_many_packets_are_all_delivered_in_order_on_a_clean_link() -> None:
    pinger, echo = Pinger(B, 0.0005, 20_000), Echo()  # 2000 datagrams per simulated second
    net = SimNetwork(pinger, echo, plain(0.02), plain(0.02), addr_a=A, addr_b=B)
    net.run_until(11.0)
    assert [seq for seq, _ in pinger.replies] == list(range(20_000))
    assert net.events == 20_000 * 3  # timer + delivery at b + delivery at a
