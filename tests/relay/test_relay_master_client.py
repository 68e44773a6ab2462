"""Registration and heartbeats against a fake master (httpx.MockTransport, and a real HTTP
responder on 127.0.0.1 for the end-to-end path through RelayServer)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.relay.conftest import RELAY_ID, Master
from wavry.relay.core import RelayCore
from wavry.relay.server import MasterClient, RelayServer, advertised_endpoints
from wavry.relay.settings import RelaySettings, parse_hostport, parse_public_keys

MASTER = Master()


class Stop(Exception):
    pass


class FakeMaster:
    """Scripted answers: a list of status codes per path, then 200 forever."""

    def __init__(self, register: list[int] | None = None, heartbeat: list[int] | None = None):
        self.script = {"register": list(register or []), "heartbeat": list(heartbeat or [])}
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        kind = request.url.path.rsplit("/", 1)[-1]
        self.calls.append((kind, json.loads(request.content), request.headers.get("authorization")))
        status = self.script[kind].pop(0) if self.script[kind] else 200
        if status == -1:
            raise httpx.ConnectError("refused")
        if status != 200:
            return httpx.Response(status, json={"error": "scripted"})
        if kind == "register":
            return httpx.Response(
                200,
                json={
                    "relay_id": RELAY_ID,
                    "state": "new",
                    "heartbeat_interval_ms": 5000,
                    "master_public_key": MASTER.public_key.hex(),
                    "master_key_id": MASTER.kid,
                    "trusted_keys": {MASTER.kid: MASTER.public_key.hex()},
                },
            )
        return httpx.Response(
            200, json={"ok": True, "state": "active", "heartbeat_interval_ms": 2000}
        )

    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]


class Clock:
    """Fake sleep: records delays, lets a check run at each, stops after ``limit`` sleeps."""

    def __init__(self, limit: int) -> None:
        self.delays: list[float] = []
        self.limit = limit
        self.states: list[bool] = []
        self.client: MasterClient | None = None

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        if self.client is not None:
            self.states.append(self.client.registered)
        if len(self.delays) >= self.limit:
            raise Stop
        await asyncio.sleep(0)


def make(fake: FakeMaster, clock: Clock, **kw: Any) -> MasterClient:
    s = RelaySettings(relay_id=RELAY_ID, master_url="http://127.0.0.1:8080", **kw)
    core = RelayCore(RELAY_ID, None)
    client = MasterClient(
        s, core, ["127.0.0.1:4000"], transport=httpx.MockTransport(fake.handler), sleep=clock.sleep
    )
    clock.client = client
    return client


async def run(client: MasterClient) -> None:
    with pytest.raises(Stop):
        await client.run()
    await client.aclose()


async def test_register_body_token_and_key_pinning() -> None:
    fake, clock = FakeMaster(), Clock(limit=2)
    client = make(fake, clock, master_token="s3cret", region="eu-west", asn=64512)
    await run(client)
    kind, body, auth = fake.calls[0]
    assert kind == "register" and auth == "Bearer s3cret"
    assert body == {
        "relay_id": RELAY_ID,
        "endpoints": ["127.0.0.1:4000"],
        "region": "eu-west",
        "asn": 64512,
        "max_sessions": 100,
        "max_bitrate_kbps": 20000,
        "features": ["ipv4"],
    }
    assert fake.calls[1][1] == {"relay_id": RELAY_ID, "load_pct": 0}
    assert clock.delays == [5.0, 2.0]  # register's interval, then the heartbeat's answer
    assert client.registered
    assert client.core.verifier is not None and client.core.verifier.key_ids == (MASTER.kid,)


async def test_backoff_doubles_to_60s_and_unready_meanwhile() -> None:
    fake, clock = FakeMaster(register=[503, -1, 401, 500, 503, 503, 503, 503]), Clock(limit=9)
    client = make(fake, clock)
    await run(client)
    assert clock.delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 5.0]
    assert clock.states == [False] * 8 + [True]


async def test_404_reregisters_immediately() -> None:
    fake, clock = FakeMaster(heartbeat=[200, 404]), Clock(limit=4)
    client = make(fake, clock)
    await run(client)
    assert fake.kinds() == ["register", "heartbeat", "heartbeat", "register", "heartbeat"]
    # no backoff sleep (1 s) between the 404 and the re-registration
    assert clock.delays == [5.0, 2.0, 5.0, 2.0]
    assert client.registrations == 2 and client.registered


async def test_six_failures_reregister_and_each_failure_unreadies() -> None:
    fake, clock = FakeMaster(heartbeat=[500, -1, 500, 500, 500, 500]), Clock(limit=8)
    client = make(fake, clock)
    await run(client)
    assert fake.kinds() == ["register"] + ["heartbeat"] * 6 + ["register", "heartbeat"]
    # unready from the first failure until the re-registration; no backoff sleep before it
    assert clock.states == [True] + [False] * 5 + [True, True]
    assert clock.delays == [5.0] * 7 + [2.0]
    assert client.registered


async def test_configured_key_is_not_replaced() -> None:
    other = Master(seed=b"\x05" * 32, kid="k-conf")
    fake, clock = FakeMaster(), Clock(limit=1)
    client = make(fake, clock, master_public_key=f"k-conf:{other.public_key.hex()}")
    await run(client)
    assert client.core.verifier is None  # the server builds it from the configured keys


def test_advertised_endpoints_never_wildcard() -> None:
    s = RelaySettings(master_url="http://127.0.0.1:8080")
    assert advertised_endpoints(s, ("0.0.0.0", 4000)) == ["127.0.0.1:4000"]
    assert advertised_endpoints(s, ("127.0.0.5", 4001)) == ["127.0.0.5:4001"]
    s = RelaySettings(advertise="relay.example:4000, 203.0.113.7:4000")
    assert advertised_endpoints(s, ("0.0.0.0", 4000)) == ["relay.example:4000", "203.0.113.7:4000"]


def test_settings_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_hostport("[::1]:4000") == ("::1", 4000)
    assert parse_hostport("127.0.0.1:0") == ("127.0.0.1", 0)
    with pytest.raises(ValueError):
        parse_hostport("127.0.0.1")
    key = MASTER.public_key
    assert parse_public_keys(key.hex()) == {"k" + key[:8].hex(): key}
    assert parse_public_keys(f"a:{key.hex()},b:{(b'x' * 32 + key).hex()}") == {"a": key, "b": key}
    monkeypatch.setenv("WAVRY_MASTER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WAVRY_RELAY_PACKET_QUEUE_CAPACITY", "10")
    monkeypatch.setenv("WAVRY_ALLOW_INSECURE_RELAY", "1")
    monkeypatch.setenv("WAVRY_RELAY_MASTER_TOKEN", "   ")
    s = RelaySettings()
    assert s.master_url == "http://127.0.0.1:9"
    assert s.packet_queue_capacity == 64 and s.allow_insecure_dev and s.master_token is None
    assert s.listen == "127.0.0.1:4000" and s.health_listen == "127.0.0.1:9091"
    assert (s.ip_rate_limit_pps, s.identity_rate_limit_pps, s.max_bitrate) == (1000, 200, 20000)
    assert RelaySettings(load_shed_threshold_pct=10).load_shed_threshold_pct == 50


async def _http_master(answers: list[int]) -> tuple[asyncio.Server, list[str]]:
    """A real HTTP/1.1 responder on 127.0.0.1 (aiohttp is not installed)."""
    seen: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            lines = head.decode().split("\r\n")
            length = next(
                int(x.split(":")[1]) for x in lines if x.lower().startswith("content-length")
            )
            await reader.readexactly(length)
            path = lines[0].split()[1]
            seen.append(path)
            status = answers.pop(0) if answers else 200
            doc: dict[str, Any] = {"ok": True, "heartbeat_interval_ms": 500}
            if path.endswith("register"):
                doc = {
                    "heartbeat_interval_ms": 500,
                    "master_public_key": MASTER.public_key.hex(),
                    "master_key_id": MASTER.kid,
                    "trusted_keys": {},
                }
            body = json.dumps(doc).encode()
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, seen


async def test_server_registers_over_real_http_and_reports_ready() -> None:
    http, seen = await _http_master([])
    port = http.sockets[0].getsockname()[1]
    relay = RelayServer(
        RelaySettings(
            listen="127.0.0.1:0",
            health_listen="127.0.0.1:0",
            master_url=f"http://127.0.0.1:{port}",
            relay_id=RELAY_ID,
        )
    )
    assert not relay.ready
    await relay.start()
    try:
        for _ in range(500):
            if relay.ready and len(seen) >= 2:
                break
            await asyncio.sleep(0.01)
        assert relay.ready and relay.has_master_key and relay.registered
        assert seen[:2] == ["/v1/relays/register", "/v1/relays/heartbeat"]
    finally:
        await relay.close()
        http.close()
        await http.wait_closed()


async def test_master_down_means_not_ready() -> None:
    http, _ = await _http_master([])
    port = http.sockets[0].getsockname()[1]
    http.close()
    await http.wait_closed()
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        await asyncio.sleep(0.001)

    relay = RelayServer(
        RelaySettings(
            listen="127.0.0.1:0",
            health_listen="127.0.0.1:0",
            master_url=f"http://127.0.0.1:{port}",
        ),  # fmt: skip
        sleep=sleep,
    )
    await relay.start()
    try:
        for _ in range(500):
            if len(sleeps) >= 3:
                break
            await asyncio.sleep(0.01)
        assert sleeps[:3] == [1.0, 2.0, 4.0]
        assert not relay.ready and not relay.registered and not relay.has_master_key
    finally:
        await relay.close()
