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


# --- relay credentials and the client's inbox ----------------------------------------------------

_ADDR_TEXT = st.one_of(
    st.text(min_size=1, max_size=64),
    st.builds(lambda a, p: f"{a}:{p}", st.ip_addresses(v=4).map(str), st.integers(-5, 70000)),
)


@settings(max_examples=300, deadline=None)
@given(
    addr=_ADDR_TEXT,
    lease=st.text(min_size=1, max_size=300),
    role=st.sampled_from(["client", "server"]),
)
def test_relay_credentials_give_a_link_or_a_connect_error(addr: str, lease: str, role: str) -> None:
    """Whatever a (compromised or buggy) gateway puts in RELAY_CREDENTIALS within the model's
    bounds, the peer gets a usable link or a ConnectError, never another exception."""
    import uuid

    from wavry.gateway.signaling.messages import RelayCredentials
    from wavry.relay.wire import Role
    from wavry.rendezvous.common import ConnectError
    from wavry.rendezvous.relaying import relay_link_for

    creds = RelayCredentials(
        target_username="alice", relay_id="r1", addr=addr, session_id=str(uuid.uuid4()),
        lease=lease, role=role, expires_at=1e9,  # type: ignore[arg-type]
    )  # fmt: skip
    try:
        link = relay_link_for(creds, Role.CLIENT, 0.0)
    except ConnectError as exc:
        assert "unusable relay credentials" in str(exc)
        return
    assert link.relay_addr == parse_candidate_addr(addr)


def _messages() -> st.SearchStrategy[object]:
    import uuid

    from wavry.gateway.signaling import messages as m

    sid = st.sampled_from([str(uuid.UUID(int=1)), str(uuid.UUID(int=2)), None])
    name = st.sampled_from(["alice", "bob"])
    entry = st.builds(
        m.CandidateEntry,
        addr=st.sampled_from(["10.0.0.1:1", "[::1]:2"]),
        type=st.sampled_from(["host", "srflx", "relay"]),
    )
    return st.one_of(
        st.builds(
            m.AnswerRift,
            target_username=name,
            ack_b64=st.just("CAE="),
            wavry_id=st.just("A" * 43),
            session_id=sid,
        ),  # fmt: skip
        st.builds(
            m.Candidate,
            target_username=name,
            candidates=st.lists(entry, min_size=1, max_size=3),
            session_id=sid,
        ),  # fmt: skip
        st.builds(
            m.ErrorMsg,
            code=st.sampled_from(list(m.ErrorCode)),
            message=st.just("x"),
            session_id=sid,
        ),  # fmt: skip
        st.builds(
            m.RelayCredentials,
            target_username=name,
            relay_id=st.just("r"),
            addr=st.just("203.0.113.2:4000"),
            session_id=st.just(str(uuid.UUID(int=9))),
            lease=st.just("v4.public.x"),
            role=st.sampled_from(["client", "server"]),
            expires_at=st.just(1.0),
            rendezvous_id=sid,
        ),  # fmt: skip
        st.builds(m.Presence, username=name, online=st.booleans()),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(_messages(), max_size=12))
def test_the_client_inbox_takes_any_message_sequence(msgs: list[object]) -> None:
    """Messages for other sessions or names never resolve this rendezvous; refusals fail the
    waits with a ConnectError; nothing raises and nothing is left unretrieved."""
    import asyncio
    import uuid

    from wavry.gateway.signaling.messages import AnswerRift, Candidate
    from wavry.rendezvous.inbox import Inbox

    async def run() -> None:
        inbox = Inbox(session=None, username="alice", session_id=str(uuid.UUID(int=1)))  # type: ignore[arg-type]
        for msg in msgs:
            inbox._dispatch(msg)  # type: ignore[arg-type]
        if inbox.answer.done() and inbox.answer.exception() is None:
            answer = inbox.answer.result()
            assert isinstance(answer, AnswerRift) and answer.target_username == "alice"
            assert answer.session_id in (None, str(uuid.UUID(int=1)))
        for entry in inbox.candidates:
            assert any(
                isinstance(m, Candidate) and entry in m.candidates and m.target_username == "alice"
                for m in msgs
            )
        for fut in (inbox.answer, inbox.relay):
            if fut.done():
                fut.exception()

    asyncio.run(run())
