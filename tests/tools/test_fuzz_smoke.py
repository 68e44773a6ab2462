"""The fuzz smoke: its registry covers every parser, it catches a broken parser, it replays
failures, and a short real run passes."""

from __future__ import annotations

import importlib
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tools.fuzz_smoke import REGISTRY, Harness, Target, generate_input, run_target, targets
from tools.fuzz_smoke.__main__ import main

ROOT = Path(__file__).resolve().parents[2]

#: every module that parses untrusted input, and the target that must fuzz it
REQUIRED = {
    "rift.header": "wavry.rift.header",
    "rift.packet_open": "wavry.rift.packet_crypto",
    "rift.noise": "wavry.rift.noise",
    "rift.identity": "wavry.rift.identity",
    "rift.proto": "wavry.rift.proto.rift_pb2",
    "rift.media": "wavry.rift.media.fec",
    "rift.host_endpoint": "wavry.rift.host_endpoint",
    "rift.session_raw": "wavry.rift.connection",
    "rift.session_sealed": "wavry.rift.connection",
    "rift.trust": "wavry.rift.trust",
    "relay.wire": "wavry.relay.wire",
    "relay.lease": "wavry.relay.lease",
    "relay.lease_claims": "wavry.relay.lease",
    "relay.core": "wavry.relay.core",
    "relay.fastpath": "wavry.relay.fastpath",
    "net.impairment": "wavry.net.impairment",
    "net.mdns": "wavry.net.mdns",
    "net.stun": "wavry.net.stun",
    "net.relay_link": "wavry.net.relay_link",
    "input.events": "wavry.input.events",
    "media.decoder": "wavry.media.decoder",
    "master.bodies": "wavry.master.schemas",
    "gateway.bodies": "wavry.gateway.schemas",
    "gateway.signaling": "wavry.gateway.signaling.messages",
    "gateway.validation": "wavry.gateway.validation",
    "bench.turn": "wavry.bench.turn_client",
}


def test_registry_covers_every_parser_module() -> None:
    assert set(REQUIRED) <= set(REGISTRY)
    for name, module in REQUIRED.items():
        assert module in REGISTRY[name].modules, name
    media = {m for t in REGISTRY.values() for m in t.modules}
    assert {"wavry.rift.media.reassembly", "wavry.master.addresses"} <= media


def test_every_listed_module_exists_and_its_target_builds() -> None:
    for target in REGISTRY.values():
        for module in target.modules:
            importlib.import_module(module)
    # building is the expensive part of a target; check the cheap ones build seeds that the
    # harness accepts, i.e. the seeds are valid inputs and not noise
    for name in ("rift.header", "relay.wire", "net.impairment", "input.events", "rift.trust"):
        harness = REGISTRY[name].build()
        assert harness.seeds
        for seed in harness.seeds:
            harness.call(seed)


def test_inputs_are_a_pure_function_of_seed_target_and_iteration() -> None:
    harness = Harness([b"RI\x00\x01" + bytes(30), b"hello"], lambda _d: None, ())
    a = [generate_input(harness, 7, "t", i) for i in range(200)]
    assert a == [generate_input(harness, 7, "t", i) for i in range(200)]
    assert a != [generate_input(harness, 8, "t", i) for i in range(200)]
    assert len(set(a)) > 150  # and they vary


def _toy_parser(data: bytes) -> int:
    """A deliberately broken length-prefixed parser: trusts the declared length."""
    if len(data) < 2:
        raise ValueError("short")
    (n,) = struct.unpack_from(">H", data)
    body = data[2:]
    if n > 64:
        raise ValueError("too long")
    return body[n - 1] if n else 0  # IndexError when the declared length exceeds the body


TOY = Target(
    "toy.broken",
    ("tests.tools.test_fuzz_smoke",),
    lambda: Harness([b"\x00\x03abc", b"\x00\x00"], _toy_parser, (ValueError,), 64),
)


def test_a_broken_parser_is_caught_with_hex_dump_and_reproducer() -> None:
    result = run_target(TOY, seed=3, seconds=5.0)
    assert result.status == "fail"
    failure = result.failure
    assert failure is not None
    assert failure.error.startswith("IndexError")
    assert "--target toy.broken --seed 3 --iterations" in failure.reproducer()
    text = failure.describe()
    assert "00000000  " in text and "IndexError" in text
    # the reproducer replays exactly: the same input fails at the same iteration
    replay = run_target(TOY, seed=3, iterations=failure.iteration + 1)
    assert replay.failure is not None
    assert replay.failure.data == failure.data and replay.failure.iteration == failure.iteration
    # and a single-input replay of the hex fails too
    single = run_target(TOY, only_input=bytes.fromhex(failure.as_dict()["input_hex"]))
    assert single.status == "fail"


def test_a_hang_is_a_failure() -> None:
    def slow(data: bytes) -> None:
        if data[:1] == b"s":
            while True:
                pass

    target = Target("toy.hang", (), lambda: Harness([b"s"], slow, ()))
    result = run_target(target, only_input=b"s", input_timeout=0.2)
    assert result.status == "fail" and result.failure is not None
    assert "InputTimeout" in result.failure.error


def test_declared_errors_are_rejections_not_failures() -> None:
    target = Target(
        "toy.strict", (), lambda: Harness([b"x"], lambda d: int(d.decode("latin-1")), (ValueError,))
    )
    result = run_target(target, iterations=300)
    assert result.status == "pass" and result.rejected > 250
    assert result.rejections["ValueError"] == result.rejected


def test_unknown_target_names_are_refused() -> None:
    with pytest.raises(KeyError):
        targets(["nope"])
    assert {t.name for t in targets(["relay"])} >= {"relay.wire", "relay.core"}


@pytest.mark.parametrize(
    "name", ["rift.header", "relay.wire", "net.impairment", "master.bodies", "gateway.bodies"]
)
def test_short_real_runs_pass(name: str) -> None:
    result = run_target(REGISTRY[name], seed=1, seconds=0.3)
    assert result.status == "pass", result.failure and result.failure.describe()
    assert result.iterations > 50


def test_cli_short_run_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fuzz.json"
    rc = main(
        ["--target", "rift.header", "--target", "relay.wire", "--seconds-per-target", "0.2"]
        + ["--json", str(out)]
    )
    assert rc == 0
    doc = json.loads(out.read_text())
    assert [t["target"] for t in doc["targets"]] == ["rift.header", "relay.wire"]
    assert doc["failed"] == []
    assert "rift.header" in capsys.readouterr().out


def test_cli_entry_point_lists_targets() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tools.fuzz_smoke", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "rift.session_sealed" in proc.stdout and "gateway.signaling" in proc.stdout
