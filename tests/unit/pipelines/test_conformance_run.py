"""Every pipeline_ex file of the conformance folder, run offline with the demo model.

pipeline_ex's own expected failures give a clear ``PipelineValidationError`` (or, where the
README allows it, the sensible run); the rest succeed with pipeline_ex's mock answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from elexirion_app.core.errors import PipelineValidationError
from elexirion_app.pipelines.executor import RunOutcome, run_pipeline
from elexirion_app.pipelines.loader import load_file, load_text
from elexirion_app.pipelines.validate import ensure_valid
from tests.support import conformance
from tests.unit.pipelines.engine_fakes import CountingProvider

CONFORMANCE = conformance.pipeline_ex_dir()
# Without the suite, one placeholder case that the ``suite`` fixture skips (or fails on CI).
FILES = sorted(p.relative_to(CONFORMANCE).as_posix() for p in CONFORMANCE.rglob("*.yaml")) or [
    "(suite absent)"
]

# pipeline_ex fails on these; we refuse them at validation with a clear message.
INVALID = {
    "examples/performance_demo.yaml": "stream_copy",
    "pipelines/meta/genesis_pipeline.yaml": "analyze_requirements",
    # pipeline_ex refuses it too; its security hooks would silently not run.
    "examples/hooks_example.yaml": "hooks are not executed",
}
# Reads '../research_papers/...' through a template: refused at run time, never read.
OUTSIDE_WORKSPACE = {"research_paper_improvement_native_loop.yaml"}

# Files the pipelines read, relative to their workspace.
FIXTURE_FILES = {
    "lib/pipeline/config.ex": "defmodule Pipeline.Config do\nend\n",
    "README.md": "# Demo project\nA small project.\n",
    "requirements.txt": "A calculator with add and subtract.\n",
    "workspace/docs/documentation.md": "# Docs\n",
}
INPUTS: dict[str, dict[str, Any]] = {
    "test/fixtures/pipelines/nested_processor.yaml": {
        "item_name": "widget",
        "item_count": 3,
        "multiplier": 4,
    },
    "test/fixtures/pipelines/context_inherit_test.yaml": {"test_input": "hello"},
    "working_genesis.yaml": {"pipeline_request": "summarise a folder"},
}


@pytest.fixture
def suite() -> Path:
    """pipeline_ex's files; skips (or, when required, fails) when the suite is absent."""
    return conformance.require()


def _content(result: dict[str, Any]) -> Any:
    return json.loads(result["content"])


PLAN = {"plan": "Mock implementation plan", "complexity": "medium"}
ANALYSIS = {"analysis": "Mock analysis result", "confidence": 0.9}


def check_simple_test(o: RunOutcome) -> None:
    assert o.steps["claude_test"]["text"] == (
        "Mock response for: Hello from Claude! Respond with a simple greeting...."
    )
    assert o.steps["gemini_test"]["content"].startswith("Mock Gemini response for: Hello from")


def check_test_simple_workflow(o: RunOutcome) -> None:
    assert o.steps["analyze_code"]["text"] == "Mock Python code response"
    assert _content(o.steps["plan_improvements"]) == PLAN


def check_gemini_only(o: RunOutcome) -> None:
    assert _content(o.steps["analyze_code_quality"]) == ANALYSIS
    assert _content(o.steps["refactor_code"]) == PLAN


def check_smart(o: RunOutcome) -> None:
    assert o.steps["smart_analysis"]["text"].startswith(
        "Mock enhanced Claude response (analysis). Original prompt length:"
    )
    assert o.steps["smart_production_summary"]["cost"] == 0.0  # offline: $0


def check_batch(o: RunOutcome) -> None:
    math = o.steps["batch_math_problems"]
    assert math["total_tasks"] == 3 and math["successful_tasks"] == 3
    assert o.steps["batch_single_prompt"]["batch_results"][0]["result"]["text"].startswith(
        "Mock enhanced Claude response (chat)"
    )


def check_robust(o: RunOutcome) -> None:
    for name in ("robust_with_retry", "robust_with_emergency_fallback"):
        assert o.steps[name]["robustness_metadata"]["fallback_used"] is None


def check_session(o: RunOutcome) -> None:
    meta = o.steps["session_final"]["claude_session_metadata"]
    assert meta["session_name"] == "math_tutor" and meta["interaction_count"] == 3


def check_extract(o: RunOutcome) -> None:
    assert o.steps["extract_json"]["extraction_applied"] is True
    assert "summary" in o.steps["extract_summary"]["extracted"]


def check_comprehensive(o: RunOutcome) -> None:
    calls = o.steps["architecture_design"]["function_calls"]
    assert calls == [
        {
            "name": "validate_config",
            "arguments": {"result": "mock_function_result", "status": "completed"},
        }
    ]
    assert o.output_dir is not None and (o.output_dir / "README.md").exists()


