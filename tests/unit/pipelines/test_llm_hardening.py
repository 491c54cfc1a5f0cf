"""LLM-step hardening: run-scoped robust cache, no swallowed pricing errors, fallback_model,
extended thinking options."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from elexirion_app.core.events import LLMCallFinished
from elexirion_app.core.types import LLMRequest
from elexirion_app.pipelines.executor import RunOutcome, run_pipeline
from elexirion_app.pipelines.steps import enhanced
from tests.unit.pipelines.engine_fakes import CountingProvider, doc


async def run(yaml_text: str, tmp_path: Path, **kwargs: Any) -> RunOutcome:
    kwargs.setdefault("provider_for", CountingProvider())
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    return await run_pipeline(
        doc(yaml_text, base_dir=tmp_path),
        inputs=kwargs.pop("inputs", {}),
        workspace=ws,
        output_dir=tmp_path / "out",
        **kwargs,
    )


# --- claude_robust: the use_cached_response cache belongs to one run ----------------------

ROBUST = """
workflow:
  name: robust_cache
  steps:
    - name: r
      type: claude_robust
      retry_config:
        max_retries: 0
        fallback_action: use_cached_response
      prompt: [{type: static, content: "What is in my private notes?"}]
"""


async def test_robust_cached_answer_is_never_served_to_another_run(tmp_path: Path) -> None:
    first = await run(ROBUST, tmp_path, provider_for=CountingProvider(), user_id=1)
    assert first.status == "succeeded", first.error
    answer = first.steps["r"]["text"]
    assert answer.startswith("Mock enhanced Claude response")

    failing = CountingProvider(fail=lambda r: True)
    second = await run(ROBUST, tmp_path, provider_for=failing, user_id=2)

    assert failing.calls == 1
    result = second.steps["r"]
    assert result["text"] != answer
    assert result["degraded"] is True
    assert result["robustness_metadata"]["fallback_used"] == "graceful_degradation"


async def test_robust_cache_serves_an_earlier_answer_of_the_same_run(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: robust_same_run
  steps:
    - name: a
      type: claude_robust
      retry_config: {max_retries: 0, fallback_action: use_cached_response}
      prompt: [{type: static, content: "same question"}]
    - name: b
      type: claude_robust
      retry_config: {max_retries: 0, fallback_action: use_cached_response}
      prompt: [{type: static, content: "same question"}]
"""
    calls: list[int] = []

    def second_call_fails(request: LLMRequest) -> bool:
        calls.append(1)
        return len(calls) == 2

    outcome = await run(yaml_text, tmp_path, provider_for=CountingProvider(fail=second_call_fails))
    assert outcome.status == "succeeded", outcome.error
    a, b = outcome.steps["a"], outcome.steps["b"]
    assert b["text"] == a["text"]
    assert b["robustness_metadata"]["fallback_used"] == "use_cached_response"
    assert b["robustness_metadata"]["errors"] and not a["robustness_metadata"]["errors"]


async def test_robust_cache_goes_away_with_its_run(tmp_path: Path) -> None:
    gc.collect()
    before = len(enhanced._RUN_CACHES)
    outcome = await run(ROBUST, tmp_path)
    assert outcome.status == "succeeded"
    del outcome
    gc.collect()
    assert len(enhanced._RUN_CACHES) == before


# --- pricing errors are not swallowed -------------------------------------------------------

SIMPLE = """
workflow:
  name: priced
  steps:
    - name: c
      type: claude
      prompt: [{type: static, content: "simple test"}]
"""


async def test_a_pricing_bug_fails_the_run_instead_of_recording_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from elexirion_app.core import pricing

    def broken(model: str, usage: Any) -> Any:
        raise RuntimeError("price table is corrupt")

    monkeypatch.setattr(pricing, "cost", broken)
    rows: list[LLMCallFinished] = []
    outcome = await run(SIMPLE, tmp_path, observers=[lambda e: rows.append(e)])
    assert outcome.status == "failed"
    assert not [r for r in rows if isinstance(r, LLMCallFinished)]  # no silent $0 row


