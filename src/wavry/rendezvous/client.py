"""``wavry connect USERNAME|WAVRY_ID``: reach a host through the gateway, directly or relayed.

1. Open the streaming socket first and gather its candidates (LAN addresses and, with STUN
   servers configured, the NAT-reflexive address: the mapping the host must aim at).
2. ``OFFER_RIFT`` through the gateway; wait for ``ANSWER_RIFT`` (the host's Wavry ID is pinned
   from it) and the host's ``CANDIDATE``; send ours, so the host punches towards us.
3. One RIFT handshake over **every** host candidate at once (docs/protocol.md §4.10); the first
   path whose MSG2 authenticates wins.
4. No handshake within ``direct_timeout``: ``REQUEST_RELAY``; the relay lease (role ``client``)
   is attached to the same socket and the relay joins the handshake as one more path. Direct
   paths keep their chance until one path completes.
5. While streaming over a direct path, a silence from the host (our NAT mapping changed: a new
   source port the host's NAT does not let through) re-gathers our candidates and sends them
   again, so the host punches towards the new mapping; the host's RIFT core adopts our new
   address after the first authenticated packet. A ``CANDIDATE`` from the host (its mapping
   changed) makes us punch towards it. A relayed path re-presents its lease on silence
   (``wavry.net.relay_link``).
6. After a relayed session, signed quality feedback goes to the master through the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from wavry.client.service import ClientReport, ClientService, FrameTiming
from wavry.client.settings import ClientSettings
from wavry.gateway.signaling.messages import (
    Candidate,
    CandidateEntry,
    OfferRift,
    decode_ack,
    encode_hello,
)
from wavry.media.frames import DecodedFrame
from wavry.net.candidates import NatMapping, gather_candidates, probe_mapping
from wavry.net.signaling import SignalingFatal, SignalingSession
from wavry.net.udp import DSCP_EF, UdpDriver, open_udp_driver
from wavry.rendezvous.common import (
    Address,
    ConnectError,
    ConnectInfo,
    NullCore,
    format_addr,
    offer_hello,
    parse_candidate_addr,
)
from wavry.rendezvous.inbox import Inbox
from wavry.rendezvous.relaying import ask_relay, attach_relay, send_relay_request
from wavry.rendezvous.watch import STUN_TIMEOUT_S, watch_path
from wavry.rift.identity import Identity

__all__ = ["ConnectError", "ConnectInfo", "RelayMode", "connect_by_username", "connect_paths"]

log = logging.getLogger(__name__)

RelayMode = Literal["auto", "never", "always"]

#: with our NAT known to map per destination ("symmetric"), direct paths get only this long
EARLY_RELAY_S = 0.25


_REFUSALS = {
    "unknown_target": "there is no account named {u}",
    "not_shared": "{u} does not share its hosts with you; ask them to run a share for your "
    "username (POST /v1/shares) or log in as {u}",
    "target_offline": "{u} has no host online; start `wavry host --gateway URL` there (after "
    "`wavry login`)",
}


def http_base(url: str) -> str:
    """``ws(s)://gw/ws`` -> ``http(s)://gw`` (the gateway's HTTP API)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    if path.endswith("/ws"):
        path = path[:-3]
    return urlunsplit((scheme, parts.netloc, path, "", ""))


