"""The `wavry` command as a user runs it: a real subprocess with its own data dir."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from wavry.rift.identity import public_key_from_wavry_id


def run(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, WAVRY_DATA_DIR=str(data_dir))
    return subprocess.run(
        [sys.executable, "-m", "wavry", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    result = run("version", data_dir=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("wavry ") and "protocol version 1" in result.stdout


def test_keygen_then_show_id_in_data_dir(tmp_path: Path) -> None:
    made = run("keygen", data_dir=tmp_path)
    assert made.returncode == 0, made.stderr
    wavry_id = made.stdout.strip()
    assert len(wavry_id) == 43
    assert len(public_key_from_wavry_id(wavry_id)) == 32
    key = tmp_path / "identity.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    shown = run("show-id", data_dir=tmp_path)
    assert shown.returncode == 0 and shown.stdout.strip() == wavry_id


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    first = run("keygen", data_dir=tmp_path).stdout.strip()
    again = run("keygen", data_dir=tmp_path)
    assert again.returncode == 1 and "--force" in again.stderr
    assert run("show-id", data_dir=tmp_path).stdout.strip() == first
    forced = run("keygen", "--force", data_dir=tmp_path)
    assert forced.returncode == 0 and forced.stdout.strip() != first


def test_keygen_out_and_show_id_path(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "host.key"
    made = run("keygen", "--out", str(out), data_dir=tmp_path / "unused")
    assert made.returncode == 0
    assert run("show-id", str(out), data_dir=tmp_path).stdout.strip() == made.stdout.strip()


@pytest.mark.parametrize(
    ("content", "mode", "needle"),
    [
        (None, None, "wavry keygen"),
        ("not a key", 0o600, "not a Wavry identity"),
        ("wavry-ed25519-v1:AAAA", 0o600, "32 bytes"),
        ("wavry-ed25519-v1:" + "A" * 43, 0o644, "chmod 600"),
    ],
)
def test_show_id_errors_say_what_to_do(
    tmp_path: Path, content: str | None, mode: int | None, needle: str
) -> None:
    key = tmp_path / "identity.key"
    if content is not None and mode is not None:
        key.write_text(content)
        key.chmod(mode)
    result = run("show-id", data_dir=tmp_path)
    assert result.returncode == 1
    assert needle in result.stderr


def test_help_explains_commands(tmp_path: Path) -> None:
    result = run("--help", data_dir=tmp_path)
    assert result.returncode == 0
    for word in ("keygen", "show-id", "bench", "doctor", "WAVRY_DATA_DIR"):
        assert word in result.stdout


def test_doctor_passes_here(tmp_path: Path) -> None:
    result = run("doctor", data_dir=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "UDP on loopback" in result.stdout and "fix: wavry keygen" in result.stdout
