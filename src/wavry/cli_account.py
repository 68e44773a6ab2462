"""``wavry login`` and ``wavry logout``: get a gateway session token and store it, or revoke
and forget it (storage: ``wavry.credentials``; the gateway API: docs/gateway.md)."""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from wavry.credentials import CredentialsError, GatewaySession, TokenStore

__all__ = ["add_account_parsers", "normalize_gateway_url"]

TIMEOUT = 10.0
MAX_SECRET_CHARS = 1024


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def normalize_gateway_url(url: str, *, allow_http: bool = False) -> str:
    """``https://host[:port][/prefix]`` without a trailing slash. Plain ``http`` is refused for
    anything but a loopback host unless ``allow_http`` (a password would travel in clear)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the gateway URL must look like https://gateway.example.org")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("the gateway URL must not carry a query, fragment or credentials")
    if parts.scheme == "http" and not allow_http and not _is_loopback(parts.hostname):
        raise ValueError(
            "refusing plain http to a non-loopback gateway (use https, or --allow-http)"
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error_text(resp: httpx.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}"
    if isinstance(doc, dict):
        msg = doc.get("error") or doc.get("detail")
        if isinstance(msg, str):
            return msg[:200]
    return f"HTTP {resp.status_code}"


def _read_stdin_line(what: str) -> str:
    line = sys.stdin.readline(MAX_SECRET_CHARS + 2)
    if not line:
        raise ValueError(f"no {what} on standard input")
    return line.rstrip("\r\n")


def _cmd_login(ns: argparse.Namespace) -> int:
    try:
        gateway = normalize_gateway_url(ns.gateway, allow_http=ns.allow_http)
        store = TokenStore()
        if ns.password_stdin:
            password = _read_stdin_line("password")
        else:
            password = getpass.getpass(f"Password for {ns.email} at {gateway}: ")
    except (ValueError, CredentialsError) as exc:
        _err(f"wavry login: {exc}")
        return 2 if isinstance(exc, ValueError) else 1
    if not password:
        _err("wavry login: empty password")
        return 2
    body: dict[str, Any] = {"email": ns.email, "password": password}
    try:
        with httpx.Client(base_url=gateway, timeout=TIMEOUT) as http:
            resp = http.post("/auth/login", json=body)
            if resp.status_code == 401 and _totp_required(resp):
                code = ns.totp
                if code is None:
                    code = (
                        _read_stdin_line("2FA code")
                        if ns.password_stdin
                        else getpass.getpass("2FA code: ")
                    )
                resp = http.post("/auth/login", json={**body, "totp_code": code.strip()})
    except httpx.HTTPError as exc:
        _err(
            f"wavry login: cannot reach {gateway} ({type(exc).__name__}); "
            "check the URL and that the gateway is running"
        )
        return 1
    except ValueError as exc:
        _err(f"wavry login: {exc}")
        return 2
    if resp.status_code != 200:
        hint = ""
        if resp.status_code == 429:
            hint = f"; retry after {resp.headers.get('Retry-After', 'a while')} s"
        _err(f"wavry login: refused: {_error_text(resp)}{hint}")
        return 1
    try:
        doc = resp.json()
        user = doc.get("user") or {}
        session = GatewaySession(
            gateway=gateway,
            token=str(doc["token"]),
            username=str(doc.get("username") or user.get("username", "")),
            email=str(doc.get("email") or ns.email),
            user_id=str(doc.get("user_id", "")),
            expires_at=(doc.get("session") or {}).get("expires_at"),
        )
    except (ValueError, KeyError, AttributeError, TypeError):
        _err("wavry login: the gateway's answer has no session token")
        return 1
    if not ns.no_bind_id:
        session = replace(session, wavry_id=_bind_identity(ns, session))
    try:
        store.save(session)
    except (CredentialsError, OSError) as exc:
        _err(f"wavry login: cannot store the token: {exc}")
        return 1
    _out(f"Logged in as {session.username} at {gateway}; token stored in {store.location}.")
    return 0


def _bind_identity(ns: argparse.Namespace, session: GatewaySession) -> str | None:
    """Bind this machine's Wavry ID (the identity ``wavry host`` / ``wavry connect`` use) to the
    account, so relay leases name the key RIFT presents and relay feedback can be signed with
    it. Never replaces another bound ID. Returns the account's bound Wavry ID (None: unknown).
    A failure here is a warning: the login itself worked."""
    import asyncio

    from wavry import paths
    from wavry.identity_store import IdentityFileError, load_or_create_identity
    from wavry.net.gateway_api import BindOutcome, GatewayApiError, ensure_wavry_id_bound

    path = Path(ns.identity) if ns.identity else paths.identity_path()
    try:
        identity, created = load_or_create_identity(path)
    except IdentityFileError as exc:
        _err(f"wavry login: not binding a Wavry ID: {exc}")
        return None
    if created:
        _err(f"Created identity {path} (mode 0600). Your Wavry ID: {identity.wavry_id}")
    try:
        result = asyncio.run(
            ensure_wavry_id_bound(session.gateway, session.token, identity, timeout=TIMEOUT)
        )
    except GatewayApiError as exc:
        _err(
            f"wavry login: logged in, but could not bind this machine's Wavry ID "
            f"{identity.wavry_id}: {exc.message}. Relayed sessions and relay feedback need a "
            "bound Wavry ID; run wavry login again to retry."
        )
        return None
    if result.outcome is BindOutcome.BOUND:
        _out(f"Bound this machine's Wavry ID {identity.wavry_id} to {session.username}.")
    elif result.outcome is BindOutcome.OTHER:
        _err(
            f"Note: {session.username} is bound to the Wavry ID {result.bound_wavry_id}, not to "
            f"this machine's {identity.wavry_id} ({path}); it was left unchanged. Relay leases "
            "and relay feedback name the account's bound ID, so relayed sessions and feedback "
            "work only from the identity with that ID: use its key file here "
            "(wavry host/connect --identity PATH, and wavry login --identity PATH). A bound ID "
            "cannot be changed from the CLI; ask the gateway's administrator."
        )
    return result.bound_wavry_id


def _totp_required(resp: httpx.Response) -> bool:
    try:
        doc = resp.json()
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("totp_required") is True


def _cmd_logout(ns: argparse.Namespace) -> int:
    try:
        store = TokenStore()
    except CredentialsError as exc:
        _err(f"wavry logout: {exc}")
        return 1
    try:
        session = store.load()
    except CredentialsError as exc:
        if ns.forget_only:
            store.forget()
            _out(f"Removed an unreadable stored session from {store.location}.")
            return 0
        _err(f"wavry logout: {exc}; run wavry logout --forget-only to delete it")
        return 1
    if session is None:
        _out("Not logged in.")
        return 0
    if not ns.forget_only:
        try:
            with httpx.Client(base_url=session.gateway, timeout=TIMEOUT) as http:
                resp = http.post(
                    "/auth/logout", headers={"Authorization": f"Bearer {session.token}"}
                )
        except httpx.HTTPError as exc:
            _err(
                f"wavry logout: cannot reach {session.gateway} ({type(exc).__name__}); the "
                "token is kept so you can retry (or run wavry logout --forget-only)"
            )
            return 1
        if resp.status_code == 429:
            _err(
                f"wavry logout: rate limited; retry after "
                f"{resp.headers.get('Retry-After', 'a while')} s"
            )
            return 1
        # 200 (revoked or already gone) and 400/401 (token no longer valid): forget it.
    store.forget()
    _out(f"Logged out of {session.gateway}; token removed from {store.location}.")
    return 0


def add_account_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "login",
        help="sign in to a gateway and store the session token",
        description="Sign in to a Wavry gateway (POST /auth/login) and store the session token "
        "in the OS keyring (when the keyring package is installed) or in DATA_DIR/"
        "gateway_session.json (mode 0600). Asks for the password, and for a 2FA code when the "
        "account has 2FA. WAVRY_TOKEN_STORE=file|keyring|auto picks the store. Then binds this "
        "machine's Wavry ID to the account if it has none (--no-bind-id to skip); an account "
        "bound to another ID is left as it is, with a note.",
    )
    p.add_argument("--gateway", required=True, metavar="URL", help="e.g. https://gw.example.org")
    p.add_argument("--email", required=True)
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password (and then the 2FA code, if asked) from standard input, one "
        "per line (for scripts)",
    )
    p.add_argument("--totp", metavar="CODE", help="the 2FA code (default: ask when required)")
    p.add_argument(
        "--allow-http", action="store_true", help="allow plain http to a non-loopback gateway"
    )
    p.add_argument(
        "--identity",
        default=None,
        metavar="PATH",
        help="identity whose Wavry ID to bind to the account (default DATA_DIR/identity.key, "
        "the one wavry host and wavry connect use; created if missing)",
    )
    p.add_argument(
        "--no-bind-id",
        action="store_true",
        help="do not bind this machine's Wavry ID to the account (relayed sessions and relay "
        "feedback need a bound ID)",
    )
    p.set_defaults(func=_cmd_login)

    p = sub.add_parser(
        "logout",
        help="revoke the stored session token and forget it",
        description="Revoke the stored session at its gateway (POST /auth/logout), then delete "
        "it locally. If the gateway cannot be reached the token is kept, unless --forget-only.",
    )
    p.add_argument(
        "--forget-only", action="store_true", help="delete the token without asking the gateway"
    )
    p.set_defaults(func=_cmd_logout)