async def connect_by_username(
    url: str,
    token: str,
    target: str,
    *,
    identity: Identity,
    settings: ClientSettings,
    answer_timeout: float = 10.0,
    direct_timeout: float = 1.0,
    connect_timeout: float = 8.0,
    relay: RelayMode = "auto",
    bind: str = "0.0.0.0",
    stun_servers: Sequence[Address] = (),
    feedback: bool = True,
    window_factory: Callable[[], Any] | None = None,
    on_frame: Callable[[DecodedFrame, FrameTiming], None] | None = None,
    on_connected: Callable[[ClientService, ConnectInfo], None] | None = None,
) -> tuple[ClientReport, ConnectInfo]:
    """Offer through the gateway at ``url`` (``ws(s)://…/ws``), connect over the first path
    that completes the handshake and stream until the session ends (``settings.run_for``).
    ``target`` is a username or a Wavry ID. ``ConnectError`` when no path works."""
    t0 = time.monotonic()
    username = await _resolve_target(url, token, target)
    info = ConnectInfo(username=username)
    try:
        session = await SignalingSession.open(url, token, "client", timeout=answer_timeout)
    except SignalingFatal as exc:
        hint = (
            " (run `wavry login --gateway URL --email EMAIL` again)"
            if exc.code == "invalid_token"
            else ""
        )
        raise ConnectError(f"the gateway refused the login: {exc}{hint}") from None
    except (OSError, TimeoutError) as exc:
        raise ConnectError(f"cannot reach the gateway at {url} ({type(exc).__name__})") from None
    driver: UdpDriver | None = None
    probing: asyncio.Task[NatMapping] | None = None
    signals = Inbox(session, username, str(uuid.uuid4()))
    pump = asyncio.create_task(signals.pump())
    try:
        driver = await open_udp_driver(NullCore, local_addr=(bind, 0), tos=DSCP_EF)
        gathering = asyncio.create_task(
            gather_candidates(driver, stun_servers, stun_timeout=STUN_TIMEOUT_S)
        )
        probing = (
            asyncio.create_task(probe_mapping(driver, stun_servers))
            if len(stun_servers) >= 2 and relay == "auto"
            else None
        )
        await session.send(
            OfferRift(
                target_username=username,
                hello_b64=encode_hello(offer_hello(settings)),
                wavry_id=identity.wavry_id,
                session_id=signals.session_id,
            )
        )
        candidates = await _await_answer(signals, info, answer_timeout, t0)
        mine = await gathering
        info.own_candidates = [f"{c['type']} {c['addr']}" for c in mine]

        if mine:
            await session.send(
                Candidate(
                    target_username=username,
                    candidates=[CandidateEntry(addr=c["addr"], type=c["type"]) for c in mine],
                    session_id=signals.session_id,
                )
            )
        taken, driver = driver, None  # the client service owns (and closes) the socket now
        return await connect_paths(
            candidates,
            info,
            t0=t0,
            identity=identity,
            settings=settings,
            driver=taken,
            signals=signals,
            direct_timeout=direct_timeout,
            connect_timeout=connect_timeout,
            relay=relay,
            stun_servers=stun_servers,
            probing=probing,
            feedback=(http_base(url), token) if feedback else None,
            window_factory=window_factory,
            on_frame=on_frame,
            on_connected=on_connected,
        )
    finally:
        if probing is not None:
            probing.cancel()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        await session.close()
        if driver is not None:
            driver.close()


async def _resolve_target(url: str, token: str, target: str) -> str:
    from wavry.rift.identity import InvalidWavryIdError, public_key_from_wavry_id

    try:
        public_key_from_wavry_id(target)
    except InvalidWavryIdError:
        return target.lower()
    from wavry.net.gateway_api import GatewayApiError, resolve_wavry_id

    try:
        username = await resolve_wavry_id(http_base(url), token, target)
    except GatewayApiError as exc:
        raise ConnectError(str(exc)) from None
    log.info("Wavry ID %s is %s's host", target, username)
    return username


async def _await_answer(
    signals: Inbox, info: ConnectInfo, timeout: float, t0: float
) -> list[CandidateEntry]:
    username = info.username
    try:
        answer = await asyncio.wait_for(asyncio.shield(signals.answer), timeout)
        info.answer_s = time.monotonic() - t0
        ack = decode_ack(answer.ack_b64)
        if not ack.accepted:
            raise ConnectError(f"{username}'s host refused: {ack.reject_message}")
        left = max(0.1, timeout - (time.monotonic() - t0))
        await asyncio.wait_for(signals.got_candidates.wait(), left)
    except TimeoutError:
        what = "an answer" if not signals.answer.done() else "the host's addresses"
        raise ConnectError(
            f"no {what} from {username}'s host within {timeout:.0f} s; is `wavry host "
            f"--gateway` running there and logged in as {username}?"
        ) from None
    except ConnectError:
        err = signals.error
        if err is None:
            raise
        hint = _REFUSALS.get(str(err.code), "{m}").format(u=username, m=err.message)
        raise ConnectError(f"the gateway refused to reach {username}: {err.code}: {hint}") from None
    if not answer.wavry_id:
        raise ConnectError(f"{username}'s host did not send its Wavry ID; cannot pin it")
    info.host_wavry_id = answer.wavry_id
    info.candidates = [f"{c.type} {c.addr}" for c in signals.candidates[:16]]
    log.info("%s's host %s offers %s", username, answer.wavry_id, ", ".join(info.candidates))
    return signals.candidates[:16]


