"""Real PostgreSQL and Redis servers for tests (a pytest plugin, registered in tests/conftest.py).

Each server is private to the test session: it listens on 127.0.0.1 on a free port, keeps its
data in a fresh temporary directory and is stopped (and the directory removed) at the end.
No system service, no default port, no shared state with anything else on the machine.

Fixtures
--------
``postgres_server``  (session) a :class:`PostgresServer` (initdb + pg_ctl, password auth over TCP)
``postgres_url``     (session) ``postgresql+asyncpg://…/wavry``: one database shared by the session
``fresh_postgres_url`` (test)  a new, empty database per test, dropped afterwards (``WITH (FORCE)``)
``any_database_url`` (test)    parametrised: a fresh SQLite file *and* a fresh PostgreSQL database
``redis_server``     (session) a :class:`RedisServer` (``--save '' --appendonly no``)
``redis_url``        (session) ``redis://127.0.0.1:N/0``
``fresh_redis_url``  (test)    a database number of its own (flushed first). Pub/sub channels are
                               server-wide in Redis: tests that publish use unique channel names,
                               or ``redis_factory`` for a server of their own.
``redis_factory``    (test)    ``redis_factory()`` starts one more private server (stopped after
                               the test); ``.stop()``/``.start()`` on it simulate an outage.
``chromium_path``    (session) the system Chromium for Playwright (``executable_path``), launched
                               with ``CHROMIUM_ARGS``; no ``playwright install`` download.

Binaries: PostgreSQL from ``WAVRY_PG_BINDIR``, ``pg_ctl`` on ``PATH`` or Debian's
``/usr/lib/postgresql/<newest>/bin``; ``redis-server`` from ``PATH``; Chromium from
``WAVRY_CHROMIUM`` or ``/usr/bin/chromium``. All are Debian packages
in scripts/apt-packages.txt (installed by scripts/bootstrap.sh). A missing binary skips the
test locally; under ``CI=true`` tests/conftest.py turns that skip into a failure.

PostgreSQL refuses to run as root: as uid 0 the cluster belongs to the ``postgres`` OS user
(created by the Debian package) and ``initdb``/``pg_ctl`` run through ``runuser``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

__all__ = [
    "CHROMIUM_ARGS",
    "PostgresServer",
    "RedisServer",
    "free_port",
    "postgres_bindir",
    "run_async",
]

T = TypeVar("T")

_START_TIMEOUT = 30.0  # generous: a loaded 2-core CI machine; a normal start takes ~1-2 s


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private loop in a worker thread.

    Usable from sync fixtures whether or not the calling thread has an event loop (it never
    touches the caller's loop, so pytest-asyncio's loop stays intact).
    """
    result: list[T] = []
    error: list[BaseException] = []

    def worker() -> None:
        async def main() -> T:
            return await factory()

        try:
            result.append(asyncio.run(main()))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(exc)

    t = threading.Thread(target=worker, name="services-run-async", daemon=True)
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _reap_leftovers(prefix: str, server_pid_file: str, process_name: str) -> None:
    """Stop servers and remove directories left by a test run that was killed (SIGKILL, power).

    A directory is stale when the pytest process recorded in its ``owner.pid`` is gone; its server
    is signalled only if its command line still names ``process_name`` (no pid-reuse accidents).
    """
    for root in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        owner = _read_pid(root / "owner.pid")
        if owner is None or _alive(owner):
            continue
        pid = _read_pid(root / server_pid_file)
        if pid is not None and _alive(pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                cmdline = b""
            if process_name.encode() in cmdline:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGQUIT if process_name == "postgres" else signal.SIGTERM)
                    for _ in range(100):
                        if not _alive(pid):
                            break
                        time.sleep(0.02)
        shutil.rmtree(root, ignore_errors=True)


