"""Admin API refusals and audit, settings validation, signing keys and rotation."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from tests.master.conftest import (
    ADMIN_AUTH,
    SIGNING_SEED,
    AppFactory,
    Clock,
    heartbeat,
    identity,
    login,
    register_identity,
    register_relay,
)
from wavry.master.keys import KeyConfigError, load_keys
from wavry.master.settings import MasterSettings
from wavry.relay.lease import (
    LeaseClaims,
    LeaseVerifier,
    key_id_for,
    public_key_from_private,
    sign_lease,
)


async def test_admin_refusals(client: httpx.AsyncClient, make_app: AppFactory) -> None:
    body = {"relay_id": "relay-1", "new_state": "draining"}
    url = "/admin/api/relays/update_state"
    assert (await client.post(url, json=body)).status_code == 401
    assert (
        await client.post(url, json=body, headers={"Authorization": "Bearer " + "b" * 40})
    ).status_code == 401
    assert (await client.post(url, json=body, headers=ADMIN_AUTH)).status_code == 404
    await register_relay(client)
    bad = {"relay_id": "relay-1", "new_state": "sleeping"}
    assert (await client.post(url, json=bad, headers=ADMIN_AUTH)).status_code == 400
    auto = {"relay_id": "relay-1", "new_state": "quarantined"}
    assert (await client.post(url, json=auto, headers=ADMIN_AUTH)).status_code == 409
    assert (await client.post(url, json=body, headers=ADMIN_AUTH)).json() == {
        "relay_id": "relay-1",
        "state": "draining",
    }
    resp = await client.post(
        "/admin/api/sessions/revoke", json={"wavry_id": "nope"}, headers=ADMIN_AUTH
    )
    assert resp.status_code == 400
    audit = await client.get("/admin/api/audit", params={"limit": 50}, headers=ADMIN_AUTH)
    assert audit.status_code == 200
    rows = [(r["action"], r["outcome"], r["actor"]) for r in audit.json()]
    assert ("admin_relay_state", "auth_failed", "anonymous") in rows
    assert ("admin_relay_state", "ok", "admin") in rows
    assert ("admin_relay_state", "failed", "admin") in rows
    assert ("admin_revoke", "failed", "admin") in rows
    assert (await client.get("/admin/api/audit")).status_code == 401

    # admin disabled when no token is configured
    app = make_app(admin_panel_token=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://m") as c:
        assert (await c.post(url, json=body, headers=ADMIN_AUTH)).status_code == 403


def test_admin_token_must_be_long(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        MasterSettings(data_dir=tmp_path, admin_panel_token="short")
    assert MasterSettings(data_dir=tmp_path, admin_panel_token="  ").admin_panel_token is None


def test_settings_env_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVRY_MASTER_LEASE_TTL_SECS", "5")
    monkeypatch.setenv("WAVRY_MASTER_RELAY_AUTH_TOKEN", " s3cr3t-value ")
    monkeypatch.setenv("ADMIN_PANEL_TOKEN", "x" * 32)
    monkeypatch.setenv("WAVRY_DATABASE_URL", "sqlite+aiosqlite:///:memory:")
    monkeypatch.setenv("WAVRY_MASTER_SYBIL_MAX_PER_SUBNET", "9")
    s = MasterSettings(data_dir=tmp_path)
    assert s.lease_ttl_secs == 60  # clamped to 60..3600
    assert (
        s.relay_auth_token is not None and s.relay_auth_token.get_secret_value() == "s3cr3t-value"
    )
    assert s.admin_panel_token is not None
    assert s.database_url == "sqlite+aiosqlite:///:memory:"
    assert s.sybil_max_per_subnet == 9
    assert "s3cr3t" not in repr(s)
    assert len(MasterSettings(data_dir=tmp_path, relay_auth_token=None).insecure_problems()) == 2


def test_keys_from_env_file_and_generated(tmp_path: Path) -> None:
    pub = public_key_from_private(SIGNING_SEED)
    k = load_keys(MasterSettings(data_dir=tmp_path, signing_key=(SIGNING_SEED + pub).hex()))
    assert (k.seed, k.kid, k.source, k.provisioned) == (SIGNING_SEED, key_id_for(pub), "env", True)
    with pytest.raises(KeyConfigError):
        load_keys(MasterSettings(data_dir=tmp_path, signing_key=(SIGNING_SEED + bytes(32)).hex()))
    path = tmp_path / "key.hex"
    path.write_text(SIGNING_SEED.hex() + "\n")
    k = load_keys(MasterSettings(data_dir=tmp_path, key_file=path, key_id="2025-01"))
    assert (k.kid, k.source) == ("2025-01", "file")
    gen = load_keys(MasterSettings(data_dir=tmp_path / "d"))
    assert gen.source == "generated" and not gen.provisioned
    assert (tmp_path / "d" / "master_signing.key").stat().st_mode & 0o777 == 0o600
    assert load_keys(MasterSettings(data_dir=tmp_path / "d")).seed == gen.seed  # stable
    with pytest.raises(KeyConfigError):
        load_keys(MasterSettings(data_dir=tmp_path, signing_key="zz"))
    with pytest.raises(KeyConfigError):
        load_keys(MasterSettings(data_dir=tmp_path, trusted_public_keys="old:abcd"))


async def test_key_rotation_grace_period(make_app: AppFactory, clock: Clock) -> None:
    """After switching to a new key, relays that learned both keys accept old and new leases."""
    old_seed, new_seed = SIGNING_SEED, bytes(range(32, 64))
    old_pub, new_pub = public_key_from_private(old_seed), public_key_from_private(new_seed)
    app = make_app(
        signing_key=new_seed.hex(), key_id="k-new", trusted_public_keys=f"k-old:{old_pub.hex()}"
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://m") as c:
        wk = (await c.get("/.well-known/wavry-id")).json()
        assert wk["key_id"] == "k-new" and wk["public_key"] == new_pub.hex()
        assert {(e["key_id"], e["active"]) for e in wk["keys"]} == {
            ("k-new", True),
            ("k-old", False),
        }
        reg = await register_relay(c)
        assert reg["trusted_keys"] == {"k-new": new_pub.hex(), "k-old": old_pub.hex()}
        for _ in range(3):
            await heartbeat(c, "relay-1")
        alice, bob = identity(1), identity(2)
        await register_identity(c, alice)
        await register_identity(c, bob)
        lease = (
            await c.post(
                "/v1/sessions",
                json={"target_wavry_id": bob.wavry_id},
                headers=await login(c, alice),
            )
        ).json()
    verifier = LeaseVerifier({e["key_id"]: bytes.fromhex(e["public_key"]) for e in wk["keys"]})
    sid = uuid.UUID(lease["session_id"]).bytes
    claims = verifier.verify(
        lease["token"], now=clock(), relay_id="relay-1", session_id=sid, role="client"
    )
    assert claims.kid == "k-new"
    # a lease the old key signed before the switch is still accepted during the grace period
    old = sign_lease(
        LeaseClaims(sub=alice.wavry_id, sid=lease["session_id"], role="client", rid="relay-1",
                    iat=clock(), nbf=clock(), exp=clock() + 600),
        old_seed,
        "k-old",
    )  # fmt: skip
    assert (
        verifier.verify(old, now=clock(), relay_id="relay-1", session_id=sid, role="client").kid
        == "k-old"
    )