async def connect_paths(
    candidates: Sequence[CandidateEntry],
    info: ConnectInfo,
    *,
    t0: float,
    identity: Identity,
    settings: ClientSettings,
    driver: UdpDriver | None = None,
    signals: Inbox | None = None,
    direct_timeout: float = 1.0,
    connect_timeout: float = 8.0,
    relay: RelayMode = "auto",
    stun_servers: Sequence[Address] = (),
    probing: asyncio.Task[NatMapping] | None = None,
    feedback: tuple[str, str] | None = None,
    window_factory: Callable[[], Any] | None = None,
    on_frame: Callable[[DecodedFrame, FrameTiming], None] | None = None,
    on_connected: Callable[[ClientService, ConnectInfo], None] | None = None,
) -> tuple[ClientReport, ConnectInfo]:
    """One handshake over every candidate at once (plus a relay when ``signals`` can ask for
    one), with ``info.host_wavry_id`` pinned; stream over the path that completes first."""
    username = info.username
    labels: dict[Address, str] = {}
    for entry in candidates:
        if entry.type != "relay":
            labels.setdefault(parse_candidate_addr(entry.addr), f"{entry.type} {entry.addr}")
    if driver is None:
        loopback = all(a[0] in ("127.0.0.1", "::1") for a in labels)
        bind = ("::1" if any(":" in a[0] for a in labels) else "127.0.0.1") if loopback else ""
        driver = await open_udp_driver(NullCore, local_addr=(bind or "0.0.0.0", 0), tos=DSCP_EF)
    family_v6 = ":" in driver.local_address[0]
    addrs = [a for a in labels if (":" in a[0]) == family_v6]
    if relay == "always":
        addrs = []
    relay_addr: Address | None = None
    if not addrs:
        if signals is None or relay == "never":
            driver.close()
            raise ConnectError(f"{username}'s host offered no address this client can use")
        try:
            creds = await ask_relay(signals, info, t0, connect_timeout)
        except BaseException:
            driver.close()
            raise
        relay_addr = attach_relay(driver, creds, info, labels, asyncio.get_running_loop().time())
        addrs = [relay_addr]

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

    first = addrs[0]
    attempt = replace(
        settings,
        host=first[0],
        port=first[1],
        same_clock=settings.same_clock or all(a[0] in ("127.0.0.1", "::1") for a in addrs),
    )
    client = ClientService(
        attempt,
        identity=identity,
        expected_host_id=info.host_wavry_id,
        window_factory=window_factory,
        on_frame=frame_seen,
        driver=driver,
        candidates=addrs[1:],
    )
    task = asyncio.create_task(client.run())
    try:
        relay_addr = await _handshake(
            client, task, driver, info, labels, signals, t0,
            direct_timeout=direct_timeout,
            connect_timeout=connect_timeout,
            relay="never" if relay_addr is not None else relay,
            probing=probing,
        ) or relay_addr  # fmt: skip
    except BaseException:
        client.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        raise
    conn = client.connection
    assert conn is not None
    info.handshake_s = time.monotonic() - t0
    if probing is not None and probing.done() and not probing.cancelled():
        if probing.exception() is None:
            info.nat_mapping = probing.result()
    info.path = labels.get(conn.peer_addr, format_addr(conn.peer_addr))
    info.relayed = relay_addr is not None and conn.peer_addr == relay_addr
    if relay_addr is not None and not info.relayed:
        driver.detach_relay(relay_addr)  # the direct path won: stop holding the lease
    client.path = ("relay " if info.relayed else "direct ") + info.path
    client.connect_ms = info.handshake_s * 1000
    log.info(
        "connected to %s via %s (%s), handshake %.0f ms after `connect`",
        username,
        info.path,
        "relayed" if info.relayed else "direct",
        info.handshake_s * 1000,
    )
    if on_connected is not None:
        on_connected(client, info)
    watcher = asyncio.create_task(
        watch_path(client, driver, info, signals, stun_servers, relayed=info.relayed)
    )
    try:
        report = await task
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if info.relayed and feedback is not None:
        await _send_feedback(feedback, identity, info, report)
    return report, info


