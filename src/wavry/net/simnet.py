"""A deterministic, event-driven network simulator in virtual time.

Two sans-IO endpoints (anything with the small ``Endpoint`` interface below: the RIFT host and
client connections, a relay, a test echo) are joined by two one-way links — usually
``ImpairmentLink``s, one per direction. ``SimNetwork.run_until(t)`` advances a virtual clock from
event to event (a heap of deliveries and scheduled actions, plus each endpoint's timer), and after
every event drains the datagrams of the endpoint(s) it touched into the links. Nothing sleeps and
nothing polls: a simulated minute with thousands of datagrams per second runs in real seconds, and
a seeded run is reproducible exactly.

Routing is by address, as on a real network: endpoint ``a`` sits at ``addr_a`` and ``b`` at
``addr_b``; a datagram reaches the other side only if it is addressed to that side's *current*
address (otherwise it is counted in ``misrouted`` and lost). ``rebind_a(new_addr)`` models a NAT
rebinding: from then on a's datagrams arrive from ``new_addr``, and replies still sent to the old
address are lost.

Ordering: events at equal times run in the order they were created; heap events (deliveries,
scheduled actions) run before timers due at the same instant. Virtual time never goes back: an
action scheduled in the past runs at the current time. Two endpoints that answer each other
instantly over zero-delay links would ping-pong forever at one instant — give links a delay.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Literal, Protocol

__all__ = [
    "TIMER_EPSILON",
    "Address",
    "Endpoint",
    "Link",
    "SimNetwork",
]

Address = tuple[str, int]
Side = Literal["a", "b"]

#: When an endpoint's timer is still due (<= now) right after ``handle_timer(now)``, it is moved
#: this far ahead (and ``timer_stalls`` counted) so a buggy endpoint cannot freeze virtual time.
TIMER_EPSILON = 1e-6


class _Delivery:
    __slots__ = ("data", "side", "src")

    def __init__(self, side: Side, data: bytes, src: Address) -> None:
        self.side: Side = side
        self.data = data
        self.src = src


_Event = _Delivery | Callable[[float], None]


class Endpoint(Protocol):
    """The sans-IO surface the simulator drives."""

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None: ...

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]: ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


class Link(Protocol):
    """A one-way path: ``transmit`` returns delivery times (empty = lost, two = duplicated)."""

    def transmit(self, size: int, now: float) -> list[float]: ...


class SimNetwork:
    """Two endpoints, two links, one virtual clock (starting at ``start``, default 0.0)."""

    def __init__(
        self,
        a: Endpoint,
        b: Endpoint,
        link_ab: Link,
        link_ba: Link,
        *,
        addr_a: Address,
        addr_b: Address,
        start: float = 0.0,
    ) -> None:
        if addr_a == addr_b:
            raise ValueError("the two endpoints need different addresses")
        self.a = a
        self.b = b
        self.link_ab = link_ab
        self.link_ba = link_ba
        self._addr: dict[Side, Address] = {"a": addr_a, "b": addr_b}
        self._now = start
        self._heap: list[tuple[float, int, _Event]] = []
        self._seq = 0
        self._timer_a = math.inf
        self._timer_b = math.inf
        self._primed = False
        #: Events processed (deliveries, scheduled actions and timer firings).
        self.events = 0
        self.delivered_to_a = 0
        self.delivered_to_b = 0
        self.timer_fires = 0
        #: Datagrams addressed to neither side's current address (lost).
        self.misrouted = 0
        #: Times an endpoint's timer did not advance past ``now`` after ``handle_timer``.
        self.timer_stalls = 0

    # -- public API --

    @property
    def now(self) -> float:
        """The virtual clock."""
        return self._now

    @property
    def addr_a(self) -> Address:
        return self._addr["a"]

    @property
    def addr_b(self) -> Address:
        return self._addr["b"]

    def rebind_a(self, new_addr: Address) -> None:
        """a's datagrams appear from ``new_addr`` from now on (NAT rebinding)."""
        self._rebind("a", new_addr)

    def rebind_b(self, new_addr: Address) -> None:
        """b's datagrams appear from ``new_addr`` from now on."""
        self._rebind("b", new_addr)

    def schedule(self, at: float, fn: Callable[[float], None]) -> None:
        """Run ``fn(now)`` at virtual time ``at``; both endpoints are drained afterwards."""
        self._push(at, fn)

    def inject(self, to: Side, data: bytes, src: Address, at: float) -> None:
        """Deliver raw ``data`` to endpoint ``to`` at ``at`` as if from ``src`` (bypasses links)."""
        if to not in ("a", "b"):
            raise ValueError(f"unknown side {to!r}")
        self._push(at, _Delivery(to, bytes(data), src))

    def run_until(self, t_end: float, *, on_step: Callable[[float], None] | None = None) -> None:
        """Process every event due at or before ``t_end``; the clock then reads ``t_end``.

        ``on_step(now)`` is called after each processed event.
        """
        if not self._primed:
            # Endpoints may have queued datagrams (a client's first handshake) before any event.
            self._primed = True
            self._after_call()
        heap = self._heap
        while True:
            t_heap = heap[0][0] if heap else math.inf
            t_a = self._timer_a
            t_b = self._timer_b
            if t_heap <= t_a and t_heap <= t_b:
                if t_heap > t_end:
                    break
                t, _seq, event = heapq.heappop(heap)
                self._advance(t)
                if isinstance(event, _Delivery):
                    self._deliver(event)
                else:
                    event(self._now)
                    self._after_call()
            elif t_a <= t_b:
                if t_a > t_end:
                    break
                self._fire("a", t_a)
            else:
                if t_b > t_end:
                    break
                self._fire("b", t_b)
            self.events += 1
            if on_step is not None:
                on_step(self._now)
        self._advance(t_end)

    # -- internals --

    def _rebind(self, side: Side, new_addr: Address) -> None:
        other: Side = "b" if side == "a" else "a"
        if new_addr == self._addr[other]:
            raise ValueError("both endpoints cannot share an address")
        self._addr[side] = new_addr

    def _push(self, at: float, event: _Event) -> None:
        if not math.isfinite(at):
            return  # a link may answer "never" (an absurdly slow bottleneck)
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, event))

    def _advance(self, t: float) -> None:
        if t > self._now:
            self._now = t

    def _deliver(self, delivery: _Delivery) -> None:
        side = delivery.side
        if side == "a":
            self.delivered_to_a += 1
            self.a.receive_datagram(delivery.data, delivery.src, self._now)
        else:
            self.delivered_to_b += 1
            self.b.receive_datagram(delivery.data, delivery.src, self._now)
        self._flush(side)
        self._refresh_timer(side, stalled_ok=True)

    def _fire(self, side: Side, due: float) -> None:
        self._advance(due)
        self.timer_fires += 1
        endpoint = self.a if side == "a" else self.b
        endpoint.handle_timer(self._now)
        self._flush(side)
        self._refresh_timer(side, stalled_ok=False)

    def _after_call(self) -> None:
        self._flush("a")
        self._flush("b")
        self._refresh_timer("a", stalled_ok=True)
        self._refresh_timer("b", stalled_ok=True)

    def _refresh_timer(self, side: Side, *, stalled_ok: bool) -> None:
        endpoint = self.a if side == "a" else self.b
        timer = endpoint.get_timer()
        due = math.inf if timer is None or math.isnan(timer) else timer
        if not stalled_ok and due <= self._now:
            self.timer_stalls += 1
            due = self._now + TIMER_EPSILON
        if side == "a":
            self._timer_a = due
        else:
            self._timer_b = due

    def _flush(self, side: Side) -> None:
        dst_side: Side
        if side == "a":
            endpoint, link, dst_side = self.a, self.link_ab, "b"
        else:
            endpoint, link, dst_side = self.b, self.link_ba, "a"
        src = self._addr[side]
        dst_addr = self._addr[dst_side]
        now = self._now
        for data, addr in endpoint.datagrams_to_send(now):
            if addr != dst_addr:
                self.misrouted += 1
                continue
            for t in link.transmit(len(data), now):
                self._push(t, _Delivery(dst_side, data, src))