def _private_dir(prefix: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    (root / "owner.pid").write_text(f"{os.getpid()}\n", encoding="utf-8")
    return root


# --------------------------------------------------------------------------------- PostgreSQL


def postgres_bindir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or ``None``."""
    override = os.environ.get("WAVRY_PG_BINDIR", "").strip()
    candidates: list[Path] = []
    if override:
        candidates.append(Path(override))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    candidates.extend(debian)
    for c in candidates:
        if all((c / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return c
    return None


@dataclass
class PostgresServer:
    """A private PostgreSQL cluster on 127.0.0.1 (password auth for TCP)."""

    bindir: Path
    root: Path
    port: int
    user: str = "postgres"
    password: str = field(default_factory=lambda: secrets.token_hex(16))
    os_user: str | None = None  # run the server as this OS user (``postgres`` when we are root)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres", driver: str = "postgresql+asyncpg") -> str:
        """A SQLAlchemy URL (``driver="postgresql"`` gives a libpq/asyncpg DSN)."""
        return f"{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return self.url(database, driver="postgresql")

    # -- process control

    def _cmd(self, *argv: str) -> list[str]:
        if self.os_user is None:
            return list(argv)
        return ["runuser", "-u", self.os_user, "--", *argv]

    def _run(self, *argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._cmd(*argv),
            cwd=self.root,  # the postgres OS user cannot enter the caller's cwd (e.g. /root)
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"},
        )

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        if self.os_user is not None:
            shutil.chown(self.root, self.os_user)
            shutil.chown(pwfile, self.os_user)
        os.chmod(self.root, 0o700)
        os.chmod(pwfile, 0o600)
        res = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            self.user,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        pwfile.unlink(missing_ok=True)
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                # a throw-away test cluster: durability off, small footprint
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c shared_buffers=32MB",
                "-c max_connections=200",
                "-c log_min_messages=warning",
                "-c timezone=UTC",
            ]
        )
        res = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-o",
            options,
            "-w",
            "-t",
            str(int(_START_TIMEOUT)),
            "start",
            timeout=_START_TIMEOUT + 10,
        )
        if res.returncode != 0:
            raise RuntimeError(
                f"pg_ctl start failed on port {self.port} ({res.returncode}):\n"
                f"{res.stdout}\n{res.stderr}\n--- server log ---\n{_tail(self.logfile)}"
            )

    def stop(self) -> None:
        if not (self.datadir / "postmaster.pid").exists():
            return
        res = self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"
        )
        if res.returncode != 0 and (self.datadir / "postmaster.pid").exists():
            # last resort: the postmaster's pid is the first line of postmaster.pid
            with contextlib.suppress(OSError, ValueError):
                pid = int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
                os.kill(pid, 9)

    # -- databases

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.dsn("postgres"), timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def create_database(self, name: str) -> str:
        """Create database ``name`` (``[a-z0-9_]`` only); returns its SQLAlchemy URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"bad database name {name!r}")
        run_async(lambda: self._admin(f'CREATE DATABASE "{name}"'))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"bad database name {name!r}")
        run_async(lambda: self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _postgres_os_user() -> str | None:
    """``postgres`` when we are root (the server refuses uid 0), else run as ourselves."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip(
            "running as root and there is no 'postgres' OS user to own the test cluster "
            "(apt-get install postgresql creates it, or run scripts/bootstrap.sh)"
        )
    if shutil.which("runuser") is None:
        pytest.skip("running as root and runuser (util-linux) is missing")
    return "postgres"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL on 127.0.0.1:<free port> for the whole session."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries not found (apt-get install postgresql, run "
            "scripts/bootstrap.sh, or set WAVRY_PG_BINDIR)"
        )
    os_user = _postgres_os_user()
    _reap_leftovers("wavry-pg-", "data/postmaster.pid", "postgres")
    root = _private_dir("wavry-pg-")
    server: PostgresServer | None = None
    try:
        t0 = time.monotonic()
        server = PostgresServer(bindir=bindir, root=root, port=free_port(), os_user=os_user)
        server.init()
        for attempt in range(3):  # the free port may be taken between probe and bind
            try:
                server.start()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
                server.port = free_port()
        server.create_database("wavry")
        elapsed = time.monotonic() - t0
        if elapsed > 10:  # visible in -ra output only if something is slow
            print(f"services: PostgreSQL took {elapsed:.1f} s to start")
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of the session's shared ``wavry`` database (postgresql+asyncpg)."""
    return postgres_server.url("wavry")


_db_counter = itertools.count(1)


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new empty database for this test (dropped afterwards, even with open connections)."""
    name = f"t{os.getpid()}_{next(_db_counter)}_{secrets.token_hex(3)}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs the test twice: on a fresh SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


# --------------------------------------------------------------------------------- Redis


def redis_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.isfile("/usr/bin/redis-server") else None
    )


def _resp(*args: str) -> bytes:
    return f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args
    )


def _redis_pipeline(port: int, *commands: tuple[str, ...]) -> list[bytes]:
    """Send simple commands on one connection; returns one raw reply line per command."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"".join(_resp(*c) for c in commands))
        buf = b""
        while buf.count(b"\r\n") < len(commands):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    return [line + b"\r\n" for line in buf.split(b"\r\n")[: len(commands)]]


@dataclass
class RedisServer:
    """A private redis-server on 127.0.0.1 without persistence."""

    binary: str
    root: Path
    port: int
    databases: int = 1024
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.db_url(0)

    def db_url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def logfile(self) -> Path:
        return self.root / "redis.log"

    def command(self, *args: str) -> bytes:
        """One simple command (reply: its first line, e.g. ``b"+PONG\\r\\n"``)."""
        return _redis_pipeline(self.port, args)[0]

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "yes",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--databases",
                str(self.databases),
                "--logfile",
                str(self.logfile),
                "--daemonize",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        (self.root / "server.pid").write_text(f"{self.proc.pid}\n", encoding="utf-8")
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.proc.returncode} on port {self.port}:\n"
                    f"{_tail(self.logfile)}"
                )
            with contextlib.suppress(OSError):
                if self.command("PING").startswith(b"+PONG"):
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"redis-server did not answer PING on port {self.port} within "
                    f"{_START_TIMEOUT:.0f} s:\n{_tail(self.logfile)}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _start_redis(root: Path) -> RedisServer:
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server not found (apt-get install redis-server or scripts/bootstrap.sh)")
    for attempt in range(3):  # the free port may be taken between probe and bind
        server = RedisServer(binary=binary, root=root, port=free_port())
        try:
            server.start()
            return server
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server on 127.0.0.1:<free port> for the whole session."""
    _reap_leftovers("wavry-redis-", "server.pid", "redis-server")
    root = _private_dir("wavry-redis-")
    server: RedisServer | None = None
    try:
        server = _start_redis(root)
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


_redis_db_counter = itertools.count(1)  # db 0 is the session's shared ``redis_url``


@pytest.fixture
def fresh_redis_url(redis_server: RedisServer) -> str:
    """A Redis database number no other test of this session uses (flushed before use)."""
    db = next(_redis_db_counter) % redis_server.databases or 1
    replies = _redis_pipeline(redis_server.port, ("SELECT", str(db)), ("FLUSHDB",))
    assert replies == [b"+OK\r\n", b"+OK\r\n"], replies
    return redis_server.db_url(db)


@pytest.fixture
def redis_factory() -> Iterator[Callable[[], RedisServer]]:
    """Start extra private Redis servers for one test (stopped at its end)."""
    started: list[RedisServer] = []

    def factory() -> RedisServer:
        root = _private_dir("wavry-redis-")
        server = _start_redis(root)
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.stop()
            shutil.rmtree(server.root, ignore_errors=True)


# --------------------------------------------------------------------------------- Chromium

#: flags for headless Chromium in a container, without any network access of its own
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-quic",
    "--metrics-recording-only",
)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The system Chromium (Debian package ``chromium``) for Playwright's ``executable_path``."""
    candidates = [os.environ.get("WAVRY_CHROMIUM", "").strip(), "/usr/bin/chromium"]
    candidates += [shutil.which(n) or "" for n in ("chromium", "chromium-browser")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    pytest.skip(
        "Chromium not found (apt-get install chromium, scripts/bootstrap.sh, or set WAVRY_CHROMIUM)"
    )
