"""Rollback drill: release N-1 -> N (migrations up) -> N-1 (migrations down), data intact.

Everything is real: both releases are built by this tool from their git commits, installed
side by side into their own virtual environments (the blue/green layout docs/release.md
recommends: ``/opt/wavry/<version>``), and run as ``wavry master`` / ``wavry gateway``
processes on loopback against one data directory (SQLite).

1. **N-1 with data.** The N-1 master starts on a fresh data directory, relays register and an
   identity registers (Ed25519 challenge); the database is snapshotted and backed up.
2. **Upgrade.** N's master starts on the same data (it migrates up at start-up), shows the N-1
   data, and takes new data. When N ships the gateway, the gateway runs too and an account
   registers and logs in.
3. **Rollback.** With N still installed, ``wavry db downgrade <N-1 head>`` moves each database
   back to the schema N-1 knows (``migration_head`` in N-1's ``release-manifest.json``); then
   N-1's master starts again. Checks: the schema is N-1's head, every row that existed under
   N-1 is still there unchanged, data written under N to tables N-1 knows is kept, the lease
   signing key is the same, the service is healthy and serves the data.

The timed *rollback* is step 3: from the decision to a healthy N-1.

N-1 defaults to the commit before the newest migration landed, so the drill always crosses a
real schema change. If N-1 carries the same version number as N (no release in between), it is
built as ``<N>-unstable1`` (PEP 440 ``<N>a1``, which sorts before N).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tools.release.build import (
    BuildError,
    build_python,
    export_commit,
    find_uv,
    locked_python,
    migration_head,
    run_cmd,
)
from tools.release.reproducible import sha256_file
from tools.release.versioning import (
    ReleaseVersion,
    read_project_version,
    set_lock_version,
    set_project_version,
)

__all__ = ["DrillError", "DrillReport", "default_old_ref", "run_drill"]

Log = Callable[[str], None]
MIGRATIONS = "src/wavry/storage/migrations/versions"
RELAY_TOKEN = "drill-relay-token-0123456789abcdef"
ADMIN_TOKEN = "drill-admin-token-0123456789abcdef0123456789"


class DrillError(RuntimeError):
    pass


@dataclass
class Release:
    label: str
    commit: str
    version: ReleaseVersion
    head: str | None
    wheel: Path
    sdist: Path
    venv: Path = Path()
    has_gateway: bool = False

    @property
    def wavry(self) -> str:
        return str(self.venv / "bin" / "wavry")


@dataclass
class DrillReport:
    old_ref: str
    new_ref: str
    old_version: str
    new_version: str
    old_head: str | None
    new_head: str | None
    components: list[str]
    phases: dict[str, float] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rollback_seconds(self) -> float:
        return self.phases.get("rollback", 0.0)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["rollback_seconds"] = round(self.rollback_seconds, 2)
        data["phases"] = {k: round(v, 2) for k, v in self.phases.items()}
        return data


def _git(repo: Path, *args: str) -> str:
    return run_cmd(["git", "-C", str(repo), *args]).strip()


def default_old_ref(repo: Path, new_ref: str = "HEAD") -> str:
    """The commit before the newest migration file was added (a real schema difference)."""
    added = _git(repo, "log", "-1", "--diff-filter=A", "--format=%H", new_ref, "--", MIGRATIONS)
    if not added:
        raise DrillError(f"no migration was ever added before {new_ref}")
    return _git(repo, "rev-parse", f"{added}^")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- build and install ---------------------------------------------------------------------


def _export(repo: Path, ref: str, label: str, work: Path) -> tuple[Path, str, int, str | None]:
    tree = work / f"src-{label}"
    commit, epoch = export_commit(repo, ref, tree)
    return tree, commit, epoch, migration_head(tree)


def _build(
    repo: Path,
    tree: Path,
    commit: str,
    epoch: int,
    label: str,
    work: Path,
    version: ReleaseVersion | None,
) -> Release:
    """Wheel and sdist of an exported tree, built like ``build`` does (same code, same pins)."""
    if version is None:
        version = ReleaseVersion.from_pep440(read_project_version(tree))
    else:
        for name, setter in (
            ("pyproject.toml", set_project_version),
            ("uv.lock", set_lock_version),
        ):
            p = tree / name
            p.write_text(setter(p.read_text(encoding="utf-8"), version.pep440), encoding="utf-8")
    out = work / f"release-{label}"
    out.mkdir()
    wheel, sdist = build_python(tree, out, epoch, version, locked_python(repo))
    return Release(label, commit, version, migration_head(tree), wheel, sdist)


def _install(release: Release, work: Path) -> None:
    """Own venv; the release's locked dependencies (uv.lock inside its sdist), then its wheel.

    Offline: dependencies come from the uv cache with the hashes of the release's lock, the
    same pins ``requirements.txt`` in the container context carries.
    """
    venv = work / f"venv-{release.label}"
    uv = find_uv()
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    }
    run_cmd([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], env=env)
    unpacked = work / f"sdist-{release.label}"
    with tarfile.open(release.sdist) as tar:
        tar.extractall(unpacked, filter="data")
    (root,) = list(unpacked.iterdir())
    run_cmd(
        [uv, "sync", "--quiet", "--frozen", "--offline", "--no-dev", "--no-install-project",
         "--python", str(venv / "bin" / "python")],
        cwd=root,
        env=dict(env, UV_PROJECT_ENVIRONMENT=str(venv)),
    )  # fmt: skip
    run_cmd(
        [uv, "pip", "install", "--quiet", "--offline", "--no-deps", "--python",
         str(venv / "bin" / "python"), str(release.wheel)],
        env=env,
    )  # fmt: skip
    release.venv = venv
    got = run_cmd([release.wavry, "version"]).strip()
    if release.version.pep440 not in got:
        raise DrillError(f"{release.label}: installed `wavry version` says {got!r}")
    with zipfile.ZipFile(release.wheel) as zf:
        release.has_gateway = "wavry/gateway/cli.py" in zf.namelist()


# --- services -------------------------------------------------------------------------------


class Service:
    """One ``wavry <service>`` process of a release on a loopback port; logs to a file."""

    def __init__(self, release: Release, service: str, data: Path, logs: Path) -> None:
        self.release, self.service, self.data = release, service, data
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = logs / f"{service}-{release.label}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("WAVRY_", "VIRTUAL_ENV")) and k != "ADMIN_PANEL_TOKEN"
        }
        env.update(
            WAVRY_DATA_DIR=str(self.data),
            WAVRY_MASTER_RELAY_AUTH_TOKEN=RELAY_TOKEN,
            ADMIN_PANEL_TOKEN=ADMIN_TOKEN,
        )
        listen = f"127.0.0.1:{self.port}"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.release.wavry, self.service, "--listen", listen, "--log-level", "warning"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=1.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise DrillError(f"{self.name} exited at start-up:\n{self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/health").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    self.stop()
                    raise DrillError(f"{self.name} not healthy in {timeout} s:\n{self.tail()}")
                time.sleep(0.05)

    @property
    def name(self) -> str:
        return f"{self.service} {self.release.version}"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            raise DrillError(f"{self.name} ignored SIGTERM for 15 s") from None

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        return "(no log)"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0)


@contextlib.contextmanager
def _running(service: Service) -> Iterator[Service]:
    service.start()
    try:
        yield service
    finally:
        service.stop()


# --- data -----------------------------------------------------------------------------------


def _register_relays(master: Service, ids: list[str]) -> None:
    with master.client() as c:
        for n, relay_id in enumerate(ids):
            r = c.post(
                "/v1/relays/register",
                headers={"Authorization": f"Bearer {RELAY_TOKEN}"},
                json={
                    "relay_id": relay_id,
                    "endpoints": [f"10.77.{n + 1}.1:4000"],
                    "region": "drill",
                    "max_bitrate_kbps": 100_000,
                },
            )
            if r.status_code != 200:
                raise DrillError(f"relay {relay_id} registration: {r.status_code} {r.text[:200]}")


def _register_identity(master: Service) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    public = key.public_key().public_bytes_raw()
    wavry_id = base64.urlsafe_b64encode(public).rstrip(b"=").decode()
    with master.client() as c:
        r = c.post("/v1/auth/register", json={"wavry_id": wavry_id, "display_name": "drill"})
        if r.status_code != 200:
            raise DrillError(f"identity challenge: {r.status_code} {r.text[:200]}")
        challenge = r.json()["challenge"]
        signature = key.sign(b"wavry-master-v1 register\n" + bytes.fromhex(challenge)).hex()
        r = c.post(
            "/v1/auth/register/verify",
            json={"wavry_id": wavry_id, "challenge": challenge, "signature_hex": signature},
        )
        if r.status_code != 201:
            raise DrillError(f"identity registration: {r.status_code} {r.text[:200]}")
    return wavry_id


def _master_view(master: Service, wavry_id: str) -> tuple[set[str], str]:
    """Relays the master lists and its lease-signing public key; the identity can log in."""
    with master.client() as c:
        relays = {r["relay_id"] for r in c.get("/v1/relays").raise_for_status().json()}
        key = json.dumps(c.get("/.well-known/wavry-id").raise_for_status().json(), sort_keys=True)
        login = c.post("/v1/auth/login", json={"wavry_id": wavry_id})
        if login.status_code != 200:
            raise DrillError(f"identity {wavry_id} cannot log in: {login.status_code}")
    return relays, key


_GATEWAY_USER = {
    "email": "drill@example.invalid",
    "password": "drill-password-0123456789",
    "username": "drilluser",
    "display_name": "Drill User",
    "public_key": "ab" * 32,
}


def _gateway_account(gateway: Service, *, register: bool) -> None:
    with gateway.client() as c:
        if register:
            r = c.post("/auth/register", json=_GATEWAY_USER)
            if r.status_code != 201:
                raise DrillError(f"gateway registration: {r.status_code} {r.text[:200]}")
        r = c.post(
            "/auth/login",
            json={"email": _GATEWAY_USER["email"], "password": _GATEWAY_USER["password"]},
        )
        if r.status_code != 200:
            raise DrillError(f"gateway login: {r.status_code} {r.text[:200]}")


def _snapshot(db: Path) -> dict[str, tuple[list[str], set[tuple[Any, ...]]]]:
    """Every table (except alembic_version): its columns and rows."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        out = {}
        for t in tables:
            if t == "alembic_version":
                continue
            cur = conn.execute(f'SELECT * FROM "{t}"')  # noqa: S608 - names from sqlite_master
            cols = [d[0] for d in cur.description]
            out[t] = (cols, {tuple(row) for row in cur.fetchall()})
        return out
    finally:
        conn.close()


