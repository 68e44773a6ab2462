"""Gateway fixtures: a migrated database per test, a manual clock, cheap Argon2 parameters, an
ASGI client.

The database is SQLite (copied from one migrated template) unless
``WAVRY_TEST_DATABASE=postgresql``: then every gateway test runs on a fresh, migrated database of
a private PostgreSQL server (``tests/services.py``). ``scripts/test.sh`` runs the gateway suite
both ways.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from wavry.gateway import GatewaySettings, create_app
from wavry.storage import make_engine, upgrade

ADMIN_TOKEN = "g" * 40
TOTP_KEY_B64 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # b"0123456789abcdef" * 2
PASSWORD = "correct horse battery"
CLIENT_IP = "203.0.113.7"
#: cheap Argon2id for tests (production: m=19456 KiB, t=2, p=1)
CHEAP_ARGON2 = {"argon2_memory_kib": 8, "argon2_time_cost": 1, "argon2_parallelism": 1}


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gateway-template") / "template.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


def test_database() -> str:
    kind = os.environ.get("WAVRY_TEST_DATABASE", "sqlite").strip().lower() or "sqlite"
    if kind not in ("sqlite", "postgresql"):
        raise pytest.UsageError(f"WAVRY_TEST_DATABASE={kind!r}: use sqlite or postgresql")
    return kind


@pytest.fixture
async def engine(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_template: Path
) -> AsyncIterator[AsyncEngine]:
    if test_database() == "postgresql":
        url = str(request.getfixturevalue("fresh_postgres_url"))
        await upgrade(url)
        eng = make_engine(url)
    else:
        db = tmp_path / "gateway.db"
        shutil.copyfile(migrated_template, db)
        eng = make_engine(f"sqlite+aiosqlite:///{db}")
    yield eng
    await eng.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def settings_for(tmp_path: Path, **overrides: Any) -> GatewaySettings:
    base: dict[str, Any] = {
        "data_dir": tmp_path,
        "admin_panel_token": ADMIN_TOKEN,
        "totp_key_b64": TOTP_KEY_B64,
        "audit_ip_key": "test-audit-key",
        **CHEAP_ARGON2,
    }
    base.update(overrides)
    return GatewaySettings(**base)


AppFactory = Callable[..., FastAPI]


@pytest.fixture
def make_app(tmp_path: Path, engine: AsyncEngine, clock: Clock) -> AppFactory:
    def factory(**overrides: Any) -> FastAPI:
        return create_app(
            settings_for(tmp_path, **overrides), engine=engine, clock=clock, run_background=False
        )

    return factory


@pytest.fixture
def app(make_app: AppFactory) -> FastAPI:
    return make_app()


def asgi_client(app: FastAPI, ip: str = CLIENT_IP) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 5555))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c


ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def register_body(n: int | str = 1, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": f"user{n}@example.com",
        "password": PASSWORD,
        "username": f"user{n}",
        "display_name": f"User {n}",
        "public_key": "ab" * 32,
    }
    body.update(kw)
    return body


async def register(client: httpx.AsyncClient, n: int | str = 1, **kw: Any) -> dict[str, Any]:
    resp = await client.post("/auth/register", json=register_body(n, **kw))
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
