"""Resume by unit: loop iterations and nested-pipeline steps reused from file checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from elexirion_app.pipelines.checkpoints import resume_results_from
from elexirion_app.pipelines.executor import RunOutcome, run_pipeline
from tests.unit.pipelines.engine_fakes import CountingProvider, doc

LOOP = """
workflow:
  name: cp_loop
  checkpoint_enabled: true
  checkpoint_dir: ./cps
  steps:
    - name: init
      type: set_variable
      variables: {count: 10}
    - name: each
      type: for_loop
      iterator: x
      data_source: "{{inputs.xs}}"
      steps:
        - name: bump
          type: set_variable
          variables: {count: "{{state.count + 1}}"}
        - name: ask
          type: claude
          prompt: [{type: static, content: "item {{loop.x}} count {{state.count}}"}]
    - name: after
      type: claude
      prompt: [{type: static, content: "done {{state.count}}"}]
"""


async def run(yaml_text: str, tmp_path: Path, **kwargs: Any) -> RunOutcome:
    document = doc(yaml_text, base_dir=tmp_path)
    return await run_pipeline(
        document, workspace=tmp_path / "ws", output_dir=tmp_path / "out", **kwargs
    )


async def test_checkpoint_resume_of_a_loop_repeats_only_the_failed_iteration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    inputs = {"xs": ["a", "b", "c"]}
    failing = CountingProvider(fail=lambda r: r.prompt.startswith("item c"))
    first = await run(LOOP, tmp_path, provider_for=failing, inputs=inputs)
    assert first.status == "failed" and failing.calls == 3
    latest = json.loads((tmp_path / "cps" / "cp_loop_latest.json").read_text())
    assert {"each[0].ask", "each[1].ask"} <= set(latest["units"])
    assert "each[2].ask" not in latest["units"]

    results = resume_results_from(doc(LOOP).workflow)
    assert results is not None
    counting = CountingProvider()
    resumed = await run(
        LOOP, tmp_path, provider_for=counting, inputs=inputs, resume_results=results
    )
    assert resumed.status == "succeeded", resumed.error
    assert [r.prompt for r in counting.requests] == ["item c count 13", "done 13"]
    assert not (tmp_path / "cps" / "cp_loop_latest.json").exists()


async def test_resume_replays_set_variable_so_later_steps_see_the_same_state(
    tmp_path: Path,
) -> None:
    """A top-level ``set_variable`` reused from a resume used to lose its variables."""
    yaml_text = """
workflow:
  name: state
  steps:
    - name: init
      type: set_variable
      variables: {who: "Ada"}
    - name: greet
      type: claude
      prompt: [{type: static, content: "hello {{state.who}}"}]
"""
    counting = CountingProvider()
    resumed = await run(
        yaml_text,
        tmp_path,
        provider_for=counting,
        inputs={},
        resume_results={"init": {"success": True, "variables_set": {"who": "Ada"}}},
    )
    assert resumed.status == "succeeded"
    assert [r.prompt for r in counting.requests] == ["hello Ada"]


async def test_a_finished_loop_without_recorded_children_is_reused_whole(
    tmp_path: Path,
) -> None:
    """Older checkpoints only hold top-level results: the loop is not run again."""
    stored = {"success": True, "iterations": [], "total_items": 3, "completed_items": 3}
    counting = CountingProvider()
    resumed = await run(
        LOOP.replace("checkpoint_enabled: true", "checkpoint_enabled: false"),
        tmp_path,
        provider_for=counting,
        inputs={"xs": ["a", "b", "c"]},
        resume_results={"each": stored},
    )
    assert resumed.steps["each"] is stored
    assert [r.prompt for r in counting.requests] == ["done 10"]


async def test_nested_steps_are_reused_by_path(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: nest
  steps:
    - name: child
      type: pipeline
      pipeline:
        name: inner
        steps:
          - name: one
            type: claude
            prompt: [{type: static, content: "inner one"}]
          - name: two
            type: claude
            prompt: [{type: static, content: "inner two"}]
"""
    counting = CountingProvider()
    reused_one = {"success": True, "text": "stored answer"}
    resumed = await run(
        yaml_text,
        tmp_path,
        provider_for=counting,
        inputs={},
        resume_results={"child>one": reused_one},
    )
    assert resumed.status == "succeeded"
    assert [r.prompt for r in counting.requests] == ["inner two"]
    assert resumed.steps["child"]["one"] == reused_one
