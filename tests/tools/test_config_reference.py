"""docs/configuration.md is generated from the settings models and stays in step with them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from tools import gen_config_reference as gen

DOC = gen.OUT


def test_committed_reference_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert gen.main(["--check"]) == 0, capsys.readouterr().err


def test_check_fails_on_a_modified_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "configuration.md"
    text = DOC.read_text(encoding="utf-8")
    copy.write_text(text, encoding="utf-8")
    assert gen.main(["--check", "--out", str(copy)]) == 0
    # one default changed by hand
    copy.write_text(text.replace("`127.0.0.1:8080`", "`127.0.0.1:9999`", 1), encoding="utf-8")
    assert gen.main(["--check", "--out", str(copy)]) == 1
    assert "out of date" in capsys.readouterr().err
    # one row removed
    lines = text.splitlines(keepends=True)
    victim = next(i for i, line in enumerate(lines) if line.startswith("| `lease_ttl_secs`"))
    copy.write_text("".join(lines[:victim] + lines[victim + 1 :]), encoding="utf-8")
    assert gen.main(["--check", "--out", str(copy)]) == 1
    # no file at all
    assert gen.main(["--check", "--out", str(tmp_path / "missing.md")]) == 1
    # writing then checking the same path passes
    out = tmp_path / "fresh.md"
    assert gen.main(["--out", str(out)]) == 0
    assert gen.main(["--check", "--out", str(out)]) == 0


def _models() -> list[type]:
    from wavry.client.settings import ClientSettings
    from wavry.gateway.settings import GatewaySettings
    from wavry.gateway.signaling.settings import SignalingSettings
    from wavry.host.settings import HostSettings
    from wavry.master.settings import MasterSettings
    from wavry.relay.settings import RelaySettings

    return [GatewaySettings, SignalingSettings, MasterSettings, RelaySettings, HostSettings,
            ClientSettings]  # fmt: skip


def _section(text: str, anchor: str) -> str:
    start = text.index(f'<a id="{anchor}"></a>')
    nxt = text.find('<a id="', start + 1)
    return text[start : nxt if nxt != -1 else len(text)]


def test_every_field_of_every_model_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    anchors = {
        "GatewaySettings": ("gateway", ""),
        "SignalingSettings": ("gateway", "signaling."),
        "MasterSettings": ("master", ""),
        "RelaySettings": ("relay", ""),
        "HostSettings": ("host", ""),
        "ClientSettings": ("client", ""),
    }
    checked = 0
    for model in _models():
        anchor, prefix = anchors[model.__name__]
        section = _section(text, anchor)
        if dataclasses.is_dataclass(model):
            names = [f.name for f in dataclasses.fields(model)]
        else:
            names = list(model.model_fields)  # type: ignore[attr-defined]
        for name in names:
            if model.__name__ == "GatewaySettings" and name == "signaling":
                continue  # documented field by field under signaling.*
            row = re.search(rf"^\| `{re.escape(prefix + name)}` \|(.*)$", section, re.M)
            assert row, f"{model.__name__}.{name} is missing from {DOC.name}"
            checked += 1
    assert checked > 120


def test_env_names_are_the_ones_pydantic_settings_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every documented variable really sets its field (one per field, a value that passes
    validation), and the documented prefixed name of a plain field is the real one."""
    from wavry.gateway.settings import GatewaySettings
    from wavry.master.settings import MasterSettings
    from wavry.relay.settings import RelaySettings

    samples = {
        "WAVRY_GATEWAY_TRUSTED_PROXY_HOPS": ("trusted_proxy_hops", 3),
        "WAVRY_DATABASE_URL": ("database_url", "sqlite+aiosqlite:////tmp/x.db"),
        "WAVRY_WS_MAX_PER_IP": ("signaling.max_per_ip", 7),
        "WAVRY_GATEWAY_SIGNALING__SEND_QUEUE": ("signaling.send_queue", 99),
    }
    text = DOC.read_text(encoding="utf-8")
    for env, (field, value) in samples.items():
        assert f"`{env}`" in text
        monkeypatch.setenv(env, str(value))
        obj: object = GatewaySettings()
        for part in field.split("."):
            obj = getattr(obj, part)
        assert obj == value, env
        monkeypatch.delenv(env)
    monkeypatch.setenv("WAVRY_MASTER_LEASE_TTL_SECS", "120")
    assert MasterSettings().lease_ttl_secs == 120
    monkeypatch.setenv("WAVRY_MASTER_URL", "http://127.0.0.1:1")
    assert RelaySettings().master_url == "http://127.0.0.1:1"
    rows = gen.all_rows()
    relay_master_url = next(r for r in rows["relay"] if r.field == "master_url")
    assert relay_master_url.env[0] == "WAVRY_MASTER_URL"


def test_secrets_are_never_rendered_with_a_value() -> None:
    rows = [r for rows in gen.all_rows().values() for r in rows]
    secrets = [r for r in rows if r.type.startswith("secret")]
    assert {r.field for r in secrets} >= {"admin_panel_token", "signing_key", "master_token"}
    assert all(r.default == "(secret, unset)" for r in secrets)


def test_host_and_client_flags_exist_in_the_real_parsers() -> None:
    import argparse

    from wavry.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, flags in (("host", gen.HOST_FLAGS), ("connect", gen.CLIENT_FLAGS)):
        options = set(sub.choices[command]._option_string_actions)
        for field, (flag, _env) in flags.items():
            token = flag.split()[0] if flag else ""
            if token.startswith("--"):
                assert token in options, f"{command} {field}: {token} is not a flag"
