"""The HTTP API on its own (FastAPI over httpx's ASGI transport, a fresh database): API-key
auth, runs started and followed, pipelines, validation, usage, chat over SSE, limits, errors
(issue 9 items 4 and 5). The served app, real streaming and the second-user matrix are in
tests/security/test_api_matrix.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from elexirion_app.api.http import app as http_app
from elexirion_app.db.engine import session_scope
from elexirion_app.services.accounts import api_keys, audit, auth, rate_limits

WORKFLOW = """workflow:
  name: tiny
  steps:
    - name: say
      type: claude
      prompt:
        - type: static
          content: "Say hi"
"""


def _user(email: str) -> tuple[int, str]:
    with session_scope() as session:
        user = auth.register(session, email, "password-123")
        _view, plain = api_keys.create_key(session, user.id, "test")
    return user.id, plain


@pytest.fixture
async def api(db_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.delenv("REDIS_URL", raising=False)
    rate_limits.reset()
    transport = httpx.ASGITransport(app=http_app.build())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    rate_limits.reset()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        kind, data = "", ""
        for line in block.splitlines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
        if kind:
            out.append((kind, json.loads(data) if data else {}))
    return out


async def _until_done(api: httpx.AsyncClient, key: str, run_id: str) -> dict[str, Any]:
    for _ in range(400):
        body: dict[str, Any] = (await api.get(f"/api/runs/{run_id}", headers=_bearer(key))).json()
        if body["status"] not in ("queued", "running"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("the run did not finish")


async def test_requests_without_a_valid_key_are_refused_as_json(api: httpx.AsyncClient) -> None:
    _uid, key = _user("a@example.com")
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer elx_" + "x" * 43},
        {"Authorization": "Bearer " + key[:-1]},
        {"Authorization": ("Bearer " + "é" * 500).encode("latin-1")},  # type: ignore[dict-item]
    ):
        resp = await api.get("/api/pipelines", headers=headers)
        assert resp.status_code == 401, headers
        assert resp.json()["error"]["code"] == "unauthorized"
        assert "WWW-Authenticate" in resp.headers
    assert (await api.get("/api/pipelines", headers=_bearer(key))).status_code == 200


async def test_a_revoked_key_is_refused_on_the_next_request(api: httpx.AsyncClient) -> None:
    uid, key = _user("a@example.com")
    assert (await api.get("/api/pipelines", headers=_bearer(key))).status_code == 200
    with session_scope() as session:
        [view] = api_keys.list_keys(session, uid)
        api_keys.revoke_key(session, uid, view.id)
    assert (await api.get("/api/pipelines", headers=_bearer(key))).status_code == 401


async def test_a_keys_first_use_of_the_day_is_audited_once_and_stamped(
    api: httpx.AsyncClient,
) -> None:
    uid, key = _user("a@example.com")
    for _ in range(3):
        assert (await api.get("/api/pipelines", headers=_bearer(key))).status_code == 200
    with session_scope() as session:
        used = audit.list_events(session, action="key_used")
        [view] = api_keys.list_keys(session, uid)
    assert [(e.actor_id, e.target) for e in used] == [(uid, f"key {view.id}")]
    assert view.last_used_at is not None


async def test_execute_a_shipped_pipeline_and_follow_it_to_the_end(api: httpx.AsyncClient) -> None:
    _uid, key = _user("a@example.com")
    resp = await api.post(
        "/api/pipeline/execute",
        json={"pipeline": "examples/hello", "inputs": {"who": "API"}},
        headers=_bearer(key),
    )
    assert resp.status_code == 202, resp.text
    run_id = resp.json()["run_id"]
    run = await _until_done(api, key, run_id)
    assert run["status"] == "succeeded", run
    assert run["pipeline"] == "examples/hello" and run["inputs"] == {"who": "API"}
    assert {"setup", "greet", "per_topic"} <= {s["name"] for s in run["steps"]}
    assert all(s["status"] in ("succeeded", "skipped") for s in run["steps"])
    # The event stream of a finished run replays every step, then ends.
    events = _events((await api.get(f"/api/runs/{run_id}/events", headers=_bearer(key))).text)
    kinds = [k for k, _ in events]
    assert kinds[-1] == "end" and "run" in kinds
    steps = {d["name"]: d["status"] for k, d in events if k == "step"}
    assert steps["greet"] == "succeeded"


async def test_execute_yaml_text_and_refuse_an_invalid_pipeline(api: httpx.AsyncClient) -> None:
    _uid, key = _user("a@example.com")
    ok = await api.post("/api/pipeline/execute", json={"pipeline": WORKFLOW}, headers=_bearer(key))
    assert ok.status_code == 202
    assert (await _until_done(api, key, ok.json()["run_id"]))["status"] == "succeeded"
    bad = WORKFLOW.replace("type: claude", "type: no_such_step")
    resp = await api.post("/api/pipeline/execute", json={"pipeline": bad}, headers=_bearer(key))
    assert resp.status_code == 422
    body = resp.json()["error"]
    assert body["code"] == "invalid_pipeline"
    assert any("no_such_step" in p["message"] for p in body["problems"])
    missing = await api.post(
        "/api/pipeline/execute", json={"pipeline": "nope"}, headers=_bearer(key)
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_another_users_run_is_not_found_everywhere(api: httpx.AsyncClient) -> None:
    _a, alice = _user("a@example.com")
    _b, bob = _user("b@example.com")
    resp = await api.post(
        "/api/pipeline/execute", json={"pipeline": "examples/hello"}, headers=_bearer(alice)
    )
    run_id = resp.json()["run_id"]
    for method, path in (
        ("GET", f"/api/runs/{run_id}"),
        ("GET", f"/api/runs/{run_id}/events"),
        ("POST", f"/api/runs/{run_id}/cancel"),
    ):
        got = await api.request(method, path, headers=_bearer(bob))
        assert got.status_code == 404, (method, path, got.text)
        assert "hello" not in got.text
    assert (await _until_done(api, alice, run_id))["status"] == "succeeded"


async def test_cancel_stops_a_running_run(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from elexirion_app import config

    monkeypatch.setenv("ELEXIRION_CHAT_TOKEN_DELAY_S", "0.05")  # the offline model, paced
    config.get_settings.cache_clear()
    _uid, key = _user("a@example.com")
    run_id = (
        await api.post(
            "/api/pipeline/execute", json={"pipeline": "examples/hello"}, headers=_bearer(key)
        )
    ).json()["run_id"]
    await asyncio.sleep(0.3)
    resp = await api.post(f"/api/runs/{run_id}/cancel", headers=_bearer(key))
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "interrupted"
    run = (await api.get(f"/api/runs/{run_id}", headers=_bearer(key))).json()
    assert run["status"] == "interrupted" and run["error"] == "cancelled"
    # Cancelling a finished run changes nothing.
    again = await api.post(f"/api/runs/{run_id}/cancel", headers=_bearer(key))
    assert again.json()["status"] == "interrupted"


async def test_pipelines_list_get_and_validate(api: httpx.AsyncClient) -> None:
    _uid, key = _user("a@example.com")
    rows = (await api.get("/api/pipelines", headers=_bearer(key))).json()
    assert "examples/hello" in {r["name"] for r in rows if r["shipped"]}
    one = (await api.get("/api/pipelines/examples/hello", headers=_bearer(key))).json()
    assert one["shipped"] and one["yaml"].startswith("workflow:")
    assert (await api.get("/api/pipelines/nope", headers=_bearer(key))).status_code == 404
    good = await api.post("/api/pipelines/validate", json={"yaml": WORKFLOW}, headers=_bearer(key))
    assert good.json()["valid"] is True
    bad = await api.post(
        "/api/pipelines/validate",
        json={"yaml": "workflow:\n  name: x\n  steps: [1"},
        headers=_bearer(key),
    )
    body = bad.json()
    assert bad.status_code == 200 and body["valid"] is False and body["problems"][0]["line"]


async def test_usage_sums_the_callers_own_calls(api: httpx.AsyncClient) -> None:
    _a, alice = _user("a@example.com")
    _b, bob = _user("b@example.com")
    run_id = (
        await api.post(
            "/api/pipeline/execute", json={"pipeline": "examples/hello"}, headers=_bearer(alice)
        )
    ).json()["run_id"]
    run = await _until_done(api, alice, run_id)
    mine = (await api.get("/api/usage?group_by=model", headers=_bearer(alice))).json()
    assert mine["calls"] == run["llm_calls"] > 0
    assert sum(g["calls"] for g in mine["groups"]) == mine["calls"]
    assert set(mine["tokens"]) == {
        "input", "output", "cache_read", "cache_write", "cache_write_1h", "thinking"
    }  # fmt: skip
    theirs = (await api.get("/api/usage", headers=_bearer(bob))).json()
    assert theirs["calls"] == 0
    bad = await api.get("/api/usage?from=2026-02-01&to=2026-01-01", headers=_bearer(alice))
    assert bad.status_code == 400
    assert (await api.get("/api/usage?group_by=x", headers=_bearer(alice))).status_code == 422


async def test_chat_streams_the_reply_and_saves_the_conversation(api: httpx.AsyncClient) -> None:
    uid, key = _user("a@example.com")
    resp = await api.post(
        "/api/agent/chat", json={"message": "What can you do?"}, headers=_bearer(key)
    )
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    events = _events(resp.text)
    kinds = [k for k, _ in events]
    assert kinds[0] == "start" and "decision" in kinds and "delta" in kinds
    assert kinds[-1] == "final"
    start, final = events[0][1], events[-1][1]
    text = "".join(d["text"] for k, d in events if k == "delta")
    assert final["status"] == "complete" and final["content"] == text
    from elexirion_app.services.chat import chat

    with session_scope() as session:
        [conv] = chat.list_conversations(session, uid)
        shown = chat.thread(session, uid, conv.id).messages
    assert conv.id == start["conversation_id"]
    assert [m.content for m in shown] == ["What can you do?", text]
    # Another user's conversation id is not found (nothing is appended to it).
    _b, bob = _user("b@example.com")
    other = await api.post(
        "/api/agent/chat",
        json={"message": "hi", "conversation_id": conv.id},
        headers=_bearer(bob),
    )
    assert other.status_code == 404


async def test_per_user_limits_answer_429_whatever_the_forwarded_address(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELEXIRION_LIMIT_API_USER", "3/minute")
    rate_limits.reset()
    _uid, key = _user("a@example.com")
    codes = []
    for i in range(5):
        headers = {**_bearer(key), "X-Forwarded-For": f"10.0.0.{i}"}
        resp = await api.get("/api/pipelines", headers=headers)
        codes.append(resp.status_code)
    assert codes == [200, 200, 200, 429, 429]
    assert int(resp.headers["Retry-After"]) >= 1
    assert resp.json()["error"]["code"] == "rate_limited"
    # Another user has a bucket of their own.
    _b, bob = _user("b@example.com")
    assert (await api.get("/api/pipelines", headers=_bearer(bob))).status_code == 200


async def test_an_admin_set_limit_applies_to_that_user_only(api: httpx.AsyncClient) -> None:
    from elexirion_app.db.models import AppUser

    uid, key = _user("a@example.com")
    with session_scope() as session:
        user = session.get(AppUser, uid)
        assert user is not None
        user.api_limit = "2/minute"
        session.add(user)
    codes = [(await api.get("/api/pipelines", headers=_bearer(key))).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


async def test_bodies_over_the_cap_and_unknown_routes_get_json_errors(
    api: httpx.AsyncClient,
) -> None:
    _uid, key = _user("a@example.com")
    big = {"yaml": "x" * (http_app.MAX_BODY_BYTES + 10)}
    resp = await api.post("/api/pipelines/validate", json=big, headers=_bearer(key))
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "too_large"
    unknown = await api.get("/api/nothing/here", headers=_bearer(key))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    for method in ("OPTIONS", "TRACE", "FOO", "HEAD"):
        odd = await api.request(method, "/api/nothing/here", headers=_bearer(key))
        assert odd.status_code == 404, method
        assert method == "HEAD" or odd.json()["error"]["code"] == "not_found", method
    forged = await api.post(
        "/api/pipeline/execute",
        content=b'{"pipeline": ["x"], "extra": 1}',
        headers={**_bearer(key), "content-type": "application/json"},
    )
    assert forged.status_code == 422 and forged.json()["error"]["code"] == "invalid_request"
    not_json = await api.post(
        "/api/agent/chat",
        content=b"\xff\xfe",
        headers={**_bearer(key), "content-type": "application/json"},
    )
    assert not_json.status_code == 422 and "Traceback" not in not_json.text


async def test_health_reports_the_database(api: httpx.AsyncClient) -> None:
    resp = await api.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "db": "ok", "redis": "not configured"}


async def test_the_openapi_schema_lists_every_route(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/api/openapi.json")).json()
    paths = set(spec["paths"])
    assert {
        "/api/agent/chat",
        "/api/pipeline/execute",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/events",
        "/api/runs/{run_id}/cancel",
        "/api/pipelines",
        "/api/pipelines/{name}",
        "/api/pipelines/validate",
        "/api/usage",
        "/healthz",
    } <= paths
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


async def test_chat_messages_have_their_own_per_user_limit(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELEXIRION_LIMIT_CHAT_USER", "1/minute")
    rate_limits.reset()
    _uid, key = _user("a@example.com")
    first = await api.post("/api/agent/chat", json={"message": "hello"}, headers=_bearer(key))
    assert first.status_code == 200
    second = await api.post("/api/agent/chat", json={"message": "again"}, headers=_bearer(key))
    assert second.status_code == 429 and "chat messages" in second.json()["error"]["message"]
    # Other API calls are not chat messages.
    assert (await api.get("/api/pipelines", headers=_bearer(key))).status_code == 200


async def test_no_api_path_falls_through_to_a_mount_added_after_the_api_routes() -> None:
    """Reflex mounts its own app at "" inside the API app after our routes: an /api request
    of any method must still get the API's JSON 404, never the mount's answer."""
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount

    app = http_app.build()
    app.router.routes.append(Mount("", app=PlainTextResponse("reflex")))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for method in ("GET", "POST", "OPTIONS", "TRACE", "FOO"):
            resp = await client.request(method, "/api/nothing/here")
            assert resp.status_code == 404, method
            assert resp.json()["error"]["code"] == "not_found", method
        assert (await client.get("/elsewhere")).text == "reflex"


async def test_a_body_over_the_cap_is_read_to_its_end_before_the_413(
    api: httpx.AsyncClient,
) -> None:
    """Declared (Content-Length) or streamed past the cap, a body of a few MB is read and
    dropped before the 413 is sent (a close with unread data would reset the connection of
    a client still sending: it would get a broken connection instead of the answer)."""
    _uid, key = _user("a@example.com")
    pulled = 0
    size = http_app.MAX_BODY_BYTES + 1024 * 1024

    async def body() -> Any:
        nonlocal pulled
        for _ in range(size // 65536):
            pulled += 65536
            yield b"x" * 65536

    for declared in (True, False):
        pulled = 0
        headers = {**_bearer(key), "content-type": "application/json"}
        if declared:
            headers["content-length"] = str(size // 65536 * 65536)
        resp = await api.post("/api/pipelines/validate", content=body(), headers=headers)
        assert resp.status_code == 413 and resp.json()["error"]["code"] == "too_large"
        assert pulled == size // 65536 * 65536, declared
