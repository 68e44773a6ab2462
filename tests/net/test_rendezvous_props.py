"""Property tests for the connect-by-username helpers that read peer input: the host's answer
to arbitrary offer material, candidate addresses, and the reconnect backoff."""

from __future__ import annotations

import base64
import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.client.settings import ClientSettings
from wavry.gateway.signaling.messages import decode_ack, encode_ack, encode_hello
from wavry.net.candidates import format_addr
from wavry.net.signaling import Backoff
from wavry.rendezvous import answer_ack, offer_hello, parse_candidate_addr
from wavry.rift.config import HostOffer
from wavry.rift.proto import rift_pb2

OFFER = HostOffer(width=320, height=240, fps=30, bitrate_kbps=2000)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_hello_bytes_get_an_answer_never_an_exception(data: bytes) -> None:
    ack = answer_ack(base64.b64encode(data).decode() or "AAAA", OFFER)
    assert ack.accepted or ack.reject_message
    assert decode_ack(encode_ack(ack)) == ack  # the answer always serializes


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_hello_text_gets_an_answer(text: str) -> None:
    ack = answer_ack(text, OFFER)
    assert ack.accepted or ack.reject_reason


def test_a_real_client_hello_is_accepted_within_the_offer() -> None:
    ack = answer_ack(encode_hello(offer_hello(ClientSettings(host="h", port=1))), OFFER)
    assert ack.accepted and ack.selected_codec == rift_pb2.H264
    assert (ack.stream_resolution.width, ack.stream_resolution.height, ack.fps) == (320, 240, 30)


@given(st.ip_addresses(), st.integers(1, 65535))
def test_candidate_addresses_round_trip(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
) -> None:
    assert parse_candidate_addr(format_addr(str(ip), port)) == (str(ip), port)


@given(st.integers(0, 10_000), st.floats(0.01, 5), st.floats(0.1, 120), st.floats(0, 1))
def test_backoff_stays_within_its_bounds(n: int, initial: float, cap: float, jitter: float) -> None:
    d = Backoff(initial=initial, maximum=cap, jitter=jitter).delay(n)
    base = min(cap, initial * 2.0 ** min(n, 64))
    assert base * (1 - jitter) - 1e-9 <= d <= base + 1e-9
