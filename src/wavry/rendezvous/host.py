"""Connect by username through the gateway (issue #6, direct candidates only).

* ``HostRendezvous``: ``wavry host --gateway``'s signaling side. Bound as ``host``; answers each
  ``OFFER_RIFT`` with an ``ANSWER_RIFT`` (the negotiated ``HelloAck`` preview and the host's
  Wavry ID) and a ``CANDIDATE`` with the streaming socket's addresses
  (``wavry.net.candidates``). The gateway forwards offers only from the owner's account or
  accounts the owner shares with, so the offering client's Wavry ID is allowed for this host
  process (in memory; not written to ``allowed_clients``).
* ``connect_by_username``: ``wavry connect USERNAME``. Bound as ``client``; offers, waits for
  the answer and candidates (bounded), then tries the candidates in order with a short
  per-candidate handshake deadline and keeps the first whose Noise handshake completes, with
  the host's Wavry ID from the answer pinned.

Not here yet: simultaneous hole punching across NATs and relay fallback (docs/connectivity.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from wavry.client.service import ClientReport, ClientService, FrameTiming
from wavry.client.settings import ClientSettings
from wavry.gateway.signaling.messages import (
    AnswerRift,
    Candidate,
    CandidateEntry,
    ErrorMsg,
    HelloMaterialError,
    OfferRift,
    Presence,
    SignalingMessage,
    decode_ack,
    decode_hello,
    encode_ack,
    encode_hello,
)
from wavry.host.service import HostService
from wavry.media.frames import DecodedFrame
from wavry.net.candidates import gather_candidates
from wavry.net.signaling import Backoff, SignalingFatal, SignalingSession, run_signaling
from wavry.rift.config import PROTOCOL_VERSION, HostOffer
from wavry.rift.identity import Identity
from wavry.rift.negotiation import Rejection, SessionParams, negotiate
from wavry.rift.proto import rift_pb2

__all__ = [
    "ConnectError",
    "ConnectInfo",
    "HostRendezvous",
    "answer_ack",
    "connect_by_username",
    "parse_candidate_addr",
]

log = logging.getLogger(__name__)


def answer_ack(hello_b64: str, offer: HostOffer) -> rift_pb2.HelloAck:
    """The ``HelloAck`` preview for an offer's ``hello_b64``: the negotiation's result, or a
    refusal (also for material that does not decode). Never raises on peer input."""
    try:
        result: SessionParams | Rejection = negotiate(decode_hello(hello_b64), offer)
    except HelloMaterialError as exc:
        result = Rejection(rift_pb2.REJECT_INVALID_PARAMETERS, f"bad hello: {exc}")
    if isinstance(result, Rejection):
        return rift_pb2.HelloAck(
            accepted=False, reject_reason=result.reason, reject_message=result.message
        )
    return rift_pb2.HelloAck(
        accepted=True,
        selected_codec=result.codec,
        stream_resolution=rift_pb2.Resolution(width=result.width, height=result.height),
        fps=result.fps,
        initial_bitrate_kbps=result.bitrate_kbps,
        keyframe_interval_ms=result.keyframe_interval_ms,
    )


# --- host side ----------------------------------------------------------------------------------


@dataclass(slots=True)
class RendezvousStatus:
    binds: int = 0
    offers: int = 0
    answers: int = 0
    last_error: str | None = None


class HostRendezvous:
    def __init__(
        self,
        service: HostService,
        url: str,
        token: str,
        *,
        stun_servers: Sequence[tuple[str, int]] = (),
        backoff: Backoff | None = None,
    ) -> None:
        self.service = service
        self.url = url
        self._token = token
        self.stun_servers = list(stun_servers)
        self.backoff = backoff or Backoff()
        self.status = RendezvousStatus()
        self.stop_event = asyncio.Event()

    def stop(self) -> None:
        self.stop_event.set()

    async def run(self) -> None:
        """Until stopped; logs and returns on a fatal refusal (e.g. an expired login)."""
        while self.service.udp_driver is None and not self.stop_event.is_set():
            await asyncio.sleep(0.05)
        try:
            await run_signaling(
                self.url,
                self._token,
                "host",
                self._handle,
                stop=self.stop_event,
                backoff=self.backoff,
                on_bound=self._bound,
            )
        except SignalingFatal as exc:
            self.status.last_error = exc.code
            hint = " (run `wavry login` again)" if exc.code == "invalid_token" else ""
            log.error("signaling stopped: the gateway said %s%s", exc, hint)

    async def _bound(self, session: SignalingSession) -> None:
        self.status.binds += 1
        log.info(
            "online at the gateway as %s: clients allowed by your shares can `wavry connect %s`",
            session.bound.username,
            session.bound.username,
        )

    async def _handle(self, session: SignalingSession, msg: SignalingMessage) -> None:
        if isinstance(msg, OfferRift):
            try:
                await self._answer(session, msg)
            except (OSError, ValueError) as exc:  # e.g. interfaces unreadable, bad label
                self.status.last_error = type(exc).__name__
                log.warning("could not answer %s: %s", msg.target_username, exc)
        elif isinstance(msg, Presence):
            log.info("presence: %s is %s", msg.username, "online" if msg.online else "offline")
        elif isinstance(msg, ErrorMsg):
            log.warning("gateway: %s: %s", msg.code, msg.message)

    async def _answer(self, session: SignalingSession, offer: OfferRift) -> None:
        self.status.offers += 1
        service = self.service
        who = offer.target_username  # rewritten by the gateway to the offering account
        ack = answer_ack(offer.hello_b64, service.offer())
        if not ack.accepted:
            log.info("offer from %s refused: %s", who, ack.reject_message)
        elif offer.wavry_id and service.settings.pairing != "open":
            # The gateway only forwards offers its owner/share policy allows.
            service.allow_list.add(offer.wavry_id, f"gateway:{who}")
        await session.send(
            AnswerRift(
                target_username=who,
                ack_b64=encode_ack(ack),
                wavry_id=service.identity.wavry_id,
                session_id=offer.session_id,
            )
        )
        self.status.answers += 1
        if not ack.accepted:
            return
        driver = service.udp_driver
        if driver is None:
            return
        found = await gather_candidates(driver, self.stun_servers)
        if not found:
            log.warning("no address to offer %s (the host listens on no usable interface)", who)
            return
        await session.send(
            Candidate(
                target_username=who,
                candidates=[CandidateEntry(addr=c["addr"], type=c["type"]) for c in found],
                session_id=offer.session_id,
            )
        )
        log.info(
            "answered %s (session %s) with %s",
            who,
            offer.session_id,
            ", ".join(f"{c['type']} {c['addr']}" for c in found),
        )


# --- client side --------------------------------------------------------------------------------


class ConnectError(Exception):
    """Connecting by username failed; the message says what to do next."""


@dataclass(slots=True)
class ConnectInfo:
    username: str
    host_wavry_id: str = ""
    candidates: list[str] = field(default_factory=list)
    #: the candidate whose handshake completed ("type addr")
    path: str | None = None
    answer_s: float | None = None
    handshake_s: float | None = None
    #: seconds from the start of ``connect`` to the first decoded frame
    first_frame_s: float | None = None


def parse_candidate_addr(addr: str) -> tuple[str, int]:
    if addr.startswith("["):
        host, _, port = addr[1:].partition("]:")
        return host, int(port)
    host, _, port = addr.rpartition(":")
    return host, int(port)


def _offer_hello(settings: ClientSettings) -> rift_pb2.Hello:
    return rift_pb2.Hello(
        client_name=settings.client_name,
        platform=rift_pb2.LINUX,
        supported_codecs=list(settings.codecs),
        max_resolution=rift_pb2.Resolution(width=settings.max_width, height=settings.max_height),
        max_fps=settings.max_fps,
        max_bitrate_kbps=settings.max_bitrate_kbps,
        input_caps=0xF,
        protocol_version=PROTOCOL_VERSION,
    )


_REFUSALS = {
    "unknown_target": "there is no account named {u}",
    "not_shared": "{u} does not share its hosts with you; ask them to run a share for your "
    "username (POST /v1/shares) or log in as {u}",
    "target_offline": "{u} has no host online; start `wavry host --gateway URL` there (after "
    "`wavry login`)",
}


async def _rendezvous(
    session: SignalingSession,
    username: str,
    settings: ClientSettings,
    identity: Identity,
    timeout: float,
    info: ConnectInfo,
    t0: float,
) -> tuple[AnswerRift, list[CandidateEntry]]:
    session_id = str(uuid.uuid4())
    await session.send(
        OfferRift(
            target_username=username,
            hello_b64=encode_hello(_offer_hello(settings)),
            wavry_id=identity.wavry_id,
            session_id=session_id,
        )
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    answer: AnswerRift | None = None
    candidates: list[CandidateEntry] = []
    while answer is None or not candidates:
        remaining = deadline - loop.time()
        if remaining <= 0:
            what = "an answer" if answer is None else "the host's addresses"
            raise ConnectError(
                f"no {what} from {username}'s host within {timeout:.0f} s; is `wavry host "
                f"--gateway` running there and logged in as {username}?"
            )
        try:
            msg = await session.recv(remaining)
        except TimeoutError:
            continue
        if getattr(msg, "session_id", None) not in (None, session_id):
            continue
        if isinstance(msg, ErrorMsg):
            hint = _REFUSALS.get(str(msg.code), "{m}").format(u=username, m=msg.message)
            raise ConnectError(f"the gateway refused to reach {username}: {msg.code}: {hint}")
        if isinstance(msg, AnswerRift) and msg.target_username == username:
            answer = msg
            info.answer_s = time.monotonic() - t0
            ack = decode_ack(msg.ack_b64)
            if not ack.accepted:
                raise ConnectError(f"{username}'s host refused: {ack.reject_message}")
        elif isinstance(msg, Candidate) and msg.target_username == username:
            candidates.extend(msg.candidates)
    return answer, candidates[:16]


async def connect_by_username(
    url: str,
    token: str,
    username: str,
    *,
    identity: Identity,
    settings: ClientSettings,
    answer_timeout: float = 10.0,
    per_candidate: float = 2.0,
    window_factory: Callable[[], Any] | None = None,
    on_frame: Callable[[DecodedFrame, FrameTiming], None] | None = None,
    on_connected: Callable[[ClientService, ConnectInfo], None] | None = None,
) -> tuple[ClientReport, ConnectInfo]:
    """Offer through the gateway, connect to the first candidate that completes the handshake
    and stream until the session ends (``settings.run_for``). ``ConnectError`` when no path."""
    t0 = time.monotonic()
    info = ConnectInfo(username=username)
    try:
        session = await SignalingSession.open(url, token, "client", timeout=answer_timeout)
    except SignalingFatal as exc:
        hint = " (run `wavry login` again)" if exc.code == "invalid_token" else ""
        raise ConnectError(f"the gateway refused the login: {exc}{hint}") from None
    except (OSError, TimeoutError) as exc:
        raise ConnectError(f"cannot reach the gateway at {url} ({type(exc).__name__})") from None
    try:
        answer, candidates = await _rendezvous(
            session, username, settings, identity, answer_timeout, info, t0
        )
    finally:
        await session.close()
    if not answer.wavry_id:
        raise ConnectError(f"{username}'s host did not send its Wavry ID; cannot pin it")
    info.host_wavry_id = answer.wavry_id
    info.candidates = [f"{c.type} {c.addr}" for c in candidates]
    log.info("%s's host %s offers %s", username, answer.wavry_id, ", ".join(info.candidates))

    return await connect_first(
        candidates,
        info,
        t0=t0,
        identity=identity,
        settings=settings,
        per_candidate=per_candidate,
        window_factory=window_factory,
        on_frame=on_frame,
        on_connected=on_connected,
    )


async def connect_first(
    candidates: Sequence[CandidateEntry],
    info: ConnectInfo,
    *,
    t0: float,
    identity: Identity,
    settings: ClientSettings,
    per_candidate: float = 2.0,
    window_factory: Callable[[], Any] | None = None,
    on_frame: Callable[[DecodedFrame, FrameTiming], None] | None = None,
    on_connected: Callable[[ClientService, ConnectInfo], None] | None = None,
) -> tuple[ClientReport, ConnectInfo]:
    """Try ``candidates`` in order, each with ``per_candidate`` seconds to complete the Noise
    handshake with ``info.host_wavry_id`` pinned; stream over the first that does."""
    username = info.username
    if not info.candidates:
        info.candidates = [f"{c.type} {c.addr}" for c in candidates]

    def frame_seen(picture: DecodedFrame, timing: FrameTiming) -> None:
        if info.first_frame_s is None:
            info.first_frame_s = time.monotonic() - t0
            log.info(
                "first decoded frame %.0f ms after `connect` (path: %s)",
                info.first_frame_s * 1000,
                info.path,
            )
        if on_frame is not None:
            on_frame(picture, timing)

    loop = asyncio.get_running_loop()
    failures: list[str] = []
    for entry in candidates:
        host, port = parse_candidate_addr(entry.addr)
        attempt = replace(
            settings,
            host=host,
            port=port,
            same_clock=settings.same_clock and host in ("127.0.0.1", "::1"),
        )
        client = ClientService(
            attempt,
            identity=identity,
            expected_host_id=info.host_wavry_id,
            window_factory=window_factory,
            on_frame=frame_seen,
        )
        task = asyncio.create_task(client.run())
        deadline = loop.time() + per_candidate
        while client.report.host_wavry_id is None and not task.done() and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if client.report.host_wavry_id is None:
            client.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)
            reason = client.report.close_reason or "no handshake"
            log.info("candidate %s %s failed: %s", entry.type, entry.addr, reason)
            failures.append(f"{entry.type} {entry.addr}: {reason}")
            continue
        info.path = f"{entry.type} {entry.addr}"
        info.handshake_s = time.monotonic() - t0
        log.info(
            "connected to %s via %s (direct), handshake %.0f ms after `connect`",
            username,
            info.path,
            info.handshake_s * 1000,
        )
        if on_connected is not None:
            on_connected(client, info)
        report = await task
        return report, info
    raise ConnectError(
        f"none of {username}'s host addresses answered ({'; '.join(failures)}); "
        "direct connections need the host reachable over UDP (NAT hole punching and relays "
        "are not available yet: use `wavry connect HOST:PORT` on the same network)"
    )
