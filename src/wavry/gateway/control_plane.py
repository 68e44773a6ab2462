"""``wavry control-plane``: the gateway and the master in one process for small installs.

Design: two uvicorn servers in one event loop, each on its own port (gateway 127.0.0.1:3000,
master 127.0.0.1:8080 by default), sharing one database engine (SQLite at
``DATA_DIR/control-plane.db`` unless ``WAVRY_DATABASE_URL``), migrated once at start. Two ports
rather than one server with both apps mounted under prefixes: every URL stays exactly what the
standalone services serve (relays register at ``<master>/v1/relays/register``, clients use the
gateway's ``/auth/...`` and ``/ws``), so moving to separate processes later changes no client
configuration. The gateway's ``master_url`` defaults to the in-process master.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from pydantic import SecretStr

from wavry.gateway.settings import GatewaySettings
from wavry.master.settings import MasterSettings

__all__ = ["ControlPlane", "control_plane_database_url", "serve"]

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to its owner (two servers share one process)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def control_plane_database_url(gateway: GatewaySettings) -> str:
    from wavry.storage.engine import database_url

    return gateway.database_url or database_url(
        {"WAVRY_DATA_DIR": str(gateway.data_dir)}, filename="control-plane.db"
    )


@dataclass
class ControlPlane:
    """Both services, started and stopped together in the running event loop."""

    gateway_settings: GatewaySettings
    master_settings: MasterSettings
    log_level: str = "warning"
    _servers: dict[str, _Server] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _engine: Any = None

    @property
    def gateway_url(self) -> str:
        return f"http://{self._bound('gateway')}"

    @property
    def master_url(self) -> str:
        return f"http://{self._bound('master')}"

    def _bound(self, name: str) -> str:
        server = self._servers[name]
        sock = server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def start(self, timeout: float = 20.0) -> None:
        from wavry.gateway.app import create_app as create_gateway
        from wavry.master.app import create_app as create_master
        from wavry.storage import make_engine, upgrade

        url = control_plane_database_url(self.gateway_settings)
        self._engine = make_engine(url)
        await upgrade(self._engine)
        master_settings, signaling = self.master_settings, self.gateway_settings.signaling
        if master_settings.gateway_token is None and signaling.master_token is None:
            # one process: relay requests work out of the box with a per-run service token
            shared = SecretStr(secrets.token_hex(32))
            master_settings = master_settings.model_copy(update={"gateway_token": shared})
            signaling = signaling.model_copy(update={"master_token": shared})
        master_app = create_master(
            master_settings.model_copy(update={"database_url": url}), engine=self._engine
        )
        master_server = _Server(self._config(master_app, self.master_settings.listen))
        await self._launch("master", master_server, timeout)
        gateway = self.gateway_settings
        if gateway.master_url is None:
            gateway = gateway.model_copy(update={"master_url": self.master_url})
        gateway = gateway.model_copy(update={"database_url": url, "signaling": signaling})
        gateway_app = create_gateway(gateway, engine=self._engine)
        await self._launch("gateway", _Server(self._config(gateway_app, gateway.listen)), timeout)

    def _config(self, app: Any, listen: str) -> uvicorn.Config:
        from wavry.gateway.signaling.limits import SERVER_WS_MAX_SIZE

        host, _, port = listen.rpartition(":")
        return uvicorn.Config(app, host=host.strip("[]") or "127.0.0.1", port=int(port),
                              log_level=self.log_level, access_log=False, lifespan="on",
                              proxy_headers=False, server_header=False,
                              ws_max_size=SERVER_WS_MAX_SIZE)  # fmt: skip

    async def _launch(self, name: str, server: _Server, timeout: float) -> None:
        task = asyncio.create_task(server.serve())
        self._servers[name] = server
        self._tasks.append(task)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not server.started:
            if task.done():
                await self.stop()
                raise RuntimeError(f"could not start on {server.config.host}:{server.config.port}")
            if loop.time() > deadline:
                await self.stop()
                raise RuntimeError("timed out starting the control plane")
            await asyncio.sleep(0.02)

    def request_stop(self) -> None:
        for server in self._servers.values():
            server.should_exit = True

    async def wait(self) -> None:
        """Until either server stops (then stop the other)."""
        if self._tasks:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        await self.stop()

    async def stop(self) -> None:
        self.request_stop()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


async def serve(gateway: GatewaySettings, master: MasterSettings, log_level: str) -> int:
    """Run both services until SIGINT/SIGTERM; the exit status."""
    plane = ControlPlane(gateway, master, log_level=log_level)
    try:
        await plane.start()
    except (RuntimeError, OSError) as exc:
        sys.stderr.write(f"wavry control-plane: {exc}\n")
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, plane.request_stop)
    sys.stderr.write(
        f"wavry control-plane: gateway on {plane.gateway_url}, master on {plane.master_url}\n"
    )
    await plane.wait()
    return 0
