from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from elexirion_app.api.upload_guard import DEFAULT_MAX_UPLOAD_BYTES, LINGER_BYTES, guard_uploads
from elexirion_app.services.accounts import auth, tab_bindings

MiB = 1024 * 1024
CHUNK = b"x" * MiB


@dataclass
class Inner:
    """A dummy inner app that reads the whole body and counts what it got."""

    bytes_read: int = 0
    calls: int = 0
    disconnected: bool = False
    paths: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        self.paths.append(scope["path"])
        if scope["type"] == "http":
            while True:
                message: Message = await receive()
                if message["type"] == "http.disconnect":
                    self.disconnected = True
                    break
                self.bytes_read += len(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"inner"})


@dataclass
class Body:
    """A streamed request body of ``mib`` MiB; counts how much of it was pulled."""

    mib: int
    pulled: int = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.mib):
            self.pulled += len(CHUNK)
            yield CHUNK


@dataclass
class Login:
    cookie_token: str
    tab_token: str


@pytest.fixture
def login(db_url: str) -> Login:
    from elexirion_app.db.engine import session_scope

    tab_bindings.reset_local()
    with session_scope() as s:
        uid = auth.register(s, "up@example.com", "password-1").id
        token = auth.create_session(s, uid)
    return Login(token, "tab-of-up")


async def _post(
    inner: Inner,
    body: Body | bytes,
    *,
    cookie: str | None = None,
    tab: str = "",
    headers: dict[str, str] | None = None,
    path: str = "/_upload",
) -> httpx.Response:
    transport = httpx.ASGITransport(app=guard_uploads(inner))
    sent = {"reflex-event-handler": "state.workspace_state.upload", **(headers or {})}
    if cookie is not None:
        sent["cookie"] = f"{auth.SESSION_COOKIE}={cookie}"
    if tab:
        sent["reflex-client-token"] = tab
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(path, content=body, headers=sent)


async def test_an_anonymous_300_mb_upload_is_refused_before_any_byte_is_read(db_url: str) -> None:
    inner, body = Inner(), Body(300)
    response = await _post(inner, body, tab="some-tab")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert inner.calls == 0 and inner.bytes_read == 0
    # Streamed (no Content-Length): the guard drops at most LINGER_BYTES before it answers.
    assert body.pulled <= LINGER_BYTES + MiB


async def test_an_unknown_or_revoked_session_cookie_is_refused(login: Login) -> None:
    from elexirion_app.db.engine import session_scope

    await tab_bindings.bind(login.tab_token, auth.hash_token(login.cookie_token))
    inner = Inner()
    response = await _post(inner, b"data", cookie="not-a-session", tab=login.tab_token)
    assert response.status_code == 401
    with session_scope() as s:
        auth.revoke_session(s, login.cookie_token)
    response = await _post(inner, b"data", cookie=login.cookie_token, tab=login.tab_token)
    assert response.status_code == 401
    assert inner.calls == 0


async def test_a_tab_token_of_another_session_is_forbidden(login: Login) -> None:
    # The victim's tab is bound to the victim's session; the attacker's own cookie is valid.
    await tab_bindings.bind("victim-tab", auth.hash_token("victim-session-token"))
    inner = Inner()
    for tab in ("victim-tab", "never-seen-tab", ""):
        response = await _post(inner, b"data", cookie=login.cookie_token, tab=tab)
        assert response.status_code == 403, tab
        assert response.json()["error"]["code"] == "forbidden"
    assert inner.calls == 0


async def test_the_own_tab_with_its_session_passes_through(login: Login) -> None:
    await tab_bindings.bind(login.tab_token, auth.hash_token(login.cookie_token))
    inner, body = Inner(), Body(3)
    response = await _post(inner, body, cookie=login.cookie_token, tab=login.tab_token)
    assert response.status_code == 200
    assert response.text == "inner"
    assert inner.bytes_read == 3 * MiB and not inner.disconnected


