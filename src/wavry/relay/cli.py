"""``wavry relay`` command line. Wire it with ``add_relay_parser(subparsers)``.

Flags override the WAVRY_RELAY_* environment; everything else comes from the environment
(see docs/relay.md for every knob).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wavry.relay.settings import RelaySettings

__all__ = ["add_relay_parser", "run_relay"]

_EPILOG = """\
Zero configuration runs on loopback (127.0.0.1:4000, health on 127.0.0.1:9091) against a master
at http://localhost:8080, trusting the master's key on first use: a local try-out, not a
deployment. For production set WAVRY_RELAY_MASTER_PUBLIC_KEY, WAVRY_RELAY_MASTER_TOKEN, an
https:// master URL and, to listen beyond loopback, WAVRY_RELAY_ALLOW_PUBLIC_BIND=1.
"""


def add_relay_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "relay",
        help="run a relay: the blind UDP forwarder peers meet at when no direct path works",
        description="Forward RIFT traffic between two peers holding leases signed by the "
        "master; register with the master and serve /health, /ready and /metrics.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--listen", help="UDP address (WAVRY_RELAY_LISTEN, default 127.0.0.1:4000)")
    p.add_argument(
        "--health-listen",
        help="HTTP health/metrics address (WAVRY_RELAY_HEALTH_LISTEN, default 127.0.0.1:9091)",
    )
    p.add_argument("--master-url", help="master base URL (WAVRY_MASTER_URL)")
    p.add_argument(
        "--master-public-key",
        help="trusted lease key(s): hex or kid:hex,... (WAVRY_RELAY_MASTER_PUBLIC_KEY)",
    )
    p.add_argument(
        "--allow-public-bind",
        action="store_true",
        default=None,
        help="allow a non-loopback address (WAVRY_RELAY_ALLOW_PUBLIC_BIND=1)",
    )
    p.add_argument(
        "--allow-insecure-dev",
        action="store_true",
        default=None,
        help="allow a public bind without token/pinned key (WAVRY_RELAY_ALLOW_INSECURE_DEV=1)",
    )
    p.add_argument("--max-sessions", type=int, help="WAVRY_RELAY_MAX_SESSIONS (default 100)")
    p.add_argument("--idle-timeout", type=float, help="WAVRY_RELAY_IDLE_TIMEOUT (default 60 s)")
    p.add_argument("--cleanup-interval-secs", type=float, help="default 10")
    p.add_argument("--lease-duration-secs", type=float, help="default 300")
    p.add_argument("--stats-log-interval-secs", type=float, help="default 30 (min 5)")
    p.add_argument("--load-shed-threshold-pct", type=int, help="default 95 (50..100)")
    p.add_argument("--log-level", help="debug, info, warning (default info)")
    p.set_defaults(func=run_relay)


def _settings_from(ns: argparse.Namespace) -> RelaySettings:
    from wavry.relay.settings import RelaySettings

    names = (
        "listen",
        "health_listen",
        "master_url",
        "master_public_key",
        "allow_public_bind",
        "allow_insecure_dev",
        "max_sessions",
        "idle_timeout",
        "cleanup_interval_secs",
        "lease_duration_secs",
        "stats_log_interval_secs",
        "load_shed_threshold_pct",
        "log_level",
    )
    overrides = {n: getattr(ns, n) for n in names if getattr(ns, n, None) is not None}
    settings = RelaySettings(**overrides)
    if not any(os.environ.get(k) for k in ("WAVRY_RELAY_ID", "WAVRY_RELAY_RELAY_ID")):
        from wavry.relay.relay_id import persistent_relay_id

        # the same id after a restart: leases issued for this relay stay valid
        settings = settings.model_copy(update={"relay_id": persistent_relay_id(settings.data_dir)})
    return settings


def run_relay(ns: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from wavry.bind_policy import BindPolicyError
    from wavry.relay.relay_id import RelayIdFileError
    from wavry.relay.server import RelayServer, install_uvloop

    try:
        settings = _settings_from(ns)
    except ValidationError as exc:
        sys.stderr.write(f"wavry relay: bad settings:\n{exc}\n")
        return 2
    except RelayIdFileError as exc:
        sys.stderr.write(f"wavry relay: {exc}\n")
        return 2
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_uvloop()

    async def main() -> int:
        server = RelayServer(settings)
        try:
            await server.start()
        except (BindPolicyError, ValueError, RuntimeError, OSError) as exc:
            sys.stderr.write(f"wavry relay: {exc}\n")
            await server.close()
            return 2
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await server.close()
        return 0

    return asyncio.run(main())
