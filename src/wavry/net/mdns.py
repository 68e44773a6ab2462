"""LAN discovery: advertise a Wavry host over mDNS / DNS-SD and browse for hosts.

Service type ``_wavry._udp.local.``; each host registers one instance whose TXT record carries
``v=1`` (discovery record version), ``id=<Wavry ID>`` and ``name=<display name>``. The instance
and the SRV target are derived from the machine's host name plus the first 8 characters of the
Wavry ID, so two hosts never fight over one name (the original advertised every host as
``wavry-host`` on ``wavry.local.``); zeroconf's probing renames the rare remaining clash.

Discovery is only a hint: whatever a browse returns is unauthenticated LAN data. The Wavry ID it
reports must still be checked by the RIFT handshake (trust store / pairing), never trusted here.

``interfaces`` is passed straight to zeroconf: the default ``InterfaceChoice.All`` serves every
IPv4 interface; tests pass ``["127.0.0.1"]``, which works on a loopback device without the
MULTICAST flag (the kernel still loops 224.0.0.251 back over ``lo`` when the socket's multicast
interface is 127.0.0.1), and sends nothing to any other network.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import ifaddr  # zeroconf's own interface lister (a hard dependency of zeroconf)
from zeroconf import InterfaceChoice, ServiceBrowser, ServiceInfo, ServiceListener, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from wavry.rift.identity import InvalidWavryIdError, public_key_from_wavry_id

__all__ = [
    "SERVICE_TYPE",
    "TXT_VERSION",
    "AsyncMdnsAdvertisement",
    "DiscoveredHost",
    "Interfaces",
    "MdnsAdvertisement",
    "advertise_host",
    "async_advertise_host",
    "async_browse_hosts",
    "browse_hosts",
    "instance_label",
]

logger = logging.getLogger(__name__)

Interfaces = Sequence[str] | InterfaceChoice
"""Where to listen and send: ``InterfaceChoice.All`` or a list of local interface addresses."""

SERVICE_TYPE = "_wavry._udp.local."
TXT_VERSION = "1"

# DNS label limit is 63 bytes; TXT strings are at most 255 bytes including "name=".
_MAX_LABEL = 63
_MAX_TXT_NAME = 200
# How long a found instance may take to resolve (SRV/TXT/A) after the browse window closes.
# Usually zero: responders put those records in the PTR answer's additional section.
_RESOLVE_TIMEOUT_S = 0.5
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


@dataclass(frozen=True, slots=True)
class DiscoveredHost:
    """One Wavry host seen on the LAN (unauthenticated: verify ``wavry_id`` in the handshake)."""

    name: str
    """Display name from the TXT record (falls back to the instance label)."""
    addresses: tuple[str, ...]
    """IPv4/IPv6 addresses from the A/AAAA records, in the order the responder gave them."""
    port: int
    wavry_id: str
    instance: str = ""
    """Full DNS-SD instance name, e.g. ``box-AbCdEfGh._wavry._udp.local.``."""


def instance_label(wavry_id: str, hostname: str | None = None) -> str:
    """The DNS label used for both the service instance and the SRV target host name."""
    host = _LABEL_UNSAFE.sub("-", (hostname or socket.gethostname()).split(".")[0]).strip("-")
    suffix = f"-{wavry_id[:8]}"
    return (host or "wavry")[: _MAX_LABEL - len(suffix)] + suffix


def _truncate_utf8(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def _local_ipv4_addresses() -> list[str]:
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ip.ip.startswith("127.") and ip.ip not in found:
                found.append(ip.ip)
    return found


def _build_info(
    *, port: int, wavry_id: str, name: str, addresses: Sequence[str] | None
) -> ServiceInfo:
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1..65535, got {port}")
    # Our own misuse: never advertise an ID a client could not dial.
    public_key_from_wavry_id(wavry_id)
    label = instance_label(wavry_id)
    if addresses is None:
        addresses = _local_ipv4_addresses() or ["127.0.0.1"]
    if not addresses:
        raise ValueError("addresses must not be empty (pass None to use every local address)")
    return ServiceInfo(
        SERVICE_TYPE,
        f"{label}.{SERVICE_TYPE}",
        port=port,
        parsed_addresses=list(addresses),
        properties={"v": TXT_VERSION, "id": wavry_id, "name": _truncate_utf8(name, _MAX_TXT_NAME)},
        server=f"{label}.local.",
    )


def _to_host(info: ServiceInfo) -> DiscoveredHost | None:
    """Translate a resolved record; a malformed or foreign-version record is dropped, not raised."""
    props = info.decoded_properties
    if props.get("v") != TXT_VERSION:
        logger.debug("mDNS: ignoring %s (TXT v=%r)", info.name, props.get("v"))
        return None
    wavry_id = props.get("id") or ""
    try:
        public_key_from_wavry_id(wavry_id)
    except InvalidWavryIdError:
        logger.debug("mDNS: ignoring %s (bad Wavry ID)", info.name)
        return None
    addresses = tuple(info.parsed_addresses())
    if info.port is None or not addresses:
        return None
    label = info.name.removesuffix(f".{SERVICE_TYPE}")
    return DiscoveredHost(
        name=props.get("name") or label,
        addresses=addresses,
        port=info.port,
        wavry_id=wavry_id,
        instance=info.name,
    )


def _refuse_running_loop(what: str) -> None:
    # Zeroconf() adopts a running loop, and then its blocking calls would wait on that very loop.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{what}() blocks; inside asyncio use async_{what}()")


class MdnsAdvertisement:
    """A registered host record; ``close()`` sends goodbye packets and stops the responder."""

    def __init__(self, zc: Zeroconf, info: ServiceInfo) -> None:
        self._zc = zc
        self._info = info
        self._closed = False

    @property
    def instance_name(self) -> str:
        """Registered instance name (zeroconf may have renamed it after a probe conflict)."""
        return self._info.name

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._zc.unregister_service(self._info)
        finally:
            self._zc.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncMdnsAdvertisement:
    """The asyncio form of :class:`MdnsAdvertisement` (use from inside a running loop)."""

    def __init__(self, azc: AsyncZeroconf, info: AsyncServiceInfo) -> None:
        self._azc = azc
        self._info = info
        self._closed = False

    @property
    def instance_name(self) -> str:
        return self._info.name

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._azc.async_unregister_service(self._info)
        finally:
            await self._azc.async_close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def advertise_host(
    *,
    port: int,
    wavry_id: str,
    name: str,
    addresses: list[str] | None = None,
    interfaces: Interfaces = InterfaceChoice.All,
) -> MdnsAdvertisement:
    """Register this host (blocking: probing takes ~1 s). Not for use inside a running loop.

    ``addresses`` are what clients will dial; None means every non-loopback local IPv4 address
    (or 127.0.0.1 if there is none).
    """
    _refuse_running_loop("advertise_host")
    info = _build_info(port=port, wavry_id=wavry_id, name=name, addresses=addresses)
    zc = Zeroconf(interfaces=interfaces)
    try:
        zc.register_service(info, allow_name_change=True)
    except BaseException:
        zc.close()
        raise
    logger.info("mDNS: advertising %s on port %d", info.name, port)
    return MdnsAdvertisement(zc, info)


async def async_advertise_host(
    *,
    port: int,
    wavry_id: str,
    name: str,
    addresses: list[str] | None = None,
    interfaces: Interfaces = InterfaceChoice.All,
) -> AsyncMdnsAdvertisement:
    """:func:`advertise_host` for asyncio callers; the responder runs on the current loop."""
    base = _build_info(port=port, wavry_id=wavry_id, name=name, addresses=addresses)
    info = AsyncServiceInfo(
        base.type,
        base.name,
        port=base.port,
        parsed_addresses=base.parsed_addresses(),
        properties=base.properties,
        server=base.server,
    )
    azc = AsyncZeroconf(interfaces=interfaces)
    try:
        await (await azc.async_register_service(info, allow_name_change=True))
    except BaseException:
        await azc.async_close()
        raise
    logger.info("mDNS: advertising %s on port %d", info.name, port)
    return AsyncMdnsAdvertisement(azc, info)


class _Collector(ServiceListener):
    """Instance names seen during a browse window (thread-safe: zeroconf calls from its loop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, None] = {}

    def names(self) -> list[str]:
        with self._lock:
            return list(self._names)

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        with self._lock:
            self._names[name] = None

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.add_service(zc, type_, name)

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        with self._lock:
            self._names.pop(name, None)


