"""Which hosts can I reach through the gateway, and are they online? (``wavry connect`` with no
target, when logged in.) Lists your own account and every account sharing its hosts with you,
then ``WATCH``es them on the signaling socket: the gateway answers a ``PRESENCE`` per host."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from wavry.gateway.signaling.messages import Presence, Watch
from wavry.net.gateway_api import list_reachable_hosts
from wavry.net.signaling import SignalingSession

__all__ = ["HostPresence", "reachable_hosts"]


@dataclass(frozen=True, slots=True)
class HostPresence:
    username: str
    online: bool
    own: bool


async def reachable_hosts(
    http_url: str, ws_url: str, token: str, *, timeout: float = 3.0
) -> list[HostPresence]:
    """Own account first, then the others by name; ``online`` from the gateway's PRESENCE."""
    own, shared = await list_reachable_hosts(http_url, token, timeout=timeout)
    names = [own, *shared][:64]
    online: dict[str, bool] = {}
    session = await SignalingSession.open(ws_url, token, "client", timeout=timeout)
    try:
        await session.send(Watch(usernames=names))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(online) < len(names) and (left := deadline - loop.time()) > 0:
            try:
                msg = await session.recv(left)
            except TimeoutError:
                break
            if isinstance(msg, Presence) and msg.username in names:
                online[msg.username] = msg.online
    finally:
        await session.close()
    return [HostPresence(n, online.get(n, False), n == own) for n in names]
