"""``wavry master`` command line. Wire it with ``add_master_parser(subparsers)``.

Flags override the WAVRY_MASTER_* environment (see docs/master.md for every setting).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

__all__ = ["add_master_parser", "run_master"]

log = logging.getLogger(__name__)

_EPILOG = """\
Zero configuration listens on 127.0.0.1:8080 with SQLite in the data directory, a lease-signing
key generated there, and open relay registration: a local try-out, not a deployment. For
production set WAVRY_MASTER_SIGNING_KEY (or WAVRY_MASTER_KEY_FILE), WAVRY_MASTER_RELAY_AUTH_TOKEN,
ADMIN_PANEL_TOKEN (>= 32 chars) and, to listen beyond loopback, WAVRY_MASTER_ALLOW_PUBLIC_BIND=1.
"""


def add_master_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "master",
        help="run the master: relay registry, relay selection and signed relay leases",
        description="Serve the master HTTP API (OpenAPI at /openapi.json): relay registration "
        "and heartbeats, relay selection, PASETO leases, identities, admin API, audit log.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--listen", help="HTTP address (WAVRY_MASTER_LISTEN, default 127.0.0.1:8080)")
    p.add_argument("--database-url", help="database URL (WAVRY_DATABASE_URL, default SQLite)")
    p.add_argument(
        "--allow-public-bind",
        action="store_true",
        default=None,
        help="allow a non-loopback address (WAVRY_MASTER_ALLOW_PUBLIC_BIND=1)",
    )
    p.add_argument(
        "--insecure-dev",
        action="store_true",
        default=None,
        help="allow a public bind with the insecure defaults (WAVRY_MASTER_INSECURE_DEV=1)",
    )
    p.add_argument("--log-level", default="info", help="debug, info, warning (default info)")
    p.set_defaults(func=run_master)


def _say(text: str) -> None:
    sys.stderr.write(f"wavry master: {text}\n")


def _warn(text: str) -> None:
    _say(f"WARNING: {text}")


def run_master(ns: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from wavry.bind_policy import BindPolicyError, check_bind, is_loopback
    from wavry.master.app import create_app
    from wavry.master.keys import KeyConfigError
    from wavry.master.settings import MasterSettings
    from wavry.storage import database_url, upgrade

    logging.basicConfig(
        level=str(ns.log_level).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    overrides = {
        "listen": ns.listen,
        "database_url": ns.database_url,
        "allow_public_bind": ns.allow_public_bind,
        "insecure_dev": ns.insecure_dev,
    }
    try:
        settings = MasterSettings(**{k: v for k, v in overrides.items() if v is not None})
        port = settings.listen_port
    except (ValidationError, ValueError) as exc:
        _say(f"bad settings: {exc}")
        return 2
    host = settings.listen_host
    try:
        check_bind(
            host,
            allow_public=settings.allow_public_bind,
            flag="--allow-public-bind",
            env="WAVRY_MASTER_ALLOW_PUBLIC_BIND",
        )
    except BindPolicyError as exc:
        _say(f"{exc}")
        return 2
    problems = settings.insecure_problems()
    if problems and not is_loopback(host) and not settings.insecure_dev:
        _say(
            f"refusing to listen on {host} with insecure settings:\n  - "
            + "\n  - ".join(problems)
            + "\n(or accept the risk with --insecure-dev / WAVRY_MASTER_INSECURE_DEV=1)"
        )
        return 2
    for problem in problems:
        _warn(f"INSECURE (local try-out mode): {problem}")
    if settings.admin_panel_token is None:
        _warn("admin API disabled: set ADMIN_PANEL_TOKEN (at least 32 characters) to enable it")
    url = settings.database_url or database_url(
        {"WAVRY_DATA_DIR": str(settings.data_dir)}, filename="master.db"
    )
    try:
        asyncio.run(upgrade(url))
        app = create_app(settings.model_copy(update={"database_url": url}))
    except KeyConfigError as exc:
        _say(f"signing key: {exc}")
        return 2
    except OSError as exc:
        _say(f"cannot open the database {url}: {exc}")
        return 1
    _say(f"listening on http://{settings.listen} (API: /openapi.json)")
    uvicorn.run(app, host=host, port=port, log_level=str(ns.log_level).lower(), access_log=False)
    return 0
