"""Alembic migrations: the schema is built by them, and they round-trip on SQLite and PostgreSQL.

``any_database_url`` (tests/services.py) runs each test on a fresh SQLite file and on a fresh
database of a private PostgreSQL server.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from wavry.storage import (
    AuditEvent,
    Base,
    Relay,
    database_url,
    downgrade,
    make_engine,
    make_sessionmaker,
    upgrade,
)
from wavry.storage.migrate import head_revision


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_upgrade_builds_every_model_table_and_downgrade_removes_them(
    any_database_url: str,
) -> None:
    engine = make_engine(any_database_url)
    try:
        await upgrade(engine)
        tables = await _tables(engine)
        assert set(Base.metadata.tables) <= tables
        assert "alembic_version" in tables
        async with engine.connect() as conn:
            version = (await conn.exec_driver_sql("select version_num from alembic_version")).one()
        assert version[0] == head_revision()

        await downgrade(engine, "base")
        assert (await _tables(engine)) - {"alembic_version"} == set()

        # up again after a full round trip, and the models work against it
        await upgrade(engine)
        maker = make_sessionmaker(engine)
        async with maker() as session, session.begin():
            session.add(
                Relay(
                    relay_id="r1",
                    endpoints=["127.0.0.1:4000"],
                    subnet="127.0.0.0/24",
                    max_sessions=10,
                    max_bitrate_kbps=20000,
                    features=["ipv4"],
                    state="new",
                    load_pct=0,
                    healthy_heartbeats=0,
                    registered_at=1.0,
                    last_seen=1.0,
                    success_count=0,
                    failure_count=0,
                    feedback_score=50.0,
                )
            )
            session.add(
                AuditEvent(
                    created_at=1.0,
                    actor="admin",
                    action="x",
                    target_type="relay",
                    outcome="ok",
                    actor_ip_hash="0" * 64,
                    details={"a": 1},
                )
            )
        async with maker() as session:
            relay = (await session.execute(select(Relay))).scalar_one()
            assert relay.endpoints == ["127.0.0.1:4000"]
            audit = (await session.execute(select(AuditEvent))).scalar_one()
            assert audit.details == {"a": 1}
    finally:
        await engine.dispose()


async def test_migrations_match_the_models(any_database_url: str) -> None:
    """Autogenerate against the migrated schema finds nothing to do: models and migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(any_database_url)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                )
            )
        assert diff == []
    finally:
        await engine.dispose()


async def test_upgrade_accepts_a_url(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'm.db'}"
    await upgrade(url)
    assert (tmp_path / "sub" / "m.db").exists()
    await downgrade(url)


def test_database_url_default_and_override(tmp_path: Path) -> None:
    assert database_url({"WAVRY_DATA_DIR": str(tmp_path)}) == (
        f"sqlite+aiosqlite:///{tmp_path / 'master.db'}"
    )
    env = {"WAVRY_DATA_DIR": str(tmp_path), "WAVRY_DATABASE_URL": "postgresql+asyncpg://x/y"}
    assert database_url(env) == "postgresql+asyncpg://x/y"


async def test_each_revision_steps_up_and_down(any_database_url: str) -> None:
    """Every revision upgrades and downgrades on its own (not only base <-> head)."""
    from alembic.script import ScriptDirectory

    from wavry.storage.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    engine = make_engine(any_database_url)
    try:
        for rev in revisions:
            await upgrade(engine, rev)
        for rev in reversed(revisions[:-1]):
            await downgrade(engine, rev)
            await upgrade(engine, "+1")
            await downgrade(engine, rev)
        await downgrade(engine, "base")
        assert (await _tables(engine)) - {"alembic_version"} == set()
    finally:
        await engine.dispose()


async def test_values_round_trip_exactly(any_database_url: str) -> None:
    """UNIX-second floats keep sub-microsecond precision, booleans and bytes survive, on both."""
    from wavry.storage import Identity

    engine = make_engine(any_database_url)
    try:
        await upgrade(engine)
        maker = make_sessionmaker(engine)
        t = 1_700_000_000.123456
        async with maker() as session, session.begin():
            session.add(
                Identity(
                    wavry_id="w" * 43,
                    public_key=bytes(range(32)),
                    display_name="ünïcödé " + "x" * 56,
                    created_at=t,
                    banned=True,
                )
            )
        async with maker() as session:
            ident = (await session.execute(select(Identity))).scalar_one()
        assert ident.created_at == t
        assert ident.banned is True
        assert ident.public_key == bytes(range(32))
        assert ident.display_name == "ünïcödé " + "x" * 56
    finally:
        await engine.dispose()
