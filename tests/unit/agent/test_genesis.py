"""Genesis: request -> pipeline YAML that validates (repair loop with the validator's
messages), and the offline builder whose pipelines run on the offline model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from elexirion_app.agent.genesis import (
    GENESIS_SYSTEM,
    check_yaml,
    extract_yaml,
    generate_pipeline,
    offline_pipeline,
    slug_name,
)
from elexirion_app.core.errors import InputError, RateLimited
from elexirion_app.core.types import LLMRequest, LLMResponse, StreamEvent, Usage
from elexirion_app.pipelines.loader import load_text
from elexirion_app.providers.base import Provider
from elexirion_app.providers.mock import MockProvider

REQUEST = "create a pipeline that summarises a changelog and drafts release notes"

VALID = """\
workflow:
  name: release_notes
  description: Summarise a changelog and draft release notes.
  inputs:
    - name: changelog
      description: Path of the changelog in the workspace
      default: CHANGELOG.md
  steps:
    - name: summarise
      type: claude
      claude_options: {model: sonnet, max_turns: 1}
      prompt:
        - type: static
          content: "Summarise the changes:"
        - type: file
          path: "{{inputs.changelog}}"
    - name: draft
      type: claude
      prompt:
        - type: static
          content: "Draft release notes from this summary:"
        - type: previous_response
          step: summarise
