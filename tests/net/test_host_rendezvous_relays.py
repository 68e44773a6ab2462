"""The host's relay sessions without a gateway: RELAY_CREDENTIALS handed to `HostRendezvous`
attach a link to the real streaming socket; unusable, foreign-role, idle and surplus ones are
refused or detached (bounded)."""

from __future__ import annotations

import asyncio
import uuid

from tests.host.conftest import free_port
from wavry.gateway.signaling.messages import RelayCredentials
from wavry.host.service import HostService
from wavry.host.settings import HostSettings
from wavry.rendezvous.host import MAX_RELAY_LINKS, HostRendezvous
from wavry.rift.identity import Identity
from wavry.rift.trust import AllowList


def _creds(addr: str = "127.0.0.1:9", role: str = "server", lease: str = "v4.public.x") -> object:
    return RelayCredentials(
        target_username="bob", relay_id="r1", addr=addr, session_id=str(uuid.uuid4()),
        lease=lease, role=role, expires_at=4e9,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_relay_links_are_checked_bounded_and_dropped_when_unused() -> None:
    settings = HostSettings(
        capture="testsrc", input_backend="none", port=free_port(), mdns=False,
        width=320, height=240, fps=30,
    )  # fmt: skip
    host = HostService(settings, identity=Identity.generate(), allow_list=AllowList())
    task = asyncio.create_task(host.run())
    try:
        while host.udp_driver is None:
            await asyncio.sleep(0.02)
        driver = host.udp_driver
        rdv = HostRendezvous(host, "ws://127.0.0.1:1/ws", "t" * 40, relay_idle_s=0.4)
        janitor = asyncio.create_task(rdv._expire_relays())
        try:
            rdv._join_relay(_creds(role="client"))  # a host serves: a client lease is ignored
            rdv._join_relay(_creds(addr="not-an-address"))  # unusable: logged, ignored
            assert driver.relay_links == {} and rdv.status.last_error == "bad_relay_credentials"
            for _ in range(MAX_RELAY_LINKS + 3):
                rdv._join_relay(_creds())
            assert len(driver.relay_links) == MAX_RELAY_LINKS  # the oldest made room
            assert all(a[0].startswith("relay:") for a in driver.relay_links)
            # no RIFT session uses them: all detached after the idle time
            for _ in range(100):
                if not driver.relay_links:
                    break
                await asyncio.sleep(0.05)
            assert driver.relay_links == {}
        finally:
            janitor.cancel()
    finally:
        host.stop()
        await asyncio.wait_for(task, 10)
