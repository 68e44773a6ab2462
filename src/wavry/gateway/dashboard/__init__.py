"""The admin dashboard: one static page at ``GET /admin`` over the admin API (``/admin/api/*``).

The page, its script, its stylesheet and its icon are package data (``static/``), read once at
import and served from memory; only those names are served (no path from the request reaches the
file system). Every response carries a strict Content-Security-Policy: scripts, styles and
fetches from this origin only, no inline script or style, no external resource, Trusted Types
enforced (the script builds the DOM with ``textContent``, never HTML strings), no framing.

The admin token is typed into the page and kept in ``sessionStorage`` (gone with the tab); it is
sent as ``x-admin-token`` on each API call and never put in a URL or a cookie. ``app.py`` includes
``router`` when this package exists.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import Response

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "router"]

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)

SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


def _load(name: str, media_type: str) -> _Asset:
    body = resources.files(__name__).joinpath("static", name).read_bytes()
    return _Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


_PAGE = _load("index.html", "text/html; charset=utf-8")
_ASSETS = {
    "dashboard.js": _load("dashboard.js", "text/javascript; charset=utf-8"),
    "dashboard.css": _load("dashboard.css", "text/css; charset=utf-8"),
    "favicon.svg": _load("favicon.svg", "image/svg+xml"),
}

router = APIRouter(include_in_schema=False)


def _serve(asset: _Asset, request: Request, cache_control: str) -> Response:
    headers = {**SECURITY_HEADERS, "cache-control": cache_control, "etag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/admin")
async def page(request: Request) -> Response:
    """The dashboard page (no data in it: everything comes from the admin API after sign-in)."""
    return _serve(_PAGE, request, "no-store")


@router.get("/admin/static/{name}")
async def static(name: str, request: Request) -> Response:
    asset = _ASSETS.get(name)
    if asset is None:
        return Response(
            b'{"error":"not found"}',
            status_code=404,
            media_type="application/json",
            headers=SECURITY_HEADERS,
        )
    return _serve(asset, request, "no-cache")
