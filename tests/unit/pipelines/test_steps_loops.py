"""Loops and set_variable: loop.* values, persistence across iterations, parallelism."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from elexirion_app.core.errors import PipelineValidationError
from elexirion_app.pipelines.executor import RunOutcome, run_pipeline
from tests.unit.pipelines.engine_fakes import CountingProvider, doc


async def run(yaml_text: str, tmp_path: Path, **kwargs: Any) -> RunOutcome:
    kwargs.setdefault("provider_for", CountingProvider())
    return await run_pipeline(
        doc(yaml_text, base_dir=tmp_path),
        inputs=kwargs.pop("inputs", {}),
        workspace=tmp_path / "ws",
        output_dir=tmp_path / "out",
        **kwargs,
    )


async def test_for_loop_exposes_loop_context_and_keeps_variables(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: loops
  steps:
    - name: init
      type: set_variable
      variables:
        total: 0
        names: [ann, bob, cy]
    - name: each
      type: for_loop
      iterator: person
      data_source: "init:variables_set.names"
      steps:
        - name: add
          type: set_variable
          variables:
            total: "{{state.total + loop.index}}"
        - name: say
          type: claude
          prompt:
            - type: static
              content: >-
                {{loop.person}} {{loop.index}}/{{loop.total}}
                first={{loop.first}} last={{loop.last}}
    - name: after
      type: set_variable
      variables:
        seen: "{{state.total}}"
"""
    provider = CountingProvider()
    outcome = await run(yaml_text, tmp_path, provider_for=provider)
    assert outcome.status == "succeeded", outcome.error
    prompts = [r.prompt for r in provider.requests]
    assert prompts == [
        "ann 0/3 first=true last=false",
        "bob 1/3 first=false last=false",
        "cy 2/3 first=false last=true",
    ]
    loop = outcome.steps["each"]
    assert loop["total_items"] == 3 and loop["completed_items"] == 3
    assert [it["item"] for it in loop["iterations"]] == ["ann", "bob", "cy"]
    assert outcome.steps["after"]["variables_set"] == {"seen": 3}


