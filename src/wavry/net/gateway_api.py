"""Client side of the gateway routes a session needs besides signaling (docs/gateway.md):

- ``ensure_wavry_id_bound``: bind this machine's Wavry ID to the logged-in account
  (``/auth/challenge``), so that relay leases name the key the client and host use in RIFT and
  feedback can be signed by it; never replaces another bound ID.
- ``send_relay_feedback``: sign a relayed session's quality report with the local identity and
  send it through the gateway (``POST /v1/relay-feedback``), which forwards it to the master.
- ``resolve_wavry_id``: the username behind a Wavry ID the caller may connect to
  (``GET /v1/hosts/by-wavry-id/{id}``).
- ``quality_score_from_stats``: a 0..100 score and issue list from a session's final RIFT stats.

Every failure is a ``GatewayApiError`` whose message a user can act on; the session token never
appears in one. Each call has a total time budget and reads at most 64 KiB of answer.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from wavry.feedback_protocol import feedback_message
from wavry.rift.identity import Identity

__all__ = [
    "BindOutcome",
    "BindResult",
    "GatewayApiError",
    "ensure_wavry_id_bound",
    "list_reachable_hosts",
    "quality_score_from_stats",
    "resolve_wavry_id",
    "send_relay_feedback",
]

#: total time budget of one call (all its requests)
DEFAULT_TIMEOUT = 10.0
_MAX_ANSWER = 64 * 1024
_MAX_ISSUES = 16


class GatewayApiError(Exception):
    """A gateway call failed. ``status`` is the HTTP status (None: no answer), ``message`` is
    safe to show a user."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class BindOutcome(enum.Enum):
    BOUND = "bound"  # this call bound the local Wavry ID
    ALREADY = "already"  # the account already had this Wavry ID
    OTHER = "other"  # the account has another Wavry ID; nothing changed


@dataclass(frozen=True, slots=True)
class BindResult:
    outcome: BindOutcome
    #: the Wavry ID bound to the account after the call
    bound_wavry_id: str


def _error_text(resp: httpx.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}"
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])[:200]
    return f"HTTP {resp.status_code}"


class _Gateway:
    """One short-lived HTTP client to the gateway with the session token."""

    def __init__(self, gateway_url: str, token: str, timeout: float) -> None:
        self.url = gateway_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,
        )

    async def __aenter__(self) -> _Gateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            resp = await self._client.request(method, path, json=body)
            content = await resp.aread()
        except httpx.TimeoutException:
            raise GatewayApiError(f"the gateway at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise GatewayApiError(
                f"cannot reach the gateway at {self.url} ({type(exc).__name__})"
            ) from None
        if len(content) > _MAX_ANSWER:
            raise GatewayApiError("oversized answer from the gateway", resp.status_code)
        if resp.status_code == 401:
            raise GatewayApiError(
                "the gateway refused the session token (expired or revoked); run wavry login",
                401,
            )
        if resp.status_code == 429:
            retry = resp.headers.get("Retry-After", "a while")
            raise GatewayApiError(f"rate limited by the gateway; retry after {retry} s", 429)
        return resp


def _json_object(resp: httpx.Response) -> dict[str, Any]:
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise GatewayApiError("malformed answer from the gateway", resp.status_code)
    return doc


async def _with_budget(timeout: float, coro: Any) -> Any:
    try:
        async with asyncio.timeout(timeout):
            return await coro
    except TimeoutError:
        raise GatewayApiError("the gateway did not answer in time") from None


