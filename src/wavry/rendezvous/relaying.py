"""The client's relay paths: ask the gateway for a relay session, attach its lease to the
streaming socket, and move a live session to a new relay session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from wavry.gateway.signaling.messages import MAX_AVOID_RELAYS, RelayCredentials, RequestRelay
from wavry.net.relay_link import RelayLink
from wavry.net.udp import UdpDriver
from wavry.relay.wire import Role
from wavry.rendezvous.common import (
    Address,
    ConnectError,
    ConnectInfo,
    parse_candidate_addr,
    relay_session_bytes,
)
from wavry.rendezvous.inbox import Inbox

__all__ = ["ask_relay", "attach_relay", "move_relay", "relay_link_for", "send_relay_request"]

log = logging.getLogger(__name__)


async def send_relay_request(
    signals: Inbox, info: ConnectInfo, t0: float, avoid: Sequence[str] = ()
) -> None:
    info.relay_requested_s = time.monotonic() - t0
    with contextlib.suppress(Exception):  # a closed signaling socket fails the wait instead
        await signals.session.send(
            RequestRelay(
                target_username=info.username,
                session_id=signals.session_id,
                avoid_relay_ids=list(avoid)[:MAX_AVOID_RELAYS],
            )
        )


async def ask_relay(
    signals: Inbox, info: ConnectInfo, t0: float, timeout: float, avoid: Sequence[str] = ()
) -> RelayCredentials:
    await send_relay_request(signals, info, t0, avoid)
    try:
        return await asyncio.wait_for(asyncio.shield(signals.relay), timeout)
    except TimeoutError:
        raise ConnectError(f"no relay for {info.username} within {timeout:.0f} s") from None
    except ConnectError as exc:
        raise ConnectError(f"no relay for {info.username}: {exc}") from None


def relay_link_for(creds: RelayCredentials, role: Role, now: float) -> RelayLink:
    """A link for these credentials; ``ConnectError`` when the gateway's material is unusable
    (an address that is not ``IP:PORT``, a session id that is not a UUID, a malformed lease)."""
    try:
        return RelayLink(
            parse_candidate_addr(creds.addr),
            relay_session_bytes(creds.session_id),
            role,
            creds.lease,
            now,
            expires_at_unix=creds.expires_at,
        )
    except ValueError as exc:
        raise ConnectError(f"unusable relay credentials from the gateway: {exc}") from None


def attach_relay(
    driver: UdpDriver,
    creds: RelayCredentials,
    info: ConnectInfo,
    labels: dict[Address, str],
    now: float,
) -> Address:
    if creds.role != "client":
        raise ConnectError(f"the gateway sent a relay lease for role {creds.role}, not client")
    link = relay_link_for(creds, Role.CLIENT, now)
    vaddr = driver.attach_relay(link)
    labels[vaddr] = f"{creds.relay_id}@{creds.addr}"
    info.relay_id = creds.relay_id
    info.relay_session_id = creds.session_id
    log.info("relay %s at %s joins the handshake", creds.relay_id, creds.addr)
    return vaddr


async def move_relay(conn: Any, driver: UdpDriver, info: ConnectInfo, signals: Inbox) -> None:
    """Take the session to a new relay session: the host joins it when the gateway hands it
    its own lease, and adopts our new path at the first authenticated packet through it."""
    old = conn.peer_addr
    log.info("the relay path to %s went silent or was refused; asking for another", info.username)
    signals.reset_relay()
    try:
        # the failed relay may still look alive to the master until it misses heartbeats
        avoid = [info.relay_id] if info.relay_id else []
        creds = await ask_relay(signals, info, time.monotonic(), 5.0, avoid)
    except ConnectError as exc:
        log.warning("could not move to another relay: %s", exc)
        return
    labels: dict[Address, str] = {}
    vaddr = attach_relay(driver, creds, info, labels, asyncio.get_running_loop().time())
    conn.peer_addr = vaddr  # our side moves at once; the host follows our packets
    driver.flush()
    if old != vaddr:
        driver.detach_relay(old)
    info.relay_moves += 1
    info.path = labels[vaddr]
    log.info("moved to relay %s", info.path)
