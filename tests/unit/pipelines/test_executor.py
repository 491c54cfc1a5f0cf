"""The executor: outcome shape, events, conditions, defaults, output files, inputs."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from elexirion_app.core.errors import InputError, PipelineValidationError
from elexirion_app.core.events import (
    LLMCallFinished,
    RunFinished,
    RunStarted,
    StepDelta,
    StepFinished,
    StepStarted,
)
from elexirion_app.core.types import TOKEN_KINDS, Usage
from elexirion_app.pipelines.executor import RunOutcome, optional_observer, run_pipeline
from tests.unit.pipelines.engine_fakes import CountingProvider, doc


async def run(yaml_text: str, tmp_path: Path, **kwargs: Any) -> RunOutcome:
    kwargs.setdefault("provider_for", CountingProvider())
    kwargs.setdefault("inputs", {})
    return await run_pipeline(
        doc(yaml_text, base_dir=tmp_path),
        workspace=kwargs.pop("workspace", tmp_path / "ws"),
        output_dir=kwargs.pop("output_dir", tmp_path / "out"),
        **kwargs,
    )


TWO_STEPS = """
workflow:
  name: two
  steps:
    - name: first
      type: claude
      prompt:
        - type: static
          content: "simple test"
    - name: second
      type: gemini
      prompt:
        - type: static
          content: "make a plan from:"
        - type: previous_response
          step: first
"""


async def test_outcome_has_results_usage_and_cost(tmp_path: Path) -> None:
    outcome = await run(TWO_STEPS, tmp_path)
    assert outcome.status == "succeeded" and outcome.error is None
    first = outcome.steps["first"]
    assert first["text"] == "Mock response for simple test"
    assert set(first) >= {"text", "success", "cost", "model", "tokens", "latency_ms"}
    assert set(first["tokens"]) == set(TOKEN_KINDS)  # incl. cache_write_1h
    second = outcome.steps["second"]
    assert json.loads(second["content"]) == {
        "plan": "Mock implementation plan",
        "complexity": "medium",
    }
    assert second["content"] == second["text"]
    assert outcome.cost == Decimal("0")  # the offline model is free
    assert isinstance(outcome.usage, Usage) and outcome.usage.output > 0
    as_json = outcome.to_json()
    assert set(as_json) == {"run_id", "status", "error", "steps", "cost_usd", "tokens"}
    json.dumps(as_json)


async def test_events_follow_the_lifecycle(tmp_path: Path) -> None:
    events: list[Any] = []

    async def async_observer(event: Any) -> None:
        events.append(event)

    outcome = await run(TWO_STEPS, tmp_path, observers=[async_observer], run_id="run-1")
    kinds = [type(e) for e in events]
    assert kinds[0] is RunStarted and kinds[-1] is RunFinished
    assert events[0].step_names == ("first", "second")
    assert kinds.count(StepStarted) == 2 and kinds.count(StepFinished) == 2
    assert kinds.count(LLMCallFinished) == 2
    assert StepDelta in kinds
    calls = [e for e in events if isinstance(e, LLMCallFinished)]
    assert calls[0].step == "first" and calls[0].cost == Decimal("0")
    finished = [e for e in events if isinstance(e, StepFinished)]
    assert finished[1].cost == Decimal("0") and finished[1].status == "succeeded"
    assert events[-1].status == "succeeded" and events[-1].cost == outcome.cost
    assert all(e.run_id == "run-1" for e in events)


async def test_an_observer_that_raises_fails_the_run_and_stops_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Any) -> None:
        if isinstance(event, StepFinished) and event.step == "first":
            raise RuntimeError("observer bug")

    seen: list[Any] = []
    provider = CountingProvider()
    with caplog.at_level(logging.ERROR, logger="elexirion_app.pipelines.run_context"):
        outcome = await run(
            TWO_STEPS, tmp_path, provider_for=provider, observers=[broken, seen.append]
        )
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert "observer" in outcome.error and "broken" in outcome.error
    assert "RuntimeError: observer bug" in outcome.error
    assert "StepFinished(first)" in outcome.error
    assert provider.calls == 1 and "second" not in outcome.steps  # nothing after it ran
    logged = [r for r in caplog.records if "observer bug" in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # with its traceback
    finished = [e for e in seen if isinstance(e, RunFinished)]
    assert [e.status for e in finished] == ["failed"]  # nobody is told it succeeded


async def test_an_observer_failing_at_run_start_runs_nothing(tmp_path: Path) -> None:
    def broken(event: Any) -> None:
        if isinstance(event, RunStarted):
            raise OSError("disk full")

    provider = CountingProvider()
    outcome = await run(TWO_STEPS, tmp_path, provider_for=provider, observers=[broken])
    assert outcome.status == "failed" and "OSError: disk full" in (outcome.error or "")
    assert provider.calls == 0 and outcome.steps == {}


async def test_an_observer_failing_on_the_last_event_fails_the_outcome(tmp_path: Path) -> None:
    def broken(event: Any) -> None:
        if isinstance(event, RunFinished):
            raise RuntimeError("could not write the end")

    seen: list[Any] = []
    outcome = await run(TWO_STEPS, tmp_path, observers=[broken, seen.append])
    assert outcome.status == "failed" and "could not write the end" in (outcome.error or "")
    assert seen[-1].status == "failed"  # observers after it learn the real outcome


async def test_observer_failure_is_not_an_ignorable_loop_iteration(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: loop_observed
  steps:
    - name: each
      type: for_loop
      iterator: x
      data_source: "{{inputs.xs}}"
      break_on_error: false
      steps:
        - name: say
          type: claude
          prompt: [{type: static, content: "{{loop.x}}"}]
"""

    def broken(event: Any) -> None:
        if isinstance(event, StepStarted) and event.step == "each[0].say":
            raise RuntimeError("recorder down")

    provider = CountingProvider()
    outcome = await run(
        yaml_text, tmp_path, provider_for=provider, observers=[broken], inputs={"xs": [1, 2]}
    )
    assert outcome.status == "failed" and "recorder down" in (outcome.error or "")
    assert provider.calls == 0  # no iteration went on after the failure


