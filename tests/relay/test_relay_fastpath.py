"""The native FORWARD fast path (``wavry.relay._fastpath``) against the pure-Python one.

* every virtual-clock rule of test_relay_core runs again with the fast path attached;
* parity: identical datagram sequences (hypothesis) through a pure core and a core with the fast
  path give the same answers, the same counters and the same sessions;
* the socket drain (recvmmsg/sendmmsg) over real loopback sockets forwards exactly the bytes the
  pure core forwards, in the same order, with the same counters;
* the switch (``WAVRY_RELAY_FASTPATH``) and the build hook.

test_relay_server runs every black-box rule over UDP with both paths (its ``make_rig`` fixture).
"""

from __future__ import annotations

import inspect
import select
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tests.relay.test_relay_core as core_tests
from tests.relay.conftest import RELAY_ID, WALL0, Master, Sids, wavry_id
from wavry.relay import fastpath, wire
from wavry.relay.core import RelayConfig, RelayCore
from wavry.relay.wire import Role
from wavry.rift.header import HandshakeHeader, TransportHeader

pytestmark = pytest.mark.skipif(
    not fastpath.available(), reason=f"native relay fast path: {fastpath.unavailable_reason()}"
)

MASTER = Master()


def attach(core: RelayCore) -> RelayCore:
    core.attach_fastpath(fastpath.load(core.config.replay_window), fastpath.counter_names())
    return core


# -- every core rule, fast path attached ---------------------------------------------------------


class NativeRig(core_tests.Rig):
    def __init__(self, **cfg: object) -> None:
        super().__init__(**cfg)
        attach(self.core)


_CORE_RULES = sorted(
    name
    for name, fn in vars(core_tests).items()
    if name.startswith("test_")
    and callable(fn)
    and not inspect.signature(fn).parameters
    and not hasattr(fn, "hypothesis")
)


def test_core_rules_are_collected() -> None:
    assert len(_CORE_RULES) >= 10


@pytest.mark.parametrize("name", _CORE_RULES)
def test_core_rule_on_the_native_path(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core_tests, "Rig", NativeRig)
    getattr(core_tests, name)()


# -- parity: the same datagrams through both --------------------------------------------------

ADDRS = [("127.0.0.1", 1), ("127.0.0.1", 2), ("127.0.0.2", 1), ("127.0.0.3", 7)]
_SIDS = [Sids().new(), Sids(n=5).new(), bytes(16)]
#: (soft, hard) kbit/s: 1 and 2 kB per second (the caps bite within one example), or roomy
_LIMITS = [(8, 16), (1000, 100_000)]
_TOKENS = {
    (i, role, sub, age, lim): MASTER.lease(
        sid, role, sub=wavry_id(sub), now=WALL0 - age, slimit=soft, hlimit=hard
    )
    for i, sid in enumerate(_SIDS[:2])
    for role in ("client", "server")
    for sub in (1, 2)
    for age in (0, 5000)
    for lim, (soft, hard) in enumerate(_LIMITS)
}


def _payload(kind: int, pid: int, alias: int, size: int) -> bytes:
    """The FORWARD payloads that matter to the packet-id parser, valid or not."""
    body = bytes(size)
    if kind == 0:
        return TransportHeader(alias or 1, pid).encode() + body
    if kind == 1:
        return HandshakeHeader(bytes(4) + bytes(range(12)), pid).encode() + body
    if kind == 2:  # not RIFT: the first 8 bytes are the id
        return b"\x00" + pid.to_bytes(8, "big")[1:] + body
    if kind == 3:  # bad CRC
        head = bytearray(TransportHeader(alias or 1, pid).encode())
        head[17] ^= 0xFF
        return bytes(head) + body
    if kind == 4:  # alias 0 in a short transport header
        head = bytearray(TransportHeader(1, pid).encode())
        head[4:8] = bytes(4)
        return bytes(head)[:18]
    return b"RI\x00\x01"[: size % 5]  # truncated


