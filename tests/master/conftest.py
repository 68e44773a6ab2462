"""Master API fixtures: a migrated SQLite per test, a manual clock, an ASGI client."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from wavry.master import MasterSettings, create_app
from wavry.rift.identity import Identity
from wavry.storage import make_engine, upgrade

ADMIN_TOKEN = "a" * 40
RELAY_TOKEN = "relay-service-token"
SIGNING_SEED = bytes(range(32))


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'master.db'}")
    await upgrade(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def settings_for(tmp_path: Path, **overrides: Any) -> MasterSettings:
    base: dict[str, Any] = {
        "data_dir": tmp_path,
        "signing_key": SIGNING_SEED.hex(),
        "relay_auth_token": RELAY_TOKEN,
        "admin_panel_token": ADMIN_TOKEN,
    }
    base.update(overrides)
    return MasterSettings(**base)


AppFactory = Callable[..., FastAPI]


@pytest.fixture
def make_app(tmp_path: Path, engine: AsyncEngine, clock: Clock) -> AppFactory:
    def factory(**overrides: Any) -> FastAPI:
        return create_app(
            settings_for(tmp_path, **overrides),
            engine=engine,
            clock=clock,
            rng=random.Random(7),
            run_background=False,
        )

    return factory


@pytest.fixture
def app(make_app: AppFactory) -> FastAPI:
    return make_app()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://master") as c:
        yield c


RELAY_AUTH = {"Authorization": f"Bearer {RELAY_TOKEN}"}
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def relay_body(relay_id: str = "relay-1", endpoint: str = "198.51.100.10:4000", **kw: Any) -> dict:
    body: dict[str, Any] = {
        "relay_id": relay_id,
        "endpoints": [endpoint],
        "region": "eu-west",
        "asn": 64500,
        "max_sessions": 100,
        "max_bitrate_kbps": 20000,
        "features": ["ipv4"],
    }
    body.update(kw)
    return body


async def register_relay(client: httpx.AsyncClient, relay_id: str = "relay-1", **kw: Any) -> dict:
    resp = await client.post(
        "/v1/relays/register", json=relay_body(relay_id, **kw), headers=RELAY_AUTH
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


async def heartbeat(client: httpx.AsyncClient, relay_id: str, load: int = 10) -> httpx.Response:
    return await client.post(
        "/v1/relays/heartbeat", json={"relay_id": relay_id, "load_pct": load}, headers=RELAY_AUTH
    )


async def register_identity(client: httpx.AsyncClient, ident: Identity, name: str = "x") -> None:
    from wavry.master.identity import challenge_message

    resp = await client.post(
        "/v1/auth/register", json={"wavry_id": ident.wavry_id, "display_name": name}
    )
    assert resp.status_code == 200, resp.text
    challenge = resp.json()["challenge"]
    sig = ident.sign(challenge_message("register", bytes.fromhex(challenge)))
    resp = await client.post(
        "/v1/auth/register/verify",
        json={"wavry_id": ident.wavry_id, "challenge": challenge, "signature_hex": sig.hex()},
    )
    assert resp.status_code == 201, resp.text


async def login(client: httpx.AsyncClient, ident: Identity) -> dict[str, str]:
    from wavry.master.identity import challenge_message

    resp = await client.post("/v1/auth/login", json={"wavry_id": ident.wavry_id})
    assert resp.status_code == 200, resp.text
    challenge = resp.json()["challenge"]
    sig = ident.sign(challenge_message("login", bytes.fromhex(challenge)))
    resp = await client.post(
        "/v1/auth/login/verify",
        json={"wavry_id": ident.wavry_id, "challenge": challenge, "signature_hex": sig.hex()},
    )
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def identity(n: int) -> Identity:
    return Identity.from_seed(bytes([n]) * 32)