def test_unknown_or_offline_model_prices_at_zero_without_error() -> None:
    from decimal import Decimal

    from elexirion_app.core.types import Usage
    from elexirion_app.pipelines.steps.llm import _price

    assert _price("no-such-model-xyz", Usage(input=5, output=5)) == Decimal("0")
    assert _price("offline-demo", Usage(input=5, output=5)) == Decimal("0")
    assert _price("claude-sonnet-4-6", Usage(input=1_000_000)) == Decimal("3")


# --- claude fallback_model, extended thinking (real SDK against the fake Messages API) -------


@pytest.fixture
async def fake_anthropic() -> Any:
    from tests.fakes.fake_anthropic import FakeAnthropic

    server = FakeAnthropic()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def live(fake: Any) -> Any:
    from elexirion_app.providers.anthropic_provider import AnthropicProvider

    provider = AnthropicProvider(
        "k", base_url=fake.url, timeout_s=2.0, retry_base_delay_s=0.001, retry_max_delay_s=0.002
    )
    return lambda kind: provider


FALLBACK = """
workflow:
  name: fb
  steps:
    - name: c
      type: claude
      claude_options:
        model: opus
        fallback_model: sonnet
        max_retries: 1
      prompt: [{type: static, content: "review this"}]
"""


def calls(rows: list[Any]) -> list[LLMCallFinished]:
    return [r for r in rows if isinstance(r, LLMCallFinished)]


async def test_fallback_model_answers_when_the_primary_is_overloaded(
    tmp_path: Path, fake_anthropic: Any
) -> None:
    from tests.fakes.fake_anthropic import overloaded, text

    fake_anthropic.queue(
        overloaded(**{"retry-after-ms": "1"}),
        overloaded(**{"retry-after-ms": "1"}),
        text("fallback answer", input=100, output=20),
    )
    rows: list[Any] = []
    outcome = await run(
        FALLBACK, tmp_path, provider_for=live(fake_anthropic), observers=[rows.append]
    )

    assert outcome.status == "succeeded", outcome.error
    result = outcome.steps["c"]
    assert result["text"] == "fallback answer"
    assert result["model"] == "claude-sonnet-4-6"  # the model that answered
    assert [b["model"] for b in fake_anthropic.bodies] == [
        "claude-opus-4-7",
        "claude-opus-4-7",
        "claude-sonnet-4-6",
    ]
    records = calls(rows)
    assert [(r.attempt, r.model, r.status) for r in records] == [
        (1, "claude-opus-4-7", "error"),
        (2, "claude-opus-4-7", "error"),
        (3, "claude-sonnet-4-6", "ok"),
    ]
    assert float(sum(r.cost for r in records)) == pytest.approx(result["cost"])
    assert records[2].cost > 0


@pytest.mark.parametrize("failure", ["500", "429", "timeout"])
async def test_fallback_on_5xx_rate_limit_and_timeout(
    tmp_path: Path, fake_anthropic: Any, failure: str
) -> None:
    from tests.fakes.base import Hang
    from tests.fakes.fake_anthropic import rate_limited, server_error, text

    reply = {
        "500": server_error(**{"retry-after-ms": "1"}),
        "429": rate_limited("0.001"),
        "timeout": Hang(5),
    }[failure]
    fake_anthropic.queue(reply, reply, text("from sonnet"))
    yaml_text = FALLBACK.replace("max_retries: 1", "max_retries: 1\n        timeout_ms: 500")
    outcome = await run(yaml_text, tmp_path, provider_for=live(fake_anthropic))
    assert outcome.status == "succeeded", outcome.error
    assert outcome.steps["c"]["model"] == "claude-sonnet-4-6"
    assert len(fake_anthropic.requests) == 3


async def test_no_fallback_on_an_auth_error(tmp_path: Path, fake_anthropic: Any) -> None:
    from tests.fakes.base import Status
    from tests.fakes.fake_anthropic import text

    body = {"type": "error", "error": {"type": "authentication_error", "message": "bad key"}}
    fake_anthropic.queue(Status(401, body), text("never"))
    outcome = await run(FALLBACK, tmp_path, provider_for=live(fake_anthropic))
    assert outcome.status == "failed"
    assert len(fake_anthropic.requests) == 1


