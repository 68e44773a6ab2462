"""Async engine and session helpers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from wavry import paths

__all__ = ["ENV_DATABASE_URL", "database_url", "make_engine", "make_sessionmaker", "sqlite_url"]

ENV_DATABASE_URL = "WAVRY_DATABASE_URL"


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def database_url(env: dict[str, str] | None = None, *, filename: str = "master.db") -> str:
    """``WAVRY_DATABASE_URL`` if set, else SQLite at ``DATA_DIR/<filename>``."""
    env = dict(os.environ) if env is None else env
    override = env.get(ENV_DATABASE_URL, "").strip()
    if override:
        return override
    return sqlite_url(paths.data_dir(env) / filename)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run while one writer commits; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine; for SQLite the parent directory is created and WAL/foreign keys enabled."""
    kwargs: dict[str, Any] = {"echo": echo}
    is_sqlite = url.startswith("sqlite")
    if is_sqlite:
        db_path = url.split("///", 1)[1] if "///" in url else ""
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
