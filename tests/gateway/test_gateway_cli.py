"""``wavry gateway`` / ``wavry gateway db`` / ``wavry control-plane``: refusals, database
commands on SQLite, the real server as a subprocess, and the control plane on real sockets."""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import ADMIN_AUTH, ADMIN_TOKEN, PASSWORD, register_body
from wavry.cli import build_parser
from wavry.gateway.settings import GatewaySettings
from wavry.master.settings import MasterSettings


def _run(argv: list[str]) -> int:
    ns: argparse.Namespace = build_parser().parse_args(argv)
    return int(ns.func(ns))


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVRY_DATA_DIR", str(tmp_path))
    for name in list(os.environ):
        if name.startswith(("WAVRY_GATEWAY_", "WAVRY_MASTER_")) or name in (
            "ADMIN_PANEL_TOKEN",
            "WAVRY_DATABASE_URL",
            "WAVRY_TOTP_KEY_B64",
            "WAVRY_TOTP_PREVIOUS_KEYS_B64",
            "WAVRY_REDIS_URL",
            "WAVRY_ALLOW_PUBLIC_BIND",
            "WAVRY_CORS_ALLOW_ANY",
            "WAVRY_ALLOW_INSECURE_TOTP",
        ):
            monkeypatch.delenv(name, raising=False)


def test_public_bind_needs_the_opt_in(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["gateway", "--listen", "192.0.2.1:3000"]) == 2
    assert "WAVRY_ALLOW_PUBLIC_BIND" in capsys.readouterr().err


def test_public_bind_with_insecure_settings_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAVRY_CORS_ALLOW_ANY", "1")
    assert _run(["gateway", "--listen", "192.0.2.1:3000", "--allow-public-bind"]) == 2
    assert "WAVRY_CORS_ALLOW_ANY" in capsys.readouterr().err


def test_bad_settings_are_usage_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_PANEL_TOKEN", "short")
    assert _run(["gateway"]) == 2
    assert "at least 32" in capsys.readouterr().err
    monkeypatch.delenv("ADMIN_PANEL_TOKEN")
    assert _run(["gateway", "--listen", "nonsense"]) == 2
    monkeypatch.setenv("WAVRY_TOTP_KEY_B64", "not base64!")
    assert _run(["gateway"]) == 2
    assert "WAVRY_TOTP_KEY_B64" in capsys.readouterr().err


def test_control_plane_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["control-plane", "--listen", "192.0.2.1:3000"]) == 2
    assert "refusing to listen" in capsys.readouterr().err
    # public with the opt-in but the master's insecure try-out defaults: refused
    assert _run(["control-plane", "--listen", "192.0.2.1:3000", "--allow-public-bind"]) == 2
    assert "WAVRY_MASTER_RELAY_AUTH_TOKEN" in capsys.readouterr().err


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    conn.close()
    return {r[0] for r in rows}


def test_db_upgrade_downgrade_backup_restore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "gateway.db"
    assert _run(["gateway", "db", "upgrade"]) == 0
    assert {"users", "user_sessions", "host_shares", "relays"} <= _tables(db)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO users (id, email, username, display_name, public_key, password_hash,"
            " created_at) VALUES ('u1', 'a@b.co', 'alice', 'A', 'ab', 'h', 1.0)"
        )
    conn.close()
    backup = tmp_path / "backups" / "gw.sqlite"
    assert _run(["gateway", "db", "backup", str(backup)]) == 0
    assert _run(["gateway", "db", "backup", str(backup)]) == 2  # exists
    assert "--force" in capsys.readouterr().err
    assert _run(["gateway", "db", "backup", str(backup), "--force"]) == 0

    assert _run(["gateway", "db", "downgrade", "0001_master_initial"]) == 0
    assert "users" not in _tables(db) and "relays" in _tables(db)
    assert _run(["gateway", "db", "downgrade", "no-such-revision"]) == 2

    assert _run(["gateway", "db", "restore", str(backup)]) == 2  # needs --yes
    assert "--yes" in capsys.readouterr().err
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a database at all" * 100)
    assert _run(["gateway", "db", "restore", str(junk), "--yes"]) == 2
    assert _run(["gateway", "db", "restore", str(backup), "--yes"]) == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT username FROM users").fetchall() == [("alice",)]
    conn.close()


