"""``wavry login`` / ``wavry logout`` against a real gateway (create_app + uvicorn on 127.0.0.1).

The CLI is synchronous (httpx), so it runs in a thread while the gateway serves on the loop."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import time
from pathlib import Path

import pytest

from tests.gateway.conftest import PASSWORD
from tests.gateway.signaling.conftest import Gateway
from wavry.cli import main
from wavry.cli_account import normalize_gateway_url
from wavry.credentials import CredentialsError, GatewaySession, TokenStore
from wavry.gateway import totp


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "cli-data"
    monkeypatch.setenv("WAVRY_DATA_DIR", str(data))
    monkeypatch.setenv("WAVRY_TOKEN_STORE", "file")  # never touch a developer's real keyring
    return data


def _prompts(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> list[str]:
    asked: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        asked.append(prompt)
        return answers.pop(0)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    return asked


async def _me(gw: Gateway, token: str) -> int:
    resp = await gw.http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    return resp.status_code


async def test_login_stores_a_working_token_and_logout_revokes_it(
    gw: Gateway,
    monkeypatch: pytest.MonkeyPatch,
    _data_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await gw.register("alice")
    asked = _prompts(monkeypatch, [PASSWORD])
    rc = await asyncio.to_thread(
        main, ["login", "--gateway", gw.http_url + "/", "--email", "alice@example.com"]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert len(asked) == 1 and "Password" in asked[0]
    path = _data_dir / "gateway_session.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    session = TokenStore().load()
    assert session is not None and session.username == "alice"
    assert session.gateway == gw.http_url
    assert session.token not in out.out + out.err  # never printed
    assert session.token not in repr(session)
    assert await _me(gw, session.token) == 200
    # no temp file left (identity.key: the Wavry ID login binds, tests/.../test_login_bind_id.py)
    assert sorted(p.name for p in _data_dir.iterdir()) == ["gateway_session.json", "identity.key"]

    rc = await asyncio.to_thread(main, ["logout"])
    assert rc == 0
    assert not path.exists()
    assert await _me(gw, session.token) == 401
    assert await asyncio.to_thread(main, ["logout"]) == 0
    assert "Not logged in" in capsys.readouterr().out


async def test_login_with_2fa_and_password_stdin(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await gw.register("bob")
    auth = {"Authorization": f"Bearer {token}"}
    resp = await gw.http.post("/auth/2fa/setup", json={"password": PASSWORD}, headers=auth)
    assert resp.status_code == 200, resp.text
    secret = totp.b32decode(resp.json()["secret"])
    # Enable with the previous step's code so that the current step is still unused for login.
    code = totp.totp(secret, time.time() - 30)
    resp = await gw.http.post("/auth/2fa/enable", json={"code": code}, headers=auth)
    assert resp.status_code == 200, resp.text

    login = ["login", "--gateway", gw.http_url, "--email", "bob@example.com", "--password-stdin"]
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n000000\n"))
    assert await asyncio.to_thread(main, login) == 1  # wrong code
    assert TokenStore().load() is None

    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n{totp.totp(secret, time.time())}\n"))
    assert await asyncio.to_thread(main, login) == 0
    session = TokenStore().load()
    assert session is not None and session.username == "bob"
    assert await _me(gw, session.token) == 200


async def test_wrong_password_stores_nothing(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await gw.register("carol")
    monkeypatch.setattr("sys.stdin", io.StringIO("not the password\n"))
    argv = ["login", "--gateway", gw.http_url, "--email", "carol@example.com", "--password-stdin"]
    assert await asyncio.to_thread(main, argv) == 1
    assert "invalid email or password" in capsys.readouterr().err
    assert TokenStore().load() is None


async def test_logout_keeps_the_token_when_the_gateway_is_unreachable(_data_dir: Path) -> None:
    store = TokenStore()
    store.save(GatewaySession(gateway="http://127.0.0.1:9", token="t" * 43, username="dave"))
    assert await asyncio.to_thread(main, ["logout"]) == 1
    assert store.load() is not None
    assert await asyncio.to_thread(main, ["logout", "--forget-only"]) == 0
    assert store.load() is None


def test_gateway_url_rules() -> None:
    assert normalize_gateway_url("https://gw.example.org/") == "https://gw.example.org"
    assert normalize_gateway_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert normalize_gateway_url("http://localhost/api/") == "http://localhost/api"
    for bad in ("gw.example.org", "ftp://gw", "https://u:p@gw", "https://gw/?x=1"):
        with pytest.raises(ValueError):
            normalize_gateway_url(bad)
    with pytest.raises(ValueError, match="plain http"):
        normalize_gateway_url("http://gw.example.org")
    assert normalize_gateway_url("http://gw.example.org", allow_http=True)


def test_unreadable_store_is_an_error_not_a_crash(_data_dir: Path) -> None:
    _data_dir.mkdir(parents=True)
    (_data_dir / "gateway_session.json").write_text("{not json")
    assert main(["logout"]) == 1
    assert main(["logout", "--forget-only"]) == 0
    assert not (_data_dir / "gateway_session.json").exists()


def test_file_store_round_trip_is_atomic_and_private(_data_dir: Path) -> None:
    store = TokenStore()
    assert store.backend == "file"
    for n in range(3):
        store.save(GatewaySession(gateway="https://gw", token=f"tok{n}", expires_at=n))
    loaded = store.load()
    assert loaded is not None and loaded.token == "tok2" and loaded.expires_at == 2
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert sorted(p.name for p in _data_dir.iterdir()) == ["gateway_session.json"]
    assert store.forget() and not store.forget()


class _MemoryKeyring:
    """Stands in for the optional ``keyring`` package (not installed here): its API surface."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], str] = {}

    def get_keyring(self) -> object:
        return self

    def set_password(self, service: str, name: str, value: str) -> None:
        self.items[service, name] = value

    def get_password(self, service: str, name: str) -> str | None:
        return self.items.get((service, name))

    def delete_password(self, service: str, name: str) -> None:
        del self.items[service, name]