async def ensure_wavry_id_bound(
    gateway_url: str, token: str, identity: Identity, *, timeout: float = DEFAULT_TIMEOUT
) -> BindResult:
    """Bind ``identity``'s Wavry ID to the account unless it has one; never replace another."""

    async def run() -> BindResult:
        async with _Gateway(gateway_url, token, timeout) as gw:
            resp = await gw.request("GET", "/auth/me")
            if resp.status_code != 200:
                raise GatewayApiError(
                    f"cannot read the account: {_error_text(resp)}", resp.status_code
                )
            user = _json_object(resp).get("user")
            current = user.get("wavry_id") if isinstance(user, dict) else None
            if current == identity.wavry_id:
                return BindResult(BindOutcome.ALREADY, identity.wavry_id)
            if isinstance(current, str) and current:
                return BindResult(BindOutcome.OTHER, current)
            resp = await gw.request("POST", "/auth/challenge", {"wavry_id": identity.wavry_id})
            if resp.status_code != 200:
                raise GatewayApiError(
                    f"the gateway refused a binding challenge: {_error_text(resp)}",
                    resp.status_code,
                )
            doc = _json_object(resp)
            try:
                challenge = str(doc["challenge"])
                message = bytes.fromhex(str(doc["message_hex"]))
            except (KeyError, ValueError):
                raise GatewayApiError("malformed challenge from the gateway") from None
            body = {"challenge": challenge, "signature_hex": identity.sign(message).hex()}
            resp = await gw.request("POST", "/auth/challenge/verify", body)
            if resp.status_code == 409:
                raise GatewayApiError(
                    f"the Wavry ID {identity.wavry_id} is bound to another account", 409
                )
            if resp.status_code != 200:
                raise GatewayApiError(
                    f"the gateway refused the binding: {_error_text(resp)}", resp.status_code
                )
            return BindResult(BindOutcome.BOUND, identity.wavry_id)

    result: BindResult = await _with_budget(timeout, run())
    return result


