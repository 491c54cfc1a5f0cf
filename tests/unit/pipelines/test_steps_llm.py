"""LLM steps: prompt parts, parallel_claude, enhanced claude_* types, extraction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from elexirion_app.core.types import LLMRequest
from elexirion_app.pipelines.executor import RunOutcome, run_pipeline
from elexirion_app.pipelines.steps import extraction
from elexirion_app.pipelines.steps.enhanced import backoff_delay_s
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


async def test_prompt_parts_are_joined_with_newlines(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "notes.txt").write_text("file body")
    yaml_text = """
workflow:
  name: parts
  steps:
    - name: g
      type: gemini
      prompt: [{type: static, content: "make a plan"}]
    - name: c
      type: claude
      prompt:
        - type: static
          content: "Intro"
        - type: file
          path: notes.txt
        - type: previous_response
          step: g
          extract: plan
        - type: previous_response
          step: g
          extract: missing.field
        - type: session_context
          session_id: s1
"""
    provider = CountingProvider()
    outcome = await run(yaml_text, tmp_path, provider_for=provider)
    assert outcome.status == "succeeded", outcome.error
    assert provider.requests[1].prompt == "Intro\nfile body\nMock implementation plan\nnil\n"


async def test_session_store_hook_feeds_session_parts(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: sess
  steps:
    - name: c
      type: claude
      prompt:
        - type: claude_continue
          session_id: abc
          new_prompt: "and now?"
"""
    provider = CountingProvider()

    async def store(session_id: str) -> str:
        return f"history of {session_id}"

    await run(yaml_text, tmp_path, provider_for=provider, session_store=store)
    assert provider.requests[0].prompt == "history of abc\nand now?"


async def test_strict_previous_response_fails_and_file_escape_is_refused(tmp_path: Path) -> None:
    strict = """
workflow:
  name: strict
  steps:
    - name: g
      type: gemini
      prompt: [{type: static, content: "hello"}]
    - name: c
      type: claude
      prompt: [{type: previous_response, step: g, extract: nope, strict: true}]
"""
    outcome = await run(strict, tmp_path)
    assert outcome.status == "failed" and "g.nope" in (outcome.error or "")
    (tmp_path / "secret.txt").write_text("secret")
    escape = """
workflow:
  name: escape
  steps:
    - name: c
      type: claude
      prompt: [{type: file, path: "{{inputs.p}}"}]
"""
    provider = CountingProvider()
    for bad in ("../secret.txt", str(tmp_path / "secret.txt")):
        outcome = await run(escape, tmp_path, provider_for=provider, inputs={"p": bad})
        assert outcome.status == "failed" and "outside the workspace" in (outcome.error or "")
    assert provider.calls == 0


