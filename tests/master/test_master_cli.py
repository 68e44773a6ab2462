"""``wavry master`` argument handling and start-up refusals (no server is started)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from wavry.master.cli import add_master_parser


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_master_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["master", *argv])


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVRY_DATA_DIR", str(tmp_path))
    for name in ("WAVRY_MASTER_RELAY_AUTH_TOKEN", "WAVRY_MASTER_SIGNING_KEY", "ADMIN_PANEL_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_public_bind_needs_the_opt_in(capsys: pytest.CaptureFixture[str]) -> None:
    ns = _parse(["--listen", "192.0.2.1:8080"])
    assert ns.func(ns) == 2
    assert "WAVRY_MASTER_ALLOW_PUBLIC_BIND" in capsys.readouterr().err


def test_public_bind_with_insecure_defaults_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    ns = _parse(["--listen", "192.0.2.1:8080", "--allow-public-bind"])
    assert ns.func(ns) == 2
    err = capsys.readouterr().err
    assert "WAVRY_MASTER_RELAY_AUTH_TOKEN" in err and "WAVRY_MASTER_SIGNING_KEY" in err


def test_bad_settings_are_usage_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_PANEL_TOKEN", "short")
    ns = _parse([])
    assert ns.func(ns) == 2
    assert "at least 32" in capsys.readouterr().err