def _schema_revision(db: Path) -> str | None:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if row is None else str(row[0])
    finally:
        conn.close()


def _backup(db: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    src, dst = sqlite3.connect(db), sqlite3.connect(dest)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _kept(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Rows present before that are missing or changed after (in the columns they had)."""
    lost = []
    for table, (cols, rows) in before.items():
        if table not in after:
            if rows:
                lost.append(f"table {table} ({len(rows)} rows) is gone")
            continue
        after_cols, after_rows = after[table]
        if not set(cols) <= set(after_cols):
            lost.append(f"{table}: columns {sorted(set(cols) - set(after_cols))} are gone")
            continue
        idx = [after_cols.index(c) for c in cols]
        projected = {tuple(r[i] for i in idx) for r in after_rows}
        missing = rows - projected
        if missing:
            lost.append(f"{table}: {len(missing)} of {len(rows)} rows missing or changed")
    return lost


# --- the drill -------------------------------------------------------------------------------


def _pick_old_version(repo_old: ReleaseVersion, new: ReleaseVersion) -> ReleaseVersion | None:
    if repo_old.sort_key() < new.sort_key():
        return None  # keep the version the old commit carries
    if new.channel == "unstable":
        if (new.number or 0) <= 1:
            raise DrillError(f"cannot number a release before {new}; give an older --old-ref")
        return ReleaseVersion(new.major, new.minor, new.patch, "unstable", (new.number or 2) - 1)
    return ReleaseVersion(new.major, new.minor, new.patch, "unstable", 1)


def run_drill(
    repo: Path,
    *,
    old_ref: str | None = None,
    new_ref: str = "HEAD",
    workdir: Path | None = None,
    allow_same_schema: bool = False,
    log: Log = lambda _: None,
) -> DrillReport:
    """Run the drill; ``allow_same_schema`` accepts a pair without a migration between them
    (a package-only rollback), which the default pair never is."""
    t_start = time.monotonic()
    old_ref = old_ref or default_old_ref(repo, new_ref)
    with contextlib.ExitStack() as stack:
        if workdir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wavry-drill-")))
        else:
            work = workdir
            work.mkdir(parents=True, exist_ok=True)
            if any(work.iterdir()):
                raise DrillError(f"{work} is not empty")
        try:
            return _drill(repo, old_ref, new_ref, work, log, t_start, allow_same_schema)
        except (BuildError, httpx.HTTPError, sqlite3.Error, OSError) as exc:
            raise DrillError(f"{type(exc).__name__}: {exc}") from exc


def _drill(
    repo: Path,
    old_ref: str,
    new_ref: str,
    work: Path,
    log: Log,
    t_start: float,
    allow_same_schema: bool,
) -> DrillReport:
    phases: dict[str, float] = {}
    t = time.monotonic()
    new_tree, new_commit, new_epoch, new_head = _export(repo, new_ref, "new", work)
    old_tree, old_commit, old_epoch, old_head = _export(repo, old_ref, "old", work)
    if old_head == new_head and not allow_same_schema:
        raise DrillError(f"N-1 and N have the same schema head {new_head}: no migration to cross")
    new = _build(repo, new_tree, new_commit, new_epoch, "new", work, None)
    old_version = _pick_old_version(
        ReleaseVersion.from_pep440(read_project_version(old_tree)), new.version
    )
    old = _build(repo, old_tree, old_commit, old_epoch, "old", work, old_version)
    phases["build"] = time.monotonic() - t
    log(f"built N-1 {old.version} ({old.commit[:10]}, schema {old.head}) and "
        f"N {new.version} ({new.commit[:10]}, schema {new.head})")  # fmt: skip

    t = time.monotonic()
    _install(old, work)
    _install(new, work)
    phases["install"] = time.monotonic() - t
    components = ["master"] + (["gateway"] if new.has_gateway else [])
    report = DrillReport(
        old_ref=old.commit, new_ref=new.commit, old_version=old.version.release,
        new_version=new.version.release, old_head=old.head, new_head=new.head,
        components=components, phases=phases,
    )  # fmt: skip
    data, logs = work / "data", work / "logs"
    data.mkdir()
    logs.mkdir()
    master_db, gateway_db = data / "master.db", data / "gateway.db"

    # 1. N-1 in production, with data
    t = time.monotonic()
    with _running(Service(old, "master", data, logs)) as m:
        _register_relays(m, ["relay-a", "relay-b", "relay-c"])
        wavry_id = _register_identity(m)
        relays_n1, key_n1 = _master_view(m, wavry_id)
    if old.has_gateway:
        with _running(Service(old, "gateway", data, logs)) as g:
            _gateway_account(g, register=True)
    snap_n1 = _snapshot(master_db)
    gw_snap_n1 = _snapshot(gateway_db) if gateway_db.exists() else {}
    phases["n-1 with data"] = time.monotonic() - t
    report.checks.append(
        f"N-1 {old.version}: master healthy, {len(relays_n1)} relays + 1 identity written, "
        f"schema {_schema_revision(master_db)}"
    )

    # 2. upgrade to N (backup first, as the runbook says)
    t = time.monotonic()
    _backup(master_db, work / "backup" / "master.db")
    with _running(Service(new, "master", data, logs)) as m:
        if _schema_revision(master_db) != new.head:
            raise DrillError(f"N did not migrate up: schema {_schema_revision(master_db)}")
        relays_n, key_n = _master_view(m, wavry_id)
        if relays_n != relays_n1 or key_n != key_n1:
            raise DrillError("after the upgrade the N-1 relays or signing key are not served")
        _register_relays(m, ["relay-d"])
    if new.has_gateway:
        with _running(Service(new, "gateway", data, logs)) as g:
            _gateway_account(g, register=not old.has_gateway)
    phases["upgrade"] = time.monotonic() - t
    gateway_upgrade = ""
    if new.has_gateway:
        gateway_upgrade = (
            ", the N-1 gateway account logs in"
            if old.has_gateway
            else ", gateway account registered and logged in"
        )
    report.checks.append(
        f"upgrade to N {new.version}: schema {old.head} -> {new.head}, N-1 data served, "
        "new data written" + gateway_upgrade
    )

    # 3. rollback: schema down with N's code, then N-1 again
    t = time.monotonic()
    for service, db in (("master", master_db), ("gateway", gateway_db)):
        if db.exists():
            run_cmd([new.wavry, "db", "--service", service, "downgrade", str(old.head)],
                 env=dict(os.environ, WAVRY_DATA_DIR=str(data)))  # fmt: skip
    with _running(Service(old, "master", data, logs)) as m:
        phases["rollback"] = time.monotonic() - t
        relays_back, key_back = _master_view(m, wavry_id)
    if old.has_gateway:
        with _running(Service(old, "gateway", data, logs)) as g:
            _gateway_account(g, register=False)
    phases["verify"] = time.monotonic() - t - phases["rollback"]

    problems = []
    if _schema_revision(master_db) != old.head:
        problems.append(f"master.db schema {_schema_revision(master_db)}, expected {old.head}")
    if relays_back != relays_n1 | {"relay-d"}:
        problems.append(f"relays after rollback {sorted(relays_back)}")
    if key_back != key_n1:
        problems.append("the lease-signing key changed across the rollback")
    problems += [f"master.db: {p}" for p in _kept(snap_n1, _snapshot(master_db))]
    if gateway_db.exists():
        if _schema_revision(gateway_db) != old.head:
            problems.append(f"gateway.db schema {_schema_revision(gateway_db)}, not {old.head}")
        problems += [f"gateway.db: {p}" for p in _kept(gw_snap_n1, _snapshot(gateway_db))]
    if problems:
        raise DrillError("rollback check failed: " + "; ".join(problems))
    report.checks.append(
        f"rollback to N-1 {old.version}: schema {new.head} -> {old.head}, master healthy, "
        f"all {sum(len(r) for _, r in snap_n1.values())} N-1 rows intact, relay written under N "
        "kept, same signing key, identity logs in"
        + (", gateway rows intact and the account logs in" if old.has_gateway else "")
    )
    if new.has_gateway and not old.has_gateway:
        report.notes.append(
            "N-1 has no gateway: downgrading gateway.db to N-1's schema drops the gateway tables "
            "(accounts created under N are gone; the pre-upgrade backup is the way back)"
        )
    phases["total"] = time.monotonic() - t_start
    report.notes.append(
        f"wheel sha256 N-1 {sha256_file(old.wheel)[:16]}..., N {sha256_file(new.wheel)[:16]}..."
    )
    shutil.rmtree(work / "src-old", ignore_errors=True)
    shutil.rmtree(work / "src-new", ignore_errors=True)
    return report