_action = st.one_of(
    st.tuples(
        st.just("present"),
        st.integers(0, 1),
        st.sampled_from(list(Role)),
        st.integers(1, 2),
        st.sampled_from([0, 5000]),
        st.integers(0, 1),
        st.integers(0, 3),
    ),
    st.tuples(
        st.just("forward"),
        st.integers(0, 2),
        st.integers(0, 5),
        st.one_of(st.integers(0, 80), st.integers(0, 2**64 - 1)),
        st.integers(0, 3),
        st.integers(0, 1200),
        st.integers(0, 3),
    ),
    st.tuples(st.just("renew"), st.integers(0, 2), st.integers(0, 3)),
    st.tuples(st.just("junk"), st.binary(max_size=64), st.integers(0, 3)),
    st.tuples(st.just("tick"), st.floats(0, 90)),
)


def _datagram(act: tuple[Any, ...]) -> tuple[bytes, tuple[str, int]]:
    kind = act[0]
    if kind == "present":
        _, i, role, sub, age, lim, a = act
        token = _TOKENS[(i, role.claim, sub, age, lim)]
        return wire.encode_lease_present(_SIDS[i], role, token), ADDRS[a]
    if kind == "forward":
        _, i, pk, pid, alias, size, a = act
        return b"W\x01\x10\x00" + _SIDS[i] + _payload(pk, pid, alias, size), ADDRS[a]
    if kind == "renew":
        return b"W\x01\x04\x00" + _SIDS[act[1]], ADDRS[act[2]]
    return act[1], ADDRS[act[2]]


def _pair(window: int) -> tuple[RelayCore, RelayCore]:
    cfg = RelayConfig(
        max_sessions=2,
        load_shed_threshold_pct=100,
        ip_rate_limit_pps=30,
        identity_rate_limit_pps=30,
        idle_timeout=30.0,
        lease_duration=60.0,
        cleanup_interval=5.0,
        replay_window=window,
        min_soft_kbps=8,
    )
    return RelayCore(RELAY_ID, MASTER.verifier(), cfg), attach(
        RelayCore(RELAY_ID, MASTER.verifier(), cfg)
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(_action, max_size=80), st.sampled_from([1, 3, 64, 100, 1024]))
def test_parity_with_the_pure_core(actions: list[tuple[Any, ...]], window: int) -> None:
    pure, fast = _pair(window)
    now = 0.0
    for act in actions:
        if act[0] == "tick":
            now += act[1]
            pure.handle_timer(now)
            fast.handle_timer(now)
            continue
        data, addr = _datagram(act)
        want = pure.receive_datagram(data, addr, now, WALL0 + now)
        got = fast.receive_datagram(data, addr, now, WALL0 + now)
        assert got == want, act
        assert fast.counters.as_dict() == pure.counters.as_dict(), act
        assert fast.counters.outcome_total() == fast.counters.packets_rx
    assert fast.sessions() == pure.sessions()
    fp = fast.fastpath
    assert fp is not None and fp.sessions <= fast.session_count


def test_replay_window_edges_match() -> None:
    """Big jumps, the window's edge, u64 ids: the C bitmap against ReplayWindow."""
    for window in (1, 63, 64, 65, 1024):
        pure, fast = _pair(window)
        sid = _SIDS[0]
        for core in (pure, fast):
            for role, sub, a in ((Role.CLIENT, 1, 0), (Role.SERVER, 2, 2)):
                token = _TOKENS[(0, role.claim, sub, 0, 1)]
                core.receive_datagram(
                    wire.encode_lease_present(sid, role, token), ADDRS[a], 0.0, WALL0
                )
        pids = [5, 5, 4, 3, 5 + window, 5 + window - 1, 6, 2**63, 2**63 - window, 2**64 - 1]
        pids += [2**64 - 1 - window + 1, 2**64 - window, 2**64 - 2, 7]
        pids += list(range(10, 300, 7)) + list(range(299, 200, -3))
        for pid in pids:
            data = b"W\x01\x10\x00" + sid + _payload(2, pid, 1, 10)
            want = pure.receive_datagram(data, ADDRS[0], 0.0, WALL0)
            assert fast.receive_datagram(data, ADDRS[0], 0.0, WALL0) == want, (window, pid)
        assert fast.counters.as_dict() == pure.counters.as_dict()


