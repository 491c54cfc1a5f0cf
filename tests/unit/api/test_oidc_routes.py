"""The OIDC routes against real providers, in-process: ``oidc-provider-mock`` (its real Flask
app, its authorization form posted as a browser would) and a tiny provider made of authlib's
own server classes that requires PKCE. The routes run in Starlette, authlib's client talks to
the providers through ``WsgiBridge`` (no port, no mock of authlib)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import oidc_provider_mock
import pytest
from sqlmodel import select
from starlette.applications import Starlette

from elexirion_app import config
from elexirion_app.api import oidc_routes
from elexirion_app.db.engine import session_scope
from elexirion_app.db.models import AppUser, AuditEvent, OidcIdentity, OidcPending, utcnow
from elexirion_app.services.accounts import auth, oidc, rate_limits
from tests.support.oidc_idp import CLIENT_ID, CLIENT_SECRET, Idp, WsgiBridge, pkce_provider

MOCK = "http://127.0.0.1:9"  # served in-process only: nothing listens there
PKCE = "http://localhost:9"
PUBLIC = "http://app.test"


@dataclass
class World:
    browser: httpx.AsyncClient
    mock: Any  # the oidc-provider-mock Flask app
    idp: Idp  # the PKCE provider's knobs


def users() -> list[oidc_provider_mock.User]:
    return [
        oidc_provider_mock.User(
            sub="alice-sub", claims={"email": "alice@example.com", "email_verified": True}
        ),
        oidc_provider_mock.User(
            sub="mallory-sub", claims={"email": "alice@example.com", "email_verified": False}
        ),
        oidc_provider_mock.User(
            sub="zed-sub", claims={"email": "zed@example.com", "email_verified": True}
        ),
    ]


def provider_env(name: str, issuer: str) -> dict[str, str]:
    p = f"ELEXIRION_OIDC_{name.upper()}_"
    return {
        p + "ISSUER": issuer,
        p + "CLIENT_ID": CLIENT_ID,
        p + "CLIENT_SECRET": CLIENT_SECRET,
        p + "DISPLAY_NAME": name.title(),
    }


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("ELEXIRION_PUBLIC_URL", PUBLIC)
    monkeypatch.setenv("ELEXIRION_OIDC_PROVIDERS", "mock,pkce")
    for key, value in {**provider_env("mock", MOCK), **provider_env("pkce", PKCE)}.items():
        monkeypatch.setenv(key, value)
    yield monkeypatch
    config.get_settings.cache_clear()
    oidc.reset()
    rate_limits.reset()


@pytest.fixture
async def world(env: pytest.MonkeyPatch) -> AsyncIterator[World]:
    config.get_settings.cache_clear()
    oidc.reset()
    rate_limits.reset()
    mock = oidc_provider_mock.app(user_claims=users(), require_nonce=True)
    idp = Idp(issuer=PKCE, claims={"pat": {"email": "pat@example.com", "email_verified": True}})
    idp.subject = "pat"
    bridge = WsgiBridge({"127.0.0.1:9": mock, "localhost:9": pkce_provider(idp)})
    env.setitem(oidc.CLIENT_KWARGS, "transport", bridge)
    app = Starlette(routes=oidc_routes.ROUTES)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as browser:
        yield World(browser, mock, idp)


def set_cookie(resp: httpx.Response, name: str) -> str:
    lines = [v for v in resp.headers.get_list("set-cookie") if v.startswith(name + "=")]
    assert len(lines) == 1, resp.headers.get_list("set-cookie")
    return lines[0]


def cookie_value(line: str) -> str:
    return line.split(";", 1)[0].split("=", 1)[1]


async def start(world: World, provider: str) -> tuple[str, str]:
    """The provider's authorization URL and the pending-login cookie."""
    resp = await world.browser.get(f"/auth/oidc/{provider}/login")
    assert resp.status_code == 302, resp.text
    return resp.headers["location"], cookie_value(set_cookie(resp, oidc_routes.PENDING_COOKIE))


def mock_authorize(world: World, url: str, sub: str) -> str:
    """Post the mock provider's authorization form for ``sub``: the callback URL it sends."""
    with httpx2.Client(transport=httpx2.WSGITransport(app=world.mock)) as client:
        form = client.get(url)
        assert form.status_code == 200 and "Authorize" in form.text
        resp = client.post(url, data={"sub": sub})
    assert resp.status_code == 302, resp.text
    return resp.headers["location"]


