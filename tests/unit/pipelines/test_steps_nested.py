"""Nested pipelines: inline and file, typed inputs, outputs, depth limit, cycles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from elexirion_app.core.errors import PipelineValidationError
from elexirion_app.pipelines.executor import RunOutcome, run_pipeline
from elexirion_app.pipelines.loader import load_file
from tests.unit.pipelines.engine_fakes import CountingProvider, doc


async def run(source: Any, tmp_path: Path, **kwargs: Any) -> RunOutcome:
    kwargs.setdefault("provider_for", CountingProvider())
    document = source if not isinstance(source, str) else doc(source, base_dir=tmp_path)
    return await run_pipeline(
        document,
        inputs=kwargs.pop("inputs", {}),
        workspace=tmp_path / "ws",
        output_dir=tmp_path / "out",
        **kwargs,
    )


CHILD = """
workflow:
  name: child
  steps:
    - name: double
      type: set_variable
      variables:
        n: "{{multiply(inputs.count, 2)}}"
        kind: "{{inputs.items}}"
    - name: talk
      type: claude
      prompt: [{type: static, content: "child got {{inputs.label}}"}]
"""


async def test_pipeline_file_with_typed_inputs_and_outputs(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(CHILD)
    parent = """
workflow:
  name: parent
  steps:
    - name: setup
      type: set_variable
      variables: {count: 21, items: [1, 2]}
    - name: sub
      type: pipeline
      pipeline_file: child.yaml
      inputs:
        count: "{{state.count}}"
        items: "{{state.items}}"
        label: "n={{state.count}}"
      outputs:
        - talk
        - {path: double.variables_set.n, as: doubled}
        - {path: double.variables_set.kind, as: items}
    - name: use
      type: claude
      prompt: [{type: static, content: "{{steps.sub.doubled}} {{steps.sub.talk.text}}"}]
"""
    provider = CountingProvider()
    outcome = await run(parent, tmp_path, provider_for=provider)
    assert outcome.status == "succeeded", outcome.error
    sub = outcome.steps["sub"]
    assert sub["doubled"] == 42 and sub["items"] == [1, 2]
    assert sub["talk"]["text"] == "Mock response for: child got n=21..."
    assert provider.requests[-1].prompt.startswith("42 Mock response for: child got n=21")


async def test_inline_pipeline_and_inherit_context(tmp_path: Path) -> None:
    parent = """
workflow:
  name: parent
  global_vars: {parent_var: P}
  steps:
    - name: isolated
      type: pipeline
      pipeline:
        name: inline_a
        steps:
          - name: echo
            type: claude
            prompt: [{type: static, content: "[{{global_vars.parent_var}}]"}]
    - name: inherited
      type: pipeline
      config: {inherit_context: true}
      pipeline:
        name: inline_b
        steps:
          - name: echo
            type: claude
            prompt: [{type: static, content: "[{{global_vars.parent_var}}]"}]
"""
    provider = CountingProvider()
    outcome = await run(parent, tmp_path, provider_for=provider)
    assert outcome.status == "succeeded", outcome.error
    prompts = [r.prompt for r in provider.requests]
    assert prompts[0] != "[P]" and prompts[1] == "[P]"
    assert outcome.steps["inherited"]["echo"]["success"] is True


async def test_cycles_are_refused(tmp_path: Path) -> None:
    a = """
workflow:
  name: a
  steps:
    - name: to_b
      type: pipeline
      pipeline_file: b.yaml
"""
    b = """
workflow:
  name: b
  steps:
    - name: to_a
      type: pipeline
      pipeline_file: a.yaml
"""
    (tmp_path / "a.yaml").write_text(a)
    (tmp_path / "b.yaml").write_text(b)
    with pytest.raises(PipelineValidationError, match="cycle"):
        await run(load_file(tmp_path / "a.yaml"), tmp_path)
    # the executor refuses the cycle on its own too (e.g. a file changed after validation)
    outcome = await run(load_file(tmp_path / "a.yaml"), tmp_path, validate=False)
    assert outcome.status == "failed"
    assert "cycle" in (outcome.error or "") or "circular" in (outcome.error or "")


async def test_a_cycle_through_a_symlinked_root_is_refused_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "workflow:\n  name: a\n  steps:\n"
        "    - {name: to_b, type: pipeline, pipeline_file: b.yaml}\n"
    )
    (tmp_path / "b.yaml").write_text(
        "workflow:\n  name: b\n  steps:\n"
        "    - {name: to_a, type: pipeline, pipeline_file: a.yaml}\n"
    )
    (tmp_path / "link.yaml").symlink_to(tmp_path / "a.yaml")
    root = load_file(tmp_path / "link.yaml")
    assert root.real_file == str((tmp_path / "a.yaml").resolve())  # resolved by the loader
    outcome = await run(root, tmp_path, validate=False)
    assert outcome.status == "failed"
    assert "form a cycle" in (outcome.error or "")


async def test_depth_limit(tmp_path: Path) -> None:
    (tmp_path / "self.yaml").write_text(
        """
workflow:
  name: deep
  steps:
    - name: level
      type: pipeline
      config: {max_depth: 2}
      pipeline:
        name: l1
        steps:
          - name: deeper
            type: pipeline
            config: {max_depth: 2}
            pipeline:
              name: l2
              steps:
                - name: deepest
                  type: pipeline
                  config: {max_depth: 2}
                  pipeline:
                    name: l3
                    steps:
                      - name: v
                        type: set_variable
                        variables: {a: 1}
"""
    )
    outcome = await run(load_file(tmp_path / "self.yaml"), tmp_path)
    assert outcome.status == "failed"
    assert "exceeds max_depth 2" in (outcome.error or "")


async def test_missing_output_and_pipeline_file_escape(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(CHILD)
    parent = """
workflow:
  name: parent
  steps:
    - name: sub
      type: pipeline
      pipeline_file: child.yaml
      inputs: {count: 1, items: [], label: x}
      outputs: [nope]
"""
    outcome = await run(parent, tmp_path)
    assert outcome.status == "failed" and "output 'nope' not found" in (outcome.error or "")
    (tmp_path.parent / "elsewhere.yaml").write_text(CHILD)
    escape = parent.replace("child.yaml", "../elsewhere.yaml").replace("outputs: [nope]", "")
    with pytest.raises(PipelineValidationError):
        await run(escape, tmp_path)
    outcome = await run(escape, tmp_path, validate=False)  # the executor refuses it too
    assert outcome.status == "failed" and "outside" in (outcome.error or "")


async def test_max_total_steps(tmp_path: Path) -> None:
    parent = """
workflow:
  name: parent
  steps:
    - name: sub
      type: pipeline
      config: {max_total_steps: 2}
      pipeline:
        name: many
        steps:
          - {name: a, type: set_variable, variables: {x: 1}}
          - {name: b, type: set_variable, variables: {x: 2}}
          - {name: c, type: set_variable, variables: {x: 3}}
"""
    outcome = await run(parent, tmp_path)
    assert outcome.status == "failed" and "max_total_steps" in (outcome.error or "")