# -- the socket drain (recvmmsg / sendmmsg) ----------------------------------------------------


class Sockets:
    """The relay's socket and four peers, all on 127.0.0.1; ADDRS index -> a real peer."""

    def __init__(self) -> None:
        self.relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.relay.bind(("127.0.0.1", 0))
        self.relay.setblocking(False)
        self.relay.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        self.peers = []
        for _ in ADDRS:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            self.peers.append(s)
        self.addrs = [p.getsockname() for p in self.peers]

    def close(self) -> None:
        for s in [self.relay, *self.peers]:
            s.close()

    def recv_all(self, i: int) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(self.peers[i].recv(4096))
            except BlockingIOError:
                return out


def _run_drain(core: RelayCore, socks: Sockets, burst: list[tuple[bytes, int]], now: float) -> None:
    fp = core.fastpath
    assert fp is not None
    relay = socks.relay.getsockname()
    for data, a in burst:
        socks.peers[a].sendto(data, relay)
    deadline = time.monotonic() + 2.0
    seen = 0
    while seen < len(burst) and time.monotonic() < deadline:
        select.select([socks.relay], [], [], 0.05)
        before = core.counters.packets_rx
        for data, addr in fp.drain(socks.relay.fileno(), now, 16, False):
            out = core.receive_datagram(data, addr, now, WALL0 + now)
            if out is not None:
                socks.relay.sendto(*out)
        core.fold_fastpath()
        seen += core.counters.packets_rx - before
    assert seen == len(burst)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(_action, max_size=40), max_size=4))
def test_socket_drain_forwards_what_the_pure_core_forwards(
    bursts: list[list[tuple[Any, ...]]],
) -> None:
    socks = Sockets()
    try:
        pure, fast = _pair(64)
        real = dict(enumerate(socks.addrs))
        now = 0.0
        want: dict[int, list[bytes]] = {i: [] for i in real}
        got: dict[int, list[bytes]] = {i: [] for i in real}
        for burst in bursts:
            datagrams = []
            for act in burst:
                if act[0] == "tick":
                    continue
                data, addr = _datagram(act)
                a = ADDRS.index(addr)
                datagrams.append((data, a))
                out = pure.receive_datagram(data, real[a], now, WALL0 + now)
                if out is not None:
                    want[socks.addrs.index(out[1])].append(out[0])
            _run_drain(fast, socks, datagrams, now)
            now += 1.5  # a new bandwidth window per burst, on both
            # loopback delivery happens inside sendmmsg/sendto: the datagrams are there
            for i in real:
                got[i] += socks.recv_all(i)
        assert got == want
        assert fast.counters.as_dict() == pure.counters.as_dict()
    finally:
        socks.close()


def test_oversize_datagrams_are_counted_invalid_by_the_drain() -> None:
    socks = Sockets()
    try:
        _, fast = _pair(64)
        fp = fast.fastpath
        assert fp is not None
        socks.peers[0].sendto(b"W" * 3000, socks.relay.getsockname())
        select.select([socks.relay], [], [], 1.0)
        assert fp.drain(socks.relay.fileno(), 0.0, 4, False) == []
        fast.fold_fastpath()
        c = fast.counters
        assert (c.packets_rx, c.bytes_rx, c.invalid_packets) == (1, 3000, 1)
    finally:
        socks.close()


# -- the switch ------------------------------------------------------------------------------


def test_modes() -> None:
    assert fastpath.resolve("off") is False
    assert fastpath.resolve("auto") is True
    assert fastpath.resolve(" ON ") is True
    with pytest.raises(ValueError):
        fastpath.resolve("fast")


