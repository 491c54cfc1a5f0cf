"""The auth routes: the only places the HttpOnly session cookie is set or cleared; limits
before any password check; forms from other origins refused (issue 7 items 2, 4)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from elexirion_app.api import auth_routes
from elexirion_app.config import get_settings
from elexirion_app.db.engine import session_scope
from elexirion_app.services.accounts import auth, rate_limits, tab_bindings

JSON = {"Accept": "application/json"}


@pytest.fixture
def client(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.delenv("REDIS_URL", raising=False)
    rate_limits.reset()
    app = Starlette(routes=auth_routes.ROUTES)
    with TestClient(app, base_url="http://localhost:3000", follow_redirects=False) as c:
        yield c
    rate_limits.reset()


def test_register_sets_an_httponly_strict_cookie_and_stores_only_its_hash(
    client: TestClient,
) -> None:
    resp = client.post("/auth/register", data={"email": "a@example.com", "password": "pw-123456"})
    assert resp.status_code == 303 and resp.headers["location"] == "/chat"
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http public URL
    token = resp.cookies["elx_session"]
    with session_scope() as s:
        assert auth.user_for_token(s, token) is not None
        from sqlmodel import select

        from elexirion_app.db.models import AuthSession

        stored = s.exec(select(AuthSession.token_hash)).all()
    assert token not in stored and auth.hash_token(token) in stored


def test_cookie_is_secure_behind_an_https_public_url(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELEXIRION_PUBLIC_URL", "https://elx.example")
    get_settings.cache_clear()
    resp = client.post("/auth/register", data={"email": "s@example.com", "password": "pw-123456"})
    assert "Secure" in resp.headers["set-cookie"]


def test_errors_come_back_as_codes_or_json(client: TestClient) -> None:
    client.post("/auth/register", data={"email": "b@example.com", "password": "pw-123456"})
    again = client.post("/auth/register", data={"email": "b@example.com", "password": "pw-123456"})
    assert again.status_code == 303
    # Back to the form with the code and the typed address (the form shows it again), never
    # the password.
    assert again.headers["location"] == "/register?error=exists&email=b%40example.com"
    wrong = client.post(
        "/auth/login", data={"email": "b@example.com", "password": "nope-nope"}, headers=JSON
    )
    assert wrong.status_code == 401
    assert wrong.json() == {"error": {"code": "credentials", "message": "Wrong email or password."}}
    assert "set-cookie" not in wrong.headers
    short = client.post("/auth/register", data={"email": "c@example.com", "password": "x"})
    assert short.headers["location"] == "/register?error=password&email=c%40example.com"
    typo = client.post("/auth/login", data={"email": "b@example.com", "password": "nope-nope"})
    assert typo.headers["location"] == "/login?error=credentials&email=b%40example.com"
    assert "nope" not in typo.headers["location"]
    long = client.post("/auth/login", data={"email": "x" * 300, "password": "nope-nope"})
    assert long.headers["location"] == "/login?error=credentials"  # too long to send back
    huge = client.post("/auth/login", content=b"a=" + b"x" * 100_000, headers=JSON)
    assert huge.status_code == 400
    junk = client.post(
        "/auth/login",
        content=b"[1, 2]",
        headers={**JSON, "content-type": "application/json"},
    )
    assert junk.status_code == 400


def test_forms_from_another_origin_are_refused(client: TestClient) -> None:
    for route in ("/auth/login", "/auth/register", "/auth/logout"):
        resp = client.post(
            route,
            data={"email": "d@example.com", "password": "pw-123456"},
            headers={"Origin": "https://evil.example"},
        )
        assert resp.status_code == 303 and "error=origin" in resp.headers["location"], route
    cross = client.post("/auth/login", data={}, headers={"Sec-Fetch-Site": "cross-site"})
    assert "error=origin" in cross.headers["location"]
    same = client.post(
        "/auth/login",
        data={"email": "d@example.com", "password": "x" * 9},
        headers={"Origin": "http://localhost:3000"},
    )
    assert "error=credentials" in same.headers["location"]


def test_logout_revokes_and_clears(client: TestClient) -> None:
    resp = client.post("/auth/register", data={"email": "e@example.com", "password": "pw-123456"})
    token = resp.cookies["elx_session"]
    out = client.post("/auth/logout", headers={"Cookie": f"elx_session={token}"})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert 'elx_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    with session_scope() as s:
        assert auth.user_for_token(s, token) is None


def test_account_limit_holds_across_spellings_of_the_email(client: TestClient) -> None:
    client.post("/auth/register", data={"email": "f@example.com", "password": "pw-123456"})
    for spelling in (
        "f@example.com",
        "F@EXAMPLE.COM",
        " f@example.com ",
        "f@Example.com",
        "F@example.com",
    ):
        client.post("/auth/login", data={"email": spelling, "password": "wrong-pw"}, headers=JSON)
    right = client.post(
        "/auth/login", data={"email": "f@example.com", "password": "pw-123456"}, headers=JSON
    )
    assert right.status_code == 429
    assert right.json()["error"]["code"] == "limited"
    assert int(right.headers["retry-after"]) >= 1


def test_forwarded_for_counts_only_behind_trusted_proxies() -> None:
    headers = {"x-forwarded-for": "1.1.1.1, 2.2.2.2"}
    assert rate_limits.client_address(("9.9.9.9", 1), headers, 0) == "9.9.9.9"
    assert rate_limits.client_address(("9.9.9.9", 1), headers, 1) == "2.2.2.2"
    assert rate_limits.client_address(("9.9.9.9", 1), headers, 2) == "1.1.1.1"
    assert rate_limits.client_address(("9.9.9.9", 1), headers, 3) == "9.9.9.9"


def test_session_token_from_cookie_headers() -> None:
    assert auth.token_from_cookie_header("a=1; elx_session=tok; b=2") == "tok"
    assert auth.token_from_cookie_header('x="unterminated; elx_session=tok') == "tok"
    assert auth.token_from_cookie_header("elx_session=" + "t" * 300) is None
    assert auth.token_from_cookie_header("x" * 20_000) is None
    assert auth.token_from_cookie_header(None) is None


# --- several workers: Redis holds the counts and the tab bindings ----------------------


REDIS = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379")
async def test_workers_share_limits_and_tab_bindings_through_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", REDIS)
    monkeypatch.setenv("ELEXIRION_LIMIT_LOGIN_ACCOUNT", "3/minute")
    get_settings.cache_clear()
    rate_limits.reset()
    tab_bindings.reset_local()
    key = uuid.uuid4().hex
    try:
        first = rate_limits.get_limits()
        for _ in range(3):
            assert (await first.hit("login_account", key)).allowed
        rate_limits.reset()  # "another worker": a new limiter over the same Redis
        second = rate_limits.get_limits()
        assert second is not first
        verdict = await second.check("login_account", key)
        assert not verdict.allowed and verdict.retry_after_s >= 1
        await tab_bindings.bind(f"tab-{key}", "session-hash")
        tab_bindings.reset_local()
        assert await tab_bindings.bound_session(f"tab-{key}") == "session-hash"
    finally:
        rate_limits.reset()
        tab_bindings.reset_local()
        get_settings.cache_clear()


def test_password_hashing_runs_on_its_own_pool(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the default executor the chat and Reflex share (bench/login_during_chat.py)."""
    import threading

    seen: list[str] = []
    real = auth.verify_password

    def spy(password_hash: str, password: str) -> bool:
        seen.append(threading.current_thread().name)
        return real(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", spy)
    client.post("/auth/register", data={"email": "p@example.com", "password": "pw-123456"})
    client.post("/auth/login", data={"email": "p@example.com", "password": "pw-123456"})
    assert seen and all(name.startswith("argon2") for name in seen)


async def test_a_burst_of_concurrent_wrong_passwords_is_counted_atomically(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the attacker's pass: every request of a burst passed the account check
    before any failure was counted (20 at once: 20 passwords checked; limit 5)."""
    import asyncio
    from collections import Counter

    import httpx

    monkeypatch.delenv("REDIS_URL", raising=False)
    rate_limits.reset()
    app = Starlette(routes=auth_routes.ROUTES)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:3000") as c:
        await c.post("/auth/register", data={"email": "g@example.com", "password": "pw-123456"})
        answers = await asyncio.gather(
            *(
                c.post(
                    "/auth/login",
                    data={"email": "g@example.com", "password": f"wrong-{i}"},
                    headers=JSON,
                )
                for i in range(20)
            )
        )
    assert Counter(a.status_code for a in answers) == {401: 5, 429: 15}
    rate_limits.reset()


def test_a_successful_login_clears_the_accounts_failures(client: TestClient) -> None:
    client.post("/auth/register", data={"email": "h@example.com", "password": "pw-123456"})
    for _ in range(4):
        client.post("/auth/login", data={"email": "h@example.com", "password": "bad-pw"})
    ok = client.post("/auth/login", data={"email": "h@example.com", "password": "pw-123456"})
    assert ok.headers["location"] == "/chat"
    for _ in range(4):  # a fresh allowance after the success
        bad = client.post("/auth/login", data={"email": "h@example.com", "password": "bad-pw"})
        assert "error=credentials" in bad.headers["location"]


def test_null_origin_is_refused(client: TestClient) -> None:
    resp = client.post("/auth/login", data={}, headers={"Origin": "null"})
    assert "error=origin" in resp.headers["location"]


def test_limits_storage_for_every_redis_url_reflex_accepts() -> None:
    assert rate_limits.storage_uri("redis://h:6379/0") == "async+redis://h:6379/0"
    assert rate_limits.storage_uri("rediss://h:6380") == "async+rediss://h:6380"
    assert rate_limits.storage_uri("unix:///run/r.sock") == "async+redis+unix:///run/r.sock"


async def _login_from(app: Starlette, address: str, email: str, password: str) -> int:
    import httpx

    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:3000") as c:
        resp = await c.post(
            "/auth/login", data={"email": email, "password": password}, headers=JSON
        )
        return resp.status_code


async def test_a_guesser_cannot_lock_the_owner_out_from_her_own_address(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    rate_limits.reset()
    app = Starlette(routes=auth_routes.ROUTES)
    with session_scope() as s:
        auth.register(s, "owner@example.com", "pw-123456")
    codes = [await _login_from(app, "10.0.0.66", "owner@example.com", "guess") for _ in range(7)]
    assert codes == [401] * 5 + [429] * 2  # the guesser's address is stopped
    assert await _login_from(app, "10.0.0.1", "owner@example.com", "pw-123456") == 200
    rate_limits.reset()


async def test_guessing_spread_over_many_addresses_hits_the_account_cap(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("ELEXIRION_LIMIT_LOGIN_ACCOUNT", "12/hour")
    rate_limits.reset()
    app = Starlette(routes=auth_routes.ROUTES)
    with session_scope() as s:
        auth.register(s, "spread@example.com", "pw-123456")
    codes = [
        await _login_from(app, f"10.1.0.{i}", "spread@example.com", "guess")
        for i in range(6)
        for _ in range(3)
    ]
    assert codes.count(401) == 12 and codes.count(429) == 6
    rate_limits.reset()


def test_a_forged_first_forwarded_for_line_does_not_choose_the_address(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the second attacker pass: with a proxy that adds its own X-Forwarded-For
    line, ``dict(headers)`` kept the client's forged first line."""
    from starlette.requests import Request

    monkeypatch.setenv("ELEXIRION_TRUSTED_PROXIES", "1")
    get_settings.cache_clear()
    scope = {
        "type": "http",
        "headers": [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"10.0.0.5")],
        "client": ("172.16.0.1", 1234),
    }
    assert auth_routes.client_address(Request(scope)) == "10.0.0.5"
    get_settings.cache_clear()


def test_logins_are_logged_as_json_events_without_password_or_email(client: TestClient) -> None:
    """``login_ok`` / ``login_failed`` lines (issue 10's structured logs): the event and the
    user id or client, never the password or the email typed."""
    import io
    import json

    from elexirion_app.core import logs

    secret, email = "pw-Sup3r-Secret-42", "logme@example.com"
    client.post("/auth/register", data={"email": email, "password": secret}, headers=JSON)
    out = io.StringIO()
    logs.configure(stream=out, env={"ELEXIRION_LOG_FORMAT": "json"})
    try:
        bad = {"email": email, "password": secret + "-wrong"}
        assert client.post("/auth/login", data=bad, headers=JSON).status_code == 401
        good = {"email": email, "password": secret}
        assert client.post("/auth/login", data=good, headers=JSON).status_code == 200
    finally:
        logs.unconfigure()
    raw = out.getvalue()
    assert secret not in raw and email not in raw
    events = [json.loads(line) for line in raw.splitlines()]
    failed = next(e for e in events if e.get("event") == "login_failed")
    ok = next(e for e in events if e.get("event") == "login_ok")
    assert failed["level"] == "info" and failed["client"]
    assert isinstance(ok["user_id"], int)
