"""The load + soak SLO gate (CI profile), its failure path, the chaos proxy and chaos registration.

The full profile (200 relays, 30 s) is documented in docs/control-plane-resilience.md; CI runs
50 relays for 5 s. Assertions are on counts and on the gate's verdict, never on wall-clock
timings of the test itself (the impossible-SLO test uses a bound no request can meet).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from wavry.master.addresses import parse_endpoint, subnet_of
from wavry.master.chaos_proxy import ChaosProxy
from wavry.master.loadgate import (
    SLO,
    LoadProfile,
    MasterProcess,
    main,
    relay_endpoint,
    run_load,
)

TOKEN = "loadgate-test-token"


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    proc = MasterProcess(tmp_path_factory.mktemp("loadgate"), relay_token=TOKEN)
    proc.start(timeout=20.0)
    try:
        yield proc
    finally:
        proc.stop()


def test_relay_endpoints_each_have_their_own_network() -> None:
    nets = {subnet_of(parse_endpoint(relay_endpoint(i))) for i in range(2000)}
    assert len(nets) == 2000
    with pytest.raises(ValueError):
        relay_endpoint(250 * 250)


async def test_ci_profile_passes_the_gate(master: MasterProcess) -> None:
    report = await run_load(master.url, LoadProfile(relays=50, seconds=5.0, relay_token=TOKEN))
    assert report.register_ops == 50 and report.register_ok == 50
    assert report.heartbeat_ops >= 50 * 3  # every relay heartbeats on its 1 s grid
    assert report.missing_relays == 0
    assert report.failures(SLO()) == [], report.as_dict(SLO())


async def test_gate_fails_when_an_slo_is_impossible(master: MasterProcess) -> None:
    report = await run_load(master.url, LoadProfile(relays=5, seconds=2.0, relay_token=TOKEN))
    impossible = SLO(max_register_p95_ms=0.001, max_heartbeat_p95_ms=0.001)
    failures = report.failures(impossible)
    assert any("register p95" in f for f in failures)
    assert any("heartbeat p95" in f for f in failures)
    assert report.as_dict(impossible)["gate"] == "fail"


async def test_gate_fails_with_the_wrong_relay_token(master: MasterProcess) -> None:
    report = await run_load(master.url, LoadProfile(relays=3, seconds=1.5, relay_token="wrong"))
    assert report.register_ok == 0 and report.errors["http_401"] > 0
    assert report.missing_relays == 3
    assert report.failures(SLO())


def test_cli_exit_status_follows_the_gate(
    master: MasterProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--relays", "3", "--seconds", "1.5", "--master-url", master.url]
    common += ["--relay-token", TOKEN]
    assert main(common) == 0
    assert json.loads(capsys.readouterr().out)["gate"] == "pass"
    assert main([*common, "--max-heartbeat-p95-ms", "0.001"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["gate"] == "fail" and out["failures"]


def test_cli_refuses_a_non_loopback_master(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--relays", "1", "--seconds", "1", "--master-url", "http://192.0.2.1:1"]) == 2
    assert "loopback" in capsys.readouterr().err


async def test_registration_through_the_chaos_proxy_succeeds_with_retries(
    master: MasterProcess,
) -> None:
    profile = LoadProfile(relays=10, seconds=3.0, relay_token=TOKEN, retries=5, keepalive=False)
    report = await run_load(master.url, profile, chaos=(0.7, 4))
    assert report.chaos is not None and report.chaos["dropped"] > 0
    assert report.errors  # dropped connections were seen ...
    assert report.register_ok == report.register_ops == 10  # ... and retried through
    assert report.missing_relays == 0
    chaos_slo = SLO(max_register_p95_ms=3000.0, max_heartbeat_p95_ms=3000.0)
    assert report.failures(chaos_slo) == [], report.as_dict(chaos_slo)
    # every answered operation waited for at least one delayed connection
    assert report.register_ms.percentile(50) >= 700.0


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_chaos_proxy_delays_forwards_and_drops_every_nth() -> None:
    server, port = await _echo_server()
    async with server, ChaosProxy(("127.0.0.1", port), delay=0.05, drop_every=3) as proxy:
        outcomes = []
        for n in range(6):
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            payload = f"ping-{n}".encode() * 1000
            try:
                writer.write(payload)
                await writer.drain()
                writer.write_eof()
                got = await asyncio.wait_for(reader.read(), timeout=5.0)
            except ConnectionError:  # a dropped connection may surface as a reset
                got = b""
            outcomes.append(got == payload)
            writer.close()
        assert outcomes == [True, True, False, True, True, False]
        assert (proxy.accepted, proxy.dropped, proxy.forwarded) == (6, 2, 4)


async def test_chaos_proxy_close_ends_open_connections() -> None:
    server, port = await _echo_server()
    async with server:
        proxy = ChaosProxy(("127.0.0.1", port), delay=0.0)
        await proxy.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"hello")
        assert await asyncio.wait_for(reader.readexactly(5), timeout=5.0) == b"hello"
        await asyncio.wait_for(proxy.close(), timeout=5.0)
        assert await asyncio.wait_for(reader.read(), timeout=5.0) == b""
        writer.close()


def test_chaos_proxy_refuses_non_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        ChaosProxy(("192.0.2.1", 80))
    with pytest.raises(ValueError, match="loopback"):
        ChaosProxy(("127.0.0.1", 80), listen=("0.0.0.0", 0))
    with pytest.raises(ValueError):
        ChaosProxy(("127.0.0.1", 80), drop_every=-1)


def test_master_process_uses_the_data_dir(master: MasterProcess) -> None:
    assert (Path(master.data_dir) / "master.db").exists()
