"""Asks the master for the two leases of a relay session (``POST /v1/leases/session``) and
forwards peers' signed session feedback (``POST /v1/feedback``).

The gateway authenticates with its service token (``WAVRY_GATEWAY_MASTER_TOKEN``, the master's
``WAVRY_MASTER_GATEWAY_TOKEN``). Every call has a total time budget; every failure becomes a
``MasterError`` whose ``kind`` the hub maps to an ERROR code, and whose message is safe to show a
user (no token, no response body beyond the master's own error string).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["Lease", "MasterClient", "MasterError", "MasterErrorKind", "SessionLeases"]

log = logging.getLogger(__name__)

_MAX_RESPONSE = 64 * 1024


class MasterErrorKind(enum.Enum):
    UNAVAILABLE = "unavailable"  # network error, timeout, 5xx, garbage
    NO_RELAY = "no_relay"  # 503 from the master
    RATE_LIMITED = "rate_limited"  # 429
    REFUSED = "refused"  # 400/403/404: the request itself is refused
    MISCONFIGURED = "misconfigured"  # 401 or the route disabled: fix the service token


class MasterError(Exception):
    def __init__(self, kind: MasterErrorKind, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Lease:
    wavry_id: str
    role: str
    token: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class SessionLeases:
    session_id: str
    relay_id: str
    relay_addr: str
    requester: Lease
    target: Lease


def _lease(doc: Any) -> Lease:
    if not isinstance(doc, dict):
        raise TypeError("lease is not an object")
    role, token, wid, exp = doc["role"], doc["token"], doc["wavry_id"], doc["expires_at"]
    if role not in ("client", "server") or not isinstance(token, str) or not token:
        raise TypeError("bad lease")
    if not isinstance(wid, str) or not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TypeError("bad lease")
    return Lease(wavry_id=wid, role=role, token=token, expires_at=float(exp))


def _parse(doc: Any) -> SessionLeases:
    if not isinstance(doc, dict):
        raise TypeError("not an object")
    sid, rid, addr = doc["session_id"], doc["relay_id"], doc["relay_addr"]
    if not all(isinstance(v, str) and v for v in (sid, rid, addr)):
        raise TypeError("bad session")
    return SessionLeases(
        session_id=sid,
        relay_id=rid,
        relay_addr=addr,
        requester=_lease(doc["requester"]),
        target=_lease(doc["target"]),
    )


def _error_text(resp: httpx.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}"
    error = doc.get("error") if isinstance(doc, dict) else None
    return str(error)[:200] if error else f"HTTP {resp.status_code}"


class MasterClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, body: dict[str, Any], *, what: str) -> httpx.Response:
        """POST within the time budget; the answer is read (and bounded) before returning."""
        try:
            async with asyncio.timeout(self.timeout):
                resp = await self._client.post(path, json=body)
                content = await resp.aread()
        except (TimeoutError, httpx.TimeoutException):
            raise MasterError(
                MasterErrorKind.UNAVAILABLE, "the master did not answer in time"
            ) from None
        except httpx.HTTPError as exc:
            log.warning("master %s request failed: %s", what, type(exc).__name__)
            raise MasterError(MasterErrorKind.UNAVAILABLE, "the master is unreachable") from None
        if len(content) > _MAX_RESPONSE:
            raise MasterError(MasterErrorKind.UNAVAILABLE, "oversized answer from the master")
        return resp

    async def open_session(
        self,
        *,
        requester_wavry_id: str,
        target_wavry_id: str,
        requester_role: str = "client",
        region: str | None = None,
        requester_label: str | None = None,
        target_label: str | None = None,
        exclude_relay_ids: list[str] | None = None,
    ) -> SessionLeases:
        body: dict[str, Any] = {
            "requester_wavry_id": requester_wavry_id,
            "target_wavry_id": target_wavry_id,
            "requester_role": requester_role,
        }
        if exclude_relay_ids:
            body["exclude_relay_ids"] = exclude_relay_ids
        for name, value in (
            ("region", region),
            ("requester_label", requester_label),
            ("target_label", target_label),
        ):
            if value is not None:
                body[name] = value
        resp = await self._post("/v1/leases/session", body, what="lease")
        status = resp.status_code
        if status == 201:
            try:
                return _parse(resp.json())
            except (ValueError, KeyError, TypeError):
                raise MasterError(
                    MasterErrorKind.UNAVAILABLE, "malformed answer from the master", status
                ) from None
        text = _error_text(resp)
        if status == 401 or (status == 403 and "disabled" in text):
            log.error("the master refused the gateway's service token (HTTP %d): %s", status, text)
            raise MasterError(
                MasterErrorKind.MISCONFIGURED, "relay requests are misconfigured on the gateway",
                status,
            )  # fmt: skip
        if status == 429:
            raise MasterError(MasterErrorKind.RATE_LIMITED, text, status)
        if status == 503:
            raise MasterError(MasterErrorKind.NO_RELAY, "no relay is available right now", status)
        if 400 <= status < 500:
            raise MasterError(MasterErrorKind.REFUSED, text, status)
        raise MasterError(MasterErrorKind.UNAVAILABLE, f"the master failed (HTTP {status})", status)

    async def submit_feedback(
        self,
        *,
        session_id: str,
        relay_id: str,
        wavry_id: str,
        quality_score: int,
        issues: list[str],
        signature: str,
    ) -> None:
        """Forward a peer's signed session feedback to the master's ``POST /v1/feedback``.

        The master verifies the signature and that the Wavry ID is a peer of the session; its
        refusals come back as ``REFUSED`` with the master's status (400 malformed, 401 bad
        signature, 403 not a peer, 404 unknown session, 409 already reported).
        """
        body: dict[str, Any] = {
            "session_id": session_id,
            "relay_id": relay_id,
            "wavry_id": wavry_id,
            "quality_score": quality_score,
            "issues": issues,
            "signature": signature,
        }
        resp = await self._post("/v1/feedback", body, what="feedback")
        status = resp.status_code
        if status == 200:
            return
        text = _error_text(resp)
        if status == 429:
            raise MasterError(MasterErrorKind.RATE_LIMITED, text, status)
        if 400 <= status < 500:
            raise MasterError(MasterErrorKind.REFUSED, text, status)
        raise MasterError(MasterErrorKind.UNAVAILABLE, f"the master failed (HTTP {status})", status)
