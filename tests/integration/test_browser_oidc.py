"""Single sign-on end to end in Chromium: the served app (port 3185) configured with a REAL
OpenID provider, ``oidc-provider-mock``, served on 127.0.0.1:3190 inside the test. Its
authorization form is where the subject is picked (predefined users with their claims)."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import oidc_provider_mock
import pytest
import werkzeug.serving
from playwright.sync_api import Page, expect

from tests.support import appserver

pytestmark = pytest.mark.browser

APP_PORT = int(os.environ.get("ELEXIRION_OIDC_APP_PORT", "3185"))
IDP_PORT = int(os.environ.get("ELEXIRION_OIDC_IDP_PORT", "3190"))
IDP = f"http://127.0.0.1:{IDP_PORT}"
USERS = [
    oidc_provider_mock.User(
        sub="olga-sub",
        claims={"email": "olga@example.com", "email_verified": True, "name": "Olga"},
    ),
    oidc_provider_mock.User(
        sub="bob-sub", claims={"email": "bob@example.com", "email_verified": True}
    ),
    # Claims to own Olga's address, unverified: must not get in.
    oidc_provider_mock.User(
        sub="mallory-sub", claims={"email": "olga@example.com", "email_verified": False}
    ),
]


@dataclass(frozen=True)
class Served:
    url: str
    data: Path

    def rows(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.data / "app.db") as conn:
            return list(conn.execute(sql, args).fetchall())


@pytest.fixture(scope="module")
def idp() -> Iterator[str]:
    server = werkzeug.serving.make_server(
        "127.0.0.1", IDP_PORT, oidc_provider_mock.app(user_claims=USERS), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield IDP
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture(scope="module")
def served(idp: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("oidcapp")
    env = {
        "ELEXIRION_OIDC_PROVIDERS": "mock",
        "ELEXIRION_OIDC_MOCK_ISSUER": idp,
        "ELEXIRION_OIDC_MOCK_CLIENT_ID": "elexirion-e2e",
        "ELEXIRION_OIDC_MOCK_CLIENT_SECRET": "e2e-secret",
        "ELEXIRION_OIDC_MOCK_DISPLAY_NAME": "Mock IdP",
    }
    with appserver.serving(data, APP_PORT, ELEXIRION_CHAT_TOKEN_DELAY_S="0", **env):
        yield Served(f"http://localhost:{APP_PORT}", data)


def goto(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#hydrated", state="attached", timeout=30_000)


def sign_in_with_idp(page: Page, served: Served, sub: str) -> None:
    """Login page → "Continue with Mock IdP" → the provider's form → pick ``sub``."""
    goto(page, f"{served.url}/login")
    page.click("#oidc-mock")
    expect(page).to_have_url(re.compile(re.escape(IDP) + "/oauth2/authorize"), timeout=20_000)
    expect(page.locator("h1")).to_have_text("Authorize Client")
    page.click(f'button[name="sub"][value="{sub}"]')


def logged_in_as(page: Page, email: str) -> None:
    expect(page).to_have_url(re.compile(r"/chat/?$"), timeout=30_000)
    page.wait_for_selector("#hydrated", state="attached")
    expect(page.locator("#current-user")).to_have_text(email, timeout=20_000)


def log_out(page: Page) -> None:
    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/login/?$"), timeout=20_000)
    page.wait_for_selector("#hydrated", state="attached")


def test_login_page_shows_the_provider(page: Page, served: Served, shots: Path) -> None:
    goto(page, f"{served.url}/login")
    button = page.locator("#oidc-mock")
    expect(button).to_have_text("Continue with Mock IdP")
    assert button.get_attribute("href") == "/auth/oidc/mock/login"
    page.screenshot(path=str(shots / "login-oidc.png"), full_page=True)


