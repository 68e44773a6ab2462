"""STUN client: the codec (property-tested), Binding transactions (sans-IO timing), and the
asyncio integration on the streaming socket against a real coturn STUN server."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wavry.bench.stream_sim import frame_payload
from wavry.net.stun import (
    Attr,
    BindingTransaction,
    Method,
    RetransmitPolicy,
    StunError,
    StunErrorResponse,
    StunTimeoutError,
    decode_xor_address,
    encode_address,
    encode_request,
    encode_response,
    encode_xor_address,
    looks_like_stun,
    parse_message,
    parse_server,
    stun_servers_from_env,
)
from wavry.net.udp import UdpDriver, open_udp_driver
from wavry.rift import events as ev
from wavry.rift.config import HostOffer, RiftConfig
from wavry.rift.connection import Connection, ConnectionState
from wavry.rift.host_endpoint import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.proto import rift_pb2

TXID = bytes(range(12))
SERVER = ("192.0.2.1", 3478)

# --- codec -----------------------------------------------------------------------------------


@given(st.binary(max_size=1600))
def test_arbitrary_bytes_never_crash_the_parser(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except StunError:
        return
    try:
        msg.mapped_address()
    except StunError:
        pass
    assert len(msg.txid) == 12
    _ = msg.error_code, msg.error_reason


@given(st.binary(min_size=20, max_size=200), st.binary(max_size=64))
def test_stun_shaped_garbage_never_crashes(head: bytes, tail: bytes) -> None:
    # Keep the cookie and a plausible length so the attribute walker is exercised.
    body = tail + bytes(-len(tail) % 4)
    data = struct.pack(">HHI", head[0] & 0x3F, len(body), 0x2112A442) + head[8:20] + body
    try:
        parse_message(data)
    except StunError:
        pass


attrs_st = st.lists(
    st.tuples(
        st.integers(0x0002, 0x7FFF).filter(lambda k: k not in (Attr.MESSAGE_INTEGRITY,)),
        st.binary(max_size=40),
    ),
    max_size=8,
)


@given(
    st.sampled_from([Method.BINDING, Method.ALLOCATE, Method.REFRESH]),
    attrs_st,
    st.binary(min_size=12, max_size=12),
    st.booleans(),
)
def test_encode_parse_round_trip(
    method: int, attrs: list[tuple[int, bytes]], txid: bytes, fingerprint: bool
) -> None:
    msg = parse_message(encode_request(method, attrs, txid=txid, fingerprint=fingerprint))
    assert msg.method == method and msg.cls == 0 and msg.txid == txid
    got = list(msg.attrs)
    if fingerprint:
        assert got[-1][0] == Attr.FINGERPRINT
        got = got[:-1]
    assert got == attrs


def test_random_transaction_ids() -> None:
    ids = {parse_message(encode_request(Method.BINDING, [])).txid for _ in range(100)}
    assert len(ids) == 100


@given(st.ip_addresses(), st.integers(1, 65535), st.binary(min_size=12, max_size=12))
def test_xor_mapped_address_round_trip(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int, txid: bytes
) -> None:
    raw = encode_response(
        Method.BINDING, txid, [(Attr.XOR_MAPPED_ADDRESS, encode_xor_address(str(ip), port, txid))]
    )
    assert parse_message(raw).mapped_address() == (str(ip), port)


@given(st.ip_addresses(), st.integers(1, 65535))
def test_mapped_address_fallback(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
) -> None:
    raw = encode_response(
        Method.BINDING, TXID, [(Attr.MAPPED_ADDRESS, encode_address(str(ip), port))]
    )
    assert parse_message(raw).mapped_address() == (str(ip), port)


def test_xor_mapped_is_preferred_over_mapped() -> None:
    raw = encode_response(
        Method.BINDING,
        TXID,
        [
            (Attr.MAPPED_ADDRESS, encode_address("10.0.0.1", 1)),
            (Attr.XOR_MAPPED_ADDRESS, encode_xor_address("203.0.113.5", 40000, TXID)),
        ],
    )
    assert parse_message(raw).mapped_address() == ("203.0.113.5", 40000)


def test_known_vector_rfc5769_ipv4_response() -> None:
    # RFC 5769 §2.2 sample IPv4 response, XOR-MAPPED-ADDRESS 192.0.2.1:32853 (with SOFTWARE,
    # MESSAGE-INTEGRITY and FINGERPRINT: the CRC check must accept it).
    sample = bytes.fromhex(
        "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220"
        "002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
        "80280004c07d4c96"
    )
    msg = parse_message(sample)
    assert msg.is_success and msg.mapped_address() == ("192.0.2.1", 32853)
    broken = sample[:-1] + bytes([sample[-1] ^ 1])
    with pytest.raises(StunError, match="FINGERPRINT"):
        parse_message(broken)


def test_fingerprint_must_be_last() -> None:
    raw = bytearray(encode_request(Method.BINDING, [], txid=TXID, fingerprint=True))
    extra = struct.pack(">HH", Attr.SOFTWARE, 4) + b"abcd"
    raw[2:4] = struct.pack(">H", len(raw) - 20 + len(extra))
    with pytest.raises(StunError):
        parse_message(bytes(raw) + extra)


def test_bad_xor_addresses() -> None:
    with pytest.raises(StunError):
        decode_xor_address(b"\x00\x03\x00\x00\x00\x00\x00\x00", TXID)
    with pytest.raises(StunError):
        decode_xor_address(b"\x00\x02\x00\x00" + bytes(8), TXID)


def test_demultiplexing_rule() -> None:
    assert looks_like_stun(encode_request(Method.BINDING, []))
    assert not looks_like_stun(b"RI" + bytes(40))  # RIFT
    assert not looks_like_stun(bytes(19))
    assert not looks_like_stun(b"\x00\x01\x00\x00" + bytes(16))  # no cookie


# --- transactions ----------------------------------------------------------------------------


def _run_silent(tx: BindingTransaction, start: float) -> list[float]:
    sent: list[float] = []
    now = start
    while not tx.done:
        if tx.datagrams_to_send(now):
            sent.append(now - start)
        at = tx.get_timer()
        assert at is not None
        now = at
        tx.handle_timer(now)
    return sent


def test_default_retransmission_schedule() -> None:
    policy = RetransmitPolicy()
    assert policy.send_times() == [0.0, 0.5, 1.5, 3.5]
    assert policy.deadline() == 5.5
    tx = BindingTransaction(SERVER, 100.0)
    assert _run_silent(tx, 100.0) == [0.0, 0.5, 1.5, 3.5]
    assert isinstance(tx.error, StunTimeoutError) and tx.transmissions == 4


def test_rfc_full_schedule_is_allowed_but_capped() -> None:
    policy = RetransmitPolicy(max_transmissions=7, final_wait_rtos=16)
    assert policy.send_times() == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert policy.deadline() == 39.5  # RFC 5389 §7.2.1
    with pytest.raises(ValueError):
        RetransmitPolicy(max_transmissions=8)


def test_late_timer_sends_one_copy() -> None:
    tx = BindingTransaction(SERVER, 0.0)
    assert len(tx.datagrams_to_send(0.0)) == 1
    assert len(tx.datagrams_to_send(10.0)) == 1
    assert tx.transmissions == 2


def _success(txid: bytes, addr: tuple[str, int] = ("203.0.113.7", 5000)) -> bytes:
    value = encode_xor_address(addr[0], addr[1], txid)
    return encode_response(
        Method.BINDING, txid, [(Attr.XOR_MAPPED_ADDRESS, value)], fingerprint=True
    )


def test_transaction_checks_the_transaction_id() -> None:
    tx = BindingTransaction(SERVER, 0.0)
    tx.datagrams_to_send(0.0)
    assert not tx.receive(parse_message(_success(TXID)), 0.1)
    assert not tx.done
    assert tx.receive(parse_message(_success(tx.txid)), 0.2)
    assert tx.result == ("203.0.113.7", 5000) and tx.rtt == pytest.approx(0.2)
    assert tx.get_timer() is None and tx.datagrams_to_send(9.0) == []


def test_error_response_and_missing_address_are_typed_errors() -> None:
    tx = BindingTransaction(SERVER, 0.0)
    err = struct.pack(">HH", Attr.ERROR_CODE, 12) + bytes([0, 0, 4, 20]) + b"Unknown!"
    raw = bytearray(encode_response(Method.BINDING, tx.txid, [], error=True))
    raw[2:4] = struct.pack(">H", len(err))
    assert tx.receive(parse_message(bytes(raw) + err), 0.1)
    assert isinstance(tx.error, StunErrorResponse) and tx.error.code == 420
    assert tx.error.reason == "Unknown!"

    tx2 = BindingTransaction(SERVER, 0.0)
    assert tx2.receive(parse_message(encode_response(Method.BINDING, tx2.txid, [])), 0.1)
    assert isinstance(tx2.error, StunErrorResponse)


def test_server_parsing_and_env() -> None:
    assert parse_server("stun.example.org") == ("stun.example.org", 3478)
    assert parse_server("127.0.0.1:19302") == ("127.0.0.1", 19302)
    assert parse_server("[::1]:5000") == ("::1", 5000)
    assert parse_server("[2001:db8::1]") == ("2001:db8::1", 3478)
    for bad in ("", "::1", "[::1", "host:0", "host:99999", "[x]:1", ":5"):
        with pytest.raises(ValueError):
            parse_server(bad)
    assert stun_servers_from_env({}) == []
    assert stun_servers_from_env({"WAVRY_STUN_SERVERS": " "}) == []
    env = {"WAVRY_STUN_SERVERS": "127.0.0.1:3478, [::1]:3479"}
    assert stun_servers_from_env(env) == [("127.0.0.1", 3478), ("::1", 3479)]


# --- on the streaming socket, against coturn -------------------------------------------------


HELLO = rift_pb2.Hello(
    client_name="stun-test",
    supported_codecs=[rift_pb2.H264],
    max_resolution=rift_pb2.Resolution(width=1280, height=720),
    max_fps=60,
)


async def test_reflexive_address_on_the_streaming_socket_while_rift_streams(
    coturn: tuple[str, int],
) -> None:
    loop = asyncio.get_running_loop()
    host_identity = Identity.generate()
    host_core = HostEndpoint(identity=host_identity, offer=HostOffer(), config=RiftConfig())
    host: UdpDriver = await open_udp_driver(lambda: host_core, local_addr=("127.0.0.1", 0))
    client_core = Connection.client(
        identity=Identity.generate(),
        peer_addr=host.local_address,
        hello=HELLO,
        now=loop.time(),
        expected_host_id=host_identity.wavry_id,
    )
    client = await open_udp_driver(lambda: client_core, local_addr=("127.0.0.1", 0))
    received: list[int] = []

    async def stream() -> None:
        while client_core.state is not ConnectionState.ESTABLISHED:
            await client.wait_activity(0.1)
        while not any(
            c.state is ConnectionState.ESTABLISHED for c in host_core.connections.values()
        ):
            await host.wait_activity(0.1)
        conn = next(iter(host_core.connections.values()))
        for i in range(30):
            conn.send_video_frame(frame_payload(i, 4000), keyframe=i == 0, timestamp_us=i,
                                  now=loop.time())  # fmt: skip
            host.flush()
            await asyncio.sleep(1 / 120)
            while (e := client_core.next_event()) is not None:
                if isinstance(e, ev.VideoFrameReceived):
                    assert e.data == frame_payload(e.frame_id, 4000)
                    received.append(e.frame_id)
        while len(received) < 30:
            await client.wait_activity(0.05)
            while (e := client_core.next_event()) is not None:
                if isinstance(e, ev.VideoFrameReceived):
                    received.append(e.frame_id)

    async def stun_repeatedly() -> list[tuple[str, int]]:
        seen = []
        for _ in range(10):
            seen.append(await host.stun_binding(coturn))
            seen.append(await client.stun_binding(coturn))
            await asyncio.sleep(0.01)
        return seen

    try:
        async with asyncio.timeout(20):
            _, seen = await asyncio.gather(stream(), stun_repeatedly())
    finally:
        client_core.close(loop.time())
        client.close()
        host.close()
    assert received == list(range(30))
    assert set(seen) == {host.local_address, client.local_address}
    assert host.stun_in >= 10 and client.stun_in >= 10


async def test_stun_timeout_on_the_socket_is_typed_and_bounded() -> None:
    host_core = HostEndpoint(identity=Identity.generate())
    host: UdpDriver = await open_udp_driver(lambda: host_core, local_addr=("127.0.0.1", 0))
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        policy = RetransmitPolicy(rto=0.05, max_transmissions=3, final_wait_rtos=2)
        started = time.monotonic()
        with pytest.raises(StunTimeoutError):
            await host.stun_binding(silent.getsockname(), policy=policy)
        assert 0.2 <= time.monotonic() - started < 2.0  # sends at 0, 0.05, 0.15; fails at 0.25
        requests = []
        silent.setblocking(False)
        while True:
            try:
                requests.append(parse_message(silent.recv(2048)))
            except BlockingIOError:
                break
        assert len(requests) == 3 and len({r.txid for r in requests}) == 1
    finally:
        silent.close()
        host.close()


async def test_foreign_stun_datagrams_reach_the_core() -> None:
    """Only responses to a pending transaction are consumed; anything else is the core's."""

    class Recorder:
        def __init__(self) -> None:
            self.got: list[bytes] = []

        def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
            self.got.append(data)

        def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int]]]:
            return []

        def get_timer(self) -> float | None:
            return None

        def handle_timer(self, now: float) -> None:
            pass

    core = Recorder()
    driver = await open_udp_driver(lambda: core, local_addr=("127.0.0.1", 0))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(_success(TXID), driver.local_address)
            s.sendto(b"RI" + bytes(30), driver.local_address)
        async with asyncio.timeout(5):
            while len(core.got) < 2:
                await driver.wait_activity(0.05)
        assert driver.stun_in == 0
    finally:
        driver.close()


async def test_ipv6_reflexive_address_from_coturn(coturn: tuple[str, int]) -> None:
    host_core = HostEndpoint(identity=Identity.generate())
    driver: UdpDriver = await open_udp_driver(lambda: host_core, local_addr=("::1", 0))
    try:
        assert await driver.stun_binding(("::1", coturn[1])) == driver.local_address
    finally:
        driver.close()
