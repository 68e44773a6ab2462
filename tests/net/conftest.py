"""Fixtures for the network tests: a real STUN server (Debian coturn)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wavry.net.stun import Method, encode_request
from wavry.netlab.coturn import stun_only_config


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A real STUN server: Debian coturn in STUN-only mode on 127.0.0.1 and ::1 (same port)."""
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.skip("turnserver (coturn) is not installed: apt-get install coturn")
    port = _free_udp_port()
    conf = tmp_path / "stun.conf"
    conf.write_text(  # the same port on IPv6 loopback
        stun_only_config(["127.0.0.1", "::1"], port, tmp_path, log_file=str(tmp_path / "turn.log"))
    )
    with open(tmp_path / "turn.out", "wb") as out:
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(0.1)
            deadline = time.monotonic() + 10
            while True:
                assert proc.poll() is None, (tmp_path / "turn.out").read_text(errors="replace")
                probe.sendto(encode_request(Method.BINDING, []), ("127.0.0.1", port))
                try:
                    probe.recv(2048)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "coturn did not answer"
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