async def test_parallel_claude_combines_results(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: par
  steps:
    - name: both
      type: parallel_claude
      parallel_tasks:
        - id: py
          prompt: [{type: static, content: "Python please"}]
          output_to_file: py.json
        - id: calc
          claude_options: {model: haiku}
          prompt: [{type: static, content: "a calculator"}]
"""
    provider = CountingProvider(delay_s=0.02)
    outcome = await run(yaml_text, tmp_path, provider_for=provider)
    result = outcome.steps["both"]
    assert result["combined_results"] == (
        "\n===[py]===\nMock Python code response\n===[calc]===\nMock calculator implementation"
    )
    assert result["individual_results"]["calc"]["cost"] == 0.0
    assert provider.max_active == 2
    assert (tmp_path / "out" / "py.json").exists()


async def test_enhanced_presets_and_workflow_default_preset(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: enhanced
  defaults:
    claude_preset: production
  steps:
    - name: smart
      type: claude_smart
      preset: analysis
      environment_aware: true
      claude_options: {allowed_tools: [Write]}
      prompt: [{type: static, content: "hello"}]
    - name: robust
      type: claude_robust
      prompt: [{type: static, content: "hello"}]
    - name: session
      type: claude_session
      prompt: [{type: static, content: "hi"}]
"""
    provider = CountingProvider()
    outcome = await run(yaml_text, tmp_path, provider_for=provider)
    smart = outcome.steps["smart"]
    assert smart["text"] == (
        "Mock enhanced Claude response (analysis). Original prompt length: 5 characters."
    )
    assert smart["cost"] == 0.0
    assert smart["claude_smart_metadata"]["environment_aware"] is True
    assert provider.requests[0].allowed_tools == ("Read", "Glob", "Grep")
    assert provider.requests[1].preset == "production"  # defaults.claude_preset wins
    assert outcome.steps["robust"]["robustness_metadata"]["attempts"] == 1
    assert outcome.steps["session"]["cost"] == 0.0


async def test_claude_session_carries_the_conversation(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: sessions
  steps:
    - name: one
      type: claude_session
      session_config: {session_name: tutor, persist: true}
      prompt: [{type: static, content: "What is 5 + 3?"}]
    - name: two
      type: claude_session
      session_config: {session_name: tutor}
      prompt: [{type: static, content: "What did I ask?"}]
"""
    provider = CountingProvider()
    outcome = await run(yaml_text, tmp_path, provider_for=provider)
    second: LLMRequest = provider.requests[1]
    assert second.messages[0].content == "What is 5 + 3?"
    assert second.prompt == "What did I ask?"
    meta = outcome.steps["two"]["claude_session_metadata"]
    assert meta["interaction_count"] == 2 and meta["continued"] is True


async def test_claude_extract_post_processing(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: extract
  steps:
    - name: ex
      type: claude_extract
      extraction_config:
        format: json
        post_processing: [extract_key_points, generate_summary]
        max_summary_length: 40
        include_metadata: true
      prompt: [{type: static, content: "x"}]
"""
    outcome = await run(yaml_text, tmp_path)
    result = outcome.steps["ex"]
    assert result["extraction_applied"] is True
    body = json.loads(result["text"])
    assert body["content"].startswith("Mock enhanced Claude response")
    assert len(result["extracted"]["summary"]) <= 40
    assert result["extraction_metadata"]["format"] == "json"


def test_extraction_functions() -> None:
    text = (
        "# Review\nThe code works. You should add tests.\n\n"
        "## Recommendations\n- Use type hints\n- Add logging\n\n"
        "See [docs](https://docs.python.org/3/) and https://example.com/x.\n"
        "```python\nprint('hi')\n```\n"
    )
    assert extraction.extract_code_blocks(text) == [{"language": "python", "code": "print('hi')"}]
    recs = extraction.extract_recommendations(text)
    assert "Use type hints" in recs and "Add logging" in recs
    assert any("should add tests" in r for r in recs)
    links = extraction.extract_links(text)
    assert {"text": "docs", "url": "https://docs.python.org/3/"} in links
    assert any(link["url"] == "https://example.com/x" for link in links)
    assert extraction.extract_key_points(text) == ["Use type hints", "Add logging"]
    assert extraction.generate_summary(text, 30) == "The code works."
    formatted = extraction.format_markdown("# A\ntext   \n\n\n\n## B\nmore")
    assert formatted == "# A\n\ntext\n\n## B\n\nmore\n"


async def test_claude_batch_limits_parallelism_and_times_out(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: batch
  steps:
    - name: b
      type: claude_batch
      batch_config: {max_parallel: 2, timeout_per_task: 5000}
      prompt: [{type: static, content: "Shared:"}]
      tasks:
        - {task_id: t1, prompt: [{type: static, content: "one"}]}
        - {task_id: t2, prompt: [{type: static, content: "two"}]}
        - {task_id: t3, prompt: [{type: static, content: "three"}]}
        - {task_id: t4, file: data.txt}
"""
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "data.txt").write_text("four")
    provider = CountingProvider(delay_s=0.02)
    outcome = await run(yaml_text, tmp_path, provider_for=provider)
    result = outcome.steps["b"]
    assert result["total_tasks"] == 4 and result["successful_tasks"] == 4
    assert provider.max_active == 2
    assert provider.requests[0].prompt == "Shared:\none"
    assert [b["task_id"] for b in result["batch_results"]] == ["t1", "t2", "t3", "t4"]
    assert "## t4 (success)" in result["text"]

    slow = CountingProvider(delay_s=0.5)
    outcome = await run(
        yaml_text.replace("timeout_per_task: 5000", "timeout_per_task: 20"),
        tmp_path,
        provider_for=slow,
    )
    assert outcome.status == "failed" and "all 4 batch tasks failed" in (outcome.error or "")


async def test_claude_robust_retries_then_falls_back(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: robust
  steps:
    - name: r
      type: claude_robust
      retry_config:
        max_retries: 2
        backoff_strategy: linear
        base_delay_ms: 1
        retry_conditions: [api_error]
        fallback_action: FALLBACK
      prompt: [{type: static, content: "question"}]
"""
    failing = CountingProvider(fail=lambda r: True)
    outcome = await run(
        yaml_text.replace("FALLBACK", "graceful_degradation"), tmp_path, provider_for=failing
    )
    result = outcome.steps["r"]
    assert failing.calls == 3
    assert result["degraded"] is True
    assert result["robustness_metadata"]["fallback_used"] == "graceful_degradation"
    assert result["robustness_metadata"]["retries"] == 2

    first_fails: list[int] = []

    def fail_once(request: LLMRequest) -> bool:
        first_fails.append(1)
        return len(first_fails) == 1

    flaky = CountingProvider(fail=fail_once)
    outcome = await run(yaml_text.replace("FALLBACK", "none"), tmp_path, provider_for=flaky)
    assert outcome.steps["r"]["robustness_metadata"]["attempts"] == 2
    assert outcome.steps["r"]["text"].startswith("Mock enhanced Claude response (production)")

    outcome = await run(
        yaml_text.replace("FALLBACK", "none"),
        tmp_path,
        provider_for=CountingProvider(fail=lambda r: True),
    )
    assert outcome.status == "failed" and "3 attempt(s)" in (outcome.error or "")


def test_backoff_strategies() -> None:
    assert backoff_delay_s("linear", 100, 3) == 0.3
    assert backoff_delay_s("exponential", 100, 3) == 0.4
    assert backoff_delay_s("fixed", 100, 3) == 0.1
    assert backoff_delay_s("exponential", 1000, 20) == 30.0


async def test_gemini_instructor_returns_structured_data(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: instructor
  steps:
    - name: gi
      type: gemini_instructor
      response_schema: {type: object, properties: {analysis: {type: string}}}
      prompt: [{type: static, content: "analyze this"}]
"""
    provider = CountingProvider()
    outcome = await run(yaml_text, tmp_path, provider_for=provider)
    assert outcome.steps["gi"]["structured"] == {
        "analysis": "Mock analysis result",
        "confidence": 0.9,
    }
    assert provider.requests[0].response_schema is not None


async def test_previous_response_of_a_map_is_pretty_json(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: pretty
  steps:
    - name: v
      type: set_variable
      variables: {a: 1}
    - name: c
      type: claude
      prompt: [{type: previous_response, step: v}]
"""
    provider = CountingProvider()
    await run(yaml_text, tmp_path, provider_for=provider)
    prompt = provider.requests[0].prompt
    assert json.loads(prompt)["variables_set"] == {"a": 1}
    assert "\n  " in prompt  # indented


async def test_claude_session_uses_the_session_store(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: stored
  steps:
    - name: one
      type: claude_session
      session_config: {session_name: tutor}
      prompt: [{type: static, content: "hi"}]
"""
    provider = CountingProvider()

    def store(session_id: str) -> str:
        return f"user: earlier question ({session_id})"

    outcome = await run(yaml_text, tmp_path, provider_for=provider, session_store=store)
    request = provider.requests[0]
    assert request.system is not None and "earlier question (tutor)" in request.system
    assert outcome.steps["one"]["claude_session_metadata"]["continued"] is True