async def _handshake(
    client: ClientService,
    task: asyncio.Task[ClientReport],
    driver: UdpDriver,
    info: ConnectInfo,
    labels: dict[Address, str],
    signals: Inbox | None,
    t0: float,
    *,
    direct_timeout: float,
    connect_timeout: float,
    relay: RelayMode,
    probing: asyncio.Task[NatMapping] | None = None,
) -> Address | None:
    """Until a path completes the handshake; returns the relay's virtual address if one was
    added. Raises ``ConnectError`` explaining what was tried."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    relay_addr: Address | None = None
    relay_error: str | None = None
    asked = False
    while client.report.host_wavry_id is None:
        if task.done():
            break
        elapsed = loop.time() - start
        if elapsed >= connect_timeout:
            break
        if signals is not None and signals.host_nat_mapping == "endpoint-dependent":
            if direct_timeout > EARLY_RELAY_S:
                log.info(
                    "%s's host is behind a NAT that gives every destination its own port: "
                    "asking for a relay after %.0f ms",
                    info.username,
                    EARLY_RELAY_S * 1000,
                )
                direct_timeout = EARLY_RELAY_S
        if probing is not None and probing.done():
            if not probing.cancelled() and probing.exception() is None:
                info.nat_mapping = probing.result()
                if info.nat_mapping == "endpoint-dependent" and direct_timeout > EARLY_RELAY_S:
                    log.info(
                        "this network's NAT gives every destination its own port (symmetric): "
                        "hole punching will most likely fail; asking for a relay after %.0f ms",
                        EARLY_RELAY_S * 1000,
                    )
                    direct_timeout = EARLY_RELAY_S
            probing = None
        if not asked and signals is not None and relay != "never" and elapsed >= direct_timeout:
            asked = True
            log.info(
                "no direct path to %s after %.0f ms; asking for a relay",
                info.username,
                elapsed * 1000,
            )
            await send_relay_request(signals, info, t0)
        if asked and relay_addr is None and relay_error is None and signals is not None:
            fut = signals.relay
            if fut.done():
                exc = fut.exception()
                if exc is not None:
                    relay_error = str(exc)
                    log.warning("no relay: %s", relay_error)
                else:
                    creds = fut.result()
                    relay_addr = attach_relay(driver, creds, info, labels, loop.time())
                    client.add_candidates([relay_addr])
        await asyncio.sleep(0.005)
    if client.report.host_wavry_id is not None:
        return relay_addr
    reason = client.report.close_reason or "no handshake"
    tried = ", ".join(labels.values()) or "none"
    extra = f"; relay: {relay_error}" if relay_error else ""
    if relay == "never":
        extra += "; relays disabled (--direct-only)"
    raise ConnectError(
        f"no path to {info.username}'s host completed the handshake within "
        f"{connect_timeout:.0f} s ({reason}; tried {tried}{extra}). Both sides need outbound "
        "UDP; with a strict NAT or firewall a relay is required (the gateway needs "
        "WAVRY_GATEWAY_MASTER_URL and a registered relay)"
    )


async def _send_feedback(
    feedback: tuple[str, str], identity: Identity, info: ConnectInfo, report: ClientReport
) -> None:
    from wavry.net.gateway_api import (
        GatewayApiError,
        quality_score_from_stats,
        send_relay_feedback,
    )

    if info.relay_id is None or info.relay_session_id is None:
        return
    stats = dict(report.stats)
    stats.setdefault("frames_received", report.frames_received)
    score, issues = quality_score_from_stats(stats)
    base, token = feedback
    try:
        await send_relay_feedback(
            base,
            token,
            identity,
            relay_id=info.relay_id,
            session_id=info.relay_session_id,
            quality_score=score,
            issues=issues,
        )
    except GatewayApiError as exc:
        info.feedback = f"refused: {exc}"
        log.warning("relay feedback not accepted: %s", exc)
        return
    info.feedback = f"sent: {score}"
    log.info("relay feedback sent: quality %d %s", score, ",".join(issues) or "no issues")