def check_config_example(o: RunOutcome) -> None:
    parallel = o.steps["parallel_tasks"]
    assert set(parallel["individual_results"]) == {"documentation", "testing"}
    assert parallel["combined_results"].startswith("\n===[documentation]===\n")
    assert o.steps["quality_assessment"]["structured"] is not None
    assert o.steps["deployment_prep"]["skipped"] is True


def check_nested_processor(o: RunOutcome) -> None:
    assert o.steps["process_input"]["result"] == "Processing widget with count 3"
    assert o.steps["final_count"]["result"] == 12


def check_context_inherit(o: RunOutcome) -> None:
    assert o.steps["combined_result"]["result"].endswith("Using input: hello")


def check_nested_basic(o: RunOutcome) -> None:
    assert o.steps["nested_step"]["echo"]["result"] == "nested_result"


def check_data_transform(o: RunOutcome) -> None:
    # the mock's sample data is not JSON: every transform sees an empty list, with a warning
    assert o.steps["filter_high_value_orders"]["high_value_orders"] == []
    assert o.steps["filter_high_value_orders"]["metadata"]["warnings"]


def check_model_selection(o: RunOutcome) -> None:
    assert o.output_dir is not None
    assert (o.output_dir / "basic_docs.md").exists()
    assert json.loads((o.output_dir / "simple_review.json").read_text())["success"] is True


CHECKS: dict[str, Callable[[RunOutcome], None]] = {
    "examples/simple_test.yaml": check_simple_test,
    "test_simple_workflow.yaml": check_test_simple_workflow,
    "gemini_only_workflow.yaml": check_gemini_only,
    "examples/claude_smart_example.yaml": check_smart,
    "examples/claude_batch_example.yaml": check_batch,
    "examples/claude_robust_example.yaml": check_robust,
    "examples/claude_session_example.yaml": check_session,
    "examples/claude_extract_example.yaml": check_extract,
    "test/fixtures/workflows/comprehensive_test_workflow.yaml": check_comprehensive,
    "examples/comprehensive_config_example.yaml": check_config_example,
    "test/fixtures/pipelines/nested_processor.yaml": check_nested_processor,
    "test/fixtures/pipelines/context_inherit_test.yaml": check_context_inherit,
    "test/fixtures/pipelines/test_nested_basic.yaml": check_nested_basic,
    "examples/data_transform_example.yaml": check_data_transform,
    "examples/model_selection_demo.yaml": check_model_selection,
}


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    for rel, text in FIXTURE_FILES.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(text)
    return ws


@pytest.mark.parametrize("rel", FILES)
async def test_conformance_file(
    rel: str, suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # checkpoints and relative defaults stay in tmp
    doc = load_file(suite / rel)
    provider = CountingProvider()
    if rel in INVALID:
        with pytest.raises(PipelineValidationError) as info:
            ensure_valid(doc)
        assert INVALID[rel] in str(info.value)
        assert all(p.file and p.line for p in info.value.problems if p.severity == "error")
        return
    ensure_valid(doc)
    outcome = await run_pipeline(
        doc,
        inputs=INPUTS.get(rel, {}),
        workspace=_workspace(tmp_path),
        output_dir=tmp_path / "out",
        provider_for=provider,
    )
    if rel in OUTSIDE_WORKSPACE:
        assert outcome.status == "failed"
        assert "outside the workspace" in (outcome.error or "")
        assert provider.calls == 0
        return
    assert outcome.status == "succeeded", outcome.error
    assert outcome.cost == 0  # the offline model is free (issue 10)
    for result in outcome.steps.values():
        assert result["success"] is True
    if rel in CHECKS:
        CHECKS[rel](outcome)
    assert not list((tmp_path / "checkpoints").glob("*_latest.json"))


def test_files_without_a_workflow_root_are_refused() -> None:
    with pytest.raises(PipelineValidationError, match="workflow"):
        load_text("name: x\nsteps: []\n", filename="bare.yaml")


async def test_mock_answers_table(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: mock_table
  steps:
    - {name: exact, type: claude, prompt: [{type: static, content: "simple test"}]}
    - {name: calc, type: claude, prompt: [{type: static, content: "a calculator"}]}
    - {name: smart, type: claude_smart, prompt: [{type: static, content: "abc"}]}
    - {name: gem, type: gemini, prompt: [{type: static, content: "Analyze it"}]}
"""
    outcome = await run_pipeline(
        load_text(yaml_text),
        inputs={},
        workspace=tmp_path,
        output_dir=tmp_path / "out",
        provider_for=CountingProvider(),
    )
    assert outcome.steps["exact"]["text"] == "Mock response for simple test"
    assert outcome.steps["calc"]["text"] == "Mock calculator implementation"
    assert outcome.steps["smart"]["text"] == (
        "Mock enhanced Claude response. Original prompt length: 3 characters."
    )
    assert _content(outcome.steps["gem"]) == ANALYSIS