async def send_relay_feedback(
    gateway_url: str,
    token: str,
    identity: Identity,
    *,
    relay_id: str,
    session_id: str,
    quality_score: int,
    issues: Sequence[str],
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Report a relayed session's quality (signed by ``identity``) through the gateway.

    ``identity`` must be the account's bound Wavry ID (``wavry login`` binds it) and a peer of
    ``session_id`` (the ``session_id`` and ``relay_id`` of its ``RELAY_CREDENTIALS``). Each peer
    reports a session once: a second report is refused (``status`` 409).
    """
    if not 0 <= quality_score <= 100:
        raise ValueError("quality_score must be within 0..100")
    issue_list = [str(i) for i in issues][:_MAX_ISSUES]
    message = feedback_message(
        session_id=session_id,
        relay_id=relay_id,
        wavry_id=identity.wavry_id,
        quality_score=quality_score,
        issues=issue_list,
    )
    body = {
        "session_id": session_id,
        "relay_id": relay_id,
        "wavry_id": identity.wavry_id,
        "quality_score": quality_score,
        "issues": issue_list,
        "signature": identity.sign(message).hex(),
    }

    async def run() -> None:
        async with _Gateway(gateway_url, token, timeout) as gw:
            resp = await gw.request("POST", "/v1/relay-feedback", body)
        if resp.status_code == 200:
            return
        text = _error_text(resp)
        if resp.status_code == 409:
            text = "feedback for this session was already sent"
        elif resp.status_code == 503:
            text = f"the gateway cannot forward feedback: {text}"
        raise GatewayApiError(f"relay feedback refused: {text}", resp.status_code)

    await _with_budget(timeout, run())


async def resolve_wavry_id(
    gateway_url: str, token: str, wavry_id: str, *, timeout: float = DEFAULT_TIMEOUT
) -> str:
    """The username of the account bound to ``wavry_id``, if this account may connect to it."""

    async def run() -> str:
        async with _Gateway(gateway_url, token, timeout) as gw:
            resp = await gw.request("GET", f"/v1/hosts/by-wavry-id/{quote(wavry_id, safe='')}")
        if resp.status_code == 404:
            raise GatewayApiError(
                f"no host you may connect to has the Wavry ID {wavry_id} (unknown, not bound "
                "to an account, or its owner has not shared it with you)",
                404,
            )
        if resp.status_code == 400:
            raise GatewayApiError(f"{wavry_id!r} is not a valid Wavry ID", 400)
        if resp.status_code != 200:
            raise GatewayApiError(
                f"cannot look up the Wavry ID: {_error_text(resp)}", resp.status_code
            )
        username = _json_object(resp).get("username")
        if not isinstance(username, str) or not username:
            raise GatewayApiError("malformed answer from the gateway", resp.status_code)
        return username

    username: str = await _with_budget(timeout, run())
    return username


async def list_reachable_hosts(
    gateway_url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT
) -> tuple[str, list[str]]:
    """``(own username, accounts that share their hosts with us)`` from ``GET /auth/me`` and
    ``GET /v1/shares``: the hosts ``wavry connect USERNAME`` may reach."""

    async def run() -> tuple[str, list[str]]:
        async with _Gateway(gateway_url, token, timeout) as gw:
            me = await gw.request("GET", "/auth/me")
            shares = await gw.request("GET", "/v1/shares")
        for resp in (me, shares):
            if resp.status_code != 200:
                raise GatewayApiError(
                    f"cannot list your hosts: {_error_text(resp)}", resp.status_code
                )
        user = _json_object(me).get("user")
        own = user.get("username") if isinstance(user, dict) else None
        entries = _json_object(shares).get("shared_by")
        if not isinstance(own, str) or not isinstance(entries, list):
            raise GatewayApiError("malformed answer from the gateway", 200)
        names = [e["username"] for e in entries if isinstance(e, dict)
                 and isinstance(e.get("username"), str)]  # fmt: skip
        return own, sorted(set(names) - {own})

    result: tuple[str, list[str]] = await _with_budget(timeout, run())
    return result


# --- quality score ---------------------------------------------------------------------------

#: loss before FEC at which the loss penalty is full (50 points)
_LOSS_FULL = 0.10
#: srtt below which latency costs nothing, and the slope beyond it (points per ms, at most 20)
_SRTT_FREE_MS = 50.0
_SRTT_POINTS_PER_MS = 0.1
#: issue thresholds
_LOSS_ISSUE = 0.02
_SRTT_ISSUE_MS = 150.0


def _count(stats: Mapping[str, Any], key: str) -> float:
    """A non-negative finite number from ``stats`` (anything else counts as 0)."""
    value = stats.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    value = float(value)
    if not math.isfinite(value) or value < 0:
        return 0.0
    return value


def quality_score_from_stats(stats: Mapping[str, Any]) -> tuple[int, list[str]]:
    """Map a session's final RIFT stats (the client's ``stats``: ``packets_expected``,
    ``packets_lost_before_fec``, ``packets_received``, ``frames_lost``, ``srtt_ms``, ``drops``)
    to a quality score 0..100 and the issues seen (``wavry.feedback_protocol.KNOWN_ISSUES``).

    100 minus penalties: loss before FEC up to 50 points (full at 10 %), lost frames up to 25
    (2 each), smoothed RTT up to 20 (0.1 per ms beyond 50 ms), drops up to 10 (1 each). No media
    at all scores 0. More loss, lost frames, latency or drops never score higher.
    """
    expected = _count(stats, "packets_expected")
    lost = _count(stats, "packets_lost_before_fec")
    received = _count(stats, "packets_received")
    frames_lost = _count(stats, "frames_lost")
    srtt = _count(stats, "srtt_ms")
    drops = _count(stats, "drops")
    if expected == 0 and received == 0:
        return 0, ["no_media"]
    if expected > 0:
        loss = min(1.0, lost / expected)
    else:
        loss = 1.0 if lost > 0 else 0.0
    penalty = (
        50.0 * min(1.0, loss / _LOSS_FULL)
        + min(25.0, 2.0 * frames_lost)
        + min(20.0, max(0.0, srtt - _SRTT_FREE_MS) * _SRTT_POINTS_PER_MS)
        + min(10.0, drops)
    )
    score = max(0, min(100, math.floor(100.0 - penalty)))
    issues: list[str] = []
    if loss >= _LOSS_ISSUE:
        issues.append("packet_loss")
    if frames_lost > 0:
        issues.append("frame_loss")
    if srtt >= _SRTT_ISSUE_MS:
        issues.append("high_latency")
    if drops > 0:
        issues.append("drops")
    return score, issues