def test_keyring_backend_when_importable(monkeypatch: pytest.MonkeyPatch, _data_dir: Path) -> None:
    import sys
    import types

    memory = _MemoryKeyring()
    fail = types.ModuleType("keyring.backends.fail")
    fail.Keyring = type("Keyring", (), {})  # type: ignore[attr-defined]
    module = types.ModuleType("keyring")
    for name in ("get_keyring", "set_password", "get_password", "delete_password"):
        setattr(module, name, getattr(memory, name))
    monkeypatch.setitem(sys.modules, "keyring", module)
    monkeypatch.setitem(sys.modules, "keyring.backends", types.ModuleType("keyring.backends"))
    monkeypatch.setitem(sys.modules, "keyring.backends.fail", fail)

    file_store = TokenStore()  # WAVRY_TOKEN_STORE=file from the fixture
    file_store.save(GatewaySession(gateway="https://gw", token="old"))
    monkeypatch.setenv("WAVRY_TOKEN_STORE", "auto")
    store = TokenStore()
    assert store.backend == "keyring" and "keyring" in store.location
    store.save(GatewaySession(gateway="https://gw", token="secret-token", username="erin"))
    assert not file_store.path.exists()  # never two copies
    assert "secret-token" in memory.items["wavry", "gateway-session"]
    loaded = store.load()
    assert loaded is not None and loaded.token == "secret-token"
    assert store.forget() and store.load() is None and memory.items == {}

    # a keyring whose backend is the "fail" one is treated as absent
    monkeypatch.setattr(memory, "get_keyring", lambda: fail.Keyring())
    monkeypatch.setattr(module, "get_keyring", lambda: fail.Keyring())
    assert TokenStore().backend == "file"
    monkeypatch.setenv("WAVRY_TOKEN_STORE", "keyring")
    with pytest.raises(CredentialsError):
        TokenStore()


def test_token_store_choice_and_bad_records(
    monkeypatch: pytest.MonkeyPatch, _data_dir: Path
) -> None:
    monkeypatch.setenv("WAVRY_TOKEN_STORE", "vault")
    with pytest.raises(CredentialsError):
        TokenStore()
    monkeypatch.setenv("WAVRY_TOKEN_STORE", "file")
    store = TokenStore()
    _data_dir.mkdir(parents=True, exist_ok=True)
    for bad in ("[]", '{"gateway": "x"}', '{"gateway": 1, "token": "t"}', "x" * 20_000):
        store.path.write_text(bad)
        with pytest.raises(CredentialsError):
            store.load()


def test_login_usage_and_unreachable_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["login", "--email", "x@example.com", "--password-stdin"]
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    assert main([*base, "--gateway", "http://gw.example.org"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main([*base, "--gateway", "http://127.0.0.1:9"]) == 2  # empty password
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main([*base, "--gateway", "http://127.0.0.1:9"]) == 2  # nothing on stdin
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    assert main([*base, "--gateway", "http://127.0.0.1:9"]) == 1  # nothing listens on port 9
    err = capsys.readouterr().err
    assert "plain http" in err and "cannot reach" in err and "pw" not in err
    assert TokenStore().load() is None