async def test_an_optional_observer_may_fail_without_failing_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def progress_feed(event: Any) -> None:
        raise RuntimeError("page went away")

    with caplog.at_level(logging.WARNING, logger="elexirion_app.pipelines.run_context"):
        outcome = await run(TWO_STEPS, tmp_path, observers=[optional_observer(progress_feed)])
    assert outcome.status == "succeeded"
    warned = [r for r in caplog.records if "progress_feed" in r.getMessage()]
    assert warned and all(r.exc_info is not None for r in warned)


async def test_conditions_skip_steps_with_reason(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: cond
  steps:
    - name: first
      type: claude
      prompt: [{type: static, content: "simple test"}]
    - name: runs
      type: claude
      condition: "first.success"
      prompt: [{type: static, content: "yes"}]
    - name: skipped
      type: claude
      condition: "first.text == 'something else'"
      prompt: [{type: static, content: "no"}]
    - name: templated
      type: claude
      condition: "{{inputs.flag}}"
      prompt: [{type: static, content: "flag"}]
"""
    provider = CountingProvider()
    outcome = await run(yaml_text, tmp_path, provider_for=provider, inputs={"flag": False})
    assert outcome.steps["runs"]["success"] is True and "text" in outcome.steps["runs"]
    assert outcome.steps["skipped"] == {
        "success": True,
        "skipped": True,
        "reason": "Condition not met: first.text == 'something else'",
    }
    assert outcome.steps["templated"]["skipped"] is True
    assert provider.calls == 2


async def test_failed_step_fails_the_run_and_stops(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: fails
  steps:
    - name: bad
      type: gemini
      prompt: [{type: static, content: "This will fail"}]
    - name: never
      type: claude
      prompt: [{type: static, content: "simple test"}]
"""
    provider = CountingProvider()
    outcome = await run(yaml_text, tmp_path, provider_for=provider)
    assert outcome.status == "failed"
    assert "bad" in (outcome.error or "")
    assert outcome.steps["bad"]["success"] is False
    assert "never" not in outcome.steps
    assert provider.calls == 1


async def test_defaults_are_applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # defaults.output_dir is relative to the working directory
    yaml_text = """
workflow:
  name: defaults
  defaults:
    claude_preset: chat
    gemini_model: gemini-2.5-pro
    gemini_token_budget: {max_output_tokens: 123, temperature: 0.5}
    claude_options: {model: haiku, max_turns: 2, system_prompt: "Be brief."}
    output_dir: ./from_defaults
  steps:
    - name: smart
      type: claude_smart
      prompt: [{type: static, content: "hi"}]
    - name: gem
      type: gemini
      token_budget: {temperature: 0.1}
      prompt: [{type: static, content: "hello"}]
    - name: plain
      type: claude
      claude_options: {max_turns: 1}
      prompt: [{type: static, content: "simple test"}]
      output_to_file: plain.json
"""
    provider = CountingProvider()
    outcome = await run(yaml_text, tmp_path, provider_for=provider, output_dir=None)
    smart, gem, plain = provider.requests
    assert smart.preset == "chat" and smart.allowed_tools == ()
    assert "(chat)" in outcome.steps["smart"]["text"]
    assert gem.model == "gemini-2.5-pro" and gem.max_tokens == 123 and gem.temperature == 0.1
    assert plain.model == "claude-haiku-4-5" and plain.max_turns == 1
    assert plain.system == "Be brief."
    assert outcome.output_dir is not None and outcome.output_dir.name == "from_defaults"
    assert (outcome.output_dir / "plain.json").exists()


async def test_output_to_file_writes_json_and_is_confined(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: files
  steps:
    - name: first
      type: claude
      prompt: [{type: static, content: "simple test"}]
      output_to_file: "reports/{{workflow.name}}.json"
    - name: escape
      type: claude
      prompt: [{type: static, content: "simple test"}]
      output_to_file: "{{inputs.target}}"
"""
    outcome = await run(yaml_text, tmp_path, inputs={"target": "../escaped.json"})
    written = json.loads((tmp_path / "out" / "reports" / "files.json").read_text())
    assert written["text"] == "Mock response for simple test"
    assert outcome.status == "failed"
    assert "outside" in (outcome.error or "")
    assert not (tmp_path / "escaped.json").exists()


async def test_model_aliases_and_request_options(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: models
  gemini_functions:
    score:
      description: "Score it"
      parameters: {type: object, properties: {score: {type: integer}}}
  steps:
    - name: c
      type: claude
      claude_options:
        model: opus
        timeout_ms: 5000
        max_retries: 4
        allowed_tools: [Read, Grep]
        append_system_prompt: "Extra."
      prompt: [{type: static, content: "simple test"}]
    - name: g
      type: gemini
      model: gemini-1.5-flash
      functions: [score]
      timeout_ms: 2000
      prompt: [{type: static, content: "hello"}]
"""
    provider = CountingProvider()
    outcome = await run(yaml_text, tmp_path, provider_for=provider)
    c, g = provider.requests
    assert c.model == "claude-opus-4-7" and c.timeout_s == 5.0 and c.max_retries == 4
    assert c.allowed_tools == ("Read", "Grep") and c.system == "Extra."
    assert c.workspace == (tmp_path / "ws").resolve()
    assert g.model == "gemini-2.5-flash" and g.timeout_s == 2.0
    assert [f.name for f in g.functions] == ["score"]
    assert outcome.steps["g"]["function_calls"] == [
        {"name": "score", "arguments": {"result": "mock_function_result", "status": "completed"}}
    ]


async def test_inputs_globals_and_builtins(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: io
  inputs:
    - name: who
      description: Name
      required: true
    - name: mood
      default: happy
  global_vars:
    greeting: Hi
  steps:
    - name: say
      type: claude
      prompt:
        - type: static
          content: >-
            {{global_vars.greeting}} {{inputs.who}} {{mood}}
            {{workflow.name}} {{execution_id}}
"""
    outcome = await run(yaml_text, tmp_path, inputs={"who": "Ada"}, run_id="rid")
    assert outcome.steps["say"]["text"].startswith("Mock response for: Hi Ada happy io rid")
    with pytest.raises(InputError, match="who"):
        await run(yaml_text, tmp_path, inputs={})


async def test_invalid_documents_are_refused_before_running(tmp_path: Path) -> None:
    provider = CountingProvider()
    with pytest.raises(PipelineValidationError):
        await run(
            "workflow:\n  name: x\n  steps:\n    - name: a\n      type: nope\n",
            tmp_path,
            provider_for=provider,
        )
    assert provider.calls == 0


async def test_checkpoints_are_written_then_cleared_on_success(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    yaml_text = """
workflow:
  name: cp
  checkpoint_enabled: true
  checkpoint_dir: ./cps
  steps:
    - name: a
      type: claude
      prompt: [{type: static, content: "simple test"}]
    - name: b
      type: gemini
      prompt: [{type: static, content: "This will fail"}]
"""
    failed = await run(yaml_text, tmp_path)
    assert failed.status == "failed"
    latest = json.loads((tmp_path / "cps" / "cp_latest.json").read_text())
    assert latest["step_index"] == 1 and "a" in latest["results"]
    ok = await run(yaml_text.replace("This will fail", "hello"), tmp_path)
    assert ok.status == "succeeded"
    assert not (tmp_path / "cps" / "cp_latest.json").exists()
