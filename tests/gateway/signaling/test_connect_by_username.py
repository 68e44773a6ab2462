"""Connect by username: a real gateway (uvicorn on 127.0.0.1), a real host service with its
signaling loop, a real client that offers through the gateway and streams real frames."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.gateway.signaling.conftest import Gateway, gateway_settings
from tests.host.conftest import free_port
from tests.host.test_host_client import FrameLog
from wavry.client.settings import ClientSettings
from wavry.credentials import GatewaySession, TokenStore
from wavry.gateway import create_app
from wavry.gateway.signaling.limits import SERVER_WS_MAX_SIZE
from wavry.gateway.signaling.messages import CandidateEntry
from wavry.host.service import HostService
from wavry.host.settings import HostSettings
from wavry.net.signaling import Backoff, ws_url
from wavry.rendezvous import (
    ConnectError,
    ConnectInfo,
    HostRendezvous,
    connect_by_username,
    connect_paths,
)
from wavry.rift.identity import Identity
from wavry.rift.trust import AllowList

FAST = Backoff(initial=0.05, maximum=0.4)


@asynccontextmanager
async def running_host(
    gw: Gateway, token: str, port: int | None = None
) -> AsyncIterator[tuple[HostService, HostRendezvous]]:
    settings = HostSettings(
        capture="testsrc", input_backend="none", port=port or free_port(), mdns=False,
        width=320, height=240, fps=30,
    )  # fmt: skip
    host = HostService(settings, identity=Identity.generate(), allow_list=AllowList())
    rdv = HostRendezvous(host, gw.ws_url, token, backoff=FAST)
    tasks = [asyncio.create_task(host.run()), asyncio.create_task(rdv.run())]
    try:
        for _ in range(200):
            if rdv.status.binds:
                break
            await asyncio.sleep(0.02)
        assert rdv.status.binds == 1
        yield host, rdv
    finally:
        rdv.stop()
        host.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)


def _client_settings(seconds: float) -> ClientSettings:
    return ClientSettings(host="0.0.0.0", port=1, headless=True, same_clock=True, run_for=seconds)


async def test_connect_by_username_streams_verified_frames_over_a_share(gw: Gateway) -> None:
    alice = await gw.register("alice")
    bob = await gw.register("bob")
    await gw.share(alice, "bob")  # alice shares her hosts with bob
    async with running_host(gw, alice) as (host, rdv):
        frames = FrameLog()
        overlay: list[str] = []
        report, info = await connect_by_username(
            gw.ws_url, bob, "alice", identity=Identity.generate(),
            settings=_client_settings(2.0), on_frame=frames, bind="127.0.0.1",
            on_connected=lambda client, _info: overlay.extend(client.overlay_lines()),
        )  # fmt: skip
    assert rdv.status.offers == 1 and rdv.status.answers == 1
    # the stats overlay says how the session got there and how long it took
    (path_line,) = [line for line in overlay if line.startswith("path ")]
    assert path_line.startswith(f"path direct host 127.0.0.1:{host.status.listening[1]} in ")  # type: ignore[index]
    assert path_line.endswith(" ms")
    assert info.host_wavry_id == host.identity.wavry_id  # pinned from the answer
    assert report.host_wavry_id == host.identity.wavry_id
    assert info.path == f"host 127.0.0.1:{host.status.listening[1]}"  # type: ignore[index]
    assert report.established_at is not None and report.rejected is None
    assert report.frames_presented >= 20
    assert frames.verified == report.frames_presented  # every picture's barcode matched
    assert info.first_frame_s is not None and info.first_frame_s < 3.0
    assert host.status.sessions_started == 1


async def test_unshared_user_is_refused_with_a_clear_message(gw: Gateway) -> None:
    alice = await gw.register("alice")
    mallory = await gw.register("mallory")
    async with running_host(gw, alice) as (host, rdv):
        with pytest.raises(ConnectError, match="not_shared: alice does not share"):
            await connect_by_username(
                gw.ws_url, mallory, "alice", identity=Identity.generate(),
                settings=_client_settings(1.0), answer_timeout=3.0, bind="127.0.0.1",
            )  # fmt: skip
        with pytest.raises(ConnectError, match="no account named|unknown_target"):
            await connect_by_username(
                gw.ws_url, mallory, "nobody", identity=Identity.generate(),
                settings=_client_settings(1.0), answer_timeout=3.0, bind="127.0.0.1",
            )  # fmt: skip
    assert rdv.status.offers == 0
    assert host.status.sessions_started == 0


async def test_offline_host_and_bad_token_are_explained(gw: Gateway) -> None:
    alice = await gw.register("alice")
    with pytest.raises(ConnectError, match="has no host online"):
        await connect_by_username(
            gw.ws_url, alice, "alice", identity=Identity.generate(),
            settings=_client_settings(1.0), answer_timeout=3.0, bind="127.0.0.1",
        )  # fmt: skip
    with pytest.raises(ConnectError, match="invalid_token.*wavry login"):
        await connect_by_username(
            gw.ws_url, "x" * 40, "alice", identity=Identity.generate(),
            settings=_client_settings(1.0), answer_timeout=3.0, bind="127.0.0.1",
        )  # fmt: skip


@asynccontextmanager
async def gateway_on(port: int, tmp_path: Path, engine: AsyncEngine) -> AsyncIterator[Gateway]:
    """A real gateway on a fixed port (to restart it where the host expects it)."""
    app = create_app(gateway_settings(tmp_path), engine=engine, clock=time.time)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", log_level="warning",
        ws_max_size=SERVER_WS_MAX_SIZE, ws_ping_interval=None,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn exited during start-up"
        await asyncio.sleep(0.01)
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        yield Gateway(app=app, server=server, task=task, port=port, http=http)
    finally:
        await http.aclose()
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_host_reconnects_after_the_gateway_restarts(
    tmp_path: Path, engine: AsyncEngine
) -> None:
    port = free_tcp_port()
    async with gateway_on(port, tmp_path, engine) as gw:
        alice = await gw.register("alice")
        host_cm = running_host(gw, alice)
        host, rdv = await host_cm.__aenter__()
    try:
        # The gateway is gone: the host keeps its UDP socket and retries with backoff.
        await asyncio.sleep(0.5)
        assert rdv.status.binds == 1 and host.udp_driver is not None
        async with gateway_on(port, tmp_path, engine) as gw2:  # same port, same database
            for _ in range(300):
                if rdv.status.binds >= 2:
                    break
                await asyncio.sleep(0.02)
            assert rdv.status.binds == 2
            frames = FrameLog()
            report, info = await connect_by_username(
                gw2.ws_url, alice, "alice", identity=Identity.generate(),
                settings=_client_settings(1.0), on_frame=frames, bind="127.0.0.1",
            )  # fmt: skip
            assert report.frames_presented >= 10
            assert frames.verified == report.frames_presented
            assert info.path is not None
    finally:
        await host_cm.__aexit__(None, None, None)


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_backoff_is_capped_and_jittered() -> None:
    b = Backoff(initial=0.5, maximum=30.0, jitter=0.5)
    rng = random.Random(1)
    delays = [b.delay(n, rng) for n in range(12)]
    for n, d in enumerate(delays):
        base = min(30.0, 0.5 * 2**n)
        assert base * 0.5 <= d <= base
    assert max(b.delay(10_000, rng) for _ in range(50)) <= 30.0
    assert len({round(b.delay(3, rng), 6) for _ in range(20)}) > 1  # jitter


def test_ws_url() -> None:
    assert ws_url("https://gw.example.org") == "wss://gw.example.org/ws"
    assert ws_url("http://127.0.0.1:8080/") == "ws://127.0.0.1:8080/ws"
    assert ws_url("ws://127.0.0.1:1/ws") == "ws://127.0.0.1:1/ws"
    with pytest.raises(ValueError):
        ws_url("ftp://x")


# --- the commands, as subprocesses ------------------------------------------------------------


def _login_env(tmp_path: Path, name: str, gw: Gateway, token: str, username: str) -> dict[str, str]:
    """What `wavry login` leaves behind (its own test is test_login_cli.py): a 0600 record."""
    env = {**os.environ, "WAVRY_DATA_DIR": str(tmp_path / name), "WAVRY_TOKEN_STORE": "file"}
    TokenStore(env).save(GatewaySession(gateway=gw.http_url, token=token, username=username))
    return env


async def _wavry(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wavry", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_wavry_host_gateway_and_wavry_connect_username(tmp_path: Path, gw: Gateway) -> None:
    alice = await gw.register("alice")
    bob = await gw.register("bob")
    carol = await gw.register("carol")
    await gw.share(alice, "bob")
    host_env = _login_env(tmp_path, "alice", gw, alice, "alice")
    host = await _wavry(
        "host", "--capture", "testsrc", "--input", "none", "--no-mdns", "--port", "0",
        "--resolution", "320x240", "--fps", "30", "--gateway", gw.http_url, "--run-for", "20",
        "--status-json", env=host_env,
    )  # fmt: skip
    try:
        assert host.stderr is not None
        seen = b""
        while b"online at the gateway as alice" not in seen:
            line = await asyncio.wait_for(host.stderr.readline(), 10)
            assert line, seen.decode()
            seen += line
        bob_env = _login_env(tmp_path, "bob", gw, bob, "bob")
        client = await _wavry(
            "connect",
            "alice",
            "--headless",
            "--seconds",
            "2",
            "--json",
            "--bind",
            "127.0.0.1",
            env=bob_env,
        )
        out, err = await asyncio.wait_for(client.communicate(), 20)
        assert client.returncode == 0, err.decode()
        doc = json.loads(out)
        assert doc["frames_presented"] >= 20, doc
        assert doc["frames_verified"] == doc["frames_presented"]  # the test pattern's barcodes
        assert doc["path"].startswith("host 127.0.0.1:") and doc["relayed"] is False
        assert 0 < doc["first_frame_ms"] < 3000
        assert "connected to alice via host 127.0.0.1:" in err.decode()
        # carol has no share: a clear refusal, exit 1
        carol_env = _login_env(tmp_path, "carol", gw, carol, "carol")
        refused = await _wavry(
            "connect", "alice", "--headless", "--seconds", "1", "--bind", "127.0.0.1", env=carol_env
        )
        _, err = await asyncio.wait_for(refused.communicate(), 20)
        assert refused.returncode == 1
        assert "not_shared: alice does not share its hosts with you" in err.decode()
    finally:
        host.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(host.communicate(), 15)
    assert host.returncode == 0
    assert json.loads(out.decode().strip().splitlines()[-1])["sessions"] == 1


async def test_host_stops_signaling_on_an_invalid_token_and_keeps_serving(gw: Gateway) -> None:
    settings = HostSettings(
        capture="testsrc", input_backend="none", port=free_port(), mdns=False,
    )  # fmt: skip
    host = HostService(settings, identity=Identity.generate(), allow_list=AllowList())
    rdv = HostRendezvous(host, gw.ws_url, "y" * 40, backoff=FAST)
    host_task = asyncio.create_task(host.run())
    try:
        await asyncio.wait_for(rdv.run(), 5)  # returns: retrying cannot fix a bad token
        assert rdv.status.last_error == "invalid_token" and rdv.status.binds == 0
        assert not host_task.done() and host.udp_driver is not None
    finally:
        host.stop()
        await asyncio.wait_for(host_task, 10)


async def test_every_candidate_is_tried_at_once_and_a_stranger_is_not_kept() -> None:
    """All candidates get MSG1 at once (docs/protocol.md §4.10): a dead address costs nothing,
    and a host presenting another key than the answer's is never kept."""
    settings = HostSettings(
        capture="testsrc", input_backend="none", port=free_port(), mdns=False,
        width=320, height=240, fps=30, pairing="open",
    )  # fmt: skip
    host = HostService(settings, identity=Identity.generate(), allow_list=AllowList())
    host_task = asyncio.create_task(host.run())
    try:
        while host.status.listening is None:
            await asyncio.sleep(0.02)
        port = host.status.listening[1]
        dead = free_port()  # nothing listens there
        cands = [
            CandidateEntry(addr=f"127.0.0.1:{dead}", type="srflx"),
            CandidateEntry(addr=f"127.0.0.1:{port}", type="host"),
        ]
        info = ConnectInfo(username="alice", host_wavry_id=host.identity.wavry_id)
        t0 = time.monotonic()
        report, info = await connect_paths(
            cands, info, t0=t0, identity=Identity.generate(),
            settings=_client_settings(1.0),
        )  # fmt: skip
        assert info.path == f"host 127.0.0.1:{port}"
        assert not info.relayed
        assert (info.handshake_s or 9) < 0.5  # the dead first candidate did not delay it
        assert report.frames_presented >= 5
        # a host presenting another key than the answer's is not kept
        info = ConnectInfo(username="alice", host_wavry_id=Identity.generate().wavry_id)
        with pytest.raises(ConnectError, match="no path to alice's host completed"):
            await connect_paths(
                cands[1:], info, t0=t0, identity=Identity.generate(),
                settings=_client_settings(1.0), connect_timeout=1.0,
            )  # fmt: skip
    finally:
        host.stop()
        await asyncio.wait_for(host_task, 10)


