"""Black-box: ``python -m wavry master`` as a subprocess on a loopback port, real HTTP, restarts.

Registration, heartbeats and the relay list over a real socket; the relay token is enforced
(401); the registry survives a master restart (SQLite under WAVRY_DATA_DIR); a heartbeat for a
relay id the master does not know answers 404 (the relay's cue to re-register).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from wavry.master.loadgate import MasterProcess

TOKEN = "socket-test-relay-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _body(relay_id: str, endpoint: str) -> dict[str, object]:
    return {
        "relay_id": relay_id,
        "endpoints": [endpoint],
        "region": "eu-west",
        "asn": 64500,
        "max_sessions": 100,
        "max_bitrate_kbps": 20000,
        "features": ["ipv4"],
    }


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    proc = MasterProcess(tmp_path / "data", relay_token=TOKEN)
    proc.start(timeout=20.0)
    try:
        yield proc
    finally:
        proc.stop()


def _client(master: MasterProcess) -> httpx.Client:
    return httpx.Client(base_url=master.url, timeout=5.0, trust_env=False)


def test_register_heartbeat_list_auth_and_persistence(master: MasterProcess) -> None:
    with _client(master) as c:
        health = c.get("/health").json()
        assert health["status"] == "ok" and health["relays_registered"] == 0

        resp = c.post(
            "/v1/relays/register", json=_body("relay-a", "198.51.100.7:4000"), headers=AUTH
        )
        assert resp.status_code == 200, resp.text
        reg = resp.json()
        assert reg["relay_id"] == "relay-a" and reg["state"] == "new"
        assert reg["master_key_id"] in reg["trusted_keys"]

        resp = c.post(
            "/v1/relays/heartbeat", json={"relay_id": "relay-a", "load_pct": 12}, headers=AUTH
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["ok"] is True

        listed = {r["relay_id"]: r for r in c.get("/v1/relays").json()}
        assert listed["relay-a"]["load_pct"] == 12
        assert listed["relay-a"]["endpoints"] == ["198.51.100.7:4000"]

        wrong = {"Authorization": "Bearer not-the-token"}
        for path, body in (
            ("/v1/relays/register", _body("relay-b", "198.51.100.8:4000")),
            ("/v1/relays/heartbeat", {"relay_id": "relay-a", "load_pct": 1}),
        ):
            assert c.post(path, json=body, headers=wrong).status_code == 401
            assert c.post(path, json=body).status_code == 401
        assert "relay-b" not in {r["relay_id"] for r in c.get("/v1/relays").json()}

    assert master.stop() is not None  # terminated (SIGTERM), not left running
    master.start(timeout=20.0)

    with _client(master) as c:
        assert c.get("/health").json()["relays_registered"] == 1
        listed = {r["relay_id"]: r for r in c.get("/v1/relays").json()}
        assert set(listed) == {"relay-a"}
        assert listed["relay-a"]["load_pct"] == 12
        resp = c.post(
            "/v1/relays/heartbeat", json={"relay_id": "relay-a", "load_pct": 3}, headers=AUTH
        )
        assert resp.status_code == 200, resp.text

        resp = c.post(
            "/v1/relays/heartbeat",
            json={"relay_id": "never-registered", "load_pct": 3},
            headers=AUTH,
        )
        assert resp.status_code == 404
        assert "error" in resp.json()


def test_bad_settings_exit_before_serving(tmp_path: Path) -> None:
    proc = MasterProcess(tmp_path / "data", relay_token=TOKEN, env={"ADMIN_PANEL_TOKEN": "short"})
    with pytest.raises(RuntimeError, match="at least 32"):
        proc.start(timeout=20.0)
    assert not proc.running
