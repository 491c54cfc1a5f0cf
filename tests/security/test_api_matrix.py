"""The HTTP API's authorization matrix against the served app: every route is listed here
(a route added to the API but not to ``API_ROUTES`` fails this suite); each is called with no
key, a malformed header, a revoked key, and as a second user holding the first user's
conversation, run and pipeline ids — nothing of the first user's comes back or changes
(issue 9). Keys are made with the operator CLI against the served app's database."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import httpx
import pytest

from tests.security.conftest import PORT, Account, Served, connect
from tests.support import appserver

# Every API route: path template → methods. ``{run}``, ``{name}`` are filled with the first
# user's ids in the second-user test.
API_ROUTES: dict[str, set[str]] = {
    "/api/agent/chat": {"POST"},
    "/api/pipeline/execute": {"POST"},
    "/api/runs/{run_id}": {"GET"},
    "/api/runs/{run_id}/events": {"GET"},
    "/api/runs/{run_id}/cancel": {"POST"},
    "/api/pipelines": {"GET"},
    "/api/pipelines/{name}": {"GET"},
    "/api/pipelines/validate": {"POST"},
    "/api/usage": {"GET"},
    "/healthz": {"GET"},
    "/metrics": {"GET"},  # token or admin key only: tests/security/test_metrics_served.py
    "/api/docs": {"GET"},
    "/api/docs/assets/{name}": {"GET"},
    "/api/openapi.json": {"GET", "HEAD"},
    "/api/{rest}": {"ANY"},  # the JSON 404 of every other /api path, whatever the method
}
PUBLIC = {"/healthz", "/api/docs", "/api/docs/assets/{name}", "/api/openapi.json"}
SECRET = "alice-api-secret-5150"


def cli(served: Served, *args: str) -> str:
    env = appserver.app_env(served.data, PORT)
    done = subprocess.run(
        [sys.executable, "-m", "elexirion_app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def key_for(served: Served, account: Account, name: str = "tests") -> str:
    return cli(served, "apikey", "create", "--email", account.email, "--name", name)


def test_every_api_route_is_in_the_matrix() -> None:
    from fastapi.routing import APIRoute
    from starlette.routing import Route

    from elexirion_app.api.http import app as http_app

    found: dict[str, set[str]] = {}
    pending = list(http_app.build().routes)
    while pending:
        route = pending.pop()
        if isinstance(route, APIRoute | Route):
            path = route.path.replace(":path}", "}")
            found.setdefault(path, set()).update(route.methods or {"ANY"})  # None: every method
        elif hasattr(route, "original_router"):  # FastAPI's included router
            pending.extend(route.original_router.routes)
        else:
            raise AssertionError(f"a route of an unknown kind: {route!r}")
    assert found == API_ROUTES


def _calls(run_id: str, name: str, conversation_id: int) -> list[tuple[str, str, Any]]:
    return [
        ("POST", "/api/agent/chat", {"message": "hi", "conversation_id": conversation_id}),
        ("POST", "/api/pipeline/execute", {"pipeline": name, "inputs": {}}),
        ("GET", f"/api/runs/{run_id}", None),
        ("GET", f"/api/runs/{run_id}/events", None),
        ("POST", f"/api/runs/{run_id}/cancel", None),
        ("GET", "/api/pipelines", None),
        ("GET", f"/api/pipelines/{name}", None),
        ("POST", "/api/pipelines/validate", {"yaml": "workflow: {name: x, steps: []}"}),
        ("GET", "/api/usage?group_by=pipeline", None),
        ("GET", "/api/nothing", None),
    ]


def _counts(served: Served) -> tuple[int, ...]:
    return tuple(
        served.count(f"select count(*) from {table}")
        for table in ("run", "message", "conversation", "pipeline_doc", "pipeline_version")
    )


async def _alices_things(served: Served, alice: Account, key: str) -> tuple[str, str, int]:
    """A library pipeline (with a secret in its saved YAML), a run and a conversation."""
    lib = "reflex___state____state.elexirion_app___web___state___library____library_state"
    tab = await connect(served, alice)
    try:
        await tab.emit(f"{lib}.new_blank", {}, "/pipelines")
        await tab.wait_for(lambda: tab.frontend_events != [], 30)
        await asyncio.sleep(1)
    finally:
        await tab.close()
    with served.db() as conn:
        doc_id, name = conn.execute(
            "select id, name from pipeline_doc where user_id = ? order by id desc",
            (alice.user_id,),
        ).fetchone()
        conn.execute(
            "update pipeline_version set yaml = yaml || ? where pipeline_id = ?",
            (f"# {SECRET}\n", doc_id),
        )
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=served.url, headers=auth, timeout=60) as api:
        started = await api.post("/api/pipeline/execute", json={"pipeline": name})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        chat = await api.post("/api/agent/chat", json={"message": f"remember {SECRET}"})
        assert chat.status_code == 200, chat.text
        conversation = int(chat.text.split('"conversation_id": ', 1)[1].split(",", 1)[0])
    return run_id, name, conversation


async def test_second_user_gets_nothing_of_the_first_users_and_changes_nothing(
    served: Served, alice: Account, bob: Account
) -> None:
    alice_key, bob_key = key_for(served, alice), key_for(served, bob)
    run_id, name, conversation = await _alices_things(served, alice, alice_key)
    await asyncio.sleep(2)  # Alice's run and reply finish
    before = _counts(served)
    async with httpx.AsyncClient(
        base_url=served.url, headers={"Authorization": f"Bearer {bob_key}"}, timeout=60
    ) as api:
        for method, path, body in _calls(run_id, name, conversation):
            if path == "/api/agent/chat" or path == "/api/pipeline/execute":
                resp = await api.request(method, path, json=body)
                assert resp.status_code == 404, (path, resp.status_code, resp.text[:300])
            else:
                resp = await api.request(method, path, json=body)
                assert resp.status_code in (200, 404), (path, resp.status_code, resp.text[:300])
            assert SECRET not in resp.text and alice.email not in resp.text, path
            assert "Traceback" not in resp.text
        usage = (await api.get("/api/usage")).json()
        assert usage["calls"] == 0
        listed = {p["name"] for p in (await api.get("/api/pipelines")).json()}
        assert name not in listed
    assert _counts(served) == before  # Bob's calls added no run, message or version


async def test_no_key_a_malformed_header_and_a_revoked_key_are_refused_everywhere(
    served: Served, alice: Account
) -> None:
    key = key_for(served, alice, "to-revoke")
    import json

    listed = json.loads(cli(served, "apikey", "list", "--email", alice.email, "--json"))
    key_id = next(str(k["id"]) for k in listed if k["name"] == "to-revoke")
    cli(served, "apikey", "revoke", "--email", alice.email, "--id", key_id)
    headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Basic YWxpY2U6cHc="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer " + "x" * 5000},
        {"Authorization": f"Bearer {key}"},  # revoked
        {"Authorization": f"Bearer {key}", "Cookie": alice.cookie},  # a cookie is not a key
    ]
    before = _counts(served)
    async with httpx.AsyncClient(base_url=served.url, timeout=60) as api:
        for extra in headers:
            for method, path, body in _calls("run-id", "hello", 1):
                if path == "/api/nothing":
                    continue
                resp = await api.request(method, path, json=body, headers=extra)
                assert resp.status_code in (401, 429), (extra, path, resp.status_code)
                assert resp.json()["error"]["code"] in ("unauthorized", "rate_limited")
    assert _counts(served) == before


@pytest.mark.parametrize("path", sorted(PUBLIC))
def test_public_routes_answer_without_a_key(served: Served, path: str) -> None:
    url = served.url + path.replace("{name}", "docs-init.js")
    resp = httpx.get(url, timeout=30)
    assert resp.status_code == 200, (path, resp.status_code, resp.text[:200])
    assert "content-security-policy" in resp.headers  # the security headers wrap the API too
