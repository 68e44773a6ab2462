"""Candidate gathering: the addresses a peer may reach this streaming socket at.

Entries are shaped like the signaling ``CANDIDATE`` message's ``candidates[]`` items
(``{"addr": "IP:PORT" | "[IPv6]:PORT", "type": "host" | "srflx"}``, docs/signaling.md), so a
caller can send them as they are; ``relay`` candidates come from relay leases, not from here.

- **host**: the socket's own address when bound to a specific address; when bound to the
  wildcard, every interface address of the socket's family (``ifaddr``), without loopback and
  IPv6 link-local addresses (they need a scope id a peer cannot use). Loopback appears only when
  the socket is bound to loopback.
- **srflx**: the STUN-mapped address, learned on the socket itself (``UdpDriver.stun_binding``)
  from the first configured server that answers; dropped when it equals a host candidate (no NAT).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Sequence
from typing import Literal, TypedDict

import ifaddr

from wavry.net.stun import RetransmitPolicy, StunClientError
from wavry.net.udp import UdpDriver

__all__ = [
    "MAX_CANDIDATES",
    "CandidateDict",
    "format_addr",
    "NatMapping",
    "gather_candidates",
    "probe_mapping",
    "host_addresses",
]

log = logging.getLogger(__name__)

#: the signaling limit on ``candidates[]``
MAX_CANDIDATES = 16


class CandidateDict(TypedDict):
    addr: str
    type: Literal["host", "srflx"]


def format_addr(host: str, port: int) -> str:
    """``IP:PORT`` or ``[IPv6]:PORT`` as the signaling messages spell addresses."""
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def _interface_ips(version: int) -> list[str]:
    out: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if version == 4 and isinstance(ip.ip, str):
                out.append(ip.ip)
            elif version == 6 and isinstance(ip.ip, tuple):
                out.append(ip.ip[0])
    return out


def host_addresses(bound_host: str, *, interfaces: Sequence[str] | None = None) -> list[str]:
    """Local IP addresses a socket bound to ``bound_host`` can be reached at.

    ``interfaces`` overrides the machine's interface addresses (tests)."""
    bound = ipaddress.ip_address(bound_host.split("%", 1)[0])
    if not bound.is_unspecified:
        return [str(bound)]
    found = _interface_ips(bound.version) if interfaces is None else list(interfaces)
    out: list[str] = []
    for text in found:
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        if ip.version != bound.version or ip.is_loopback or ip.is_link_local:
            continue
        if ip.is_unspecified or ip.is_multicast or str(ip) in out:
            continue
        out.append(str(ip))
    return out


async def _resolve(server: tuple[str, int], family: int) -> tuple[str, int] | None:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(server[0], server[1], family=family, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as exc:
        log.warning("STUN server %s:%s does not resolve: %s", server[0], server[1], exc)
        return None
    for info in infos:
        return str(info[4][0]), int(info[4][1])
    return None


async def reflexive_address(
    driver: UdpDriver,
    servers: Sequence[tuple[str, int]],
    *,
    policy: RetransmitPolicy | None = None,
    timeout: float = 3.0,
) -> tuple[str, int] | None:
    """The first answer of any server (all asked at once), or None if none answers in time."""
    if not servers:
        return None
    family = socket.AF_INET6 if ":" in driver.local_address[0] else socket.AF_INET

    async def one(server: tuple[str, int]) -> tuple[str, int]:
        resolved = await _resolve(server, family)
        if resolved is None:
            raise StunClientError(f"cannot resolve {server[0]}")
        return await driver.stun_binding(resolved, policy=policy)

    tasks = [asyncio.ensure_future(one(s)) for s in servers]
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                for next_done in asyncio.as_completed(tasks):
                    try:
                        return await next_done
                    except StunClientError as exc:
                        log.info("STUN: %s", exc)
        log.warning("no STUN server answered within %.1f s", timeout)
        return None
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


NatMapping = Literal["endpoint-independent", "endpoint-dependent", "unknown"]


async def probe_mapping(
    driver: UdpDriver,
    servers: Sequence[tuple[str, int]],
    *,
    policy: RetransmitPolicy | None = None,
    timeout: float = 1.0,
) -> NatMapping:
    """How this socket's NAT maps it (RFC 4787 §4.1): ask two STUN servers at different
    addresses; the same mapped address from both is endpoint-independent (hole punching can
    work), two different ones endpoint-dependent ("symmetric": punching towards the address
    one server saw is hopeless). "unknown" with fewer than two answers."""
    family = socket.AF_INET6 if ":" in driver.local_address[0] else socket.AF_INET
    resolved: list[tuple[str, int]] = []
    for server in servers:
        addr = await _resolve(server, family)
        if addr is not None and all(addr[0] != r[0] for r in resolved):
            resolved.append(addr)
        if len(resolved) == 2:
            break
    if len(resolved) < 2:
        return "unknown"

    async def one(server: tuple[str, int]) -> tuple[str, int] | None:
        try:
            return await driver.stun_binding(server, policy=policy)
        except StunClientError as exc:
            log.info("STUN: %s", exc)
            return None

    try:
        async with asyncio.timeout(timeout):
            first, second = await asyncio.gather(one(resolved[0]), one(resolved[1]))
    except TimeoutError:
        return "unknown"
    if first is None or second is None:
        return "unknown"
    return "endpoint-independent" if first == second else "endpoint-dependent"


async def gather_candidates(
    driver: UdpDriver,
    stun_servers: Sequence[tuple[str, int]] = (),
    *,
    policy: RetransmitPolicy | None = None,
    stun_timeout: float = 3.0,
    interfaces: Sequence[str] | None = None,
) -> list[CandidateDict]:
    """Host candidates, then the server-reflexive one when a STUN server answers."""
    bound_host, port = driver.local_address
    out: list[CandidateDict] = [
        {"addr": format_addr(ip, port), "type": "host"}
        for ip in host_addresses(bound_host, interfaces=interfaces)
    ]
    mapped = await reflexive_address(driver, stun_servers, policy=policy, timeout=stun_timeout)
    if mapped is not None:
        addr = format_addr(*mapped)
        if all(c["addr"] != addr for c in out):
            out.insert(0, {"addr": addr, "type": "srflx"})
    return out[:MAX_CANDIDATES]
