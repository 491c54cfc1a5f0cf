"""The router: deterministic rules, overrides, clarifying questions, and the LLM path with a
scripted provider (valid JSON, bad JSON, unknown pipeline, rate limit / timeout)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from elexirion_app.agent.catalogue import PipelineEntry, load_catalogue
from elexirion_app.agent.router import (
    CONFIDENCE_THRESHOLD,
    ROUTE_SCHEMA,
    RouteDecision,
    detect_override,
    extract_paths,
    route,
    route_offline,
)
from elexirion_app.core.errors import ProviderTimeout, RateLimited
from elexirion_app.core.types import ChatMessage, LLMRequest, LLMResponse, StreamEvent, Usage
from elexirion_app.providers.base import Provider
from elexirion_app.providers.mock import MockProvider

PIPELINES = Path(__file__).resolve().parents[3] / "pipelines"
CATALOGUE = load_catalogue([PIPELINES])
DEFAULT_GOAL = next(e for e in CATALOGUE if e.name == "refactoring").defaults()["goal"]


class ScriptedProvider:
    """A live-looking provider answering from a script (text, a map as ``structured``, or an
    exception to raise)."""

    name = "scripted"
    offline = False

    def __init__(self, *answers: str | dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[LLMRequest] = []

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        structured = answer if isinstance(answer, dict) else None
        text = json.dumps(answer) if isinstance(answer, dict) else answer
        for start in range(0, len(text), 7):
            yield StreamEvent("delta", text=text[start : start + 7])
        response = LLMResponse(
            text=text, model="scripted-1", usage=Usage(input=50, output=20), structured=structured
        )
        yield StreamEvent("done", response=response)


def _names(catalogue: list[PipelineEntry]) -> set[str]:
    return {e.name for e in catalogue}


def test_the_scripted_provider_is_a_provider() -> None:
    assert isinstance(ScriptedProvider(), Provider)
    assert {"code_analysis", "refactoring", "genesis"} <= _names(CATALOGUE)


# --- deterministic routing ---------------------------------------------------------------------


def test_code_quality_runs_code_analysis_with_its_defaults() -> None:
    decision = route_offline("analyze my code quality", CATALOGUE)
    assert decision.kind == "run"
    assert decision.pipeline == "code_analysis"
    assert decision.inputs["target"] == "."
    assert decision.inputs["pattern"] == "**/*.py"
    assert decision.confidence >= CONFIDENCE_THRESHOLD
    assert "quality" in decision.reason
    assert decision.source == "rules"


def test_refactor_a_file_runs_refactoring_with_the_path() -> None:
    decision = route_offline("please refactor src/utils.py", CATALOGUE)
    assert decision.kind == "run"
    assert decision.pipeline == "refactoring"
    assert decision.inputs == {"file": "src/utils.py", "goal": DEFAULT_GOAL}
    assert decision.paths == ("file:src/utils.py",)


@pytest.mark.parametrize(
    ("message", "pipeline", "inputs"),
    [
        ("check for code smells in lib/", "code_analysis", {"target": "lib"}),
        ("review the code in folder lib/", "code_analysis", {"target": "lib"}),
        ("lint my project", "code_analysis", {"target": "."}),
        ("find bugs in src/main.py", "code_analysis", {"target": "src", "pattern": "main.py"}),
        (
            "can you audit src/ focusing on security?",
            "code_analysis",
            {"target": "src", "focus": "security"},
        ),
        ("clean up app/models.py", "refactoring", {"file": "app/models.py"}),
        ("simplify `lib/parse.py`, it is a mess", "refactoring", {"file": "lib/parse.py"}),
    ],
)
def test_typical_requests(message: str, pipeline: str, inputs: dict[str, str]) -> None:
    decision = route_offline(message, CATALOGUE)
    assert (decision.kind, decision.pipeline) == ("run", pipeline), decision.reason
    assert inputs.items() <= decision.inputs.items()


@pytest.mark.parametrize(
    "message",
    ["hi, how are you?", "tell me a joke", "what's the weather like?", "thanks!"],
)
def test_small_talk_is_answered(message: str) -> None:
    decision = route_offline(message, CATALOGUE)
    assert decision.kind == "answer"
    assert decision.pipeline is None


def test_a_question_about_a_pipeline_is_answered_not_run() -> None:
    decision = route_offline("what does code_analysis do?", CATALOGUE)
    assert decision.kind == "answer"
    assert decision.candidates == ("code_analysis",)


@pytest.mark.parametrize(
    "message",
    [
        "create a pipeline that summarises a changelog and drafts release notes",
        "Please generate a new workflow for triaging issues",
        "build me a code review pipeline",
    ],
)
def test_create_a_pipeline_is_genesis(message: str) -> None:
    decision = route_offline(message, CATALOGUE)
    assert decision.kind == "genesis"
    assert decision.pipeline is None
    assert decision.inputs == {"request": message}


def test_generating_something_else_is_not_genesis() -> None:
    assert route_offline("generate release notes", CATALOGUE).kind != "genesis"
    assert route_offline("write a report on my pipeline", CATALOGUE).kind != "genesis"


def test_an_ambiguous_request_gets_a_question_listing_the_candidates() -> None:
    decision = route_offline("do something with my code", CATALOGUE)
    assert decision.kind == "clarify"
    assert decision.pipeline is None
    assert set(decision.candidates) == {"code_analysis", "refactoring"}
    assert decision.question is not None
    assert "code_analysis" in decision.question and "refactoring" in decision.question
    assert decision.question.rstrip().endswith((".", "?", ")"))


def test_a_missing_required_input_is_asked_for_then_filled() -> None:
    first = route_offline("refactor my code", CATALOGUE)
    assert first.kind == "clarify"
    assert first.pipeline == "refactoring"
    assert first.missing_inputs == ("file",)
    assert first.question is not None and "file" in first.question
    second = route_offline("src/app.py", CATALOGUE, previous=first)
    assert second.kind == "run"
    assert second.pipeline == "refactoring"
    assert second.inputs == {"file": "src/app.py", "goal": DEFAULT_GOAL}


def test_answering_a_clarifying_question_by_position_or_name() -> None:
    asked = route_offline("do something with my code in lib/", CATALOGUE)
    assert asked.kind == "clarify"
    first = asked.candidates[0]
    picked = route_offline("the first one", CATALOGUE, previous=asked)
    assert picked.pipeline == first
    by_name = route_offline("code analysis please", CATALOGUE, previous=asked)
    assert (by_name.kind, by_name.pipeline) == ("run", "code_analysis")
    assert by_name.inputs["target"] == "lib"  # the folder of the first message carried over


def test_an_empty_catalogue_answers() -> None:
    assert route_offline("analyze my code quality", []).kind == "answer"
    assert route_offline("   ", CATALOGUE).kind == "answer"


def test_paths_are_extracted_but_urls_and_versions_are_not() -> None:
    found = extract_paths(
        "look at src/app.py, the folder tests and docs/*.md (see https://x.org/a.py, v3.11)"
    )
    assert found == [("dir", "tests"), ("file", "src/app.py"), ("glob", "docs/*.md")]


# --- overrides -------------------------------------------------------------------------------


def test_no_use_the_refactoring_pipeline_overrides_and_keeps_the_path() -> None:
    previous = route_offline("find bugs in src/utils.py", CATALOGUE)
    assert previous.pipeline == "code_analysis"
    forced = detect_override("no, use the refactoring pipeline", CATALOGUE, previous)
    assert forced is not None
    assert (forced.kind, forced.pipeline, forced.source) == ("run", "refactoring", "override")
    assert forced.inputs["file"] == "src/utils.py"
    assert forced.confidence == 1.0
    assert "instead of code_analysis" in forced.reason


@pytest.mark.parametrize(
    ("message", "pipeline"),
    [
        ("use code_analysis instead", "code_analysis"),
        ("run refactoring on lib/x.py", "refactoring"),
        ("Switch to code analysis", "code_analysis"),
        ("no, the refactoring one", "refactoring"),
        ("refactoring instead please", "refactoring"),
    ],
)
def test_override_phrases(message: str, pipeline: str) -> None:
    previous = RouteDecision(kind="run", pipeline="refactoring", paths=("file:lib/x.py",))
    forced = detect_override(message, CATALOGUE, previous)
    assert forced is not None and forced.pipeline == pipeline
    # route() honours the override first
    assert route_offline(message, CATALOGUE, previous=previous).pipeline == pipeline


def test_run_without_a_required_input_asks_for_it() -> None:
    forced = detect_override("run refactoring", CATALOGUE, None)
    assert forced is not None
    assert forced.kind == "clarify" and forced.missing_inputs == ("file",)


@pytest.mark.parametrize(
    "message", ["don't run refactoring", "I like refactoring", "analyze my code quality"]
)
def test_no_override(message: str) -> None:
    assert detect_override(message, CATALOGUE, None) is None


def test_decisions_round_trip_through_plain_data() -> None:
    decision = route_offline("refactor my code", CATALOGUE)
    data = json.loads(json.dumps(decision.to_dict()))
    assert RouteDecision.from_dict(data) == decision


# --- the LLM path ------------------------------------------------------------------------------


async def test_llm_path_uses_the_models_valid_json() -> None:
    answer = {
        "kind": "run",
        "pipeline": "code_analysis",
        "inputs": {"target": "pkg", "focus": "naming", "colour": "blue"},
        "confidence": 0.92,
        "reason": "The user wants a quality review.",
        "question": None,
    }
    provider = ScriptedProvider(json.dumps(answer))
    history = [ChatMessage("user", "hello"), ChatMessage("assistant", "Hi!")]
    decision = await route(
        "how good is my package code?", CATALOGUE, provider=provider, history=history
    )
    assert decision.source == "llm"
    assert (decision.kind, decision.pipeline) == ("run", "code_analysis")
    assert decision.inputs == {"target": "pkg", "pattern": "**/*.py", "focus": "naming"}
    assert decision.confidence == 0.92
    (request,) = provider.requests
    assert request.response_schema == ROUTE_SCHEMA
    assert request.system is not None and '"name": "refactoring"' in request.system
    assert request.messages[-1].content == "how good is my package code?"
    assert request.messages[0].content == "hello"


async def test_llm_path_reads_structured_output_and_fenced_json() -> None:
    answer: dict[str, Any] = {
        "kind": "answer",
        "pipeline": None,
        "inputs": {},
        "confidence": 0.99,
        "reason": "small talk",
        "question": None,
    }
    structured = await route("hello there", CATALOGUE, provider=ScriptedProvider(answer))
    assert (structured.kind, structured.source) == ("answer", "llm")
    fenced = "Here you go:\n```json\n" + json.dumps({**answer, "kind": "genesis"}) + "\n```"
    genesis = await route("make a pipeline for X", CATALOGUE, provider=ScriptedProvider(fenced))
    assert genesis.kind == "genesis" and genesis.inputs == {"request": "make a pipeline for X"}


async def test_llm_low_confidence_becomes_a_clarifying_question() -> None:
    answer = {
        "kind": "run",
        "pipeline": "refactoring",
        "inputs": {"file": "a.py"},
        "confidence": 0.3,
        "reason": "maybe",
        "question": None,
    }
    decision = await route("do stuff to a.py", CATALOGUE, provider=ScriptedProvider(answer))
    assert decision.kind == "clarify"
    assert decision.candidates[0] == "refactoring"
    assert decision.question and "refactoring" in decision.question


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("I think you want the code analysis pipeline!", "not JSON"),
        (
            '{"kind": "run", "pipeline": "deploy_to_prod", "inputs": {}, "confidence": 1,'
            ' "reason": "x", "question": null}',
            "unknown pipeline 'deploy_to_prod'",
        ),
        (
            '{"kind": "dance", "pipeline": null, "inputs": {}, "confidence": 1, "reason": "",'
            ' "question": null}',
            "unknown kind",
        ),
        (
            '{"kind": "run", "pipeline": "refactoring", "inputs": {"file": ["a"]},'
            ' "confidence": 1, "reason": "", "question": null}',
            "not a string",
        ),
        ("[1, 2, 3]", "not a JSON object"),
    ],
)
async def test_unusable_model_answers_fall_back_to_the_rules(answer: str, why: str) -> None:
    message = "please refactor src/utils.py"
    decision = await route(message, CATALOGUE, provider=ScriptedProvider(answer))
    expected = route_offline(message, CATALOGUE)
    assert (decision.kind, decision.pipeline, decision.inputs) == (
        expected.kind,
        expected.pipeline,
        expected.inputs,
    )
    assert decision.source == "rules"
    assert "unusable" in decision.reason and why in decision.reason
    assert "routed by keywords" in decision.reason


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (RateLimited(provider="scripted", status=429), "rate limiting us (429)"),
        (ProviderTimeout(provider="scripted"), "did not answer in time"),
    ],
)
async def test_provider_errors_fall_back_to_the_rules(error: Exception, why: str) -> None:
    decision = await route("analyze my code quality", CATALOGUE, provider=ScriptedProvider(error))
    assert (decision.kind, decision.pipeline) == ("run", "code_analysis")
    assert why in decision.reason and "routed by keywords" in decision.reason


async def test_overrides_and_offline_providers_never_call_a_model() -> None:
    provider = ScriptedProvider()  # an empty script: any call would fail the test
    forced = await route(
        "use refactoring instead",
        CATALOGUE,
        provider=provider,
        previous=RouteDecision(kind="run", pipeline="code_analysis", paths=("file:a.py",)),
    )
    assert (forced.kind, forced.pipeline, forced.inputs["file"]) == ("run", "refactoring", "a.py")
    offline = await route("analyze my code quality", CATALOGUE, provider=MockProvider())
    assert offline == route_offline("analyze my code quality", CATALOGUE)
    assert provider.requests == []


def test_a_greeting_does_not_hide_the_request() -> None:
    decision = route_offline("hey, analyze my code quality", CATALOGUE)
    assert (decision.kind, decision.pipeline) == ("run", "code_analysis")


def test_a_question_a_pipeline_could_answer_is_offered_then_confirmed() -> None:
    offer = route_offline("is the code quality of my project any good?", CATALOGUE)
    assert offer.kind == "clarify"
    assert offer.candidates == ("code_analysis",)
    assert offer.question is not None and "run code_analysis" in offer.question
    confirmed = route_offline("yes please", CATALOGUE, previous=offer)
    assert (confirmed.kind, confirmed.pipeline) == ("run", "code_analysis")
    assert route_offline("no thanks", CATALOGUE, previous=offer).kind == "answer"


def test_use_genesis_instead_turns_the_earlier_message_into_the_request() -> None:
    first = route_offline("summarise my changelog into release notes", CATALOGUE)
    assert first.kind != "genesis" and first.message.startswith("summarise my changelog")
    forced = route_offline("no, use genesis instead", CATALOGUE, previous=first)
    assert forced.kind == "genesis" and forced.source == "override"
    assert forced.inputs == {"request": "summarise my changelog into release notes"}


async def test_llm_choosing_the_genesis_pipeline_means_genesis() -> None:
    answer = {
        "kind": "run",
        "pipeline": "genesis",
        "inputs": {"description": "x"},
        "confidence": 0.9,
        "reason": "new pipeline",
        "question": None,
    }
    decision = await route("I need a pipeline for X", CATALOGUE, provider=ScriptedProvider(answer))
    assert decision.kind == "genesis" and decision.inputs == {"request": "I need a pipeline for X"}
    assert decision.message == "I need a pipeline for X"


@pytest.mark.parametrize(
    "message",
    [
        "write unit tests for src/app.py",  # only a description word ("write") matches
        "list the files",
        "make my code faster",
    ],
)
def test_weak_or_tied_evidence_asks_instead_of_guessing(message: str) -> None:
    decision = route_offline(message, CATALOGUE)
    assert decision.kind == "clarify", decision.reason
    assert decision.question and decision.candidates


def test_a_folder_never_fills_a_file_input() -> None:
    decision = route_offline("refactor everything in src/", CATALOGUE)
    assert decision.kind == "clarify" and decision.pipeline == "refactoring"
    assert decision.missing_inputs == ("file",)
    assert decision.paths == ("dir:src",)


class _BuggyProvider(ScriptedProvider):
    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        raise KeyError("a bug in a provider")
        yield  # pragma: no cover


async def test_a_crashing_provider_falls_back_too() -> None:
    decision = await route("analyze my code quality", CATALOGUE, provider=_BuggyProvider())
    assert (decision.kind, decision.pipeline) == ("run", "code_analysis")
    assert "KeyError" in decision.reason


def test_display_lines_for_the_chat() -> None:
    run = route_offline("please refactor src/utils.py", CATALOGUE)
    assert run.display().startswith("Running **refactoring** with ")
    assert "file=`src/utils.py`" in run.display()
    ask = route_offline("do something with my code", CATALOGUE)
    assert ask.display() == ask.question
    new = route_offline("create a pipeline that sorts my notes", CATALOGUE)
    assert new.display() == "Writing a new pipeline for: create a pipeline that sorts my notes"
    assert route_offline("hi", CATALOGUE).display() == ""


@pytest.mark.parametrize(
    "message", ["analyze my code quality in src/", "please refactor src/app.py"]
)
async def test_routed_inputs_run_the_shipped_pipeline_offline(message: str, tmp_path: Path) -> None:
    from elexirion_app.pipelines.executor import run_pipeline

    decision = route_offline(message, CATALOGUE)
    assert decision.kind == "run" and decision.pipeline
    entry = next(e for e in CATALOGUE if e.name == decision.pipeline)
    workspace = tmp_path / "ws"
    (workspace / "src").mkdir(parents=True)
    (workspace / "src" / "app.py").write_text("def add(a, b):\n    return a + b\n")
    outcome = await run_pipeline(
        entry.path,
        inputs=decision.inputs,
        workspace=workspace,
        output_dir=tmp_path / "out",
        provider_for=lambda _: MockProvider(),
    )
    assert outcome.status == "succeeded", outcome.error


async def test_a_generated_pipeline_joins_the_catalogue_and_is_routable(tmp_path: Path) -> None:
    from elexirion_app.agent.genesis import generate_pipeline

    result = await generate_pipeline(
        "create a pipeline that translates release notes into French", MockProvider()
    )
    assert result.valid
    (tmp_path / f"{result.name}.yaml").write_text(result.yaml_text)
    catalogue = load_catalogue([PIPELINES, tmp_path])
    assert result.name in _names(catalogue)
    decision = route_offline(f"run {result.name}", catalogue)
    assert (decision.kind, decision.pipeline) == ("run", result.name)
    assert decision.inputs["task"] == "Translates release notes into French"


@pytest.mark.parametrize(
    "message",
    [
        "<img src=x onerror=alert(1)> **bold** `code`\n```python\nprint('hi')\n```",
        "here is some good code from my project",
    ],
)
def test_a_message_that_only_mentions_code_is_answered_not_questioned(message: str) -> None:
    decision = route_offline(message, CATALOGUE)
    assert decision.kind == "answer", decision.reason
    assert "nothing asked to be done" in decision.reason
