"""``wavry db``: inspect and move the control-plane database schema (Alembic, from code).

    wavry db current   [--service master|gateway | --database-url URL]
    wavry db heads
    wavry db upgrade   [REVISION]      (default: head)
    wavry db downgrade REVISION        (explicit; "base" drops every table)

The services upgrade their database themselves at start-up; these commands are for operators:
checking what a database is at, and rolling a schema back before reinstalling an older release
(``docs/release.md``, rollback runbook). Always back the database up first.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

__all__ = ["add_db_parser"]

_FILES = {"master": "master.db", "gateway": "gateway.db"}


def add_db_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "db",
        help="database schema: current revision, heads, upgrade, downgrade",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--service",
        choices=sorted(_FILES),
        default="master",
        help="whose default SQLite database (DATA_DIR/<service>.db; default master)",
    )
    p.add_argument("--database-url", help="database URL (default WAVRY_DATABASE_URL or SQLite)")
    dsub = p.add_subparsers(dest="db_command", required=True)
    dsub.add_parser("current", help="print the revision the database is at").set_defaults(
        func=_cmd_current
    )
    dsub.add_parser("heads", help="print the newest revision this release knows").set_defaults(
        func=_cmd_heads
    )
    up = dsub.add_parser("upgrade", help="migrate up (default: to head)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=_cmd_upgrade)
    down = dsub.add_parser("downgrade", help="migrate down to REVISION (required)")
    down.add_argument("revision", help='target revision, e.g. the N-1 release\'s head, or "base"')
    down.set_defaults(func=_cmd_downgrade)


def _url(ns: argparse.Namespace) -> str:
    from wavry.storage.engine import database_url

    return str(ns.database_url or database_url(filename=_FILES[ns.service]))


def _say(text: str) -> None:
    sys.stderr.write(f"wavry db: {text}\n")


async def _current(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import Connection

    from wavry.storage.engine import make_engine

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:

            def _rev(sync_conn: Connection) -> str | None:
                return MigrationContext.configure(sync_conn).get_current_revision()

            return await conn.run_sync(_rev)
    finally:
        await engine.dispose()


def _missing_sqlite(url: str) -> bool:
    if not url.startswith("sqlite") or "///" not in url:
        return False
    path = url.split("///", 1)[1]
    return path not in ("", ":memory:") and not Path(path).exists()


def _cmd_current(ns: argparse.Namespace) -> int:
    url = _url(ns)
    if _missing_sqlite(url):
        _say(f"no database at {url} (check WAVRY_DATA_DIR / --service / --database-url)")
        return 1
    try:
        rev = asyncio.run(_current(url))
    except Exception as exc:  # noqa: BLE001 - top of the command: report and exit
        _say(f"cannot read the database: {type(exc).__name__}: {exc}")
        return 1
    sys.stdout.write(f"{rev or 'base'}\n")
    return 0


def _cmd_heads(_: argparse.Namespace) -> int:
    from wavry.storage.migrate import head_revision

    sys.stdout.write(f"{head_revision()}\n")
    return 0


def _move(ns: argparse.Namespace, op: str) -> int:
    from wavry.storage import migrate

    url = _url(ns)
    if op == "downgrade" and _missing_sqlite(url):
        _say(f"no database at {url} (check WAVRY_DATA_DIR / --service / --database-url)")
        return 1
    try:
        before = asyncio.run(_current(url))
        fn = migrate.upgrade if op == "upgrade" else migrate.downgrade
        asyncio.run(fn(url, ns.revision))
        after = asyncio.run(_current(url))
    except Exception as exc:  # noqa: BLE001 - top of the command: report and exit
        _say(f"{op} to {ns.revision} failed: {type(exc).__name__}: {exc}")
        return 1
    _say(f"{op}: {before or 'base'} -> {after or 'base'}")
    sys.stdout.write(f"{after or 'base'}\n")
    return 0


def _cmd_upgrade(ns: argparse.Namespace) -> int:
    return _move(ns, "upgrade")


def _cmd_downgrade(ns: argparse.Namespace) -> int:
    return _move(ns, "downgrade")
