"""The HTTP API against the served app, as a script and a browser would use it together: a
key made with the operator CLI, ``/api/agent/chat`` streamed by httpx (deltas arrive while the
reply is still being written), the conversation then in that user's browser sidebar; a run
started through the API followed over SSE and shown on the runs page; the docs page renders
from our own origin (issue 9)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.integration.conftest import PORT, ROOT
from tests.integration.test_browser_chat import goto, register
from tests.support import appserver

pytestmark = pytest.mark.browser


def _cli(data: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "elexirion_app", *args],
        env=appserver.app_env(data, PORT),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _status(data: Path, message_id: int) -> str:
    with sqlite3.connect(data / "app.db") as conn:
        row = conn.execute("select status from message where id = ?", (message_id,)).fetchone()
    return str(row[0])


def test_chat_streams_over_sse_and_shows_up_in_the_browser(
    page: Page, app_url: str, app_data: Path, shots: Path
) -> None:
    email = f"api{uuid.uuid4().hex[:8]}@example.com"
    register(page, app_url, email)
    key = _cli(app_data, "apikey", "create", "--email", email, "--name", "script")
    headers = {"Authorization": f"Bearer {key}"}
    body = {"message": "Tell me about the pipelines you can run"}
    arrivals: list[tuple[str, float, dict[str, object]]] = []
    status_at_first_delta = ""
    start = time.perf_counter()
    with httpx.stream(
        "POST", f"{app_url}/api/agent/chat", json=body, headers=headers, timeout=60
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in resp.iter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data = json.loads(line[5:])
                arrivals.append((kind, time.perf_counter() - start, data))
                if kind == "delta" and not status_at_first_delta:
                    message_id = int(str(arrivals[0][2]["message_id"]))
                    status_at_first_delta = _status(app_data, message_id)
    kinds = [k for k, _t, _d in arrivals]
    assert kinds[0] == "start" and kinds[-1] == "final" and kinds.count("delta") > 3
    # Deltas arrive while the reply is still being written (not buffered to the end).
    assert status_at_first_delta in ("streaming", "generating"), status_at_first_delta
    first_delta = next(t for k, t, _d in arrivals if k == "delta")
    assert first_delta < arrivals[-1][1]
    final = arrivals[-1][2]
    assert final["status"] == "complete"
    title_start = body["message"][:20]
    # The same conversation is in the user's browser sidebar, with the reply.
    goto(page, f"{app_url}/chat")
    item = page.locator("#conversation-list .conversation-item").filter(has_text=title_start)
    expect(item).to_have_count(1, timeout=20_000)
    item.click()
    expect(page.locator('[data-role="user"]')).to_have_text(body["message"], timeout=20_000)
    expect(page.locator('[data-role="assistant"][data-status="complete"]')).to_have_count(1)
    page.screenshot(path=str(shots / "api-chat-in-browser.png"), full_page=True)


def test_a_run_started_over_the_api_is_followed_and_listed(
    page: Page, app_url: str, app_data: Path
) -> None:
    email = f"run{uuid.uuid4().hex[:8]}@example.com"
    register(page, app_url, email)
    key = _cli(app_data, "apikey", "create", "--email", email, "--name", "runner")
    headers = {"Authorization": f"Bearer {key}"}
    started = httpx.post(
        f"{app_url}/api/pipeline/execute",
        json={"pipeline": "examples/hello", "inputs": {"who": "SSE"}},
        headers=headers,
        timeout=60,
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    events: list[tuple[str, dict[str, object]]] = []
    with httpx.stream(
        "GET", f"{app_url}/api/runs/{run_id}/events", headers=headers, timeout=120
    ) as resp:
        kind = ""
        for line in resp.iter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line[5:])))
    assert events[-1] == ("end", {"status": "succeeded"})
    running = [d["name"] for k, d in events if k == "step" and d["status"] == "running"]
    assert "greet" in running  # followed live: a step seen running, then finished
    run = httpx.get(f"{app_url}/api/runs/{run_id}", headers=headers, timeout=30).json()
    assert run["status"] == "succeeded"
    goto(page, f"{app_url}/runs")
    expect(page.get_by_text("examples/hello").first).to_be_visible(timeout=20_000)


def test_the_api_docs_page_renders_without_any_cdn(page: Page, app_url: str, shots: Path) -> None:
    outside: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(app_url) else None,
    )
    page.goto(f"{app_url}/api/docs")
    expect(page.locator(".swagger-ui .title")).to_contain_text("ElexirionDSP API", timeout=30_000)
    expect(page.get_by_text("/api/pipeline/execute").first).to_be_visible()
    page.screenshot(path=str(shots / "api-docs.png"), full_page=False)
    assert outside == []
