"""``wavry gateway`` command line. Wire it with ``add_gateway_parser(subparsers)``.

``wavry gateway`` serves the API (migrating the database first); ``wavry gateway db
upgrade|downgrade|backup|restore`` manages the database. Flags override the environment (see
docs/gateway.md for every setting).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

__all__ = [
    "add_control_plane_parser",
    "add_gateway_bench_parser",
    "add_gateway_parser",
    "load_settings",
    "run_control_plane",
    "run_db",
    "run_gateway",
]

log = logging.getLogger(__name__)

_EPILOG = """\
Zero configuration listens on 127.0.0.1:3000 with SQLite at DATA_DIR/gateway.db. For a
deployment set WAVRY_TOTP_KEY_B64 (2FA), ADMIN_PANEL_TOKEN (>= 32 chars, admin API and /admin),
WAVRY_DATABASE_URL (postgresql+asyncpg://... at scale), WAVRY_REDIS_URL (several replicas) and,
to listen beyond loopback, WAVRY_ALLOW_PUBLIC_BIND=1.

database commands:
  wavry gateway db upgrade [REVISION]     migrate to REVISION (default: head)
  wavry gateway db downgrade REVISION     migrate down (e.g. 0001_master_initial, base)
  wavry gateway db backup PATH            SQLite: online copy (backup API); PostgreSQL: pg_dump
  wavry gateway db restore PATH --yes     replace the database with a backup (stop the gateway)
"""


class CliError(Exception):
    """A user-facing failure: printed, exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _say(text: str) -> None:
    sys.stderr.write(f"wavry gateway: {text}\n")


def _say_cp(text: str) -> None:
    sys.stderr.write(f"wavry control-plane: {text}\n")


def add_gateway_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "gateway",
        help="run the gateway: accounts, 2FA, sessions, admin API, signaling",
        description="Serve the gateway HTTP API (OpenAPI at /openapi.json): accounts with "
        "Argon2id passwords and TOTP 2FA, sessions, host sharing, Wavry ID binding, admin API "
        "and dashboard (/admin), signaling WebSocket (/ws).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(p)
    p.add_argument("--listen", help="HTTP address (WAVRY_GATEWAY_LISTEN, default 127.0.0.1:3000)")
    p.add_argument("--master-url", help="the master's base URL (WAVRY_GATEWAY_MASTER_URL)")
    p.add_argument(
        "--allow-public-bind",
        action="store_true",
        default=None,
        help="allow a non-loopback address (WAVRY_ALLOW_PUBLIC_BIND=1)",
    )
    p.add_argument(
        "--insecure-dev",
        action="store_true",
        default=None,
        help="allow a public bind with insecure settings (WAVRY_GATEWAY_INSECURE_DEV=1)",
    )
    p.set_defaults(func=run_gateway)
    dbp = p.add_subparsers(dest="gateway_command", metavar="COMMAND")
    d = dbp.add_parser("db", help="database: upgrade, downgrade, backup, restore")
    ops = d.add_subparsers(dest="db_command", metavar="OP", required=True)
    o = ops.add_parser("upgrade", help="migrate up (default to the newest schema)")
    o.add_argument("revision", nargs="?", default="head")
    _add_common(o)
    o = ops.add_parser("downgrade", help="migrate down to REVISION (e.g. base)")
    o.add_argument("revision")
    _add_common(o)
    o = ops.add_parser("backup", help="write a backup of the database to PATH")
    o.add_argument("path", type=Path)
    o.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    _add_common(o)
    o = ops.add_parser("restore", help="replace the database with the backup at PATH")
    o.add_argument("path", type=Path)
    o.add_argument("--yes", action="store_true", help="confirm: the current data is replaced")
    _add_common(o)
    o = ops.add_parser(
        "rekey-totp",
        help="re-seal every stored TOTP secret under WAVRY_TOTP_KEY_B64 (key rotation)",
        description="Step 2 of a TOTP key rotation (docs/operations/runbooks.md): with the new "
        "key in WAVRY_TOTP_KEY_B64 and the old one in WAVRY_TOTP_PREVIOUS_KEYS_B64, re-encrypt "
        "every user's secret under the new key; then remove the previous key. Safe to run while "
        "the gateway serves and to run again.",
    )
    _add_common(o)
    d.set_defaults(func=run_db)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url",
        default=argparse.SUPPRESS,
        help="database URL (WAVRY_DATABASE_URL, default SQLite at DATA_DIR/gateway.db)",
    )
    p.add_argument("--log-level", default=argparse.SUPPRESS, help="debug, info, warning")


