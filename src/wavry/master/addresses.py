"""Relay endpoint parsing and the network a relay counts against for the sybil limit.

The original compared endpoint *strings* by prefix (``10.0.0.1`` matched ``10.0.0.10``, IPv6 was
mangled by ``split(':')``). Here endpoints are parsed as ``IP:port`` / ``[IPv6]:port`` and relays
are grouped by network: IPv4 /24 and IPv6 /48 by default.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["Endpoint", "EndpointError", "parse_endpoint", "subnet_of"]


class EndpointError(ValueError):
    """An endpoint a relay may not advertise."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int

    def __str__(self) -> str:
        if self.ip.version == 6:
            return f"[{self.ip}]:{self.port}"
        return f"{self.ip}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    """Parse ``IPv4:port`` / ``[IPv6]:port``; refuse hostnames, wildcard and multicast."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise EndpointError(f"{text!r}: IPv6 endpoints are written [address]:port")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise EndpointError(f"{text!r}: expected address:port ([address]:port for IPv6)")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise EndpointError(f"{text!r}: the address must be an IP literal") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise EndpointError(f"{text!r}: the port must be within 1..65535")
    if ip.is_unspecified:
        raise EndpointError(
            f"{text!r}: a wildcard address is not reachable; advertise the address peers can reach"
        )
    if ip.is_multicast:
        raise EndpointError(f"{text!r}: multicast addresses cannot host a relay")
    return Endpoint(ip, int(port_text))


def subnet_of(endpoint: Endpoint, *, ipv4_prefix: int = 24, ipv6_prefix: int = 48) -> str:
    """The network (``a.b.c.0/24``, ``x:y:z::/48``) the endpoint's address belongs to."""
    prefix = ipv4_prefix if endpoint.ip.version == 4 else ipv6_prefix
    return str(ipaddress.ip_network(f"{endpoint.ip}/{prefix}", strict=False))
