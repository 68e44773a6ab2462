"""Keeping a live session's path: NAT rebinding on a direct path (candidates re-sent, the
peer punches) and a relay that went away (move to a new relay session)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from wavry.client.service import ClientService
from wavry.gateway.signaling.messages import Candidate, CandidateEntry
from wavry.net.candidates import gather_candidates
from wavry.net.udp import UdpDriver
from wavry.rendezvous.common import Address, ConnectInfo, parse_candidate_addr
from wavry.rendezvous.inbox import Inbox
from wavry.rendezvous.relaying import move_relay
from wavry.rift.connection import ConnectionState

__all__ = ["REGATHER_EVERY_S", "RELAY_MOVE_AFTER_S", "STALL_S", "watch_path"]

log = logging.getLogger(__name__)

#: a direct path is considered stalled after this long without a datagram from the host
STALL_S = 0.5
#: and its candidates are sent again at most this often
REGATHER_EVERY_S = 2.0
#: a relayed path silent this long (its relay is gone, not just restarting) moves to a new
#: relay session; RIFT's idle timeout (10 s) leaves room for that
RELAY_MOVE_AFTER_S = 2.5
#: the first wait between two moves while they keep failing (doubles up to RELAY_MOVE_AFTER_S)
RELAY_MOVE_RETRY_S = 0.5
STUN_TIMEOUT_S = 1.5
#: pings after re-sent candidates (the host punches within a signaling round trip)
PROBE_DELAYS_S = (0.03, 0.07, 0.1, 0.2)


async def watch_path(
    client: ClientService,
    driver: UdpDriver,
    info: ConnectInfo,
    signals: Inbox | None,
    stun_servers: Sequence[Address],
    *,
    relayed: bool,
) -> None:
    """Keep a direct path alive across NAT rebinding on either side (see the module doc)."""
    loop = asyncio.get_running_loop()
    conn = client.connection
    if conn is None:
        return
    last_addr = conn.peer_addr

    def host_moved(entries: list[CandidateEntry]) -> None:
        targets = [parse_candidate_addr(e.addr) for e in entries if e.type != "relay"]
        if targets:
            log.info("%s's host sent new addresses; punching towards them", info.username)
            driver.punch(targets[:16])

    if signals is not None:
        signals.on_candidates = host_moved
    last_packets = -1
    last_change = loop.time()
    last_regather = -REGATHER_EVERY_S
    last_move = -RELAY_MOVE_AFTER_S
    # a refused or dead link moves at once, then backs off (0.5, 1, 2, 2.5 s) while moves keep
    # failing — e.g. the replacement relay is not registered with the master yet
    move_wait = RELAY_MOVE_RETRY_S
    moving: asyncio.Task[None] | None = None
    probing: asyncio.Task[None] | None = None
    try:
        while conn.state is not ConnectionState.CLOSED:
            await asyncio.sleep(0.05)
            now = loop.time()
            if conn.peer_addr != last_addr:
                if not (relayed and moving is not None):
                    info.address_changes += 1
                    log.info("the host's address changed: %s -> %s", last_addr, conn.peer_addr)
                last_addr = conn.peer_addr
            packets = conn.stats().packets_received
            if packets != last_packets:
                last_packets, last_change = packets, now
                move_wait = RELAY_MOVE_RETRY_S
            if signals is None or conn.state is not ConnectionState.ESTABLISHED:
                continue
            if relayed:
                link = driver.relay_link(conn.peer_addr)
                dead = link is None or link.closed or link.lease_ending
                if (dead or now - last_change >= RELAY_MOVE_AFTER_S) and (
                    moving is None or moving.done()
                ):
                    if now - last_move >= move_wait:
                        last_move = now
                        move_wait = min(move_wait * 2, RELAY_MOVE_AFTER_S)
                        moving = asyncio.create_task(move_relay(conn, driver, info, signals))
                continue
            if packets == last_packets and now - last_change >= STALL_S:
                if now - last_regather >= REGATHER_EVERY_S:
                    last_regather = now
                    await _resend_candidates(driver, info, signals, stun_servers, now - last_change)
                    probing = asyncio.create_task(_show_new_address(client, driver))
    finally:
        for task in (moving, probing):
            if task is not None:
                task.cancel()


async def _show_new_address(client: ClientService, driver: UdpDriver) -> None:
    """Pings right after our candidates went out: once the host has punched towards our new
    mapping, the first one through makes its RIFT core adopt our new address (otherwise the
    next periodic ping, up to 0.5 s later, would)."""
    loop = asyncio.get_running_loop()
    for delay in PROBE_DELAYS_S:
        await asyncio.sleep(delay)
        conn = client.connection
        if conn is None or conn.state is not ConnectionState.ESTABLISHED:
            return
        conn.send_ping(loop.time())
        driver.flush()


async def _resend_candidates(
    driver: UdpDriver,
    info: ConnectInfo,
    signals: Inbox,
    stun_servers: Sequence[Address],
    silent_s: float,
) -> None:
    info.regathers += 1
    try:
        mine = await gather_candidates(driver, stun_servers, stun_timeout=STUN_TIMEOUT_S)
        log.info(
            "nothing from %s's host for %.1f s; sending our addresses again: %s",
            info.username,
            silent_s,
            ", ".join(f"{c['type']} {c['addr']}" for c in mine),
        )
        await signals.session.send(
            Candidate(
                target_username=info.username,
                candidates=[CandidateEntry(addr=c["addr"], type=c["type"]) for c in mine],
                session_id=signals.session_id,
            )
        )
    except Exception as exc:  # noqa: BLE001 - keep streaming; the RIFT timers decide
        log.warning("could not refresh our addresses: %s", exc)
