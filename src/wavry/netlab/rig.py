"""The control plane on the NAT lab: gateway + master, a relay, coturn, and two logged-in users.

``ControlPlaneRig(lab)`` starts, in the lab's ``pub`` namespace, as subprocesses:

- ``wavry control-plane``: gateway on ``203.0.113.1:3000``, master on ``203.0.113.1:8080``
  (one process, one SQLite database, the gateway↔master service token generated per run).
  Plain http on a non-loopback address needs ``--allow-public-bind --insecure-dev`` (a lab, not
  a deployment); ``WAVRY_WS_ALLOW_MISSING_ORIGIN=1`` lets the native CLI bind without an Origin.
- ``wavry relay`` on ``203.0.113.2:4000`` (health ``:9091``), registered with that master with a
  relay token (``WAVRY_MASTER_RELAY_AUTH_TOKEN`` = ``WAVRY_RELAY_MASTER_TOKEN``).
- coturn (STUN only) on ``203.0.113.1:3478`` unless a ``StunServer`` is passed in.

It waits for the gateway's ``/ready``, the relay's ``/ready`` and the master's ``/ready`` (an
assignable relay), registers **alice** (host owner) and **bob** (client) over the gateway API from
their own namespaces, makes alice share with bob, and runs ``wavry login --password-stdin`` in
``host`` (alice) and ``client`` (bob) with a data directory per side, so each side has its own
identity, login record and bound Wavry ID. ``start_host()`` then runs
``wavry host --gateway`` in ``host`` and ``connect()`` runs ``wavry connect alice --headless
--json`` in ``client``, both with ``WAVRY_STUN_SERVERS`` pointing at the coturn.

Every process logs to a file in ``workdir`` (``log_tail(name)``); nothing is piped, so a chatty
process never blocks on a full pipe.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavry.netlab.coturn import StunServer, start_stun
from wavry.netlab.topology import SERVICE_IP, Lifecycle, NatLab, NetlabError, Side

__all__ = ["Account", "ConnectResult", "ConnectRun", "ControlPlaneRig", "RigProcess"]

log = logging.getLogger(__name__)

_READY_TIMEOUT = 30.0  # a loaded 2-core machine: the control plane imports + migrates in ~2-3 s


@dataclass(frozen=True)
class Account:
    username: str
    email: str
    password: str
    side: Side  # the namespace whose `wavry login` holds this account
    data_dir: Path


@dataclass
class RigProcess:
    """A long-running process of the rig (its output goes to ``log``)."""

    name: str
    proc: subprocess.Popen[Any]
    log: Path

    def tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return "(no log)"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


@dataclass
class ConnectResult:
    """What ``wavry connect ... --json`` left behind."""

    returncode: int | None  # None: killed after the timeout
    json: dict[str, Any] | None  # the --json report (None if it printed none)
    stdout: str
    stderr_tail: str
    elapsed_s: float

    @property
    def frames_verified(self) -> int:
        return int((self.json or {}).get("frames_verified") or 0)

    @property
    def path(self) -> str | None:
        return (self.json or {}).get("path")

    @property
    def first_frame_ms(self) -> float | None:
        return (self.json or {}).get("first_frame_ms")


@dataclass
class ConnectRun:
    """A ``wavry connect`` running in the background (``rig.spawn_connect``)."""

    proc: subprocess.Popen[Any]
    stdout_path: Path
    stderr_path: Path
    started: float = field(default_factory=time.monotonic)

    def result(self, timeout: float = 30.0) -> ConnectResult:
        """Wait for the exit (killed after ``timeout``) and parse the last JSON line of stdout."""
        code: int | None
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            code = None
        elapsed = time.monotonic() - self.started
        out = self.stdout_path.read_text(errors="replace")
        err = self.stderr_path.read_text(errors="replace")
        doc: dict[str, Any] | None = None
        for line in reversed(out.strip().splitlines()):
            with contextlib.suppress(ValueError):
                parsed = json.loads(line)
                if isinstance(parsed, dict):
                    doc = parsed
                    break
        return ConnectResult(code, doc, out, err[-4000:], elapsed)


class _NsHTTPConnection(http.client.HTTPConnection):
    """http.client over a TCP socket created inside a lab namespace."""

    def __init__(self, lab: NatLab, ns: str, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._lab, self._ns = lab, ns

    def connect(self) -> None:
        sock = self._lab.socket(self._ns, type=socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect((self.host, self.port))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class ControlPlaneRig(Lifecycle):
    """See the module docstring. ``with ControlPlaneRig(lab) as rig:`` (the lab must be started)."""

    HOST_USER = "alice"
    CLIENT_USER = "bob"

    def __init__(
        self,
        lab: NatLab,
        *,
        stun: StunServer | None = None,
        workdir: Path | None = None,
        gateway_port: int = 3000,
        master_port: int = 8080,
        relay_port: int = 4000,
        relay_health_port: int = 9091,
        extra_env: Mapping[str, str] | None = None,
        log_level: str = "info",
    ) -> None:
        self.lab = lab
        self.stun = stun
        self._own_stun = stun is None
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"{lab.prefix}-rig-"))
        self.gateway_addr = (SERVICE_IP, gateway_port)
        self.master_addr = (SERVICE_IP, master_port)
        self.relay_ip: str | None = None
        self.relay_port = relay_port
        self.relay_health_port = relay_health_port
        self.extra_env = dict(extra_env or {})
        self.log_level = log_level
        self.relay_token = secrets.token_hex(32)
        self.accounts: dict[Side, Account] = {}
        self.control_plane: RigProcess | None = None
        self.relay: RigProcess | None = None
        self.hosts: list[RigProcess] = []
        self._connects = 0
        self.setup_seconds: float | None = None

    # ------------------------------------------------------------------ addresses

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway_addr[0]}:{self.gateway_addr[1]}"

    @property
    def master_url(self) -> str:
        return f"http://{self.master_addr[0]}:{self.master_addr[1]}"

    @property
    def relay_addr(self) -> tuple[str, int]:
        if self.relay_ip is None:
            raise NetlabError("the relay has not been started")
        return self.relay_ip, self.relay_port

    @property
    def stun_env(self) -> str:
        if self.stun is None:
            raise NetlabError("the rig is not started")
        return self.stun.env_value

    # ------------------------------------------------------------------ life cycle

    def start(self) -> ControlPlaneRig:
        t0 = time.monotonic()
        try:
            if self.stun is None:
                self.stun = start_stun(self.lab)
            self._start_control_plane()
            self.relay_ip = self.lab.add_service_address()
            self.start_relay()
            self._wait_http(self.gateway_addr, "/ready", "gateway", self.control_plane)
            self.wait_relay_assignable()
            self._create_accounts()
        except BaseException:
            self.close()
            raise
        self.setup_seconds = time.monotonic() - t0
        log.info("netlab rig up in %.1f s", self.setup_seconds)
        return self

    def close(self) -> None:
        for p in [*self.hosts, self.relay, self.control_plane]:
            if p is not None:
                with contextlib.suppress(OSError):
                    p.stop(5)
        self.hosts.clear()
        if self._own_stun and self.stun is not None:
            self.stun.stop()
            self.stun = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------ processes

    def base_env(self) -> dict[str, str]:
        """This process's environment without WAVRY_* (no leaking of the caller's settings)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("WAVRY_")}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def side_env(self, side: Side, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of ``wavry`` commands on ``side``: its data directory (identity,
        login record), the file token store and the lab's STUN server; ``env`` on top."""
        out = self.base_env()
        out.update(
            WAVRY_DATA_DIR=str(self.workdir / side),
            WAVRY_TOKEN_STORE="file",
            WAVRY_STUN_SERVERS=self.stun_env,
        )
        out.update(env or {})
        return out

    def _spawn(self, ns: str, name: str, argv: Sequence[str], env: Mapping[str, str]) -> RigProcess:
        logfile = self.workdir / f"{name}.log"
        with open(logfile, "ab") as out:
            proc = self.lab.popen(
                ns,
                [sys.executable, "-m", "wavry", *argv],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        return RigProcess(name, proc, logfile)

    def _start_control_plane(self) -> None:
        env = self.base_env()
        env.update(
            WAVRY_DATA_DIR=str(self.workdir / "control-plane"),
            WAVRY_WS_ALLOW_MISSING_ORIGIN="1",
            WAVRY_MASTER_RELAY_AUTH_TOKEN=self.relay_token,
            # a relay restarted mid-stream is noticed (and a new one used) within ~3 s
            WAVRY_MASTER_HEARTBEAT_INTERVAL_MS="1000",
            # scenario tests ask for many leases and log in often from the same two addresses
            WAVRY_MASTER_LEASE_RATE_LIMIT="1000",
            WAVRY_GATEWAY_AUTH_RATE_LIMIT="1000",
            WAVRY_GATEWAY_ACCOUNT_RATE_LIMIT="1000",
            # every `wavry connect` binds a signaling socket, all from one NAT address
            WAVRY_WS_BIND_RATE_LIMIT="1000",
            WAVRY_WS_RELAY_RATE_LIMIT="1000",
        )
        env.update(self.extra_env)
        gw, master = self.gateway_addr, self.master_addr
        argv = [
            "control-plane",
            "--listen", f"{gw[0]}:{gw[1]}",
            "--master-listen", f"{master[0]}:{master[1]}",
            "--allow-public-bind", "--insecure-dev",
            "--log-level", self.log_level,
        ]  # fmt: skip
        self.control_plane = self._spawn("pub", "control-plane", argv, env)

    def start_relay(self, relay_id: str | None = None) -> RigProcess:
        """Start (or, after ``stop_relay``, restart) the relay on the same address and port.
        ``relay_id`` overrides the id it keeps in its data directory (another relay, same
        address: the leases issued for the old one are refused)."""
        if self.relay is not None and self.relay.alive():
            raise NetlabError("the relay is already running")
        ip, port = self.relay_addr
        env = self.base_env()
        env.update(
            WAVRY_DATA_DIR=str(self.workdir / "relay"),
            WAVRY_RELAY_MASTER_TOKEN=self.relay_token,
        )
        env.update(self.extra_env)
        if relay_id is not None:
            env["WAVRY_RELAY_ID"] = relay_id
        argv = [
            "relay",
            "--listen", f"{ip}:{port}",
            "--health-listen", f"{ip}:{self.relay_health_port}",
            "--master-url", self.master_url,
            "--allow-public-bind", "--allow-insecure-dev",
            "--stats-log-interval-secs", "5",
            "--log-level", self.log_level,
        ]  # fmt: skip
        self.relay = self._spawn("pub", "relay", argv, env)
        return self.relay

    def relay_metrics(self) -> dict[str, float]:
        """The relay's Prometheus counters without the ``wavry_relay_`` prefix and labels, e.g.
        ``{"packets_rx": 0.0, "packets_forwarded": 0.0, ...}`` (reset when the relay restarts).
        A direct session must leave ``packets_rx`` where it was."""
        ip, _ = self.relay_addr
        status, text = self.http("GET", f"http://{ip}:{self.relay_health_port}/metrics")
        if status != 200 or not isinstance(text, str):
            raise NetlabError(f"relay /metrics answered {status}")
        out: dict[str, float] = {}
        for line in text.splitlines():
            if not line.startswith("wavry_relay_"):
                continue
            name_labels, _, value = line.rpartition(" ")
            name = name_labels.split("{", 1)[0].removeprefix("wavry_relay_")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
        return out

    def relay_alive(self) -> bool:
        return self.relay is not None and self.relay.alive()

    def stop_relay(self) -> int | None:
        return self.relay.stop() if self.relay is not None else None

    def restart_relay(self, down_for: float = 0.0, relay_id: str | None = None) -> None:
        """Stop the relay, wait ``down_for`` seconds, start it again and wait until it is ready."""
        self.stop_relay()
        time.sleep(down_for)
        self.start_relay(relay_id)
        self.wait_relay_assignable()

    def wait_relay_assignable(self, timeout: float = _READY_TIMEOUT) -> None:
        """Until the relay's /ready is 200 and the master lists it as assignable."""
        assert self.relay is not None
        ip, _ = self.relay_addr
        self._wait_http((ip, self.relay_health_port), "/ready", "relay", self.relay, timeout)
        self._wait_http(self.master_addr, "/ready", "master", self.control_plane, timeout)

    def _wait_http(
        self,
        addr: tuple[str, int],
        path: str,
        what: str,
        proc: RigProcess | None,
        timeout: float = _READY_TIMEOUT,
    ) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            if proc is not None and not proc.alive():
                raise NetlabError(f"{proc.name} exited ({proc.proc.returncode}):\n{proc.tail()}")
            try:
                status, body = self.http("GET", f"http://{addr[0]}:{addr[1]}{path}", timeout=2)
                if status == 200:
                    return
                last = f"{status} {body}"
            except OSError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                tail = proc.tail() if proc is not None else ""
                raise NetlabError(f"{what} not ready at {addr}{path}: {last}\n{tail}")
            time.sleep(0.05)

    # ------------------------------------------------------------------ HTTP from a namespace

    def http(
        self,
        method: str,
        url: str,
        *,
        ns: str = "pub",
        token: str | None = None,
        json_body: Any = None,
        timeout: float = 5.0,
    ) -> tuple[int, Any]:
        """One HTTP request from a socket in ``ns``; ``url`` is absolute or a gateway path.
        Returns (status, parsed JSON or text)."""
        if url.startswith("/"):
            url = self.gateway_url + url
        hostport, _, path = url.removeprefix("http://").partition("/")
        host, _, port = hostport.rpartition(":")
        conn = _NsHTTPConnection(self.lab, ns, host, int(port), timeout)
        headers = {"Accept": "application/json"}
        body = None
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, "/" + path, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode(errors="replace")

    # ------------------------------------------------------------------ accounts

    def _create_accounts(self) -> None:
        users: dict[Side, str] = {"host": self.HOST_USER, "client": self.CLIENT_USER}
        tokens: dict[Side, str] = {}
        for side, username in users.items():
            acct = Account(username, f"{username}@example.com", secrets.token_urlsafe(12), side,
                           self.workdir / side)  # fmt: skip
            acct.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            status, doc = self.http("POST", "/auth/register", ns=side, json_body={
                "email": acct.email, "password": acct.password, "username": username,
                "display_name": username.title(), "public_key": "ab" * 32,
            })  # fmt: skip
            if status != 201:
                raise NetlabError(f"registering {username} failed: {status} {doc}")
            tokens[side] = doc["token"]
            self.accounts[side] = acct
        status, doc = self.http("POST", "/v1/shares", ns="host", token=tokens["host"],
                                json_body={"username": self.CLIENT_USER})  # fmt: skip
        if status != 200:
            raise NetlabError(f"alice sharing with bob failed: {status} {doc}")
        # `wavry login` on both sides at once (each is a Python start-up, ~1 s)
        runs = {side: self._login(acct) for side, acct in self.accounts.items()}
        for side, (proc, logfile) in runs.items():
            try:
                proc.wait(_READY_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.returncode != 0:
                raise NetlabError(
                    f"wavry login in {side} failed ({proc.returncode}):\n"
                    + logfile.read_text(errors="replace")[-3000:]
                )

    def _login(self, acct: Account) -> tuple[subprocess.Popen[Any], Path]:
        logfile = self.workdir / f"login-{acct.side}.log"
        argv = [sys.executable, "-m", "wavry", "login", "--gateway", self.gateway_url,
                "--email", acct.email, "--password-stdin", "--allow-http"]  # fmt: skip
        with open(logfile, "wb") as out:
            proc = self.lab.popen(
                acct.side,
                argv,
                env=self.side_env(acct.side),
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        assert proc.stdin is not None
        proc.stdin.write(f"{acct.password}\n".encode())
        proc.stdin.close()
        return proc, logfile

    def stored_token(self, side: Side) -> str:
        """The session token `wavry login` stored on ``side`` (for API checks in tests)."""
        from wavry.credentials import TokenStore

        record = TokenStore(self.side_env(side)).load()
        if record is None:
            raise NetlabError(f"no stored login on {side}")
        return record.token

    # ------------------------------------------------------------------ host and client

    def start_host(
        self,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        *,
        wait_online: bool = True,
        timeout: float = 20.0,
    ) -> RigProcess:
        """``wavry host --gateway`` in ``host`` as alice: test source 320x240 at 30 fps, no input,
        no mDNS, listening on 0.0.0.0:4444 (``extra_args`` are appended, so they can override).
        Waits until it says it is online at the gateway (unless ``wait_online=False``)."""
        argv = [
            "host", "--capture", "testsrc", "--resolution", "320x240", "--fps", "30",
            "--input", "none", "--no-mdns", "--listen", "0.0.0.0", "--public", "--port", "4444",
            "--gateway", "--status-json", *extra_args,
        ]  # fmt: skip
        proc = self._spawn("host", f"host-{len(self.hosts)}", argv, self.side_env("host", env))
        self.hosts.append(proc)
        if wait_online:
            deadline = time.monotonic() + timeout
            needle = f"online at the gateway as {self.HOST_USER}"
            while needle not in proc.tail(1_000_000):
                if not proc.alive():
                    raise NetlabError(f"wavry host exited ({proc.proc.returncode}):\n{proc.tail()}")
                if time.monotonic() > deadline:
                    raise NetlabError(f"wavry host not online after {timeout} s:\n{proc.tail()}")
                time.sleep(0.05)
        return proc

    def spawn_connect(
        self,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        *,
        seconds: float | None = 3.0,
        target: str | None = None,
    ) -> ConnectRun:
        """Start ``wavry connect alice --headless --json [--seconds N]`` in ``client`` as bob."""
        self._connects += 1
        n = self._connects
        argv = [sys.executable, "-m", "wavry", "connect", target or self.HOST_USER,
                "--headless", "--json"]  # fmt: skip
        if seconds is not None and "--seconds" not in extra_args:
            argv += ["--seconds", str(seconds)]
        argv += list(extra_args)
        out_path = self.workdir / f"connect-{n}.out"
        err_path = self.workdir / f"connect-{n}.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = self.lab.popen("client", argv, env=self.side_env("client", env),
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                  cwd=self.workdir)  # fmt: skip
        return ConnectRun(proc, out_path, err_path)

    def connect(
        self,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        *,
        seconds: float | None = 3.0,
    ) -> ConnectResult:
        """``spawn_connect`` and wait for it: exit code, the --json report, stderr's tail."""
        return self.spawn_connect(extra_args, env, seconds=seconds).result(timeout)

    def log_tail(self, name: str, chars: int = 4000) -> str:
        """The end of ``workdir/<name>.log`` (control-plane, relay, host-0, login-client...)."""
        path = self.workdir / f"{name}.log"
        with contextlib.suppress(OSError):
            return path.read_text(errors="replace")[-chars:]
        return "(no log)"