async def test_fallback_failing_too_fails_the_step_with_every_attempt_recorded(
    tmp_path: Path, fake_anthropic: Any
) -> None:
    from tests.fakes.fake_anthropic import overloaded

    fake_anthropic.default = overloaded(**{"retry-after-ms": "1"})
    rows: list[Any] = []
    outcome = await run(
        FALLBACK, tmp_path, provider_for=live(fake_anthropic), observers=[rows.append]
    )
    assert outcome.status == "failed"
    assert len(fake_anthropic.requests) == 4  # 2 on opus, then once more (2 requests) on sonnet
    assert [(r.attempt, r.model) for r in calls(rows)] == [
        (1, "claude-opus-4-7"),
        (2, "claude-opus-4-7"),
        (3, "claude-sonnet-4-6"),
        (4, "claude-sonnet-4-6"),
    ]


async def test_without_fallback_model_the_failure_stands(
    tmp_path: Path, fake_anthropic: Any
) -> None:
    from tests.fakes.fake_anthropic import overloaded

    fake_anthropic.default = overloaded(**{"retry-after-ms": "1"})
    yaml_text = FALLBACK.replace("        fallback_model: sonnet\n", "")
    outcome = await run(yaml_text, tmp_path, provider_for=live(fake_anthropic))
    assert outcome.status == "failed"
    assert {b["model"] for b in fake_anthropic.bodies} == {"claude-opus-4-7"}


THINKING = """
workflow:
  name: think
  steps:
    - name: c
      type: claude
      claude_options:
        OPTION
      prompt: [{type: static, content: "prove it"}]
"""


@pytest.mark.parametrize(
    ("option", "budget"),
    [
        ("max_thinking_tokens: 2048", 2048),
        ("thinking: true", 4096),
        ("thinking: 3000", 3000),
        ("thinking: {type: enabled, budget_tokens: 1500}", 1500),
    ],
)
async def test_extended_thinking_is_sent_and_its_tokens_reported(
    tmp_path: Path, fake_anthropic: Any, option: str, budget: int
) -> None:
    from tests.fakes.fake_anthropic import thinking

    fake_anthropic.queue(thinking("Consider the cases.", "QED", output=60, thinking_tokens=45))
    outcome = await run(
        THINKING.replace("OPTION", option), tmp_path, provider_for=live(fake_anthropic)
    )
    assert outcome.status == "succeeded", outcome.error
    [body] = fake_anthropic.bodies
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    result = outcome.steps["c"]
    assert result["text"] == "QED"
    assert result["tokens"]["thinking"] == 45 and result["tokens"]["output"] == 15


@pytest.mark.parametrize("option", ["thinking: false", "max_thinking_tokens: 0", "max_turns: 1"])
async def test_thinking_off(tmp_path: Path, fake_anthropic: Any, option: str) -> None:
    from tests.fakes.fake_anthropic import text

    fake_anthropic.queue(text("plain"))
    outcome = await run(
        THINKING.replace("OPTION", option), tmp_path, provider_for=live(fake_anthropic)
    )
    assert outcome.status == "succeeded", outcome.error
    assert "thinking" not in fake_anthropic.bodies[0]
    assert outcome.steps["c"]["tokens"]["thinking"] == 0


@pytest.mark.parametrize("option", ["max_thinking_tokens: 500", "thinking: lots"])
async def test_bad_thinking_budget_is_a_clear_step_error(
    tmp_path: Path, fake_anthropic: Any, option: str
) -> None:
    outcome = await run(
        THINKING.replace("OPTION", option), tmp_path, provider_for=live(fake_anthropic)
    )
    assert outcome.status == "failed"
    assert "thinking budget" in (outcome.error or "")
    assert fake_anthropic.requests == []


async def test_enhanced_steps_take_thinking_from_claude_options(
    tmp_path: Path, fake_anthropic: Any
) -> None:
    from tests.fakes.fake_anthropic import thinking

    yaml_text = """
workflow:
  name: smart_think
  steps:
    - name: s
      type: claude_smart
      preset: chat
      claude_options: {max_thinking_tokens: 1024}
      prompt: [{type: static, content: "think"}]
"""
    fake_anthropic.queue(thinking("ok so", "done", output=20, thinking_tokens=5))
    outcome = await run(yaml_text, tmp_path, provider_for=live(fake_anthropic))
    assert outcome.status == "succeeded", outcome.error
    assert fake_anthropic.bodies[0]["thinking"]["budget_tokens"] == 1024
    assert outcome.steps["s"]["tokens"]["thinking"] == 5
