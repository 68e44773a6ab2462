"""Registration with the master and heartbeats (reference §5.4), and what the relay announces.

``MasterClient`` keeps the relay registered: register with backoff, heartbeat at the master's
interval, re-register when the master forgets the relay, and pin the master's lease keys on first
use when none is configured. ``advertised_endpoints`` picks the addresses it announces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from wavry.relay.core import RelayCore
from wavry.relay.lease import LeaseVerifier
from wavry.relay.pins import save_pins
from wavry.relay.settings import RelaySettings

__all__ = ["MasterClient", "advertised_endpoints", "format_endpoint"]

# The relay's logger name: its log lines keep the name they had when this lived in server.py
# (operators filter on it).
log = logging.getLogger("wavry.relay.server")

#: per request to the master
_HTTP_TIMEOUT = 5.0
BACKOFF_START = 1.0
BACKOFF_MAX = 60.0
#: consecutive heartbeat failures after which the relay registers again
HEARTBEAT_FAILURES_BEFORE_REREGISTER = 6
HEARTBEAT_FLOOR_MS = 500


def format_endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def advertised_endpoints(settings: RelaySettings, bound: tuple[str, int]) -> list[str]:
    """Endpoints to announce: configured ones, the bound address, or for a wildcard bind the
    local address that routes toward the master (no packet is sent). Never 0.0.0.0 or ::."""
    if settings.advertise.strip():
        return [p.strip() for p in settings.advertise.split(",") if p.strip()]
    host, port = bound
    if host not in ("0.0.0.0", "::", ""):
        return [format_endpoint(host, port)]
    master = httpx.URL(settings.master_url)
    family = socket.AF_INET6 if host == "::" else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((master.host or "127.0.0.1", master.port or 80))
            local = probe.getsockname()[0]
    except OSError:
        local = ""
    if local in ("", "0.0.0.0", "::"):
        raise RuntimeError(
            "cannot tell which address to advertise for a wildcard bind: set WAVRY_RELAY_ADVERTISE"
        )
    return [format_endpoint(local, port)]


class MasterClient:
    """Registration and heartbeats (reference §5.4, with the original's timing).

    Register with backoff 1 s → 60 s (doubling). Heartbeat every ``heartbeat_interval_ms`` (the
    master's answer, floor 500 ms). Any failure marks the relay unregistered; a 404 (the master
    forgot it) or 6 consecutive failures trigger an immediate re-registration with the same id.
    """

    def __init__(
        self,
        settings: RelaySettings,
        core: RelayCore,
        endpoints: list[str],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.core = core
        self.endpoints = endpoints
        self.registered = False
        self.registrations = 0
        self.heartbeats_ok = 0
        self.failures = 0
        #: why the last register/heartbeat failed ("" before any), e.g. "heartbeat: HTTP 404"
        self.last_failure = ""
        #: monotonic time of the last successful registration (None before the first)
        self.registered_at: float | None = None
        self.pinned_kids: tuple[str, ...] = ()
        if settings.master_public_key is None and core.verifier is not None:
            self.pinned_kids = core.verifier.key_ids  # loaded from the pin file at start
        self._sleep = sleep
        headers = {}
        if settings.master_token is not None:
            headers["Authorization"] = f"Bearer {settings.master_token.get_secret_value()}"
        self._http = httpx.AsyncClient(
            base_url=settings.master_url.rstrip("/"),
            headers=headers,
            timeout=_HTTP_TIMEOUT,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run(self) -> None:
        backoff = BACKOFF_START
        while True:
            interval = await self._register()
            if interval is None:
                await self._sleep(backoff)
                backoff = min(BACKOFF_MAX, backoff * 2)
                continue
            backoff = BACKOFF_START
            await self._heartbeats(interval)

    async def _register(self) -> float | None:
        s = self.settings
        body = {
            "relay_id": self.core.relay_id,
            "endpoints": self.endpoints,
            "region": s.region,
            "asn": s.asn,
            "max_sessions": s.max_sessions,
            "max_bitrate_kbps": s.max_bitrate,
            "features": ["ipv6" if any(e.startswith("[") for e in self.endpoints) else "ipv4"],
        }
        try:
            resp = await self._http.post("/v1/relays/register", json=body)
        except httpx.HTTPError as exc:
            self._fail(f"register: {type(exc).__name__}")
            return None
        if resp.status_code != 200:
            self._fail(f"register: HTTP {resp.status_code}")
            return None
        try:
            doc = resp.json()
            interval_ms = int(doc.get("heartbeat_interval_ms", 5000))
            self._learn_keys(doc)
        except (ValueError, TypeError, AttributeError) as exc:
            self._fail(f"register: bad answer ({exc})")
            return None
        self.registered = True
        self.registrations += 1
        self.registered_at = time.monotonic()
        self.failures = 0
        log.info("registered with %s as %s", s.master_url, self.core.relay_id)
        return max(HEARTBEAT_FLOOR_MS, interval_ms) / 1000.0

    async def _heartbeats(self, interval: float) -> None:
        failures = 0
        while True:
            await self._sleep(interval)
            body = {"relay_id": self.core.relay_id, "load_pct": self.core.load_pct}
            try:
                resp = await self._http.post("/v1/relays/heartbeat", json=body)
                status = resp.status_code
            except httpx.HTTPError as exc:
                status = 0
                self._fail(f"heartbeat: {type(exc).__name__}")
            if status == 200:
                self.registered = True
                self.heartbeats_ok += 1
                failures = 0
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    ms = int(resp.json().get("heartbeat_interval_ms", interval * 1000))
                    interval = max(HEARTBEAT_FLOOR_MS, ms) / 1000.0
                continue
            if status:
                self._fail(f"heartbeat: HTTP {status}")
            failures += 1
            if status == 404 or failures >= HEARTBEAT_FAILURES_BEFORE_REREGISTER:
                return

    def _fail(self, why: str) -> None:
        if self.registered or self.failures == 0:
            log.warning("master unreachable or refused (%s); relay is not ready", why)
        self.registered = False
        self.failures += 1
        self.last_failure = why

    def _learn_keys(self, doc: dict[str, Any]) -> None:
        """Trust on first use when no key is configured; later answers never change the pin."""
        offered: dict[str, bytes] = {}
        for kid, hexkey in (doc.get("trusted_keys") or {}).items():
            offered[str(kid)] = bytes.fromhex(str(hexkey))
        if doc.get("master_public_key") and doc.get("master_key_id"):
            offered[str(doc["master_key_id"])] = bytes.fromhex(str(doc["master_public_key"]))
        if self.settings.master_public_key is not None:
            unknown = set(offered) - set(self.settings.trusted_keys)
            if unknown:
                log.warning("master offers key ids %s that are not configured", sorted(unknown))
            return
        if not self.pinned_kids:
            if not offered:
                raise ValueError("the master sent no public key and none is configured")
            verifier = self.core.verifier or LeaseVerifier({})
            for kid, key in offered.items():
                verifier.add_key(kid, key)
            self.core.verifier = verifier
            self.pinned_kids = tuple(sorted(offered))
            log.warning(
                "INSECURE: trusting the master's lease keys %s on first use; pin them with "
                "WAVRY_RELAY_MASTER_PUBLIC_KEY=%s",
                list(self.pinned_kids),
                ",".join(f"{k}:{v.hex()}" for k, v in offered.items()),
            )
            self._persist_pin(offered)
        elif set(offered) - set(self.pinned_kids):
            log.warning(
                "the master now offers key ids %s; the pinned ones %s stay the only trusted "
                "keys (configure WAVRY_RELAY_MASTER_PUBLIC_KEY or delete the pin in %s)",
                sorted(offered),
                list(self.pinned_kids),
                self.settings.pin_path,
            )

    def _persist_pin(self, keys: dict[str, bytes]) -> None:
        path = self.settings.pin_path
        try:
            save_pins(path, self.settings.master_url, keys)
        except (OSError, ValueError) as exc:
            log.warning("could not persist the key pin to %s (%s): a restart pins again", path, exc)
        else:
            log.info("key pin saved to %s", path)