def _sorted_hosts(infos: Sequence[ServiceInfo]) -> list[DiscoveredHost]:
    hosts = [h for h in (_to_host(i) for i in infos) if h is not None]
    return sorted(hosts, key=lambda h: (h.name, h.instance))


def browse_hosts(
    timeout: float = 1.0, *, interfaces: Interfaces = InterfaceChoice.All
) -> list[DiscoveredHost]:
    """Browse ``timeout`` seconds and return the hosts found, sorted by display name.

    Blocking; from asyncio use :func:`async_browse_hosts`.
    """
    _refuse_running_loop("browse_hosts")
    collector = _Collector()
    zc = Zeroconf(interfaces=interfaces)
    try:
        browser = ServiceBrowser(zc, SERVICE_TYPE, listener=collector)
        try:
            time.sleep(timeout)
        finally:
            browser.cancel()
        infos: list[ServiceInfo] = []
        for name in collector.names():
            info = ServiceInfo(SERVICE_TYPE, name)
            if info.load_from_cache(zc) or info.request(zc, _RESOLVE_TIMEOUT_S * 1000):
                infos.append(info)
        return _sorted_hosts(infos)
    finally:
        zc.close()


async def async_browse_hosts(
    timeout: float = 1.0, *, interfaces: Interfaces = InterfaceChoice.All
) -> list[DiscoveredHost]:
    """:func:`browse_hosts` for asyncio callers (instances resolve concurrently)."""
    collector = _Collector()
    azc = AsyncZeroconf(interfaces=interfaces)
    try:
        browser = AsyncServiceBrowser(azc.zeroconf, SERVICE_TYPE, listener=collector)
        try:
            await asyncio.sleep(timeout)
        finally:
            await browser.async_cancel()

        async def resolve(name: str) -> AsyncServiceInfo | None:
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            if info.load_from_cache(azc.zeroconf):
                return info
            ok = await info.async_request(azc.zeroconf, _RESOLVE_TIMEOUT_S * 1000)
            return info if ok else None

        resolved = await asyncio.gather(*(resolve(n) for n in collector.names()))
        return _sorted_hosts([i for i in resolved if i is not None])
    finally:
        await azc.async_close()
