"""Attacks on the HTTP API with a valid key of one's own (issue 9 review): YAML work that must not
hold the database threads every request waits on, bursts of executes past ``MAX_ACTIVE``, file
references that leave the workspace, event streams held open, path tricks. In-process (FastAPI
over httpx's ASGI transport, a fresh database), like tests/unit/api/test_http_api.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from elexirion_app.api.http import app as http_app
from elexirion_app.api.http import streams
from elexirion_app.db.engine import session_scope
from elexirion_app.services.accounts import api_keys, auth, rate_limits
from elexirion_app.services.runs import jobs, live, pipeline_runs
from elexirion_app.services.runs import pipeline_store as store


def _user(email: str) -> tuple[int, str]:
    with session_scope() as session:
        user = auth.register(session, email, "password-123")
        _view, plain = api_keys.create_key(session, user.id, "test")
    return user.id, plain


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def api(db_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.delenv("REDIS_URL", raising=False)
    rate_limits.reset()
    transport = httpx.ASGITransport(app=http_app.build())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    rate_limits.reset()


def _workflow(prompt: str = '- type: static\n          content: "Say hi"') -> str:
    return f"""workflow:
  name: tiny
  steps:
    - name: say
      type: claude
      prompt:
        {prompt}
"""


async def _until_done(api: httpx.AsyncClient, key: str, run_id: str) -> dict[str, Any]:
    for _ in range(400):
        body: dict[str, Any] = (await api.get(f"/api/runs/{run_id}", headers=_bearer(key))).json()
        if body["status"] not in ("queued", "running"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("the run did not finish")


# --- YAML work is CPU work: the CPU pool (capped per user), never the database pool -----------


async def test_yaml_of_validate_and_execute_is_parsed_on_the_cpu_pool(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1 MB pipeline takes ~1 s to validate; on the 4 database threads, four such requests of
    one key stalled every other user's key check, Reflex event and page for that long."""
    _uid, key = _user("a@example.com")
    threads: list[str] = []
    real = store.parsed_with_problems  # what both routes parse and validate with

    def spy(text: str, base: Path) -> Any:
        threads.append(threading.current_thread().name)
        return real(text, base)

    monkeypatch.setattr(store, "parsed_with_problems", spy)
    resp = await api.post(
        "/api/pipelines/validate", json={"yaml": _workflow()}, headers=_bearer(key)
    )
    assert resp.status_code == 200, resp.text
    resp = await api.post(
        "/api/pipeline/execute", json={"pipeline": _workflow()}, headers=_bearer(key)
    )
    assert resp.status_code == 202, resp.text
    await _until_done(api, key, resp.json()["run_id"])
    assert len(threads) == 2 and all(t.startswith("elx-cpu") for t in threads), threads


