"""The dashboard's HTTP surface: the page and its two assets, strict headers, nothing else."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx

from wavry.gateway.dashboard import CONTENT_SECURITY_POLICY


class _Audit(HTMLParser):
    """Collects what a strict CSP would refuse or what would reach outside the origin."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"inline handler {name} on <{tag}>")
            if name == "style":
                self.problems.append(f"inline style on <{tag}>")
            if name in ("src", "href", "action") and value and re.match(r"^(\w+:)?//", value):
                self.problems.append(f"external {name}={value}")
            if value and value.strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL on <{tag}>")
        if tag == "script":
            if not attributes.get("src"):
                self._in_script = True
                self.problems.append("inline <script>")
            else:
                self.scripts.append(attributes["src"] or "")
        if tag == "style":
            self.problems.append("inline <style>")
        if tag == "link" and attributes.get("rel") == "stylesheet":
            self.styles.append(attributes.get("href") or "")


async def test_page_and_assets_carry_a_strict_policy(client: httpx.AsyncClient) -> None:
    resp = await client.get("/admin")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    csp = resp.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    for name in ("script-src", "style-src", "connect-src"):
        assert directives[name] == "'self'", name
    assert "unsafe" not in csp
    assert directives["frame-ancestors"] == "'none'"
    assert directives["require-trusted-types-for"] == "'script'"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["referrer-policy"] == "no-referrer"
    assert resp.headers["cache-control"] == "no-store"

    audit = _Audit()
    audit.feed(resp.text)
    assert audit.problems == []
    assert audit.scripts == ["/admin/static/dashboard.js"]
    assert audit.styles == ["/admin/static/dashboard.css"]

    for path, kind in ((audit.scripts[0], "text/javascript"), (audit.styles[0], "text/css")):
        asset = await client.get(path)
        assert asset.status_code == 200
        assert asset.headers["content-type"].startswith(kind)
        assert asset.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert asset.headers["x-content-type-options"] == "nosniff"
        again = await client.get(path, headers={"if-none-match": asset.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


async def test_script_never_builds_html_from_strings(client: httpx.AsyncClient) -> None:
    js = (await client.get("/admin/static/dashboard.js")).text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "localStorage"):  # fmt: skip
        assert sink not in js, sink
    assert "sessionStorage" in js
    assert not re.search(r"https?://", js), "the script reaches outside its origin"


async def test_only_the_known_assets_are_served(client: httpx.AsyncClient) -> None:
    for name in ("index.html", "__init__.py", "dashboard.js.map", "x", "%2e%2e", "DASHBOARD.JS"):
        resp = await client.get(f"/admin/static/{name}")
        assert resp.status_code == 404, name
        assert resp.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for path in ("/admin/static/..%2f__init__.py", "/admin/static/../__init__.py",
                 "/admin/static/static/index.html"):  # fmt: skip
        assert (await client.get(path)).status_code == 404, path


async def test_the_page_is_not_in_the_api_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/admin" not in paths and not any(p.startswith("/admin/static") for p in paths)
    assert "/admin/api/overview" in paths