def test_which_targets_are_usernames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from wavry.cli_stream import _is_username_target

    monkeypatch.setenv("WAVRY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WAVRY_TOKEN_STORE", "file")

    def ns(target: str, gateway: str | None = None, direct: bool = False) -> argparse.Namespace:
        return argparse.Namespace(target=target, gateway=gateway, direct=direct)

    # no gateway configured: always a host
    assert not _is_username_target(ns("alice"))
    assert _is_username_target(ns("alice", gateway="http://127.0.0.1:1"))
    assert _is_username_target(ns("al.ice", gateway="http://127.0.0.1:1"))
    for host in ("10.0.0.1", "::1", "alice:4444", "[::1]:4444", "x"):
        assert not _is_username_target(ns(host, gateway="http://127.0.0.1:1"))
    assert not _is_username_target(ns("alice", gateway="http://127.0.0.1:1", direct=True))
    TokenStore().save(GatewaySession(gateway="http://127.0.0.1:1", token="t" * 40))
    assert _is_username_target(ns("alice"))  # the stored login configures the gateway
    for host in ("localhost", "host.lan", "192.0.2.1"):
        assert not _is_username_target(ns(host))
    wavry_id = Identity.generate().wavry_id  # 43 characters: a Wavry ID, not a username
    assert _is_username_target(ns(wavry_id))
    assert not _is_username_target(ns(wavry_id, direct=True))