async def test_one_users_validations_leave_room_for_another_users_requests(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mallory fires 8 slow validations at once; Bob's next request still gets through."""
    _m, mallory = _user("mallory@example.com")
    _b, bob = _user("bob@example.com")
    release = threading.Event()

    def slow(_text: str, _base: Path) -> list[Any]:
        release.wait(20)
        return []

    monkeypatch.setattr(store, "problems_of", slow)
    burst = [
        asyncio.create_task(
            api.post("/api/pipelines/validate", json={"yaml": "x"}, headers=_bearer(mallory))
        )
        for _ in range(8)
    ]
    await asyncio.sleep(0.3)  # the burst is in its threads
    try:
        resp = await asyncio.wait_for(api.get("/api/pipelines", headers=_bearer(bob)), 10)
        assert resp.status_code == 200
    finally:
        release.set()
        await asyncio.gather(*burst, return_exceptions=True)


# --- MAX_ACTIVE holds under a burst ------------------------------------------------------------


def _hold_runs(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Runs started from here on wait (holding their slot) until the returned event is set."""
    hold = asyncio.Event()

    async def held(*_args: Any, **_kwargs: Any) -> None:
        await hold.wait()

    monkeypatch.setattr(pipeline_runs, "run_for_user", held)
    return hold


async def test_a_burst_of_executes_cannot_start_more_than_max_active_runs(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _uid, key = _user("a@example.com")
    monkeypatch.setattr(jobs, "MAX_ACTIVE", 2)
    hold = _hold_runs(monkeypatch)
    answers = await asyncio.gather(
        *(
            api.post(
                "/api/pipeline/execute", json={"pipeline": "examples/hello"}, headers=_bearer(key)
            )
            for _ in range(10)
        )
    )
    codes = sorted(r.status_code for r in answers)
    hold.set()
    await asyncio.sleep(0.1)
    assert codes.count(202) == 2 and codes.count(409) == 8, codes


async def test_a_refused_execute_gives_its_slot_back(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _uid, key = _user("a@example.com")
    monkeypatch.setattr(jobs, "MAX_ACTIVE", 1)
    for _ in range(3):
        resp = await api.post(
            "/api/pipeline/execute", json={"pipeline": "no-such-thing"}, headers=_bearer(key)
        )
        assert resp.status_code == 404
        resp = await api.post(
            "/api/pipeline/execute", json={"pipeline": "workflow: [oops"}, headers=_bearer(key)
        )
        assert resp.status_code == 422
    assert jobs.active_count(_uid) == 0
    resp = await api.post(
        "/api/pipeline/execute", json={"pipeline": "examples/hello"}, headers=_bearer(key)
    )
    assert resp.status_code == 202
    await _until_done(api, key, resp.json()["run_id"])


async def test_a_run_gives_its_slot_back_when_it_ends_however_it_ends(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finished, cancelled while it ran, or cancelled before it ever ran (its task's body,
    and so its ``finally``, never runs): each frees the slot; a slot is per user."""
    uid, key = _user("a@example.com")
    other, _other_key = _user("b@example.com")
    monkeypatch.setattr(jobs, "MAX_ACTIVE", 1)
    hold = _hold_runs(monkeypatch)

    def task(run_id: str) -> asyncio.Task[Any]:
        found = live.JOBS[run_id].task
        assert found is not None
        return found

    # Cancelled before it ran: start() returns right after creating the task.
    first = await jobs.start(uid, "examples/hello")
    assert jobs.active_count(uid) == 1 and jobs.active_count(other) == 0
    task(first).cancel()
    await asyncio.gather(task(first), return_exceptions=True)
    assert jobs.active_count(uid) == 0

    # Cancelled while it ran.
    second = await jobs.start(uid, "examples/hello")
    await asyncio.sleep(0.05)
    resp = await api.post(
        "/api/pipeline/execute", json={"pipeline": "examples/hello"}, headers=_bearer(key)
    )
    assert resp.status_code == 409  # the one slot is taken
    task(second).cancel()
    await asyncio.gather(task(second), return_exceptions=True)
    assert jobs.active_count(uid) == 0

    # Finished.
    third = await jobs.start(uid, "examples/hello")
    hold.set()
    await asyncio.wait_for(asyncio.gather(task(third)), 10)
    assert jobs.active_count(uid) == 0


# --- a run's files stay in its workspace ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/etc/hostname", "../../../../../../etc/hostname"])
async def test_an_api_pipeline_cannot_read_a_file_outside_its_workspace(
    api: httpx.AsyncClient, path: str
) -> None:
    _uid, key = _user("a@example.com")
    secret = Path("/etc/hostname").read_text(encoding="utf-8").strip()
    prompt = f'- type: file\n          path: "{path}"'
    resp = await api.post(
        "/api/pipeline/execute", json={"pipeline": _workflow(prompt)}, headers=_bearer(key)
    )
    if resp.status_code == 202:
        run = await _until_done(api, key, resp.json()["run_id"])
        assert secret not in str(run), run
        assert run["status"] != "succeeded", run
    else:
        assert resp.status_code == 422, resp.text
    assert "/work" not in resp.text and str(Path.cwd()) not in resp.text


# --- path tricks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "examples/../../../../etc/passwd",
        "examples/hello.yaml",
        "/etc/passwd",
        "%00",
        "examples/hello%00",
    ],
)
async def test_pipeline_names_with_path_tricks_are_not_found(
    api: httpx.AsyncClient, name: str
) -> None:
    _uid, key = _user("a@example.com")
    resp = await api.get(f"/api/pipelines/{name}", headers=_bearer(key))
    assert resp.status_code in (404, 422), resp.text
    assert "root:" not in resp.text and "/work" not in resp.text


