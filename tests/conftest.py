"""Suite-wide rules: in CI (CI=true) a skipped test is a failure, never silent."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# private PostgreSQL / Redis servers for tests (fixtures documented in tests/services.py)
pytest_plugins = ["tests.services"]

# Property tests must not flake on a loaded 2-core CI machine: no per-example deadline, and in
# CI a fixed derandomized search (the same examples every run) so a red build is reproducible.
settings.register_profile("default", deadline=None)
settings.register_profile(
    "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(
    "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "default"
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI=true forbids skips): {report.longrepr}"
    _record_quarantine_outcome(item, report)


def _record_quarantine_outcome(item: pytest.Item, report: pytest.TestReport) -> None:
    """One JSON line per phase of a quarantined test, for ``python -m tools.quarantine record``."""
    results = os.environ.get("WAVRY_QUARANTINE_RESULTS")
    if not results or item.get_closest_marker("quarantine") is None:
        return
    if report.when != "call" and report.passed:
        return  # setup/teardown that passed says nothing about the test
    import json

    with open(results, "a", encoding="utf-8") as fh:
        fh.write(
            json.dumps({"nodeid": item.nodeid, "when": report.when, "outcome": report.outcome})
        )
        fh.write("\n")


def _free_display() -> int:
    import os as _os

    for n in range(90, 200):
        if not _os.path.exists(f"/tmp/.X11-unix/X{n}") and not _os.path.exists(f"/tmp/.X{n}-lock"):
            return n
    raise RuntimeError("no free X display number")


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """A real X server (Xvfb, 1280x720x24, MIT-SHM, XTEST, RANDR) for capture/input tests.

    Yields the DISPLAY string (e.g. ":93"); also sets DISPLAY for the session. Installed by
    scripts/bootstrap.sh (Debian package xvfb); missing Xvfb skips locally and fails in CI.
    """
    import shutil
    import subprocess
    import time

    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb, or run scripts/bootstrap.sh)")
    n = _free_display()
    proc = subprocess.Popen(
        [xvfb, f":{n}", "-screen", "0", "1280x720x24", "-nolisten", "tcp", "-ac", "-noreset"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    display = f":{n}"
    deadline = time.monotonic() + 10
    while not os.path.exists(f"/tmp/.X11-unix/X{n}"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"Xvfb failed to start on {display}")
        time.sleep(0.05)
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    try:
        yield display
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old