"""
MISSING_STEP = VALID.replace("step: summarise", "step: summary")
BAD_INDENT = "workflow:\n  name: broken\n   steps:\n  - name: x\n"


class ScriptedProvider:
    """A live-looking provider answering from a script (exceptions are raised)."""

    name = "scripted"
    offline = False

    def __init__(self, *answers: str | Exception, repeat_last: bool = False) -> None:
        self.answers = list(answers)
        self.repeat_last = repeat_last
        self.requests: list[LLMRequest] = []

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        answer = self.answers[0] if self.repeat_last and len(self.answers) == 1 else None
        if answer is None:
            answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        yield StreamEvent("delta", text=answer)
        usage = Usage(input=100, output=80)
        response = LLMResponse(text=answer, model="scripted-1", usage=usage)
        yield StreamEvent("done", response=response)


def _fenced(yaml_text: str) -> str:
    return f"Here is your pipeline:\n\n```yaml\n{yaml_text}```\nIt has two steps."


def test_the_scripted_provider_is_a_provider() -> None:
    assert isinstance(ScriptedProvider(), Provider)


async def test_invalid_then_valid_is_valid_after_two_attempts() -> None:
    provider = ScriptedProvider(_fenced(MISSING_STEP), _fenced(VALID))
    result = await generate_pipeline(REQUEST, provider)
    assert result.valid
    assert result.attempts == 2
    assert result.name == "release_notes"
    assert result.yaml_text == VALID
    assert result.errors == []
    assert result.usage == Usage(input=200, output=160)
    first, second = provider.requests
    assert REQUEST in first.prompt
    assert first.system == GENESIS_SYSTEM
    # The second request carries the conversation: our answer, then the validator's message.
    assert second.messages[1].role == "assistant" and "summary" in second.messages[1].content
    fix = second.prompt
    assert "generated.yaml:" in fix
    assert "steps[1].prompt[1].step: previous_response refers to a step 'summary'" in fix
    assert "did you mean 'summarise'?" in fix
    assert "```yaml" in fix


async def test_bad_indentation_is_reported_with_its_line_then_fixed() -> None:
    provider = ScriptedProvider(_fenced(BAD_INDENT), _fenced(VALID))
    result = await generate_pipeline(REQUEST, provider, max_tries=2)
    assert result.valid and result.attempts == 2
    assert "generated.yaml:3" in provider.requests[1].prompt


async def test_a_model_that_never_gets_it_right_gives_up_with_the_problems() -> None:
    provider = ScriptedProvider(_fenced(MISSING_STEP), repeat_last=True)
    result = await generate_pipeline(REQUEST, provider, max_tries=3)
    assert not result.valid
    assert result.attempts == 3 and len(provider.requests) == 3
    assert result.yaml_text == MISSING_STEP
    assert result.problems and all(p.severity == "error" for p in result.problems)
    assert "does not exist" in result.problem_text()


async def test_an_answer_without_yaml_or_with_python_tags_is_invalid_not_run() -> None:
    tagged = "workflow: !!python/object/apply:os.system ['echo hacked']\n"
    provider = ScriptedProvider("Sorry, I cannot help with that.", _fenced(tagged))
    result = await generate_pipeline(REQUEST, provider, max_tries=2)
    assert not result.valid and result.attempts == 2
    assert "tag" in result.problem_text().lower()


async def test_a_provider_error_ends_the_loop_with_a_problem() -> None:
    provider = ScriptedProvider(_fenced(MISSING_STEP), RateLimited(provider="scripted"))
    result = await generate_pipeline(REQUEST, provider)
    assert not result.valid and result.attempts == 1
    text = result.problem_text()
    assert "does not exist" in text and "the model failed" in text and "429" in text


async def test_offline_builds_a_valid_pipeline_that_runs_offline(tmp_path: Path) -> None:
    result = await generate_pipeline(REQUEST, MockProvider())
    assert result.valid and result.offline and result.attempts == 1
    assert result.name == "summarises_changelog_drafts_release"
    assert [p for p in result.problems if p.severity == "error"] == []
    doc = load_text(result.yaml_text, "generated.yaml")
    steps = [s["name"] for s in doc.workflow["steps"]]
    assert steps == ["list_files", "analyse", "draft", "review"]
    executor = pytest.importorskip(
        "elexirion_app.pipelines.executor", reason="the executor is not importable yet"
    )
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "CHANGELOG.md").write_text("## 1.1\n- faster\n")
    outcome = await executor.run_pipeline(
        doc, workspace=workspace, output_dir=tmp_path / "out", provider_for=lambda _: MockProvider()
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.steps["list_files"]["files"]
    assert outcome.steps["review"]["text"].startswith("Mock response for: Review the draft")
    written = json.loads((tmp_path / "out" / f"{result.name}_result.json").read_text())
    assert written["success"] is True


@pytest.mark.parametrize(
    "request_text",
    [
        "make a workflow: write a haiku about {{inputs.secret}} and {% raw %}",
        "Translate texts to French",
        "generate a pipeline that 1) plans 2) drafts: 'quoted' \"double\" # not a comment",
        "x" * 3000,
    ],
)
def test_offline_pipelines_validate_for_awkward_requests(request_text: str) -> None:
    text = offline_pipeline(request_text)
    problems, name = check_yaml(text)
    assert [p.format() for p in problems if p.severity == "error"] == []
    assert name and len(name) <= 40 and name[0].isalpha()


def test_the_example_in_the_prompt_is_itself_valid() -> None:
    problems, name = check_yaml(extract_yaml(GENESIS_SYSTEM))
    assert [p for p in problems if p.severity == "error"] == []
    assert name == "summarise_markdown_files_workspace"


def test_extract_yaml_variants() -> None:
    assert extract_yaml(_fenced(VALID)) == VALID
    assert extract_yaml("```\n" + VALID + "```") == VALID
    two = "```python\nprint(1)\n```\nthen\n```yml\n" + VALID + "```"
    assert extract_yaml(two) == VALID
    assert extract_yaml("Sure!\n" + VALID) == VALID
    assert extract_yaml("```yaml\n" + VALID) == VALID  # an unterminated block


def test_slug_names() -> None:
    assert slug_name(REQUEST) == "summarises_changelog_drafts_release"
    assert slug_name("create a pipeline") == "create_pipeline"
    assert slug_name("???") == "generated_pipeline"
    assert slug_name("make a pipeline that 42 things happen").startswith("pipeline_42")


async def test_bad_requests_are_input_errors() -> None:
    with pytest.raises(InputError):
        await generate_pipeline("   ", MockProvider())
    with pytest.raises(InputError):
        await generate_pipeline("x" * 5000, MockProvider())
    with pytest.raises(InputError):
        await generate_pipeline("ok", MockProvider(), name="../evil")


async def test_the_model_is_held_to_the_requested_name() -> None:
    provider = ScriptedProvider(_fenced(VALID), _fenced(VALID.replace("release_notes", "notes")))
    result = await generate_pipeline(REQUEST, provider, name="notes")
    assert result.valid and result.name == "notes" and result.attempts == 2
    assert "Name it `notes`" in provider.requests[0].prompt
    assert "the workflow is named 'release_notes', not 'notes'" in provider.requests[1].prompt


def test_nested_pipeline_files_never_resolve_against_the_server(tmp_path: Path) -> None:
    step = "    - name: sub\n      type: pipeline\n      pipeline_file: pipelines/genesis.yaml\n"
    nested = VALID + step
    problems, _ = check_yaml(nested)  # the repository's own pipelines/ is not visible
    assert any("not found" in p.message for p in problems)
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "genesis.yaml").write_text(VALID)
    problems, _ = check_yaml(nested, base_dir=tmp_path)
    assert [p.format() for p in problems if p.severity == "error"] == []
