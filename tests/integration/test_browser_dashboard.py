"""/dashboard in Chromium: two offline runs and a chat made through the HTTP API (a key from
the operator CLI) show up on the page — runs counted, the costliest runs linking to their
trace, the conversation listed — and a filter changes the charts; screenshot dashboard.png
(issue 10)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.integration.test_browser_api import _cli
from tests.integration.test_browser_chat import goto, register

pytestmark = pytest.mark.browser


def _sse(method: str, url: str, headers: dict[str, str], **kw: object) -> list[tuple[str, dict]]:
    events: list[tuple[str, dict]] = []
    with httpx.stream(method, url, headers=headers, timeout=120, **kw) as resp:  # type: ignore[arg-type]
        assert resp.status_code == 200, resp.read()
        kind = ""
        for line in resp.iter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line[5:])))
    return events


def _run(app_url: str, headers: dict[str, str], who: str) -> str:
    started = httpx.post(
        f"{app_url}/api/pipeline/execute",
        json={"pipeline": "examples/hello", "inputs": {"who": who}},
        headers=headers,
        timeout=60,
    )
    assert started.status_code == 202, started.text
    run_id = str(started.json()["run_id"])
    events = _sse("GET", f"{app_url}/api/runs/{run_id}/events", headers)
    assert events[-1] == ("end", {"status": "succeeded"})
    return run_id


def _kpi(page: Page, name: str) -> str:
    return page.locator(f"#kpi-{name} .kpi-value").inner_text()


def test_the_dashboard_shows_the_runs_just_made_and_a_filter_changes_the_charts(
    page: Page, app_url: str, app_data: Path, shots: Path
) -> None:
    email = f"dash{uuid.uuid4().hex[:8]}@example.com"
    register(page, app_url, email)
    key = _cli(app_data, "apikey", "create", "--email", email, "--name", "dashboard")
    headers = {"Authorization": f"Bearer {key}"}
    runs = [_run(app_url, headers, who) for who in ("Ada", "Grace")]
    chat = _sse(
        "POST",
        f"{app_url}/api/agent/chat",
        headers,
        json={"message": "Which pipelines can you run for me?"},
    )
    assert chat[-1][0] == "final"

    page.set_viewport_size({"width": 1440, "height": 1000})
    goto(page, f"{app_url}/dashboard")
    expect(page.locator("#dashboard-scope")).to_have_text("your usage", timeout=20_000)
    expect(page.locator("#kpi-runs .kpi-value")).to_have_text("2")
    expect(page.locator("#kpi-spend .kpi-value")).to_have_text("$0.00")  # offline: free
    assert int(_kpi(page, "calls").replace(",", "")) >= 3  # two runs' LLM steps and the chat
    expect(page.locator(".top-run")).to_have_count(2)
    hrefs = [a.get_attribute("href") or "" for a in page.locator(".top-run-link").all()]
    assert sorted(h.split("?id=")[-1] for h in hrefs) == sorted(runs)
    assert all(h.startswith("/runs/trace?id=") for h in hrefs)
    expect(page.locator(".top-conversation")).to_have_count(1)
    expect(page.locator("#chart-tokens .recharts-area")).not_to_have_count(0)
    expect(page.locator("#chart-latency .recharts-line")).to_have_count(4)
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)

    # A filter: only the pipeline steps' calls (not the chat's). The figures and the charts
    # change.
    calls_all = _kpi(page, "calls")
    tokens_svg = page.locator('#chart-tokens svg[role="application"]').inner_html()
    page.click("#filter-caller")
    page.get_by_role("option", name="step", exact=True).click()
    expect(page.locator("#kpi-calls .kpi-value")).not_to_have_text(calls_all, timeout=20_000)
    assert int(_kpi(page, "calls").replace(",", "")) < int(calls_all.replace(",", ""))
    expect(page.locator("#filter-caller")).to_contain_text("step")
    assert page.locator('#chart-tokens svg[role="application"]').inner_html() != tokens_svg
    # Back to every caller: the first figures again.
    page.click("#reset")
    expect(page.locator("#kpi-calls .kpi-value")).to_have_text(calls_all, timeout=20_000)
    # The trace link opens the run.
    page.locator(".top-run-link").first.click()
    first = re.escape(hrefs[0].split("?id=")[-1])
    expect(page).to_have_url(re.compile(rf"/runs/trace/?\?id={first}$"), timeout=20_000)
