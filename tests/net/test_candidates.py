"""Candidate gathering: host addresses of the socket's family and the STUN-reflexive one,
shaped like the signaling CANDIDATE entries (validated with the gateway's own models)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

from wavry.gateway.signaling.messages import Candidate, CandidateEntry
from wavry.net.candidates import format_addr, gather_candidates, host_addresses
from wavry.net.stun import RetransmitPolicy
from wavry.net.udp import UdpDriver, open_udp_driver
from wavry.rift.host_endpoint import HostEndpoint
from wavry.rift.identity import Identity

IFACES = ["127.0.0.1", "192.168.1.20", "169.254.3.3", "10.0.0.5", "::1", "fe80::1%eth0",
          "2001:db8::5", "192.168.1.20", "garbage"]  # fmt: skip


def test_format_addr() -> None:
    assert format_addr("10.1.2.3", 9) == "10.1.2.3:9"
    assert format_addr("2001:db8::5", 9) == "[2001:db8::5]:9"
    assert format_addr("fe80::1%eth0", 9) == "[fe80::1]:9"


def test_host_addresses_of_the_socket_family_without_loopback_on_wildcard() -> None:
    assert host_addresses("0.0.0.0", interfaces=IFACES) == ["192.168.1.20", "10.0.0.5"]
    assert host_addresses("::", interfaces=IFACES) == ["2001:db8::5"]


def test_host_address_of_a_specific_bind_is_that_address() -> None:
    assert host_addresses("127.0.0.1") == ["127.0.0.1"]
    assert host_addresses("::1") == ["::1"]
    assert host_addresses("192.168.1.20", interfaces=[]) == ["192.168.1.20"]


def test_host_addresses_of_this_machine() -> None:
    found = host_addresses("0.0.0.0")
    for text in found:
        ip = ipaddress.ip_address(text)
        assert ip.version == 4 and not ip.is_loopback


async def _driver(host: str) -> UdpDriver:
    core = HostEndpoint(identity=Identity.generate())
    return await open_udp_driver(lambda: core, local_addr=(host, 0))


async def test_gather_loopback_with_stun_dedupes_the_reflexive_address(
    coturn: tuple[str, int],
) -> None:
    driver = await _driver("127.0.0.1")
    try:
        got = await gather_candidates(driver, [coturn])
    finally:
        driver.close()
    port = driver.local_address[1]
    assert got == [{"addr": f"127.0.0.1:{port}", "type": "host"}]


async def test_gather_wildcard_with_stun_reports_srflx_and_hosts(coturn: tuple[str, int]) -> None:
    driver = await _driver("0.0.0.0")
    try:
        got = await gather_candidates(driver, [("localhost", coturn[1])])
    finally:
        driver.close()
    port = driver.local_address[1]
    # Seen from a server on loopback, the socket's mapped address is 127.0.0.1:port.
    assert got[0] == {"addr": f"127.0.0.1:{port}", "type": "srflx"}
    assert [c["addr"] for c in got[1:]] == [f"{ip}:{port}" for ip in host_addresses("0.0.0.0")]
    assert all(c["type"] == "host" for c in got[1:])
    for entry in got:
        CandidateEntry.model_validate(entry)
    Candidate.model_validate({"type": "CANDIDATE", "target_username": "alice", "candidates": got})


async def test_gather_without_an_answering_server_returns_host_candidates_in_time() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    driver = await _driver("127.0.0.1")
    try:
        started = time.monotonic()
        got = await gather_candidates(
            driver,
            [silent.getsockname()],
            policy=RetransmitPolicy(rto=0.05, max_transmissions=2),
            stun_timeout=0.5,
        )
        assert time.monotonic() - started < 2.0
    finally:
        silent.close()
        driver.close()
    assert got == [{"addr": f"127.0.0.1:{driver.local_address[1]}", "type": "host"}]


async def test_gather_without_servers_does_no_stun() -> None:
    driver = await _driver("127.0.0.1")
    try:
        got = await asyncio.wait_for(gather_candidates(driver), 1)
    finally:
        driver.close()
    assert [c["type"] for c in got] == ["host"] and driver.stun_in == 0


async def test_probe_mapping_needs_two_answering_servers_at_different_addresses() -> None:
    """The endpoint-independent/dependent answers are proven across real NATs in
    tests/netlab/test_scenarios.py; here: what the probe does without two answers."""
    from wavry.net.candidates import probe_mapping
    from wavry.net.udp import open_udp_driver
    from wavry.rendezvous.common import NullCore

    driver = await open_udp_driver(NullCore, local_addr=("127.0.0.1", 0))
    try:
        assert await probe_mapping(driver, []) == "unknown"
        # one address twice is one server: no second opinion
        assert await probe_mapping(driver, [("127.0.0.1", 9), ("127.0.0.1", 10)]) == "unknown"
        # two addresses, nobody answers: unknown after the timeout
        silent = [("127.0.0.1", 9), ("127.0.0.2", 9)]
        assert await probe_mapping(driver, silent, timeout=0.3) == "unknown"
    finally:
        driver.close()
