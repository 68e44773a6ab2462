"""Helpers to run a real host and a real client (both in this process, real UDP on loopback)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from wavry.client.service import ClientReport, ClientService
from wavry.client.settings import ClientSettings
from wavry.host.service import HostService
from wavry.host.settings import HostSettings
from wavry.rift.identity import Identity
from wavry.rift.trust import AllowList


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Session:
    def __init__(self, host: HostService, client: ClientService) -> None:
        self.host = host
        self.client = client


async def run_session(
    *,
    seconds: float,
    host_settings: HostSettings | None = None,
    client_settings: ClientSettings | None = None,
    allow_client: bool = True,
    expected_host_id: str | None = "pin",
    during: Callable[[Session], Awaitable[None]] | None = None,
    host_kwargs: dict[str, Any] | None = None,
    client_kwargs: dict[str, Any] | None = None,
) -> tuple[HostService, ClientReport]:
    port = free_port()
    host_identity, client_identity = Identity.generate(), Identity.generate()
    allow = AllowList()
    if allow_client:
        allow.add(client_identity.wavry_id)
    hs = replace(
        host_settings or HostSettings(capture="testsrc", input_backend="none"),
        port=port,
        mdns=False,
        run_for=seconds + 5,
    )
    host = HostService(hs, identity=host_identity, allow_list=allow, **(host_kwargs or {}))
    cs = replace(
        client_settings or ClientSettings(host="127.0.0.1", port=port, headless=True),
        host="127.0.0.1",
        port=port,
        same_clock=True,
        run_for=seconds,
    )
    pin = host_identity.wavry_id if expected_host_id == "pin" else expected_host_id
    client = ClientService(
        cs, identity=client_identity, expected_host_id=pin, **(client_kwargs or {})
    )
    host_task = asyncio.create_task(host.run())
    await asyncio.sleep(0.2)
    extra = asyncio.create_task(during(Session(host, client))) if during else None
    try:
        report = await client.run()
    finally:
        if extra is not None and not extra.done():
            extra.cancel()
        host.stop()
        await asyncio.wait_for(host_task, 10)
    if extra is not None and extra.done() and not extra.cancelled() and extra.exception():
        raise extra.exception()  # type: ignore[misc]
    return host, report


@pytest.fixture
def session_runner() -> Callable[..., Awaitable[tuple[HostService, ClientReport]]]:
    return run_session
