"""The relay keeps its id across restarts (leases name the relay they are valid on)."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest

from wavry.relay.cli import _settings_from
from wavry.relay.relay_id import RELAY_ID_FILENAME, RelayIdFileError, persistent_relay_id


def test_created_once_0600_and_read_back(tmp_path: Path) -> None:
    first = persistent_relay_id(tmp_path / "data")
    assert uuid.UUID(first).version == 4
    path = tmp_path / "data" / RELAY_ID_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert persistent_relay_id(tmp_path / "data") == first
    assert persistent_relay_id(tmp_path / "other") != first


@pytest.mark.parametrize("content", ["bad id with spaces", "x" * 65, "-leading-dash", "é"])
def test_a_damaged_file_is_an_error_that_says_what_to_do(tmp_path: Path, content: str) -> None:
    (tmp_path / RELAY_ID_FILENAME).write_text(content, encoding="utf-8")
    with pytest.raises(RelayIdFileError, match="delete it|cannot read"):
        persistent_relay_id(tmp_path)


def test_wavry_relay_uses_the_stored_id_unless_the_env_names_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    monkeypatch.setenv("WAVRY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("WAVRY_RELAY_ID", raising=False)
    monkeypatch.delenv("WAVRY_RELAY_RELAY_ID", raising=False)
    ns = argparse.Namespace()
    a = _settings_from(ns).relay_id
    assert a == _settings_from(ns).relay_id == (tmp_path / RELAY_ID_FILENAME).read_text().strip()
    monkeypatch.setenv("WAVRY_RELAY_ID", "relay-eu-1")
    assert _settings_from(ns).relay_id == "relay-eu-1"
