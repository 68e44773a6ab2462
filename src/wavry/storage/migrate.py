"""Run the Alembic migrations from code, without an ``alembic.ini``.

``await upgrade(engine)`` brings a database to the newest schema and
``await downgrade(engine, "base")`` removes it. The Alembic config is built here; the live
connection reaches ``migrations/env.py`` through ``config.attributes``, so one async engine
serves both the service and its migrations.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from wavry.storage.engine import make_engine

__all__ = ["MIGRATIONS_DIR", "alembic_config", "downgrade", "head_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def _run(target: AsyncEngine | str, op: str, revision: str) -> None:
    engine = make_engine(target) if isinstance(target, str) else target
    try:
        async with engine.begin() as conn:

            def _migrate(sync_conn: Connection) -> None:
                config = alembic_config(sync_conn)
                if op == "upgrade":
                    command.upgrade(config, revision)
                else:
                    command.downgrade(config, revision)

            await conn.run_sync(_migrate)
    finally:
        if isinstance(target, str):
            await engine.dispose()


async def upgrade(target: AsyncEngine | str, revision: str = "head") -> None:
    """Migrate the database (an engine or a URL) up to ``revision``."""
    await _run(target, "upgrade", revision)


async def downgrade(target: AsyncEngine | str, revision: str = "base") -> None:
    """Migrate the database (an engine or a URL) down to ``revision``."""
    await _run(target, "downgrade", revision)
