"""GET /metrics on the served app (issue 10, item 3): after a chat message over the API and an
API run, the scrape shows the LLM calls, tokens, HTTP requests by route template, websocket
sessions and runs; anonymous and member callers are refused as JSON. Several workers:
tests/integration/test_metrics_workers.py."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.security.conftest import Account, Served, connect, register
from tests.security.test_api_matrix import key_for
from tests.support import appserver

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(found: Samples, name: str, **labels: str) -> float:
    return sum(
        v
        for (n, ls), v in found.items()
        if n == name and all(dict(ls).get(k) == want for k, want in labels.items())
    )


def admin_key(served: Served) -> str:
    env = appserver.app_env(served.data, int(served.url.rsplit(":", 1)[1]))
    email = "metrics-admin@example.com"
    done = subprocess.run(
        [sys.executable, "-m", "elexirion_app", "users", "create", "--email", email, "--admin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return key_for(served, Account(email, "", "", 0), "prometheus")


@pytest.fixture(scope="module")
def carol(served: Served, alice: Account) -> Account:
    """A member of her own (alice, or whoever registered first, is the admin), whose chat
    allowance the other security tests have not spent. One registration for the module."""
    return register(served)


async def test_a_scrape_after_a_chat_and_a_run_shows_their_counters(
    served: Served, carol: Account, bob: Account
) -> None:
    key = key_for(served, carol, "metrics")
    tab = await connect(served, bob)  # one websocket session, closed below
    await tab.close()
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=served.url, headers=auth, timeout=60) as api:
        chat = await api.post("/api/agent/chat", json={"message": "hello metrics"})
        assert chat.status_code == 200, chat.text
        started = await api.post(
            "/api/pipeline/execute", json={"pipeline": "examples/hello", "inputs": {"who": "m"}}
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        for _ in range(200):
            if (await api.get(f"/api/runs/{run_id}")).json()["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    scraped = httpx.get(
        served.url + "/metrics", headers={"Authorization": f"Bearer {admin_key(served)}"}
    )
    assert scraped.status_code == 200, scraped.text
    assert scraped.headers["content-type"].startswith("text/plain")
    found = samples(scraped.text)
    shown = "\n".join(line for line in scraped.text.splitlines() if line.startswith("elx_"))
    assert total(found, "elx_llm_calls_total", caller="chat") >= 1, shown
    assert total(found, "elx_llm_calls_total", caller="step") >= 1  # the run's step
    assert total(found, "elx_llm_tokens_total", caller="chat", type="output") > 0
    assert total(found, "elx_llm_cost_usd_total") == 0  # the offline model is free
    assert total(found, "elx_llm_latency_seconds_count") >= 2
    assert total(found, "elx_http_requests_total", route="/api/agent/chat", status="200") >= 1
    assert total(found, "elx_http_requests_total", route="/api/pipeline/execute", status="202") >= 1
    assert total(found, "elx_http_requests_total", route="/api/runs/{run_id}") >= 1
    assert not any(run_id in str(labels) for _name, labels in found)  # templates, not paths
    assert total(found, "elx_websocket_connects_total") >= 1
    assert total(found, "elx_websocket_disconnects_total") >= 1
    assert ("elx_runs_active", ()) in found and ("elx_runs_queued", ()) in found
    assert found[("elx_db_up", ())] == 1


def test_metrics_refuse_anonymous_and_member_callers_as_json(
    served: Served, alice: Account, carol: Account
) -> None:
    member = carol
    for headers, status in (
        ({}, 401),
        ({"Authorization": "Bearer not-the-token-at-all-0000"}, 401),
        ({"Authorization": f"Bearer {key_for(served, member, 'member')}"}, 403),
        ({"Cookie": alice.cookie}, 401),  # a browser session is not a scraper
    ):
        resp = httpx.get(served.url + "/metrics", headers=headers, timeout=30)
        assert resp.status_code == status, (headers, resp.text)
        assert resp.json()["error"]["code"] in ("unauthorized", "forbidden")
        assert "# TYPE" not in resp.text
