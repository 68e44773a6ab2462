from __future__ import annotations

import stat
from pathlib import Path

import pytest

from wavry.rift.identity import Identity
from wavry.rift.trust import AllowList, KnownHosts, TrustFileError
from wavry.trust_store import load_allow_list, load_known_hosts, save_allow_list, save_known_hosts


def test_allow_list_round_trip_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "d" / "allowed_clients"
    assert len(load_allow_list(path)) == 0
    allow = AllowList()
    wid = Identity.generate().wavry_id
    allow.add(wid, "laptop")
    save_allow_list(path, allow)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_allow_list(path).allows(wid)


def test_known_hosts_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    known = KnownHosts()
    wid = Identity.generate().wavry_id
    known.remember("127.0.0.1:4444", wid)
    save_known_hosts(path, known)
    assert load_known_hosts(path).expected("127.0.0.1:4444") == wid


def test_malformed_file_names_path_and_line(tmp_path: Path) -> None:
    path = tmp_path / "allowed_clients"
    path.write_text("# ok\nnot-an-id\n")
    with pytest.raises(TrustFileError) as exc:
        load_allow_list(path)
    assert str(path) in str(exc.value) and "line 2" in str(exc.value)
