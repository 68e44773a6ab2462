"""Hostile input to a live session: never an exception, never a broken session."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wavry.bench.rift_bench import established_pair
from wavry.rift import events as ev
from wavry.rift.connection import Connection, ConnectionState
from wavry.rift.proto import rift_pb2

HOST = ("127.0.0.1", 4444)
CLIENT = ("127.0.0.1", 50000)


def _captured() -> tuple[Connection, Connection, list[bytes]]:
    client, host = established_pair()
    host.send_video_frame(b"k" * 5000, keyframe=True, timestamp_us=1, now=1.0)
    host.send_control(rift_pb2.ControlMessage(clipboard=rift_pb2.ClipboardMessage(text="x")), 1.0)
    datagrams = [d for d, _ in host.datagrams_to_send(1.0)]
    return client, host, datagrams


CLIENT_CONN, HOST_CONN, SAMPLES = _captured()

mutations = st.tuples(
    st.sampled_from(range(len(SAMPLES))),
    st.lists(st.tuples(st.integers(0, 1400), st.integers(1, 255)), max_size=4),
    st.integers(0, 1400),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=1600), mutations.map(lambda m: m)))
def test_any_datagram_is_dropped_or_accepted_never_raises(item: object) -> None:
    if isinstance(item, bytes):
        data = item
    else:
        index, flips, cut = item  # type: ignore[misc]
        raw = bytearray(SAMPLES[index])
        for pos, mask in flips:
            if pos < len(raw):
                raw[pos] ^= mask
        data = bytes(raw[: max(cut, 18)]) if cut < len(raw) else bytes(raw)
    CLIENT_CONN.receive_datagram(data, HOST, 2.0)
    HOST_CONN.receive_datagram(data, CLIENT, 2.0)
    assert CLIENT_CONN.state is ConnectionState.ESTABLISHED
    assert HOST_CONN.state is ConnectionState.ESTABLISHED


def test_session_still_works_after_the_fuzzing() -> None:
    client, host = established_pair()
    for n in range(2000):
        junk = bytes((n * 31 + i) % 256 for i in range(n % 90 + 18))
        client.receive_datagram(b"RI\x00\x01" + junk, HOST, 1.0)
    host.send_video_frame(b"ok" * 3000, keyframe=True, timestamp_us=5, now=1.0)
    now = 1.0
    while True:
        for data, _ in host.datagrams_to_send(now):
            client.receive_datagram(data, HOST, now)
        if host.send_queue_length == 0:
            break
        now += 0.001
    client.handle_timer(now + 0.05)
    frames = []
    while (e := client.next_event()) is not None:
        if isinstance(e, ev.VideoFrameReceived):
            frames.append(e)
    assert len(frames) == 1 and frames[0].data == b"ok" * 3000
    assert sum(client.drops.values()) == 2000