def load_settings(ns: argparse.Namespace) -> object:
    from wavry.gateway.settings import GatewaySettings

    overrides = {
        "listen": getattr(ns, "listen", None),
        "database_url": getattr(ns, "database_url", None),
        "allow_public_bind": getattr(ns, "allow_public_bind", None),
        "insecure_dev": getattr(ns, "insecure_dev", None),
        "master_url": getattr(ns, "master_url", None),
    }
    return GatewaySettings(**{k: v for k, v in overrides.items() if v is not None})


def _log_level(ns: argparse.Namespace) -> str:
    return str(getattr(ns, "log_level", "info")).lower()


def run_gateway(ns: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from wavry.bind_policy import BindPolicyError, check_bind, is_loopback
    from wavry.gateway.app import create_app
    from wavry.gateway.settings import GatewaySettings
    from wavry.storage import upgrade

    logging.basicConfig(
        level=_log_level(ns).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_settings(ns)
        assert isinstance(settings, GatewaySettings)
        port = settings.listen_port
    except (ValidationError, ValueError) as exc:
        _say(f"bad settings: {exc}")
        return 2
    host = settings.listen_host
    try:
        check_bind(host, allow_public=settings.allow_public_bind, flag="--allow-public-bind",
                   env="WAVRY_ALLOW_PUBLIC_BIND")  # fmt: skip
    except BindPolicyError as exc:
        _say(str(exc))
        return 2
    problems = settings.insecure_problems()
    if problems and not is_loopback(host) and not settings.insecure_dev:
        _say(
            f"refusing to listen on {host} with insecure settings:\n  - "
            + "\n  - ".join(problems)
            + "\n(or accept the risk with --insecure-dev / WAVRY_GATEWAY_INSECURE_DEV=1)"
        )
        return 2
    for problem in problems:
        _say(f"WARNING: INSECURE: {problem}")
    for note in settings.warnings():
        _say(f"note: {note}")
    url = settings.resolved_database_url()
    try:
        asyncio.run(upgrade(url))
    except OSError as exc:
        _say(f"cannot open the database {_safe(url)}: {exc}")
        return 1
    app = create_app(settings.model_copy(update={"database_url": url}))
    _say(f"listening on http://{settings.listen} (API: /openapi.json, admin: /admin)")
    from wavry.gateway.signaling.limits import SERVER_WS_MAX_SIZE

    uvicorn.run(app, host=host, port=port, log_level=_log_level(ns), access_log=False,
                proxy_headers=False, server_header=False,
                ws_max_size=SERVER_WS_MAX_SIZE)  # fmt: skip
    return 0


def _safe(url: str) -> str:
    """The URL without its password (for messages)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a message helper must not fail
        return "<database url>"


def run_db(ns: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from wavry.gateway.settings import GatewaySettings

    logging.basicConfig(level=_log_level(ns).upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(ns)
        assert isinstance(settings, GatewaySettings)
    except (ValidationError, ValueError) as exc:
        _say(f"bad settings: {exc}")
        return 2
    url = settings.resolved_database_url()
    try:
        if ns.db_command == "upgrade":
            _migrate(url, "upgrade", ns.revision)
        elif ns.db_command == "downgrade":
            _migrate(url, "downgrade", ns.revision)
        elif ns.db_command == "backup":
            backup(url, ns.path, force=ns.force)
        elif ns.db_command == "restore":
            if not ns.yes:
                raise CliError("restore replaces the current database: add --yes to confirm", 2)
            restore(url, ns.path)
        elif ns.db_command == "rekey-totp":
            asyncio.run(rekey_totp(settings, url))
    except CliError as exc:
        _say(str(exc))
        return exc.code
    return 0


async def rekey_totp(settings: object, url: str) -> None:
    """Re-seal TOTP secrets under the current key; counts are printed, secrets never."""
    from sqlalchemy import select, update

    from wavry.gateway.settings import GatewaySettings
    from wavry.gateway.totp import TotpSecretBox
    from wavry.storage import make_engine
    from wavry.storage.models import User

    assert isinstance(settings, GatewaySettings)
    key = settings.totp_key()
    if key is None:
        raise CliError("rekey-totp needs the new key in WAVRY_TOTP_KEY_B64", 2)
    box = TotpSecretBox(key, allow_plaintext=True, previous_keys=settings.totp_previous_keys())
    engine = make_engine(url)
    resealed = unreadable = current = 0
    try:
        async with engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(User.id, User.totp_secret_enc).where(User.totp_secret_enc.is_not(None))
                )
            ).all()
            for user_id, stored in rows:
                if stored is None:
                    continue
                if not box.needs_reseal(stored, user_id):
                    current += 1
                    continue
                try:
                    secret = box.open(stored, user_id)
                except ValueError:
                    unreadable += 1
                    continue
                await conn.execute(
                    update(User)
                    .where(User.id == user_id, User.totp_secret_enc == stored)
                    .values(totp_secret_enc=box.seal(secret, user_id))
                )
                resealed += 1
    finally:
        await engine.dispose()
    _say(
        f"rekey-totp: {resealed} re-sealed, {current} already under the current key, "
        f"{unreadable} unreadable with the configured keys"
    )
    if unreadable:
        raise CliError(
            f"{unreadable} TOTP secret(s) open with none of the configured keys: add the key "
            "they were sealed with to WAVRY_TOTP_PREVIOUS_KEYS_B64 and run again",
            1,
        )


def _migrate(url: str, op: str, revision: str) -> None:
    from alembic.util import CommandError

    from wavry.storage import downgrade, upgrade

    try:
        asyncio.run(upgrade(url, revision) if op == "upgrade" else downgrade(url, revision))
    except CommandError as exc:
        raise CliError(f"{op} failed: {exc}", 2) from None
    except OSError as exc:
        raise CliError(f"cannot open the database {_safe(url)}: {exc}") from None
    _say(f"{op} to {revision}: done ({_safe(url)})")


def _sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise CliError("an in-memory SQLite database cannot be backed up or restored", 2)
    return Path(parsed.database)


def _pg(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and an environment carrying it (not on argv)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise CliError(f"backup/restore supports SQLite and PostgreSQL, not {parsed.drivername}", 2)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise CliError(
            f"{name} not found: install the PostgreSQL client tools (Debian: apt-get install "
            f"postgresql-client) to back up or restore a PostgreSQL database"
        )
    return path


def backup(url: str, dest: Path, *, force: bool = False) -> None:
    if dest.exists() and not force:
        raise CliError(f"{dest} exists: pass --force to overwrite it", 2)
    db_path = _sqlite_path(url)
    if db_path is not None:
        if not db_path.exists():
            raise CliError(f"no database at {db_path}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".partial")
        tmp.unlink(missing_ok=True)
        # the backup API copies a consistent snapshot while the gateway keeps running
        with sqlite3.connect(db_path) as src, sqlite3.connect(tmp) as out:
            src.backup(out)
        src.close()
        out.close()
        os.replace(tmp, dest)
        _say(f"backup of {db_path} written to {dest}")
        return
    target, env = _pg(url)
    pg_dump = _tool("pg_dump")
    result = subprocess.run(
        [pg_dump, "--clean", "--if-exists", "--no-owner", "--format=plain", "--file", str(dest),
         "--dbname", target],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise CliError(f"pg_dump failed: {result.stderr.strip()}")
    _say(f"backup written to {dest} (pg_dump, plain SQL)")


def restore(url: str, src_path: Path) -> None:
    if not src_path.is_file():
        raise CliError(f"no backup at {src_path}", 2)
    db_path = _sqlite_path(url)
    if db_path is not None:
        try:
            with sqlite3.connect(f"file:{src_path}?mode=ro", uri=True) as src:
                check = src.execute("PRAGMA integrity_check").fetchone()
                has_version = src.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'"
                ).fetchone()
            src.close()
        except sqlite3.DatabaseError as exc:
            raise CliError(f"{src_path} is not a SQLite database: {exc}", 2) from None
        if check is None or check[0] != "ok" or not has_version or not has_version[0]:
            raise CliError(f"{src_path} is not a Wavry database backup (integrity or schema)", 2)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(src_path) as src, sqlite3.connect(db_path) as out:
            src.backup(out)
        src.close()
        out.close()
        _say(f"restored {db_path} from {src_path}; run `wavry gateway db upgrade` if it is older")
        return
    target, env = _pg(url)
    psql = _tool("psql")
    result = subprocess.run(
        [psql, "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--single-transaction",
         "--file", str(src_path), "--dbname", target],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise CliError(f"psql failed: {result.stderr.strip()}")
    _say(f"restored from {src_path} (psql)")


def add_control_plane_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "control-plane",
        help="gateway + master in one process (small installs, embedded SQLite)",
        description="Run the gateway and the master in one process and event loop, each on its "
        "own port, sharing one database (default SQLite at DATA_DIR/control-plane.db). Every "
        "WAVRY_GATEWAY_* / WAVRY_MASTER_* setting applies as for the separate services.",
    )
    p.add_argument("--listen", help="gateway address (default 127.0.0.1:3000)")
    p.add_argument("--master-listen", help="master address (default 127.0.0.1:8080)")
    p.add_argument("--database-url", help="database URL (WAVRY_DATABASE_URL)")
    p.add_argument(
        "--allow-public-bind",
        action="store_true",
        default=None,
        help="allow non-loopback addresses for both services",
    )
    p.add_argument(
        "--insecure-dev",
        action="store_true",
        help="allow a public bind with insecure settings (dev only)",
    )
    p.add_argument("--log-level", default="info", help="debug, info, warning (default info)")
    p.set_defaults(func=run_control_plane)


def run_control_plane(ns: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from wavry.bind_policy import BindPolicyError, check_bind, is_loopback
    from wavry.gateway.control_plane import serve
    from wavry.gateway.settings import GatewaySettings
    from wavry.master.settings import MasterSettings

    logging.basicConfig(
        level=str(ns.log_level).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    g_over = {"listen": ns.listen, "database_url": ns.database_url,
              "allow_public_bind": ns.allow_public_bind}  # fmt: skip
    m_over = {"listen": ns.master_listen, "database_url": ns.database_url,
              "allow_public_bind": ns.allow_public_bind}  # fmt: skip
    try:
        gateway = GatewaySettings(**{k: v for k, v in g_over.items() if v is not None})
        master = MasterSettings(**{k: v for k, v in m_over.items() if v is not None})
        gateway.listen_port  # noqa: B018 - validates
        master.listen_port  # noqa: B018
    except (ValidationError, ValueError) as exc:
        _say_cp(f"bad settings: {exc}")
        return 2
    try:
        check_bind(gateway.listen_host, allow_public=gateway.allow_public_bind,
                   flag="--allow-public-bind", env="WAVRY_ALLOW_PUBLIC_BIND")  # fmt: skip
        check_bind(master.listen_host, allow_public=master.allow_public_bind,
                   flag="--allow-public-bind", env="WAVRY_MASTER_ALLOW_PUBLIC_BIND")  # fmt: skip
    except BindPolicyError as exc:
        _say_cp(str(exc))
        return 2
    problems = master.insecure_problems() + gateway.insecure_problems()
    public = not (is_loopback(gateway.listen_host) and is_loopback(master.listen_host))
    if problems and public and not ns.insecure_dev:
        _say_cp(
            "refusing to listen beyond loopback with insecure settings:\n  - "
            + "\n  - ".join(problems)
            + "\n(or accept the risk with --insecure-dev)"
        )
        return 2
    for problem in problems:
        _say_cp(f"WARNING: INSECURE (local try-out mode): {problem}")
    for note in gateway.warnings():
        _say_cp(f"note: {note}")
    return asyncio.run(serve(gateway, master, str(ns.log_level).lower()))


def add_gateway_bench_parser(
    bench_sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    b = bench_sub.add_parser(
        "gateway-logins",
        help="gateway logins per second over HTTP (Argon2id-bound)",
        description="Register a few accounts, then log in over real HTTP from N concurrent "
        "clients for --seconds; report logins/s and latency with the Argon2id parameters used "
        "(production defaults m=19456 KiB, t=2, p=1), plus a raw one-thread verify rate.",
    )
    b.add_argument("--seconds", type=float, default=10.0, help="measured window (default 10)")
    b.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    b.add_argument("--database-url", help="database (default: a temporary SQLite file)")
    b.add_argument("--memory-kib", type=int, default=19_456, help="Argon2 m (default 19456)")
    b.add_argument("--time-cost", type=int, default=2, help="Argon2 t (default 2)")
    b.add_argument("--parallelism", type=int, default=1, help="Argon2 p (default 1)")
    b.add_argument("--threads", type=int, help="concurrent hashes (default: CPU count)")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=_cmd_bench_logins)


def _cmd_bench_logins(ns: argparse.Namespace) -> int:
    import json

    from wavry.bench.gateway_logins import format_gateway_logins, run_gateway_logins

    def progress(msg: str) -> None:
        sys.stderr.write(f"  … {msg}\n")

    result = run_gateway_logins(
        database_url=ns.database_url,
        seconds=ns.seconds,
        concurrency=ns.concurrency,
        memory_kib=ns.memory_kib,
        time_cost=ns.time_cost,
        parallelism=ns.parallelism,
        argon2_threads=ns.threads,
        progress=progress,
    )
    sys.stdout.write(
        (json.dumps(result, sort_keys=True) if ns.json else format_gateway_logins(result)) + "\n"
    )
    return 0