def test_postgres_backup_without_client_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    url = "postgresql+asyncpg://wavry:secret@127.0.0.1:1/wavry"
    argv = ["gateway", "db", "backup", str(tmp_path / "x.sql"), "--database-url", url]
    assert _run(argv) == 1
    err = capsys.readouterr().err
    assert "pg_dump not found" in err and "secret" not in err


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_gateway_process_serves_real_http(tmp_path: Path) -> None:
    """``python -m wavry gateway``: migrates, serves; register and log in over a real socket."""
    port = _free_port()
    env = {
        **os.environ,
        "WAVRY_DATA_DIR": str(tmp_path),
        "ADMIN_PANEL_TOKEN": ADMIN_TOKEN,
        "WAVRY_GATEWAY_ARGON2_MEMORY_KIB": "8",
        "WAVRY_GATEWAY_ARGON2_TIME_COST": "1",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wavry",
            "gateway",
            "--listen",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "gateway did not become ready"
            time.sleep(0.1)
        with httpx.Client(base_url=base) as c:
            assert c.get("/").json()["service"] == "Wavry Gateway Online"
            assert c.post("/auth/register", json=register_body(1)).status_code == 201
            resp = c.post("/auth/login", json={"email": "user1@example.com", "password": PASSWORD})
            assert resp.status_code == 200
            assert len(resp.json()["token"]) == 64
            ov = c.get("/admin/api/overview", headers=ADMIN_AUTH).json()
            assert ov["users_total"] == 1
            metrics = c.get("/metrics").text
            assert "wavry_gateway_login_success_total 1" in metrics
            assert "wavry_gateway_users 1" in metrics
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert (tmp_path / "gateway.db").exists()


async def test_control_plane_in_one_loop(tmp_path: Path) -> None:
    from wavry.gateway.control_plane import ControlPlane

    gateway = GatewaySettings(
        listen="127.0.0.1:0",
        data_dir=tmp_path,
        admin_panel_token=ADMIN_TOKEN,
        argon2_memory_kib=8,
        argon2_time_cost=1,
    )
    master = MasterSettings(listen="127.0.0.1:0", data_dir=tmp_path)
    plane = ControlPlane(gateway, master)
    await plane.start()
    try:
        async with httpx.AsyncClient() as c:
            reg = await c.post(
                f"{plane.master_url}/v1/relays/register",
                json={
                    "relay_id": "r1",
                    "endpoints": ["198.51.100.1:4000"],
                    "max_bitrate_kbps": 20000,
                },
            )
            assert reg.status_code == 200, reg.text
            resp = await c.post(f"{plane.gateway_url}/auth/register", json=register_body(1))
            assert resp.status_code == 201
            relays = await c.get(f"{plane.gateway_url}/admin/api/relays", headers=ADMIN_AUTH)
            assert relays.status_code == 200, relays.text
            assert [r["relay_id"] for r in relays.json()["relays"]] == ["r1"]
            assert (await c.get(f"{plane.master_url}/health")).status_code == 200
    finally:
        await plane.stop()
    assert (tmp_path / "control-plane.db").exists()


def test_totp_key_rotation_rekeys_every_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64

    from wavry.gateway.totp import TotpSecretBox

    old_key, new_key = b"o" * 32, b"n" * 32
    b64 = lambda k: base64.b64encode(k).decode()  # noqa: E731
    db = tmp_path / "gateway.db"
    assert _run(["gateway", "db", "upgrade"]) == 0
    old_box = TotpSecretBox(old_key, allow_plaintext=False)
    secrets_by_user = {f"u{i}": bytes([i]) * 20 for i in range(3)}
    with sqlite3.connect(db) as conn:
        for i, (uid, secret) in enumerate(secrets_by_user.items()):
            conn.execute(
                "INSERT INTO users (id, email, username, display_name, public_key, password_hash,"
                " totp_secret_enc, created_at) VALUES (?, ?, ?, 'X', 'ab', 'h', ?, 1.0)",
                (uid, f"u{i}@b.co", f"user{i}", old_box.seal(secret, uid)),
            )
    conn.close()

    monkeypatch.setenv("WAVRY_TOTP_KEY_B64", b64(new_key))
    # without the previous key the secrets are unreadable: refused, nothing changed
    assert _run(["gateway", "db", "rekey-totp"]) == 1
    assert "WAVRY_TOTP_PREVIOUS_KEYS_B64" in capsys.readouterr().err
    monkeypatch.setenv("WAVRY_TOTP_PREVIOUS_KEYS_B64", b64(old_key))
    assert _run(["gateway", "db", "rekey-totp"]) == 0
    assert "3 re-sealed" in capsys.readouterr().err
    new_only = TotpSecretBox(new_key, allow_plaintext=False)
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT id, totp_secret_enc FROM users").fetchall())
    conn.close()
    for uid, secret in secrets_by_user.items():
        assert new_only.open(rows[uid], uid) == secret  # the old key is no longer needed
        with pytest.raises(ValueError):
            old_box.open(rows[uid], uid)
    assert _run(["gateway", "db", "rekey-totp"]) == 0  # idempotent
    assert "0 re-sealed, 3 already under the current key" in capsys.readouterr().err
    monkeypatch.setenv("WAVRY_TOTP_PREVIOUS_KEYS_B64", "bm90LTMyLWJ5dGVz")
    assert _run(["gateway", "db", "rekey-totp"]) == 2  # malformed previous key: bad settings
