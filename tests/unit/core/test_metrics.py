"""core.metrics: what a booked LLM attempt, a budget refusal, HTTP requests and websocket
sessions add to the counters and histograms; several processes sharing one folder are
merged, and a dead worker's live gauge is dropped (issue 10, item 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from elexirion_app.core import metrics
from elexirion_app.core.errors import BudgetExceeded
from elexirion_app.core.types import LLMRequest, StreamEvent, Usage
from elexirion_app.providers.metered import CallContext, MeteredProvider, Priced, call_context

ROOT = Path(__file__).resolve().parents[3]
ATTEMPT = {
    "attempt": 1,
    "status": 200,
    "error": None,
    "usage": {"input": 100, "output": 20, "cache_read": 5, "cache_write_1h": 3, "thinking": 7},
    "latency_ms": 1500.0,
    "ttft_ms": 300.0,
    "model": "claude-test-1",
}


class FakeProvider:
    name = "claude"
    offline = False

    def __init__(self, attempts: list[Mapping[str, Any]]) -> None:
        self.attempts = attempts

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        for data in self.attempts:
            yield StreamEvent("delta", text="hello")
            yield StreamEvent("attempt", data=data)
        yield StreamEvent("done")


class StubMeter:
    def __init__(self, cost: str = "0.0123", refuse: BudgetExceeded | None = None) -> None:
        self.cost, self.refuse, self.booked = Decimal(cost), refuse, 0

    async def reserve(self, ctx: CallContext, request: LLMRequest, provider: Any) -> Any:
        if self.refuse is not None:
            raise self.refuse
        return None

    def price(self, request: LLMRequest, provider: Any, model: str, usage: Usage) -> Priced:
        return Priced(self.cost)

    async def book(self, *args: Any) -> None:
        self.booked += 1

    async def release(self, hold: Any) -> None:
        return None


@pytest.fixture(autouse=True)
def fresh_metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    metrics.reset()
    yield
    metrics.reset()


def value(name: str, **labels: str) -> float:
    metrics.metrics()
    assert metrics._REGISTRY is not None
    found = metrics._REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def drain(provider: Any, request: LLMRequest) -> None:
    async for _event in provider.stream(request):
        pass


async def test_a_booked_call_moves_the_counters_by_its_tokens_cost_and_durations() -> None:
    meter = StubMeter()
    provider = MeteredProvider(FakeProvider([ATTEMPT]), meter)
    with call_context(caller="chat", user_id=7):
        await drain(provider, LLMRequest.from_prompt("a prompt", model="claude-test-1"))
    assert meter.booked == 1
    llm = {"model": "claude-test-1", "provider": "claude", "caller": "chat"}
    assert value("elx_llm_calls_total", **llm, status="ok") == 1
    assert value("elx_llm_errors_total", **llm) == 0
    tokens = {k: value("elx_llm_tokens_total", **llm, type=k) for k in ATTEMPT["usage"]}
    assert tokens == {
        "input": 100,
        "output": 20,
        "cache_read": 5,
        "cache_write_1h": 3,
        "thinking": 7,
    }
    assert value("elx_llm_tokens_total", **llm, type="cache_write") == 0
    assert value("elx_llm_cost_usd_total", **llm) == pytest.approx(0.0123)
    timing = {"model": "claude-test-1", "provider": "claude"}
    # 1.5 s: in the 2 s bucket, not in the 1 s one; the TTFT (0.3 s) under 0.5 s, over 0.25 s
    assert value("elx_llm_latency_seconds_bucket", **timing, le="1.0") == 0
    assert value("elx_llm_latency_seconds_bucket", **timing, le="2.0") == 1
    assert value("elx_llm_latency_seconds_sum", **timing) == pytest.approx(1.5)
    assert value("elx_llm_time_to_first_token_seconds_bucket", **timing, le="0.25") == 0
    assert value("elx_llm_time_to_first_token_seconds_bucket", **timing, le="0.5") == 1
    assert value("elx_llm_time_to_first_token_seconds_count", **timing) == 1


async def test_failed_attempts_count_as_errors_and_each_attempt_is_counted() -> None:
    failed = {**ATTEMPT, "status": 529, "error": "overloaded", "usage": {"input": 100}}
    provider = MeteredProvider(FakeProvider([failed, ATTEMPT]), StubMeter("0.5"))
    with call_context(caller="step", run_id="r1", step="s"):
        await drain(provider, LLMRequest.from_prompt("p", model="claude-test-1"))
    llm = {"model": "claude-test-1", "provider": "claude", "caller": "step"}
    assert value("elx_llm_calls_total", **llm, status="error") == 1
    assert value("elx_llm_calls_total", **llm, status="ok") == 1
    assert value("elx_llm_errors_total", **llm) == 1
    assert value("elx_llm_tokens_total", **llm, type="input") == 200
    assert value("elx_llm_cost_usd_total", **llm) == pytest.approx(1.0)
    timing = {"model": "claude-test-1", "provider": "claude"}
    assert value("elx_llm_latency_seconds_count", **timing) == 2


async def test_a_refused_reservation_counts_a_budget_refusal_and_books_nothing() -> None:
    refusal = BudgetExceeded(
        scope="monthly",
        cap=Decimal("1"),
        spent=Decimal("0.9"),
        reserved=Decimal("0"),
        estimate=Decimal("0.2"),
    )
    meter = StubMeter(refuse=refusal)
    provider = MeteredProvider(FakeProvider([ATTEMPT]), meter)
    with call_context(caller="api", user_id=3), pytest.raises(BudgetExceeded):
        await drain(provider, LLMRequest.from_prompt("p", model="claude-test-1"))
    assert value("elx_budget_refusals_total", scope="monthly", caller="api") == 1
    assert value("elx_budget_refusals_total", scope="run", caller="api") == 0
    assert meter.booked == 0
    llm = {"model": "claude-test-1", "provider": "claude", "caller": "api"}
    assert value("elx_llm_calls_total", **llm, status="ok") == 0


def test_http_and_websocket_observations() -> None:
    metrics.observe_http("/api/runs/{run_id}", "GET", 404, 0.02)
    metrics.observe_http("/api/runs/{run_id}", "GET", 404, 0.2)
    labels = {"route": "/api/runs/{run_id}", "method": "GET"}
    assert value("elx_http_requests_total", **labels, status="404") == 2
    assert value("elx_http_request_duration_seconds_bucket", **labels, le="0.025") == 1
    assert value("elx_http_request_duration_seconds_bucket", **labels, le="0.25") == 2
    metrics.websocket_opened()
    metrics.websocket_opened()
    metrics.websocket_closed()
    assert value("elx_websocket_connects_total") == 2
    assert value("elx_websocket_disconnects_total") == 1
    assert value("elx_websocket_sessions") == 1


def test_the_runs_collector_reads_at_scrape_time_and_reports_a_database_down() -> None:
    counts: dict[str, int] | None = {"running": 2, "queued": 5}
    text, content_type = metrics.render([metrics.RunsCollector(lambda: counts)])
    assert content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    assert families["elx_runs_active"].samples[0].value == 2
    assert families["elx_runs_queued"].samples[0].value == 5
    assert families["elx_db_up"].samples[0].value == 1
    counts = None
    text, _ = metrics.render([metrics.RunsCollector(lambda: counts)])
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    assert families["elx_db_up"].samples[0].value == 0
    assert "elx_runs_active" not in families


WORKER = """
import sys
from decimal import Decimal
from elexirion_app.core import metrics
from elexirion_app.core.types import Usage
n = int(sys.argv[1])
for _ in range(n):
    metrics.llm_attempt(model="m1", provider="claude", caller="chat", status="ok",
                        usage=Usage(input=10, output=4), cost=Decimal("0.25"),
                        latency_s=0.3, ttft_s=0.1)
