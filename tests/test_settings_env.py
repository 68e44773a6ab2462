"""Services read only their own WAVRY_* (and documented legacy) variables, never generic ones.

A container often carries generic variables (DATABASE_URL, REDIS_URL, ALLOW_PUBLIC_BIND...) meant
for something else; pydantic-settings matched lowercase alias choices case-insensitively, so
they used to leak into our settings.
"""

from __future__ import annotations

import pytest

from wavry.gateway.settings import GatewaySettings
from wavry.master.settings import MasterSettings
from wavry.relay.settings import RelaySettings

GENERIC = {
    "DATABASE_URL": "postgresql+asyncpg://someone-else/db",
    "DATA_DIR": "/somewhere/else",
    "REDIS_URL": "redis://someone-else",
    "ALLOW_PUBLIC_BIND": "1",
    "ALLOW_INSECURE_DEV": "1",
    "ENVIRONMENT": "production",
    "MASTER_URL": "http://someone-else",
    "RELAY_ID": "not-mine",
    "ADMIN_PANEL_TOKEN_X": "x",
}


def test_generic_variables_are_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name, value in GENERIC.items():
        monkeypatch.setenv(name, value)
    for name in ("WAVRY_DATABASE_URL", "WAVRY_REDIS_URL", "WAVRY_DATA_DIR", "WAVRY_MASTER_URL"):
        monkeypatch.delenv(name, raising=False)
    gateway, master, relay = GatewaySettings(), MasterSettings(), RelaySettings()
    assert gateway.database_url is None and master.database_url is None
    assert gateway.redis_url is None
    assert gateway.allow_public_bind is False
    assert gateway.environment != "production"
    assert str(gateway.data_dir) != "/somewhere/else" and str(master.data_dir) != "/somewhere/else"
    assert relay.relay_id != "not-mine"
    assert "someone-else" not in str(relay.master_url)


def test_own_variables_and_keyword_arguments_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVRY_DATABASE_URL", "sqlite+aiosqlite:///mine.db")
    monkeypatch.setenv("WAVRY_RELAY_ID", "relay-mine")
    assert GatewaySettings().database_url == "sqlite+aiosqlite:///mine.db"
    assert MasterSettings().database_url == "sqlite+aiosqlite:///mine.db"
    assert RelaySettings().relay_id == "relay-mine"
    assert MasterSettings(database_url="sqlite+aiosqlite:///kw.db").database_url.endswith("kw.db")
    assert RelaySettings(relay_id="kw").relay_id == "kw"