def pkce_authorize(url: str, idp: Idp) -> str:
    with httpx2.Client(transport=httpx2.WSGITransport(app=pkce_provider(idp))) as client:
        resp = client.get(url)
    assert resp.status_code == 302, resp.text
    return resp.headers["location"]


async def back(world: World, callback_url: str, cookie: str | None) -> httpx.Response:
    parts = urlsplit(callback_url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC
    headers = {"Cookie": f"{oidc_routes.PENDING_COOKIE}={cookie}"} if cookie else {}
    return await world.browser.get(f"{parts.path}?{parts.query}", headers=headers)


def error_of(resp: httpx.Response) -> str:
    assert resp.status_code == 303, resp.text
    location = urlsplit(resp.headers["location"])
    assert location.path == "/login"
    return parse_qs(location.query)["error"][0]


def audits(action: str) -> list[tuple[str, str]]:
    with session_scope() as s:
        rows = s.exec(select(AuditEvent).where(AuditEvent.action == action)).all()
        return [(r.outcome, r.target) for r in rows]


def pending_rows() -> list[OidcPending]:
    with session_scope() as s:
        return list(s.exec(select(OidcPending)).all())


async def test_login_start_redirects_with_pkce_state_nonce_and_a_lax_cookie(world: World) -> None:
    url, key = await start(world, "mock")
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(MOCK + "/oauth2/authorize?")
    assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID
    assert q["redirect_uri"] == f"{PUBLIC}/auth/oidc/mock/callback"
    assert set(q["scope"].split()) == {"openid", "email", "profile"}
    (row,) = pending_rows()
    assert row.state == q["state"] and row.nonce == q["nonce"] and len(row.state) >= 20
    digest = hashlib.sha256(row.code_verifier.encode()).digest()
    assert q["code_challenge_method"] == "S256"
    assert q["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()  # the raw key is not stored
    resp = await world.browser.get("/auth/oidc/mock/login")
    line = set_cookie(resp, oidc_routes.PENDING_COOKIE).lower()
    assert "httponly" in line and "samesite=lax" in line and "path=/auth/oidc/" in line
    assert "max-age=600" in line


def proven(user: auth.UserInfo) -> auth.UserInfo:
    """Mark the account's email proven (as ``users create`` does): OIDC may link it by email."""
    with session_scope() as s:
        row = s.get(AppUser, user.id)
        assert row is not None
        row.email_verified_at = utcnow()
        s.add(row)
    return user


async def test_mock_provider_signs_in_with_the_session_cookie_then_links(world: World) -> None:
    with session_scope() as s:
        alice = auth.register(s, "alice@example.com", "password-123")
    proven(alice)
    url, key = await start(world, "mock")
    resp = await back(world, mock_authorize(world, url, "alice-sub"), key)
    assert resp.status_code == 303 and resp.headers["location"] == "/chat"
    line = set_cookie(resp, auth.SESSION_COOKIE)
    assert "httponly" in line.lower() and "samesite=strict" in line.lower()
    assert "elx_oidc=" in " ".join(resp.headers.get_list("set-cookie"))  # cleared
    with session_scope() as s:
        assert auth.user_for_token(s, cookie_value(line)) == alice
    assert audits("oidc_link") == [("ok", "alice@example.com")]
    # Second login: the same account through the link, no second link.
    url, key = await start(world, "mock")
    resp = await back(world, mock_authorize(world, url, "alice-sub"), key)
    with session_scope() as s:
        assert auth.user_for_token(s, cookie_value(set_cookie(resp, "elx_session"))) == alice
        assert len(s.exec(select(OidcIdentity)).all()) == 1
    assert audits("oidc_login") == [("ok", "alice@example.com")] * 2
    assert pending_rows() == []


async def test_unverified_email_is_refused_and_audited(world: World) -> None:
    with session_scope() as s:
        auth.register(s, "alice@example.com", "password-123")
    url, key = await start(world, "mock")
    resp = await back(world, mock_authorize(world, url, "mallory-sub"), key)
    assert error_of(resp) == "oidc_unverified"
    assert auth.SESSION_COOKIE not in resp.headers.get("set-cookie", "")
    assert audits("oidc_login") == [("refused", "alice@example.com")]
    with session_scope() as s:
        assert s.exec(select(OidcIdentity)).all() == []


async def test_callback_needs_this_browsers_cookie_and_state_once(world: World) -> None:
    url_a, key_a = await start(world, "mock")
    url_b, key_b = await start(world, "mock")
    callback_a = mock_authorize(world, url_a, "zed-sub")
    assert error_of(await back(world, callback_a, None)) == "oidc_state"  # no cookie
    assert error_of(await back(world, callback_a, key_b)) == "oidc_state"  # B's cookie
    # B's pending login was consumed by that try; A's still works, once.
    callback_b = mock_authorize(world, url_b, "zed-sub")
    assert error_of(await back(world, callback_b, key_b)) == "oidc_state"
    assert (await back(world, callback_a, key_a)).headers["location"] == "/chat"
    assert error_of(await back(world, callback_a, key_a)) == "oidc_state"  # replay
    assert ("ok", "zed@example.com") in audits("oidc_login")
    assert [o for o, _ in audits("oidc_login")].count("failed") == 4


async def test_pkce_verifier_is_sent_and_a_wrong_one_is_refused(world: World) -> None:
    url, key = await start(world, "pkce")
    resp = await back(world, pkce_authorize(url, world.idp), key)
    assert resp.headers["location"] == "/chat", resp.headers
    sent = world.idp.token_requests[-1]
    assert len(sent["code_verifier"]) >= 43 and world.idp.token_errors == []
    # A wrong verifier in the pending login: the provider refuses the exchange.
    url, key = await start(world, "pkce")
    with session_scope() as s:
        row = s.exec(select(OidcPending)).one()
        row.code_verifier = "x" * 64
        s.add(row)
    assert error_of(await back(world, pkce_authorize(url, world.idp), key)) == "oidc_failed"
    assert world.idp.token_errors == ["invalid_grant"]


def test_pkce_provider_refuses_a_token_exchange_without_or_with_a_wrong_verifier() -> None:
    """authlib's server (rfc7636.CodeChallenge) against raw token requests."""
    idp = Idp(issuer=PKCE, claims={"pat": {"email": "pat@example.com"}}, subject="pat")
    app = pkce_provider(idp)
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": "http://app.test/cb",
        "scope": "openid email",
        "state": "s" * 20,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    with httpx2.Client(transport=httpx2.WSGITransport(app=app), base_url=PKCE) as client:

        def exchange(**extra: str) -> httpx2.Response:
            location = client.get("/authorize", params=query).headers["location"]
            code = parse_qs(urlsplit(location).query)["code"][0]
            form = {"grant_type": "authorization_code", "code": code, **extra}
            form["redirect_uri"] = query["redirect_uri"]
            return client.post("/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET))

        missing, wrong = exchange(), exchange(code_verifier="w" * 50)
        right = exchange(code_verifier=verifier)
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    assert right.status_code == 200 and "id_token" in right.json()


@pytest.mark.parametrize(
    ("alg", "advertised", "where"),
    [
        ("HS256", ["RS256", "HS256"], "callback"),  # HMAC with a shared/public secret
        ("RS256", ["HS256"], "start"),  # nothing in common: the provider is refused
    ],
)
async def test_id_token_algorithms_are_pinned(
    world: World, alg: str, advertised: list[str], where: str
) -> None:
    world.idp.alg, world.idp.advertised_algs = alg, advertised
    if where == "start":
        assert error_of(await world.browser.get("/auth/oidc/pkce/login")) == "oidc_failed"
        return
    url, key = await start(world, "pkce")
    assert error_of(await back(world, pkce_authorize(url, world.idp), key)) == "oidc_failed"
    assert world.idp.token_errors == []  # the exchange worked; the ID token was refused
    with session_scope() as s:
        assert s.exec(select(AppUser)).all() == []


async def test_an_id_token_for_another_client_is_refused(world: World) -> None:
    world.idp.override = {"aud": ["some-other-client"], "azp": CLIENT_ID}
    url, key = await start(world, "pkce")
    assert error_of(await back(world, pkce_authorize(url, world.idp), key)) == "oidc_failed"
    world.idp.override = {}
    url, key = await start(world, "pkce")
    assert (await back(world, pkce_authorize(url, world.idp), key)).headers["location"] == "/chat"


async def test_a_changed_nonce_fails_the_id_token(world: World) -> None:
    url, key = await start(world, "pkce")
    with session_scope() as s:
        row = s.exec(select(OidcPending)).one()
        row.nonce = "someone-elses-nonce"
        s.add(row)
    assert error_of(await back(world, pkce_authorize(url, world.idp), key)) == "oidc_failed"


async def test_discovery_naming_another_issuer_is_refused(world: World) -> None:
    world.idp.issuer = "http://localhost:9/other"
    assert error_of(await world.browser.get("/auth/oidc/pkce/login")) == "oidc_failed"


async def test_unknown_or_unreachable_provider_and_denial(
    world: World, env: pytest.MonkeyPatch
) -> None:
    resp = await world.browser.get("/auth/oidc/nope/login", headers={"Accept": "application/json"})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "oidc_provider"
    assert error_of(await world.browser.get("/auth/oidc/nope/callback")) == "oidc_provider"
    url, key = await start(world, "mock")
    state = parse_qs(urlsplit(url).query)["state"][0]
    denied = f"{PUBLIC}/auth/oidc/mock/callback?error=access_denied&state={state}"
    assert error_of(await back(world, denied, key)) == "oidc_denied"
    env.setenv("ELEXIRION_OIDC_PKCE_ISSUER", "http://127.0.0.1:1")
    config.get_settings.cache_clear()
    resp = await world.browser.get("/auth/oidc/pkce/login")
    assert error_of(resp) == "oidc_unreachable"


async def test_signup_off_and_disabled_accounts_are_refused(
    world: World, env: pytest.MonkeyPatch
) -> None:
    env.setenv("ELEXIRION_OIDC_SIGNUP", "false")
    config.get_settings.cache_clear()
    url, key = await start(world, "mock")
    assert error_of(await back(world, mock_authorize(world, url, "zed-sub"), key)) == (
        "oidc_no_account"
    )
    with session_scope() as s:
        user = auth.register(s, "zed@example.com", "password-123")
        row = s.get(AppUser, user.id)
        assert row is not None
        row.is_active = False
        s.add(row)
    url, key = await start(world, "mock")
    assert error_of(await back(world, mock_authorize(world, url, "zed-sub"), key)) == "disabled"
    assert [o for o, _ in audits("oidc_login")] == ["refused", "refused"]


async def test_login_start_and_callback_are_rate_limited_per_address(
    world: World, env: pytest.MonkeyPatch
) -> None:
    env.setenv("ELEXIRION_LIMIT_OIDC_CLIENT", "3/minute")
    rate_limits.reset()
    for _ in range(3):
        await start(world, "mock")
    resp = await world.browser.get("/auth/oidc/mock/login")
    assert error_of(resp) == "limited" and "retry=" in resp.headers["location"]
    resp = await world.browser.get(
        "/auth/oidc/mock/callback?state=x&code=y", headers={"Accept": "application/json"}
    )
    assert resp.status_code == 429 and int(resp.headers["retry-after"]) > 0


# --- connecting a provider from Settings (the pre-account hijack fix) -------------------------


async def connect_start(
    world: World, provider: str, token: str | None, site: str = "same-origin"
) -> httpx.Response:
    """The Settings link followed: a top-level navigation (no Origin; Sec-Fetch-Site)."""
    headers = {"Sec-Fetch-Site": site}
    if token:
        headers["Cookie"] = f"{auth.SESSION_COOKIE}={token}"
    return await world.browser.get(f"/auth/oidc/{provider}/connect", headers=headers)


async def back_with(world: World, callback_url: str, cookies: dict[str, str]) -> httpx.Response:
    parts = urlsplit(callback_url)
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return await world.browser.get(f"{parts.path}?{parts.query}", headers={"Cookie": header})


def session_for(user: auth.UserInfo) -> str:
    with session_scope() as s:
        return auth.create_session(s, user.id)


def where(resp: httpx.Response) -> tuple[str, dict[str, list[str]]]:
    assert resp.status_code == 303, resp.text
    location = urlsplit(resp.headers["location"])
    return location.path, parse_qs(location.query)


async def test_a_self_registered_account_connects_from_settings_then_signs_in(
    world: World,
) -> None:
    with session_scope() as s:
        alice = auth.register(s, "alice@example.com", "password-123")  # never proven
    url, key = await start(world, "mock")
    refused = await back(world, mock_authorize(world, url, "alice-sub"), key)
    assert error_of(refused) == "oidc_link_required"
    assert auth.SESSION_COOKIE not in refused.headers.get("set-cookie", "")

    # Signed in with the password, Alice connects the provider from Settings.
    resp = await connect_start(world, "mock", session_for(alice))
    assert resp.status_code == 303 and resp.headers["location"].startswith(MOCK)
    for name in (oidc_routes.PENDING_COOKIE, "elx_oidc_link"):
        line = set_cookie(resp, name).lower()
        assert "httponly" in line and "samesite=lax" in line and "path=/auth/oidc/" in line
    cookies = {
        oidc_routes.PENDING_COOKIE: cookie_value(set_cookie(resp, oidc_routes.PENDING_COOKIE)),
        "elx_oidc_link": cookie_value(set_cookie(resp, "elx_oidc_link")),
    }
    done = await back_with(world, mock_authorize(world, resp.headers["location"], "alice-sub"),
                           cookies)  # fmt: skip
    assert where(done) == ("/settings", {"connected": ["mock"]})
    assert auth.SESSION_COOKIE not in done.headers.get("set-cookie", "")  # no new session
    with session_scope() as s:
        [link] = s.exec(select(OidcIdentity)).all()
        row = s.get(AppUser, alice.id)
        assert row is not None and row.email_verified_at is not None  # the provider proved it
    assert link.user_id == alice.id and link.subject == "alice-sub"
    assert audits("oidc_link") == [("ok", "alice@example.com")]

    # From now on the provider signs Alice in.
    url, key = await start(world, "mock")
    resp = await back(world, mock_authorize(world, url, "alice-sub"), key)
    assert resp.headers["location"] == "/chat"
    with session_scope() as s:
        assert auth.user_for_token(s, cookie_value(set_cookie(resp, "elx_session"))) == alice


async def test_connect_needs_a_live_session_and_our_origin(world: World) -> None:
    with session_scope() as s:
        alice = auth.register(s, "alice@example.com", "password-123")
    token = session_for(alice)
    anonymous = await connect_start(world, "mock", None)
    assert where(anonymous)[0] == "/login"
    forged = await connect_start(world, "mock", "not-a-session")
    assert where(forged)[0] == "/login"
    # (a browser sends no SameSite=Strict cookie with a cross-site navigation; a script that
    # has the cookie anyway is still refused by the fetch metadata)
    cross_site = await connect_start(world, "mock", token, site="cross-site")
    assert where(cross_site) == ("/settings", {"error": ["origin"]})
    unknown = await connect_start(world, "nope", token)
    assert where(unknown)[0] == "/login"
    assert pending_rows() == []  # nothing was started


@pytest.mark.parametrize("tamper", ["other-user", "other-login", "garbage", "no-pending"])
async def test_a_forged_or_foreign_link_cookie_links_nothing(world: World, tamper: str) -> None:
    with session_scope() as s:
        alice = auth.register(s, "alice@example.com", "password-123")
        mallory = auth.register(s, "mallory@example.com", "password-123")
    resp = await connect_start(world, "mock", session_for(mallory))
    key = cookie_value(set_cookie(resp, oidc_routes.PENDING_COOKIE))
    link = cookie_value(set_cookie(resp, "elx_oidc_link"))
    other = await connect_start(world, "mock", session_for(mallory))
    other_link = cookie_value(set_cookie(other, "elx_oidc_link"))
    forged = {
        "other-user": f"{alice.id}.{link.split('.', 1)[1]}",  # Mallory's MAC on Alice's id
        "other-login": other_link,  # made for another pending login
        "garbage": "1." + "0" * 64,
        "no-pending": link,
    }[tamper]
    cookies = {"elx_oidc_link": forged}
    if tamper != "no-pending":
        cookies[oidc_routes.PENDING_COOKIE] = key
    done = await back_with(world, mock_authorize(world, resp.headers["location"], "alice-sub"),
                           cookies)  # fmt: skip
    assert where(done) == ("/settings", {"error": ["oidc_link_expired"]})
    with session_scope() as s:
        assert s.exec(select(OidcIdentity)).all() == []


async def test_an_identity_connected_to_someone_else_is_refused(world: World) -> None:
    with session_scope() as s:
        alice = auth.register(s, "alice@example.com", "password-123")
        bob = auth.register(s, "bob@example.com", "password-123")
    proven(alice)
    url, key = await start(world, "mock")
    await back(world, mock_authorize(world, url, "alice-sub"), key)  # linked to Alice
    resp = await connect_start(world, "mock", session_for(bob))
    cookies = {
        oidc_routes.PENDING_COOKIE: cookie_value(set_cookie(resp, oidc_routes.PENDING_COOKIE)),
        "elx_oidc_link": cookie_value(set_cookie(resp, "elx_oidc_link")),
    }
    done = await back_with(world, mock_authorize(world, resp.headers["location"], "alice-sub"),
                           cookies)  # fmt: skip
    assert where(done) == ("/settings", {"error": ["oidc_linked_elsewhere"]})
    with session_scope() as s:
        assert [r.user_id for r in s.exec(select(OidcIdentity)).all()] == [alice.id]