async def test_reachable_hosts_show_who_is_online(
    tmp_path: Path, gw: Gateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from wavry.cli_stream import _list_gateway_hosts
    from wavry.rendezvous.presence import HostPresence, reachable_hosts

    alice = await gw.register("alice")
    bob = await gw.register("bob")
    carol = await gw.register("carol")
    await gw.share(alice, "bob")
    await gw.share(carol, "bob")
    async with running_host(gw, alice):
        hosts = await reachable_hosts(gw.http_url, gw.ws_url, bob)
        assert hosts == [
            HostPresence("bob", online=False, own=True),
            HostPresence("alice", online=True, own=False),
            HostPresence("carol", online=False, own=False),
        ]
        # alice shares with nobody: carol sees only herself
        assert [h.username for h in await reachable_hosts(gw.http_url, gw.ws_url, carol)] == [
            "carol"
        ]
        # `wavry connect` without a target lists them from the stored login
        env = _login_env(tmp_path, "bob", gw, bob, "bob")
        monkeypatch.setenv("WAVRY_DATA_DIR", env["WAVRY_DATA_DIR"])
        monkeypatch.setenv("WAVRY_TOKEN_STORE", "file")
        assert await asyncio.to_thread(_list_gateway_hosts) is True
        from wavry.doctor import _gateway_login

        check = await asyncio.to_thread(_gateway_login)  # `wavry doctor` checks the token
        assert check.ok and check.detail == f"bob at {gw.http_url}", check
    out = capsys.readouterr().out
    assert "alice" in out and "online   wavry connect alice" in out
    assert "carol                    offline" in out
    monkeypatch.setenv("WAVRY_DATA_DIR", str(tmp_path / "nobody"))
    assert await asyncio.to_thread(_list_gateway_hosts) is False  # not logged in: mDNS only


async def test_connect_by_wavry_id(gw: Gateway) -> None:
    """`wavry connect WAVRY_ID`: the gateway names the account bound to that ID (only for hosts
    the caller may reach), then the usual rendezvous."""
    from wavry.net.gateway_api import ensure_wavry_id_bound

    alice = await gw.register("alice")
    bob = await gw.register("bob")
    mallory = await gw.register("mallory")
    await gw.share(alice, "bob")
    async with running_host(gw, alice) as (host, _rdv):
        await ensure_wavry_id_bound(gw.http_url, alice, host.identity)  # as `wavry login` does
        report, info = await connect_by_username(
            gw.ws_url, bob, host.identity.wavry_id, identity=Identity.generate(),
            settings=_client_settings(1.0), bind="127.0.0.1",
        )  # fmt: skip
        assert info.username == "alice" and info.host_wavry_id == host.identity.wavry_id
        assert report.frames_presented >= 10
        with pytest.raises(ConnectError, match="no host you may connect to has the Wavry ID"):
            await connect_by_username(
                gw.ws_url, mallory, host.identity.wavry_id, identity=Identity.generate(),
                settings=_client_settings(1.0), bind="127.0.0.1",
            )  # fmt: skip