def test_on_without_the_extension_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastpath, "_module", None)
    monkeypatch.setattr(fastpath, "_error", "extension not built (test)")
    assert fastpath.resolve("auto") is False
    with pytest.raises(RuntimeError, match="not built"):
        fastpath.resolve("on")
    with pytest.raises(RuntimeError):
        fastpath.load(64)


def test_attach_rules() -> None:
    core = attach(RelayCore(RELAY_ID, MASTER.verifier()))
    with pytest.raises(RuntimeError):
        attach(core)
    fp = fastpath.load(8)
    with pytest.raises(ValueError):
        fp.set_peer(b"short", 0, ("127.0.0.1", 1), 1.0, 1, 1)
    with pytest.raises(ValueError):
        fp.set_peer(bytes(16), 2, ("127.0.0.1", 1), 1.0, 1, 1)
    with pytest.raises(ValueError):
        fp.set_peer(bytes(16), 0, ("localhost", 1), 1.0, 1, 1)
    fp.set_peer(bytes(16), 0, ("::1", 5, 0, 0), 1.0, 1, 1)
    assert fp.sessions == 1 and fp.last_activity(bytes(16)) == float("-inf")
    assert fp.remove_session(bytes(16)) and not fp.remove_session(bytes(16))
    with pytest.raises(ValueError):
        fastpath.load(0)


def test_many_sessions_grow_the_table() -> None:
    fp = fastpath.load(64)
    sids = [i.to_bytes(16, "big") for i in range(1, 2000)]
    for n, sid in enumerate(sids):
        fp.set_peer(sid, n % 2, ("127.0.0.1", n % 65535), 1.0, 1, 1)
    assert fp.sessions == len(sids)
    assert all(fp.last_activity(s) is not None for s in sids)
    assert all(fp.remove_session(s) for s in sids)
    assert fp.sessions == 0


async def test_server_refuses_on_without_the_extension(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.relay.test_relay_server import settings as server_settings
    from wavry.relay.server import RelayServer

    monkeypatch.setattr(fastpath, "_module", None)
    monkeypatch.setattr(fastpath, "_error", "extension not built (test)")
    server = RelayServer(server_settings(fastpath="on"))
    with pytest.raises(RuntimeError, match="WAVRY_RELAY_FASTPATH=on"):
        await server.start()
    await server.close()
    caplog.set_level("INFO", logger="wavry.relay.server")
    auto = RelayServer(server_settings(fastpath="auto"))
    await auto.start()
    try:
        assert not auto.fastpath_enabled
        assert "pure-Python path (extension not built (test))" in caplog.text
        assert "wavry_relay_fastpath_enabled{" in auto.prometheus()
    finally:
        await auto.close()


# -- the build hook ----------------------------------------------------------------------------


def _tree(root: Path) -> Path:
    src = Path(__file__).resolve().parents[2] / "src/wavry/relay/_fastpath.c"
    dest = root / "src/wavry/relay"
    dest.mkdir(parents=True)
    shutil.copy(src, dest / src.name)
    return root


def test_build_hook_is_deterministic(tmp_path: Path) -> None:
    import hatch_build

    a = hatch_build.compile_extension(_tree(tmp_path / "a"))
    b = hatch_build.compile_extension(_tree(tmp_path / "b"))
    assert a is not None and b is not None
    assert a.read_bytes() == b.read_bytes()  # other directory, same bytes
    assert str(tmp_path).encode() not in a.read_bytes()


def test_build_hook_without_a_compiler_builds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import hatch_build

    root = _tree(tmp_path)
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    assert hatch_build.compile_extension(root) is None
    assert "building without it" in capsys.readouterr().err
    monkeypatch.delenv("CC")
    monkeypatch.setenv("WAVRY_NO_EXTENSION", "1")
    assert hatch_build.compile_extension(root) is None
    assert not list((root / "src/wavry/relay").glob("*.so"))
