"""``wavry db``: current / heads / upgrade / downgrade on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from wavry.cli import main
from wavry.storage.migrate import head_revision


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["db", *args])
    out = capsys.readouterr()
    return rc, out.out.strip(), out.err


def test_db_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WAVRY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("WAVRY_DATABASE_URL", raising=False)
    rc, out, err = _run(capsys, "current")
    assert rc == 1 and "no database" in err  # never creates a database by looking at it
    assert not (tmp_path / "master.db").exists()
    assert _run(capsys, "heads")[:2] == (0, head_revision())
    assert _run(capsys, "upgrade")[:2] == (0, head_revision())
    assert _run(capsys, "current")[:2] == (0, head_revision())
    assert _run(capsys, "downgrade", "base")[:2] == (0, "base")
    assert _run(capsys, "current")[:2] == (0, "base")
    url = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    assert _run(capsys, "--database-url", url, "upgrade")[:2] == (0, head_revision())
    assert _run(capsys, "--service", "gateway", "upgrade")[:2] == (0, head_revision())
    assert (tmp_path / "gateway.db").exists()


def test_downgrade_needs_a_revision(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["db", "downgrade"])


def test_bad_revision_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WAVRY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("WAVRY_DATABASE_URL", raising=False)
    assert _run(capsys, "upgrade")[0] == 0
    rc, _, err = _run(capsys, "downgrade", "no-such-revision")
    assert rc == 1 and "downgrade to no-such-revision failed" in err