async def test_nested_loops_see_level_and_parent(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: nested
  steps:
    - name: outer
      type: for_loop
      iterator: x
      data_source: "{{inputs.xs}}"
      steps:
        - name: inner
          type: for_loop
          iterator: y
          data_source: "{{inputs.ys}}"
          steps:
            - name: say
              type: claude
              prompt: [{type: static, content: "{{loop.parent.x}}{{loop.y}} L{{loop.level}}"}]
"""
    provider = CountingProvider()
    outcome = await run(
        yaml_text, tmp_path, provider_for=provider, inputs={"xs": ["a", "b"], "ys": [1, 2]}
    )
    assert outcome.status == "succeeded", outcome.error
    assert [r.prompt for r in provider.requests] == ["a1 L1", "a2 L1", "b1 L1", "b2 L1"]


async def test_parallel_for_loop_caps_concurrency(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: par
  steps:
    - name: each
      type: for_loop
      iterator: n
      data_source: "{{inputs.items}}"
      parallel: true
      max_parallel: 50
      steps:
        - name: call
          type: claude
          prompt: [{type: static, content: "n={{loop.n}}"}]
"""
    provider = CountingProvider(delay_s=0.01)
    outcome = await run(
        yaml_text, tmp_path, provider_for=provider, inputs={"items": list(range(25))}
    )
    assert outcome.steps["each"]["completed_items"] == 25
    assert provider.max_active == 10  # max_parallel is capped at 10
    assert [it["index"] for it in outcome.steps["each"]["iterations"]] == list(range(25))


async def test_break_continue_and_errors(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: ctl
  steps:
    - name: each
      type: for_loop
      iterator: n
      data_source: "{{inputs.items}}"
      continue_condition: "loop.n == 2"
      break_condition: "loop.n >= 4"
      steps:
        - name: call
          type: claude
          prompt: [{type: static, content: "n={{loop.n}}"}]
"""
    provider = CountingProvider()
    outcome = await run(
        yaml_text, tmp_path, provider_for=provider, inputs={"items": [1, 2, 3, 4, 5, 6]}
    )
    assert [r.prompt for r in provider.requests] == ["n=1", "n=3", "n=4"]
    assert outcome.steps["each"]["broke_early"] is True

    failing = """
workflow:
  name: err
  steps:
    - name: each
      type: for_loop
      iterator: n
      data_source: "{{inputs.items}}"
      break_on_error: BREAK
      steps:
        - name: call
          type: gemini
          prompt: [{type: static, content: "{{loop.n}}"}]
"""
    inputs = {"items": ["ok", "This will fail", "ok again"]}
    outcome = await run(failing.replace("BREAK", "true"), tmp_path, inputs=inputs)
    assert outcome.status == "failed" and "iteration 1" in (outcome.error or "")
    outcome = await run(failing.replace("BREAK", "false"), tmp_path, inputs=inputs)
    assert outcome.status == "succeeded"
    assert outcome.steps["each"]["completed_items"] == 2
    assert outcome.steps["each"]["success"] is False


async def test_for_loop_over_missing_data_fails_clearly(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: missing
  steps:
    - name: each
      type: for_loop
      iterator: n
      data_source: "previous_response:nothing"
      steps:
        - name: v
          type: set_variable
          variables: {a: 1}
"""
    with pytest.raises(PipelineValidationError, match="nothing"):
        await run(yaml_text, tmp_path)
    templated = yaml_text.replace('"previous_response:nothing"', '"{{inputs.src}}"')
    outcome = await run(templated, tmp_path, inputs={"src": "previous_response:nothing"})
    assert outcome.status == "failed" and "did not resolve" in (outcome.error or "")


async def test_while_loop_counts_and_caps(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: wl
  steps:
    - name: init
      type: set_variable
      variables: {i: 0}
    - name: loop
      type: while_loop
      condition: "state.i < 3"
      max_iterations: MAX
      steps:
        - name: inc
          type: set_variable
          variables: {i: "{{state.i + 1}}"}
    - name: done
      type: set_variable
      variables: {final: "{{state.i}}"}
"""
    outcome = await run(yaml_text.replace("MAX", "10"), tmp_path)
    assert outcome.steps["loop"]["iterations"] == 3
    assert outcome.steps["loop"]["condition_met"] is True
    assert outcome.steps["done"]["variables_set"] == {"final": 3}
    capped = await run(yaml_text.replace("MAX", "2"), tmp_path)
    assert capped.steps["loop"]["iterations"] == 2
    assert capped.steps["loop"]["max_iterations_reached"] is True


async def test_set_variable_loop_scope(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: scopes
  steps:
    - name: each
      type: for_loop
      iterator: n
      data_source: "{{inputs.items}}"
      steps:
        - name: local
          type: set_variable
          scope: loop
          variables: {doubled: "{{loop.n * 2}}"}
        - name: use
          type: claude
          prompt: [{type: static, content: "{{doubled}}"}]
"""
    provider = CountingProvider()
    outcome = await run(yaml_text, tmp_path, provider_for=provider, inputs={"items": [1, 2]})
    assert outcome.status == "succeeded", outcome.error
    assert [r.prompt for r in provider.requests] == ["2", "4"]
    assert outcome.steps["each"]["iterations"][0]["results"]["local"]["scope"] == "loop"


async def test_parallel_failure_cancels_the_other_iterations(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: cancel
  steps:
    - name: each
      type: for_loop
      iterator: n
      data_source: "{{inputs.items}}"
      parallel: true
      max_parallel: 2
      steps:
        - name: call
          type: gemini
          prompt: [{type: static, content: "{{loop.n}}"}]
"""
    provider = CountingProvider(delay_s=0.02)
    items = ["This will fail"] + [f"item {i}" for i in range(19)]
    outcome = await run(yaml_text, tmp_path, provider_for=provider, inputs={"items": items})
    assert outcome.status == "failed" and "iteration 0" in (outcome.error or "")
    assert provider.calls <= 4  # the queued iterations never reached the provider


async def test_data_source_forms(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: forms
  steps:
    - name: setup
      type: set_variable
      variables: {items: [a, b]}
    - name: by_previous
      type: for_loop
      iterator: x
      data_source: "previous_response:setup.variables_set.items"
      steps:
        - {name: say, type: claude, prompt: [{type: static, content: "p-{{loop.x}}"}]}
    - name: by_step_path
      type: for_loop
      iterator: x
      data_source: "setup:variables_set.items"
      steps:
        - {name: say, type: claude, prompt: [{type: static, content: "s-{{loop.x}}"}]}
    - name: plan
      type: gemini
      prompt: [{type: static, content: "make a plan"}]
    - name: by_json_text
      type: for_loop
      iterator: entry
      data_source: plan
      steps:
        - {name: say, type: claude, prompt: [{type: static, content: "j-{{loop.entry.key}}"}]}
"""
    provider = CountingProvider()
    outcome = await run(yaml_text, tmp_path, provider_for=provider)
    assert outcome.status == "succeeded", outcome.error
    assert [r.prompt for r in provider.requests if r.provider == "claude"] == [
        "p-a",
        "p-b",
        "s-a",
        "s-b",
        "j-plan",
        "j-complexity",
    ]


class TracingProvider(CountingProvider):
    """Logs when each call starts and ends (to see batch boundaries)."""

    def __init__(self) -> None:
        super().__init__(delay_s=0.01)
        self.log: list[tuple[str, str]] = []

    async def stream(self, request: Any) -> Any:
        self.log.append(("start", request.prompt))
        async for event in super().stream(request):
            yield event
        self.log.append(("end", request.prompt))


async def test_batch_size_runs_parallel_iterations_batch_by_batch(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: batches
  steps:
    - name: each
      type: for_loop
      iterator: n
      data_source: "{{inputs.items}}"
      parallel: true
      max_parallel: 10
      batch_size: 3
      steps:
        - name: call
          type: claude
          prompt: [{type: static, content: "n={{loop.n}}"}]
"""
    provider = TracingProvider()
    outcome = await run(
        yaml_text, tmp_path, provider_for=provider, inputs={"items": list(range(7))}
    )
    assert outcome.status == "succeeded", outcome.error
    loop = outcome.steps["each"]
    assert loop["batches_processed"] == 3 and loop["completed_items"] == 7
    assert [it["index"] for it in loop["iterations"]] == list(range(7))  # in item order
    assert provider.max_active == 3  # a batch at a time, even though max_parallel is 10
    batch_of = {f"n={n}": n // 3 for n in range(7)}
    for batch in range(2):
        last_end = max(
            i for i, (kind, p) in enumerate(provider.log) if kind == "end" and batch_of[p] == batch
        )
        first_next = min(
            i
            for i, (kind, p) in enumerate(provider.log)
            if kind == "start" and batch_of[p] == batch + 1
        )
        assert last_end < first_next  # the next batch starts when this one is done


async def test_batch_size_is_capped_by_max_parallel_inside_a_batch(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: batches
  steps:
    - name: each
      type: for_loop
      iterator: n
      data_source: "{{inputs.items}}"
      parallel: true
      max_parallel: 2
      batch_size: 5
      steps:
        - name: call
          type: claude
          prompt: [{type: static, content: "n={{loop.n}}"}]
"""
    provider = CountingProvider(delay_s=0.01)
    outcome = await run(
        yaml_text, tmp_path, provider_for=provider, inputs={"items": list(range(6))}
    )
    assert outcome.steps["each"]["batches_processed"] == 2
    assert provider.max_active == 2


async def test_sequential_batches_and_break(tmp_path: Path) -> None:
    yaml_text = """
workflow:
  name: seq_batches
  steps:
    - name: each
      type: for_loop
      iterator: n
      data_source: "{{inputs.items}}"
      batch_size: "{{inputs.size}}"
      break_condition: "loop.n >= 3"
      steps:
        - name: call
          type: claude
          prompt: [{type: static, content: "n={{loop.n}}"}]
"""
    provider = CountingProvider()
    outcome = await run(
        yaml_text, tmp_path, provider_for=provider, inputs={"items": [1, 2, 3, 4, 5], "size": 2}
    )
    assert [r.prompt for r in provider.requests] == ["n=1", "n=2", "n=3"]
    loop = outcome.steps["each"]
    assert loop["batches_processed"] == 2 and loop["broke_early"] is True
    assert loop["total_items"] == 5 and loop["completed_items"] == 3

    outcome = await run(yaml_text, tmp_path, inputs={"items": [1], "size": 0})
    assert outcome.status == "failed"
    assert "batch_size must be a positive integer" in (outcome.error or "")