def test_sign_in_sign_up_then_the_same_account_again(page: Page, served: Served) -> None:
    sign_in_with_idp(page, served, "olga-sub")
    logged_in_as(page, "olga@example.com")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["elx_session"]["httpOnly"] and cookies["elx_session"]["sameSite"] == "Strict"
    assert "elx_session" not in page.evaluate("document.cookie")
    assert "elx_oidc" not in cookies  # the pending-login cookie is gone once used
    log_out(page)

    sign_in_with_idp(page, served, "olga-sub")
    logged_in_as(page, "olga@example.com")
    users = served.rows("select id from app_user where email = ?", "olga@example.com")
    links = served.rows("select user_id, issuer, subject from oidc_identity")
    assert len(users) == 1 and links == [(users[0][0], IDP, "olga-sub")]
    assert served.rows("select count(*) from oidc_pending") == [(0,)]


def test_a_self_registered_account_connects_the_provider_from_settings(
    page: Page, served: Served, shots: Path
) -> None:
    """Bob registered with a password (his email never proven): the provider's first sign-in
    is refused with the way out, never linked into the account (a squatter's, for all we
    know); after a password sign-in Bob connects the provider in Settings, then it signs him
    in."""
    resp = httpx.post(
        f"{served.url}/auth/register",
        data={"email": "bob@example.com", "password": "password-123"},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    bob = int(resp.json()["user"]["id"])
    sign_in_with_idp(page, served, "bob-sub")
    expect(page).to_have_url(re.compile(r"/login/?\?error=oidc_link_required"), timeout=30_000)
    page.wait_for_selector("#hydrated", state="attached")
    expect(page.locator("#login-error")).to_contain_text("connect this provider in Settings")
    assert served.rows("select count(*) from oidc_identity where subject = 'bob-sub'") == [(0,)]

    page.fill("#login-email", "bob@example.com")
    page.fill("#login-password", "password-123")
    page.click("#login-submit")
    logged_in_as(page, "bob@example.com")
    goto(page, f"{served.url}/settings")
    page.click("#connect-mock")
    expect(page).to_have_url(re.compile(re.escape(IDP) + "/oauth2/authorize"), timeout=20_000)
    page.click('button[name="sub"][value="bob-sub"]')
    expect(page).to_have_url(re.compile(r"/settings/?\?connected=mock"), timeout=30_000)
    page.wait_for_selector("#hydrated", state="attached")
    expect(page.locator("#settings-message")).to_contain_text("Connected Mock IdP")
    expect(page.locator("#identities")).to_contain_text("bob@example.com")
    expect(page.locator("#connect-mock")).to_be_disabled()  # now a disabled "connected" button
    assert not any(c["name"] == "elx_oidc_link" for c in page.context.cookies())
    assert served.rows("select user_id from oidc_identity where subject = 'bob-sub'") == [(bob,)]
    page.screenshot(path=str(shots / "settings-connected.png"), full_page=True)

    log_out(page)
    sign_in_with_idp(page, served, "bob-sub")
    logged_in_as(page, "bob@example.com")


def test_an_unverified_email_is_refused_with_a_message(
    page: Page, served: Served, shots: Path
) -> None:
    sign_in_with_idp(page, served, "mallory-sub")
    expect(page).to_have_url(re.compile(r"/login/?\?error=oidc_unverified"), timeout=30_000)
    page.wait_for_selector("#hydrated", state="attached")
    expect(page.locator("#login-error")).to_contain_text("has not verified your email")
    assert not any(c["name"] == "elx_session" for c in page.context.cookies())
    assert served.rows("select count(*) from oidc_identity where subject = 'mallory-sub'") == [(0,)]
    page.screenshot(path=str(shots / "login-oidc-refused.png"), full_page=True)


def test_a_callback_without_the_browsers_pending_login_is_refused(
    page: Page, served: Served
) -> None:
    goto(page, f"{served.url}/auth/oidc/mock/callback?code=stolen&state=guessed")
    expect(page).to_have_url(re.compile(r"/login/?\?error=oidc_state"), timeout=30_000)
    expect(page.locator("#login-error")).to_contain_text("started in another browser")