async def test_a_declared_400_mb_body_is_refused_at_once(login: Login) -> None:
    await tab_bindings.bind(login.tab_token, auth.hash_token(login.cookie_token))
    inner, body = Inner(), Body(400)
    response = await _post(
        inner,
        body,
        cookie=login.cookie_token,
        tab=login.tab_token,
        headers={"content-length": str(400 * MiB)},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert inner.calls == 0 and inner.bytes_read == 0
    assert body.pulled <= MiB


async def test_a_streamed_400_mb_body_is_cut_off_at_the_cap(login: Login) -> None:
    # Chunked (no Content-Length): the guard counts while the body streams.
    await tab_bindings.bind(login.tab_token, auth.hash_token(login.cookie_token))
    inner, body = Inner(), Body(400)
    response = await _post(inner, body, cookie=login.cookie_token, tab=login.tab_token)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert inner.bytes_read <= DEFAULT_MAX_UPLOAD_BYTES
    assert inner.disconnected
    assert body.pulled <= DEFAULT_MAX_UPLOAD_BYTES + LINGER_BYTES + 2 * MiB


async def test_a_lying_content_length_does_not_lift_the_cap(
    login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELEXIRION_MAX_UPLOAD_BYTES", str(2 * MiB))
    await tab_bindings.bind(login.tab_token, auth.hash_token(login.cookie_token))
    inner = Inner()

    async def receive_lying() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield CHUNK

    transport = httpx.ASGITransport(app=guard_uploads(inner))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(
            "/_upload",
            content=receive_lying(),
            headers={
                "cookie": f"{auth.SESSION_COOKIE}={login.cookie_token}",
                "reflex-client-token": login.tab_token,
                "content-length": "10",
            },
        )
    assert response.status_code == 413
    assert inner.bytes_read <= 2 * MiB


async def test_a_bad_content_length_is_refused(login: Login) -> None:
    await tab_bindings.bind(login.tab_token, auth.hash_token(login.cookie_token))
    inner = Inner()
    response = await _post(
        inner,
        b"",
        cookie=login.cookie_token,
        tab=login.tab_token,
        headers={"content-length": "-5"},
    )
    assert response.status_code == 400
    assert inner.calls == 0


async def test_other_paths_pass_through_untouched(db_url: str) -> None:
    inner, body = Inner(), Body(2)
    response = await _post(inner, body, path="/api/other")
    assert response.status_code == 200
    assert inner.bytes_read == 2 * MiB
    response = await _post(inner, b"abc", path="/_upload_not")
    assert response.status_code == 200
    assert inner.paths == ["/api/other", "/_upload_not"]


async def test_websockets_pass_through_untouched() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        raise AssertionError("the guard must not answer a websocket")

    await guard_uploads(inner)({"type": "websocket", "path": "/_upload"}, receive, send)
    assert seen == ["websocket"]


def test_the_cap_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from elexirion_app.api.upload_guard import max_upload_bytes

    assert max_upload_bytes() == 60 * MiB
    monkeypatch.setenv("ELEXIRION_MAX_UPLOAD_BYTES", "1234")
    assert max_upload_bytes() == 1234
    monkeypatch.setenv("ELEXIRION_MAX_UPLOAD_BYTES", "lots")
    assert max_upload_bytes() == 60 * MiB


IMPORT = (
    "reflex___state____state.elexirion_app___web___state___library____library_state.import_files"
)


async def test_the_pipeline_import_is_cut_off_past_its_own_1_mb_cap(login: Login) -> None:
    """Finding 15: the import handler refuses files over 1 MB, so its body is cut off while
    it streams (chunked), not after the global 60 MB were read."""
    await tab_bindings.bind(login.tab_token, auth.hash_token(login.cookie_token))
    inner, body = Inner(), Body(50)
    response = await _post(
        inner,
        body,
        cookie=login.cookie_token,
        tab=login.tab_token,
        headers={"reflex-event-handler": IMPORT},
    )
    assert response.status_code == 413
    assert "1,016 KB" in response.json()["error"]["message"]
    assert inner.bytes_read <= 2 * MiB and inner.disconnected
    assert body.pulled <= 4 * MiB + LINGER_BYTES


async def test_a_declared_import_over_its_cap_is_refused_at_once(login: Login) -> None:
    await tab_bindings.bind(login.tab_token, auth.hash_token(login.cookie_token))
    inner = Inner()
    response = await _post(
        inner,
        b"x" * 10,
        cookie=login.cookie_token,
        tab=login.tab_token,
        headers={"reflex-event-handler": IMPORT, "content-length": str(2 * MiB)},
    )
    assert response.status_code == 413 and inner.calls == 0


async def test_a_refused_body_that_is_not_too_big_is_read_to_its_end_before_the_answer(
    login: Login,
) -> None:
    """A 2 MB import over its 1 MB cap: the guard drops the rest of the body, then answers
    413 (closing with unread data would reset the connection of a client still sending:
    it would see a broken connection, not the refusal); a 400 MB one is not read at all."""
    await tab_bindings.bind(login.tab_token, auth.hash_token(login.cookie_token))
    for declared, expected_pull in ((2, 2 * MiB), (400, MiB)):
        inner, body = Inner(), Body(declared)
        response = await _post(
            inner,
            body,
            cookie=login.cookie_token,
            tab=login.tab_token,
            headers={"reflex-event-handler": IMPORT, "content-length": str(declared * MiB)},
        )
        assert response.status_code == 413 and inner.calls == 0
        assert body.pulled == expected_pull if declared == 2 else body.pulled <= expected_pull
    # Anonymous, 3 MB: read to its end too, then 401.
    inner, body = Inner(), Body(3)
    response = await _post(inner, body, headers={"content-length": str(3 * MiB)})
    assert response.status_code == 401 and body.pulled == 3 * MiB and inner.calls == 0


async def test_a_client_waiting_for_100_continue_is_refused_without_being_invited(
    db_url: str,
) -> None:
    """``Expect: 100-continue``: the client sends nothing until invited; the refusal does
    not read (which would make the server invite the upload it refuses)."""
    inner, body = Inner(), Body(3)
    response = await _post(
        inner, body, headers={"content-length": str(3 * MiB), "expect": "100-continue"}
    )
    assert response.status_code == 401 and inner.calls == 0
    assert body.pulled <= MiB


async def test_at_most_max_drains_refused_bodies_are_drained_at_once(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_DRAINS drains in flight, a refusal goes out without reading the body."""
    from elexirion_app.api import upload_guard

    monkeypatch.setattr(upload_guard, "_draining", upload_guard.MAX_DRAINS)
    inner, body = Inner(), Body(3)
    response = await _post(inner, body, headers={"content-length": str(3 * MiB)})
    assert response.status_code == 401 and body.pulled <= MiB
    monkeypatch.setattr(upload_guard, "_draining", 0)
    body = Body(3)
    response = await _post(inner, body, headers={"content-length": str(3 * MiB)})
    assert response.status_code == 401 and body.pulled == 3 * MiB
    assert upload_guard._draining == 0  # given back
