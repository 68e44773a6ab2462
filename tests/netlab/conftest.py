"""Fixtures for the network-namespace NAT lab (Linux, root, iproute2/nftables/conntrack, coturn).

A machine that cannot run the lab skips these tests locally with the reason (what is missing);
under ``CI=true`` tests/conftest.py turns the skip into a failure.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wavry.netlab import NatLab, NetlabUnavailable, StunServer, check_available, start_stun


@pytest.fixture(scope="session")
def netlab_ok() -> None:
    try:
        check_available()
    except NetlabUnavailable as exc:
        pytest.skip(str(exc))
    if shutil.which("turnserver") is None:
        pytest.skip("turnserver (coturn) is not installed: apt-get install coturn")


@pytest.fixture
def make_lab(netlab_ok: None) -> Iterator[Callable[..., NatLab]]:
    """``make_lab(**NatLab kwargs)`` starts a lab; every lab is torn down after the test."""
    labs: list[NatLab] = []

    def factory(**kw: Any) -> NatLab:
        lab = NatLab(**kw)
        labs.append(lab)
        return lab.start()

    try:
        yield factory
    finally:
        for lab in labs:
            lab.close()


@pytest.fixture
def lab(make_lab: Callable[..., NatLab]) -> NatLab:
    return make_lab()


@pytest.fixture
def stun(lab: NatLab) -> StunServer:
    return start_stun(lab)