@pytest.mark.parametrize(
    "name", ["../../../../etc/passwd", "..%2F..%2Fpyproject.toml", "docs-init.js%00.css", "."]
)
async def test_docs_assets_serve_only_their_own_files(api: httpx.AsyncClient, name: str) -> None:
    resp = await api.get(f"/api/docs/assets/{name}")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"


# --- event streams ---------------------------------------------------------------------------


async def test_open_event_streams_per_user_are_capped(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid, key = _user("a@example.com")
    hold = _hold_runs(monkeypatch)
    resp = await api.post(
        "/api/pipeline/execute", json={"pipeline": "examples/hello"}, headers=_bearer(key)
    )
    run_id = resp.json()["run_id"]
    opened = [
        asyncio.create_task(api.get(f"/api/runs/{run_id}/events", headers=_bearer(key)))
        for _ in range(50)
    ]
    try:
        done, _pending = await asyncio.wait(opened, timeout=5)
        assert any(t.result().status_code == 429 for t in done), "50 open streams, none refused"
        refused = [t.result() for t in done if t.result().status_code == 429]
        assert len(refused) == 50 - streams.MAX_OPEN_STREAMS
        assert refused[0].json()["error"]["code"] == "rate_limited"
        assert refused[0].headers["Retry-After"] == "1"
    finally:
        hold.set()
        for task in opened:
            task.cancel()
        await asyncio.gather(*opened, return_exceptions=True)
    assert streams.open_count(uid) == 0  # every slot given back, however its stream ended


async def test_chat_streams_share_the_cap_and_a_refusal_saves_nothing(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlmodel import select

    from elexirion_app.db.models import Conversation

    uid, key = _user("a@example.com")
    monkeypatch.setattr(streams, "MAX_OPEN_STREAMS", 1)
    slot = streams.take(uid)  # one stream already open (a run's events, say)
    try:
        resp = await api.post("/api/agent/chat", json={"message": "hi"}, headers=_bearer(key))
        assert resp.status_code == 429 and resp.json()["error"]["code"] == "rate_limited"
        with session_scope() as session:
            assert session.exec(select(Conversation)).all() == []  # no turn was started
    finally:
        slot.release()
    resp = await api.post("/api/agent/chat", json={"message": "hi"}, headers=_bearer(key))
    assert resp.status_code == 200 and "event: final" in resp.text
    assert streams.open_count(uid) == 0


async def test_a_burst_of_health_checks_probes_once(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/healthz is public: 200 requests at once cost one database probe (and one Redis
    connection), not 200 — the answer is reused for HEALTH_TTL_S."""
    from elexirion_app.api.http import misc_routes

    probes = 0
    real = misc_routes._probe

    async def counted() -> Any:
        nonlocal probes
        probes += 1
        return await real()

    monkeypatch.setattr(misc_routes, "_probe", counted)
    monkeypatch.setattr(misc_routes, "_health", {})
    answers = await asyncio.gather(*(api.get("/healthz") for _ in range(200)))
    assert {a.status_code for a in answers} == {200} and probes == 1
    monkeypatch.setattr(misc_routes, "HEALTH_TTL_S", 0.0)  # stale at once: probed again
    assert (await api.get("/healthz")).status_code == 200 and probes == 2
