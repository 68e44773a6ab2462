"""`wavry doctor`'s connect-anywhere checks: STUN through a real coturn, the stored login."""

from __future__ import annotations

import pytest

from wavry.credentials import GatewaySession, TokenStore
from wavry.doctor import _gateway_login, _stun


def test_stun_check_reports_the_mapped_address(
    coturn: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port = coturn
    monkeypatch.setenv("WAVRY_STUN_SERVERS", f"{host}:{port}")
    check = _stun()
    assert check.ok, check
    assert check.detail.startswith("seen as 127.0.0.1:") and "needs two servers" in check.detail
    monkeypatch.setenv("WAVRY_STUN_SERVERS", "")
    check = _stun()
    assert not check.ok and "WAVRY_STUN_SERVERS=" in check.fix and not check.required
    monkeypatch.setenv("WAVRY_STUN_SERVERS", "not a server:x")
    assert not _stun().ok


def test_login_check_without_and_with_an_unreachable_gateway(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAVRY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WAVRY_TOKEN_STORE", "file")
    check = _gateway_login()
    assert not check.ok and check.fix.startswith("wavry login --gateway URL")
    TokenStore().save(GatewaySession(gateway="http://127.0.0.1:9", token="t" * 40, username="bob"))
    check = _gateway_login()
    assert not check.ok and "unreachable" in check.detail and not check.required
