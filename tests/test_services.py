"""The test-service fixtures themselves: private PostgreSQL and Redis servers on loopback."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import redis.asyncio as aioredis

from tests.services import PostgresServer, RedisServer


async def test_fresh_postgres_databases_are_separate_and_empty(
    postgres_server: PostgresServer, fresh_postgres_url: str
) -> None:
    dsn = fresh_postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("select current_setting('listen_addresses')") == "127.0.0.1"
        tables = await conn.fetch("select tablename from pg_tables where schemaname = 'public'")
        assert tables == []
        await conn.execute("create table t (x int)")
    finally:
        await conn.close()
    assert str(postgres_server.port) in fresh_postgres_url


async def test_postgres_refuses_a_wrong_password(postgres_server: PostgresServer) -> None:
    bad = postgres_server.dsn().replace(postgres_server.password, "wrong")
    try:
        await asyncpg.connect(bad)
    except asyncpg.InvalidPasswordError:
        pass
    else:  # pragma: no cover - a failure
        raise AssertionError("password auth is not enforced")


async def test_fresh_redis_urls_are_isolated(fresh_redis_url: str, redis_url: str) -> None:
    a = aioredis.from_url(fresh_redis_url)
    b = aioredis.from_url(redis_url)
    try:
        await a.set("k", "fresh")
        assert await b.get("k") is None
        assert await a.get("k") == b"fresh"
    finally:
        await a.aclose()
        await b.aclose()


def test_redis_factory_servers_stop_and_start(
    redis_factory: Callable[[], RedisServer],
) -> None:
    server = redis_factory()
    assert server.command("PING") == b"+PONG\r\n"
    server.stop()
    try:
        server.command("PING")
    except OSError:
        pass
    else:  # pragma: no cover - a failure
        raise AssertionError("redis still answers after stop()")
    server.start()
    assert server.command("PING") == b"+PONG\r\n"
