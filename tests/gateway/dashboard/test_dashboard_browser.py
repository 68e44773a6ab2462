"""The admin dashboard in headless Chromium (Playwright) against a real gateway over HTTP.

A real uvicorn gateway on 127.0.0.1 with a migrated SQLite database; users register and log in
over HTTP; the system Chromium (``/usr/bin/chromium``, no ``playwright install``) drives the page:
a wrong token is refused, the right one shows users and sessions, a ban revokes the user's
sessions and refuses their logins (403), an unban lets them in again, a session is revoked, and
user-supplied text is rendered as text. Any console error (a CSP violation included) fails it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import Page, async_playwright, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.gateway.conftest import ADMIN_TOKEN, PASSWORD, register_body, settings_for
from tests.services import CHROMIUM_ARGS
from wavry.gateway import create_app

TIMEOUT_MS = 10_000


@pytest.fixture
async def gateway_url(tmp_path: Path, engine: AsyncEngine) -> AsyncIterator[str]:
    """A real gateway (uvicorn) on 127.0.0.1:<free port>, serving until the test ends."""
    from wavry.storage import upgrade

    await upgrade(engine)  # the template is migrated already; a no-op that proves it
    app = create_app(settings_for(tmp_path), engine=engine, run_background=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "the gateway did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def _login(http: httpx.AsyncClient, n: str) -> httpx.Response:
    return await http.post(
        "/auth/login", json={"email": f"user{n}@example.com", "password": PASSWORD}
    )


async def _register(http: httpx.AsyncClient, n: str, **kw: Any) -> dict[str, Any]:
    resp = await http.post("/auth/register", json=register_body(n, username=n, **kw))
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _row(page: Page, table: str, username: str) -> Any:
    return page.locator(f"#{table} tbody tr[data-username='{username}']")


async def test_dashboard_sign_in_ban_unban_revoke(
    gateway_url: str, chromium_path: str, tmp_path: Path
) -> None:
    hostile = '<img src=x onerror="window.__pwned=1">'
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
        alice = await _register(http, "alice")
        bob = await _register(http, "bob")
        await _register(http, "carol", display_name=hostile)
        alice_token = alice["token"]
        bob_token = bob["token"]
        alice_session = alice["session"]["id"]
        bob_session = bob["session"]["id"]

        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=chromium_path,
                headless=True,
                args=list(CHROMIUM_ARGS),
            )
            try:
                page = await context.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                outside: list[str] = []
                page.on(
                    "request",
                    lambda r: None if r.url.startswith(gateway_url) else outside.append(r.url),
                )

                await page.goto(f"{gateway_url}/admin")
                await expect(page.locator("body[data-ready='true']")).to_be_attached()

                # a wrong token: an error, no dashboard, nothing stored
                await page.fill("#token", "w" * 40)
                await page.click("#sign-in")
                await expect(page.locator("#login-error")).to_contain_text("Token rejected")
                await expect(page.locator("#app-view")).to_be_hidden()
                assert await page.evaluate("sessionStorage.length") == 0

                # the right token: users and sessions
                await page.fill("#token", ADMIN_TOKEN)
                await page.click("#sign-in")
                await expect(page.locator("#app-view")).to_be_visible()
                await expect(page.locator("#login-view")).to_be_hidden()
                await expect(page.locator("#stat-users")).to_have_text("3")
                for name in ("alice", "bob", "carol"):
                    await expect(_row(page, "overview-users", name)).to_have_count(1)
                await expect(_row(page, "overview-sessions", "alice")).to_have_count(1)
                await expect(
                    page.locator(f"#overview-sessions tr[data-session-id='{alice_session}']")
                ).to_have_count(1)
                # user text is text: the hostile display name shows verbatim and never runs
                await expect(
                    _row(page, "overview-users", "carol").locator("td").nth(1)
                ).to_have_text(hostile)
                assert await page.evaluate("window.__pwned") is None
                assert await page.evaluate("localStorage.length") == 0
                assert (
                    await page.evaluate("sessionStorage.getItem('wavry-admin-token')")
                    == ADMIN_TOKEN
                )

                # ban alice for 2 hours: her session disappears, the ban is listed
                await (
                    page.locator("#overview-users").get_by_role("button", name="Ban alice").click()
                )
                await expect(page.locator("#ban-dialog")).to_be_visible()
                await page.click("#ban-confirm")  # no reason: refused in the page
                await expect(page.locator("#ban-error")).to_contain_text("reason is required")
                await page.fill("#ban-reason", "spamming hosts")
                await page.fill("#ban-hours", "2")
                await page.click("#ban-confirm")
                await expect(page.locator("#ban-dialog")).to_be_hidden()
                await expect(page.locator("#notice")).to_contain_text("Banned alice for 2 h")
                await expect(_row(page, "overview-sessions", "alice")).to_have_count(0)
                await expect(_row(page, "overview-bans", "alice")).to_contain_text("spamming hosts")
                await expect(_row(page, "overview-users", "alice")).to_contain_text("banned")
                await expect(_row(page, "overview-sessions", "bob")).to_have_count(1)

                # ... and over HTTP: her token is dead and her login refused
                me = await http.get("/auth/me", headers={"Authorization": f"Bearer {alice_token}"})
                assert me.status_code == 401, me.text
                refused = await _login(http, "alice")
                assert refused.status_code == 403, refused.text
                assert "spamming hosts" in refused.json()["error"]
                assert (await _login(http, "bob")).status_code == 200

                # unban: she logs in again
                await (
                    page.locator("#overview-bans").get_by_role("button", name="Unban alice").click()
                )
                await expect(page.locator("#notice")).to_contain_text("Unbanned alice")
                await expect(_row(page, "overview-bans", "alice")).to_have_count(0)
                await expect(_row(page, "overview-users", "alice")).to_contain_text("active")
                again = await _login(http, "alice")
                assert again.status_code == 200, again.text

                # revoke one of bob's sessions from the Sessions view
                await page.get_by_role("button", name="Sessions", exact=True).click()
                await page.fill("#sessions-user", bob["user_id"])
                await page.locator("#sessions-filter").get_by_role("button").click()
                revoke = page.get_by_role("button", name=f"Revoke session {bob_session}")
                await revoke.click()
                await expect(page.locator("#notice")).to_contain_text(
                    f"Revoked session {bob_session}"
                )
                await expect(
                    page.locator(f"#sessions-table tr[data-session-id='{bob_session}']")
                ).to_have_count(0)
                me = await http.get("/auth/me", headers={"Authorization": f"Bearer {bob_token}"})
                assert me.status_code == 401, me.text

                # the audit view lists the admin actions
                await page.get_by_role("button", name="Audit log").click()
                for action in ("ban_user", "unban_user", "revoke_session"):
                    await expect(
                        page.locator(f"#audit-table tr[data-action='{action}']")
                    ).to_have_count(1)

                # the token survives a reload of the tab, and signing out forgets it
                await page.reload()
                await expect(page.locator("#app-view")).to_be_visible()
                await page.click("#sign-out")
                await expect(page.locator("#login-view")).to_be_visible()
                assert await page.evaluate("sessionStorage.length") == 0

                # the one expected failure: the wrong token's 401
                unexpected = [e for e in errors if "status of 401" not in e]
                assert unexpected == [] and len(errors) == 1, errors
                assert outside == [], outside

                # the policy is live: an HTML-string sink throws (Trusted Types)
                sink = await page.evaluate(
                    "(() => { try { document.createElement('div').innerHTML = '<b>x</b>';"
                    " return 'allowed'; } catch (e) { return e.name; } })()"
                )
                assert sink == "TypeError"
            finally:
                await context.close()
