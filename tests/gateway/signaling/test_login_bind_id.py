"""``wavry login`` binds this machine's Wavry ID to the account, against a real gateway
(create_app + uvicorn on 127.0.0.1): bound when the account has none, left alone (with a note)
when it has another, skipped with ``--no-bind-id``; the bound ID is kept in the login record."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from tests.gateway.conftest import PASSWORD
from tests.gateway.signaling.conftest import Gateway
from wavry.cli import main
from wavry.credentials import TokenStore
from wavry.identity_store import create_identity_file, load_identity
from wavry.net.gateway_api import BindOutcome, ensure_wavry_id_bound
from wavry.rift.identity import Identity


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "cli-data"
    monkeypatch.setenv("WAVRY_DATA_DIR", str(data))
    monkeypatch.setenv("WAVRY_TOKEN_STORE", "file")  # never touch a developer's real keyring
    return data


async def _login(gw: Gateway, monkeypatch: pytest.MonkeyPatch, user: str, *extra: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n"))
    argv = ["login", "--gateway", gw.http_url, "--email", f"{user}@example.com",
            "--password-stdin", *extra]  # fmt: skip
    rc: int = await asyncio.to_thread(main, argv)
    return rc


async def _bound(gw: Gateway, token: str) -> str | None:
    resp = await gw.http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    wid: str | None = resp.json()["user"]["wavry_id"]
    return wid


async def test_login_binds_the_local_identity_once(
    gw: Gateway,
    monkeypatch: pytest.MonkeyPatch,
    _data_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = await gw.register("alice")
    assert await _bound(gw, token) is None
    assert await _login(gw, monkeypatch, "alice") == 0
    out = capsys.readouterr()
    local = load_identity(_data_dir / "identity.key")  # created: the one host/connect use
    assert f"Bound this machine's Wavry ID {local.wavry_id} to alice" in out.out
    assert await _bound(gw, token) == local.wavry_id
    session = TokenStore().load()
    assert session is not None and session.wavry_id == local.wavry_id
    assert await asyncio.to_thread(main, ["show-id"]) == 0
    assert capsys.readouterr().out.strip() == local.wavry_id

    # again: already bound to this ID, nothing to do, nothing said about it
    assert await _login(gw, monkeypatch, "alice") == 0
    out = capsys.readouterr()
    assert "Bound" not in out.out and "Note" not in out.err, out
    assert await _bound(gw, token) == local.wavry_id
    assert load_identity(_data_dir / "identity.key") == local  # not replaced


async def test_login_never_replaces_another_bound_id(
    gw: Gateway,
    monkeypatch: pytest.MonkeyPatch,
    _data_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = await gw.register("bob")
    laptop = Identity.from_seed(b"\x42" * 32)
    result = await ensure_wavry_id_bound(gw.http_url, token, laptop)
    assert result.outcome is BindOutcome.BOUND
    local = create_identity_file(_data_dir / "identity.key")

    assert await _login(gw, monkeypatch, "bob") == 0
    err = capsys.readouterr().err
    assert laptop.wavry_id in err and local.wavry_id in err and "--identity" in err
    assert await _bound(gw, token) == laptop.wavry_id  # unchanged
    session = TokenStore().load()
    assert session is not None and session.wavry_id == laptop.wavry_id

    # the function itself reports the same, for a client that calls it directly
    again = await ensure_wavry_id_bound(gw.http_url, token, local)
    assert again.outcome is BindOutcome.OTHER and again.bound_wavry_id == laptop.wavry_id


async def test_no_bind_id_and_identity_option(
    gw: Gateway,
    monkeypatch: pytest.MonkeyPatch,
    _data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = await gw.register("carol")
    assert await _login(gw, monkeypatch, "carol", "--no-bind-id") == 0
    assert await _bound(gw, token) is None
    assert not (_data_dir / "identity.key").exists()
    session = TokenStore().load()
    assert session is not None and session.wavry_id is None

    other = create_identity_file(tmp_path / "other.key")
    assert await _login(gw, monkeypatch, "carol", "--identity", str(tmp_path / "other.key")) == 0
    assert await _bound(gw, token) == other.wavry_id
    assert not (_data_dir / "identity.key").exists()
    capsys.readouterr()


async def test_a_key_bound_elsewhere_is_a_warning_not_a_failed_login(
    gw: Gateway,
    monkeypatch: pytest.MonkeyPatch,
    _data_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dave, erin = await gw.register("dave"), await gw.register("erin")
    local = create_identity_file(_data_dir / "identity.key")
    await ensure_wavry_id_bound(gw.http_url, dave, local)  # dave's account has this key
    assert await _login(gw, monkeypatch, "erin") == 0
    err = capsys.readouterr().err
    assert "could not bind" in err and "bound to another account" in err
    assert await _bound(gw, erin) is None
    session = TokenStore().load()
    assert session is not None and session.username == "erin" and session.wavry_id is None
