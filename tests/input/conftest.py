"""Fixtures of the input tests."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
from Xlib.display import Display


@pytest.fixture(scope="session")
def x_server(xvfb_display: str) -> Iterator[str]:
    """The shared Xvfb, held open by one idle connection for the whole session.

    Xvfb (started without -noreset) resets when its last client disconnects and closes the
    connections that arrive during the reset, so tests that open and close their own
    connections would race it.
    """
    keeper = Display(xvfb_display)
    yield xvfb_display
    keeper.close()


@pytest.fixture
def private_xvfb() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """An Xvfb of this test's own (it may be killed), on a display number Xvfb picks itself."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb, or run scripts/bootstrap.sh)")
    proc = subprocess.Popen(
        [xvfb, "-displayfd", "1", "-screen", "0", "640x480x24", "-nolisten", "tcp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    number = proc.stdout.readline().strip()  # written once the server accepts connections
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not start")
    try:
        yield f":{number.decode()}", proc
    finally:
        proc.kill()
        proc.wait()