metrics.observe_http("/healthz", "GET", 200, 0.01)
metrics.websocket_opened()
metrics.websocket_opened()
"""


def test_two_processes_sharing_a_folder_are_merged_and_dead_live_gauges_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path), "PYTHONPATH": str(ROOT)}
    for n in (2, 3):
        subprocess.run([sys.executable, "-c", WORKER, str(n)], env=env, check=True, cwd=ROOT)
    assert any(name.startswith("gauge_livesum_") for name in metrics.files_in(tmp_path))
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    text, _ = metrics.render()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }
    llm = (("caller", "chat"), ("model", "m1"), ("provider", "claude"))
    assert samples[("elx_llm_calls_total", (*llm, ("status", "ok")))] == 5
    assert samples[("elx_llm_tokens_total", (*llm, ("type", "input")))] == 50
    assert samples[("elx_llm_tokens_total", (*llm, ("type", "output")))] == 20
    assert samples[("elx_llm_cost_usd_total", llm)] == pytest.approx(1.25)
    timing = (("model", "m1"), ("provider", "claude"))
    assert samples[("elx_llm_latency_seconds_count", timing)] == 5
    assert samples[("elx_llm_latency_seconds_bucket", (("le", "0.5"), *timing))] == 5
    http = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
    assert samples[("elx_http_requests_total", http)] == 2
    assert samples[("elx_websocket_connects_total", ())] == 4
    # both workers exited: their open sessions are not "open now" any more
    assert samples.get(("elx_websocket_sessions", ()), 0) == 0
    assert not any(name.startswith("gauge_livesum_") for name in metrics.files_in(tmp_path))


def test_prepare_multiprocess_names_a_folder_per_server_and_clears_dead_ones(
    tmp_path: Path,
) -> None:
    base = tmp_path / "prometheus"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    (base / f"server-{dead_pid}").mkdir(parents=True)
    (base / f"server-{dead_pid}" / f"counter_{dead_pid}.db").write_bytes(b"x")
    env: dict[str, str] = {}
    assert metrics.prepare_multiprocess(tmp_path, False, env) is None
    assert env == {}
    folder = metrics.prepare_multiprocess(tmp_path, True, env)
    assert folder == base / f"server-{os.getpid()}"
    assert env[metrics.MULTIPROC_ENV] == str(folder)
    assert not (base / f"server-{dead_pid}").exists()
    # a folder given (or inherited from the server process): kept, dead processes' files go
    (folder / f"counter_{dead_pid}.db").write_bytes(b"x")
    (folder / f"counter_{os.getpid()}.db").write_bytes(b"x")
    assert metrics.prepare_multiprocess(tmp_path, True, env) == folder
    assert metrics.files_in(folder) == [f"counter_{os.getpid()}.db"]
