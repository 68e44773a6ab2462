"""Trust-on-first-use key pins survive a relay restart (wavry.relay.pins, MasterClient, server)."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.relay.conftest import RELAY_ID, Master
from wavry.relay.core import RelayCore
from wavry.relay.pins import MAX_PIN_FILE_BYTES, PinFileError, load_pins, save_pins
from wavry.relay.server import MasterClient, RelayServer
from wavry.relay.settings import RelaySettings

MASTER = Master()
OTHER = Master(seed=b"\x07" * 32, kid="k-other")
URL = "http://127.0.0.1:8080"


def test_pin_path_and_relay_id_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVRY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WAVRY_RELAY_ID", "relay-fixed")
    s = RelaySettings()
    assert s.pin_path == tmp_path / "relay_master_pins.json" and s.relay_id == "relay-fixed"
    monkeypatch.setenv("WAVRY_RELAY_PIN_FILE", str(tmp_path / "x.json"))
    assert RelaySettings().pin_path == tmp_path / "x.json"


def test_save_load_roundtrip_per_master_url(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "pins.json"
    assert load_pins(path, URL) == {}
    save_pins(path, URL + "/", {MASTER.kid: MASTER.public_key})
    save_pins(path, "http://127.0.0.1:9999", {OTHER.kid: OTHER.public_key})
    assert load_pins(path, URL) == {MASTER.kid: MASTER.public_key}
    assert load_pins(path, " http://127.0.0.1:9999/") == {OTHER.kid: OTHER.public_key}
    assert load_pins(path, "http://elsewhere") == {}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["pins.json"]  # no temp file left
    with pytest.raises(ValueError):
        save_pins(path, URL, {"k": b"short"})


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"version": 2, "masters": {}}',
        b'{"version": 1}',
        b'{"version": 1, "masters": []}',
        b'{"version": 1, "masters": {"u": {}}}',
        b'{"version": 1, "masters": {"u": {"k": "abcd"}}}',
        b'{"version": 1, "masters": {"u": {"k": "zz"}}}',
        b'{"version": 1, "masters": {"u": {"": "' + b"00" * 32 + b'"}}}',
        b" " * (MAX_PIN_FILE_BYTES + 1),
    ],
)
def test_bad_pin_file_fails_closed(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "pins.json"
    path.write_bytes(content)
    with pytest.raises(PinFileError):
        load_pins(path, "u")
    with pytest.raises(PinFileError):
        save_pins(path, "u", {MASTER.kid: MASTER.public_key})  # never overwrites what it can't read


@given(st.binary(max_size=512))
def test_pin_parser_never_raises_anything_else(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pins.json"
        path.write_bytes(data)
        try:
            keys = load_pins(path, "u")
        except PinFileError:
            return
        assert all(len(k) == 32 for k in keys.values())


def _register_answer(master: Master) -> dict[str, Any]:
    return {
        "relay_id": RELAY_ID,
        "state": "new",
        "heartbeat_interval_ms": 500,
        "master_public_key": master.public_key.hex(),
        "master_key_id": master.kid,
        "trusted_keys": {master.kid: master.public_key.hex()},
    }


class _Stop(Exception):
    pass


async def _register_once(settings: RelaySettings, core: RelayCore, master: Master) -> MasterClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=_register_answer(master))

    async def sleep(delay: float) -> None:
        raise _Stop

    client = MasterClient(
        settings, core, ["127.0.0.1:4000"], transport=httpx.MockTransport(handler), sleep=sleep
    )
    with pytest.raises(_Stop):
        await client.run()
    await client.aclose()
    return client


async def test_first_registration_pin_is_persisted_and_reloaded(tmp_path: Path) -> None:
    settings = RelaySettings(relay_id=RELAY_ID, master_url=URL, data_dir=tmp_path)
    core = RelayCore(RELAY_ID, None)
    client = await _register_once(settings, core, MASTER)
    assert client.pinned_kids == (MASTER.kid,)
    doc = json.loads((tmp_path / "relay_master_pins.json").read_text())
    assert doc == {"version": 1, "masters": {URL: {MASTER.kid: MASTER.public_key.hex()}}}

    # the restarted relay trusts the pinned key before it reaches any master ...
    server = RelayServer(
        RelaySettings(
            relay_id=RELAY_ID,
            master_url=URL,
            data_dir=tmp_path,
            listen="127.0.0.1:0",
            health_listen="127.0.0.1:0",
            no_master=False,
        )
    )
    server.load_pinned_keys()
    assert server.has_master_key and server.core.verifier is not None
    assert server.core.verifier.key_ids == (MASTER.kid,)
    assert server.master_status()["key_source"] == "pinned"
    # ... and a master answering with another key later does not replace the pin
    client = await _register_once(server.settings, server.core, OTHER)
    assert client.pinned_kids == (MASTER.kid,)
    assert server.core.verifier.key_ids == (MASTER.kid,)
    assert load_pins(tmp_path / "relay_master_pins.json", URL) == {MASTER.kid: MASTER.public_key}


async def test_configured_key_is_never_pinned(tmp_path: Path) -> None:
    settings = RelaySettings(
        relay_id=RELAY_ID,
        master_url=URL,
        data_dir=tmp_path,
        master_public_key=f"{MASTER.kid}:{MASTER.public_key.hex()}",
    )
    await _register_once(settings, RelayCore(RELAY_ID, None), MASTER)
    assert not (tmp_path / "relay_master_pins.json").exists()


async def test_unwritable_pin_only_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings = RelaySettings(relay_id=RELAY_ID, master_url=URL, pin_file=blocker / "pins.json")
    client = await _register_once(settings, RelayCore(RELAY_ID, None), MASTER)
    assert client.registered and client.pinned_kids == (MASTER.kid,)
    assert "could not persist the key pin" in caplog.text


async def test_corrupt_pin_file_stops_the_relay_at_start(tmp_path: Path) -> None:
    (tmp_path / "relay_master_pins.json").write_text("{broken")
    server = RelayServer(
        RelaySettings(
            master_url=URL, data_dir=tmp_path, listen="127.0.0.1:0", health_listen="127.0.0.1:0"
        )
    )
    with pytest.raises(PinFileError, match="delete it"):
        await server.start()
    await server.close()
    await asyncio.sleep(0)
