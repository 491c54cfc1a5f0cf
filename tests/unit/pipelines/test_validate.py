"""Validation: the conformance split, and each kind of problem with its line and path."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elexirion_app.core.errors import PipelineValidationError, Problem
from elexirion_app.pipelines.loader import load_text
from elexirion_app.pipelines.validate import ensure_valid, validate_document, validate_file
from tests.support import conformance

# pipeline_ex files expected to fail (see the README of the conformance folder)
EXPECTED_FAILURES = {
    "examples/performance_demo.yaml": ["stream_copy", "no 'large_dataset'", "stream_process"],
    "pipelines/meta/genesis_pipeline.yaml": ["no 'result' field", "map interpolated"],
    "examples/hooks_example.yaml": ["hooks are not executed"],
}


@pytest.fixture
def suite() -> Path:
    """pipeline_ex's files; skips (or, when required, fails) when the suite is absent."""
    return conformance.require()


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def warnings(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "warning"]


def check(text: str, *, strict: bool = False, base_dir: Path | None = None) -> list[Problem]:
    return validate_document(load_text(text, "p.yaml", base_dir=base_dir), strict=strict)


def only_error(text: str, **kwargs: object) -> Problem:
    found = errors(check(text, **kwargs))  # type: ignore[arg-type]
    assert len(found) == 1, [p.format() for p in found]
    return found[0]


# --- conformance ------------------------------------------------------------------------


def test_conformance_split(suite: Path) -> None:
    files = sorted(suite.rglob("*.yaml"))
    assert len(files) >= 20
    failing: dict[str, list[Problem]] = {}
    for path in files:
        rel = path.relative_to(suite).as_posix()
        found = errors(validate_file(path))
        if found:
            failing[rel] = found
    assert set(failing) == set(EXPECTED_FAILURES), {
        k: [p.format() for p in v] for k, v in failing.items()
    }
    for rel, fragments in EXPECTED_FAILURES.items():
        text = " | ".join(p.format() for p in failing[rel])
        for fragment in fragments:
            assert fragment in text, (rel, fragment, text)
        assert all(p.line is not None and p.file.endswith(rel) for p in failing[rel])


def test_conformance_genesis_points_at_each_bad_template(suite: Path) -> None:
    found = errors(validate_file(suite / "pipelines/meta/genesis_pipeline.yaml"))
    assert [(p.line, p.path) for p in found] == [
        (52, "steps[1].prompt[0].content"),
        (99, "steps[2].prompt[0].content"),
        (118, "steps[3].prompt[0].content"),
        (142, "steps[4].prompt[0].content"),
    ]
    assert "{{steps.analyze_requirements.text}}" in found[0].hint


def test_conformance_performance_demo_for_loop(suite: Path) -> None:
    found = errors(validate_file(suite / "examples/performance_demo.yaml"))
    loop = [p for p in found if p.path == "steps[2].data_source"]
    assert len(loop) == 1 and loop[0].line == 25
    assert "data_source: large_dataset" in loop[0].hint


def test_conformance_hooks_example_fails_pipeline_ex_strict_validation(suite: Path) -> None:
    path = suite / "examples/hooks_example.yaml"
    strict = errors(validate_file(path, strict=True))
    prompts = [p for p in strict if p.path != "hooks"]
    assert [p.line for p in prompts] == [25, 36, 45, 56]
    assert all("plain string" in p.message for p in prompts)
    # by default a string prompt is one static part (a warning), but declared tool hooks
    # that would silently not run are an error
    relaxed = validate_file(path)
    (hooks,) = errors(relaxed)
    assert hooks.path == "hooks" and hooks.line == 10
    assert "hooks are not executed" in hooks.message and "remove 'hooks:'" in hooks.hint
    texts = [p.format() for p in warnings(relaxed)]
    assert any("plain string" in t for t in texts)


def test_file_without_workflow_root(tmp_path: Path) -> None:
    path = tmp_path / "flat.yaml"
    path.write_text("name: flat\nsteps:\n  - name: a\n    type: claude\n")
    (problem,) = validate_file(path)
    assert problem.severity == "error" and "missing the 'workflow:' root" in problem.message


def test_declared_inputs() -> None:
    text = """\
workflow:
  name: i
  inputs:
    - name: topic
      default: cats
    - description: no name
  steps:
    - name: a
      type: claude
      condition: "topic and tpoic"
      prompt: [{type: static, content: "{{topic}} {{inputs.topic}} {{inputs.topik}}"}]
"""
    found = check(text)
    (error,) = errors(found)
    assert error.path == "inputs[1]" and error.line == 6
    texts = [(p.line, p.message, p.hint) for p in warnings(found)]
    assert (
        11,
        "{{inputs.topik}}: input 'topik' is not declared in inputs:",
        "did you mean 'topic'?",
    ) in texts
    assert (10, "did you mean 'topic'?") in [(line, hint) for line, _, hint in texts]
    assert len(texts) == 2


# --- structure --------------------------------------------------------------------------


def test_required_name_and_steps() -> None:
    found = errors(check("workflow:\n  description: x\n"))
    messages = [p.message for p in found]
    assert "missing the workflow 'name'" in messages and "missing 'steps'" in messages
    problem = only_error("workflow:\n  name: a\n  steps: []\n")
    assert problem.message == "'steps' is empty" and problem.line == 3


def test_all_problems_at_once_with_format() -> None:
    text = """\
workflow:
  name: many
  steps:
    - name: a
      type: clod
    - type: claude
    - name: b
      type: claude
      prompt:
        - type: previous_response
          step: zzz
"""
    found = errors(check(text))
    assert [(p.line, p.path) for p in found] == [
        (6, "steps[1]"),
        (5, "steps[0].type"),
        (6, "steps[1]"),
        (11, "steps[2].prompt[0].step"),
    ]
    assert "step without a 'name'" in found[0].message
    assert "needs a 'prompt' list" in found[2].message
    formatted = [p.format() for p in found]
    assert "p.yaml:5: steps[0].type: unknown step type 'clod' (did you mean 'claude'?)" in formatted


def test_duplicate_step_names() -> None:
    text = """\
workflow:
  name: d
  steps:
    - {name: a, type: set_variable, variables: {x: 1}}
    - {name: a, type: set_variable, variables: {y: 1}}
"""
    problem = only_error(text)
    assert problem.line == 5 and "duplicate step name 'a' (first on line 4)" in problem.message


def test_unknown_keys_are_warnings() -> None:
    text = """\
workflow:
  name: k
  mcp_servers: {}
  colour: blue
  steps:
    - name: a
      type: set_variable
      variables: {x: 1}
      flavour: mint
"""
    found = check(text)
    assert not errors(found)
    texts = [p.format() for p in warnings(found)]
    assert (
        "p.yaml:3: mcp_servers: 'mcp_servers' is ignored by pipeline_ex and by us [warning]"
        in texts
    )
    assert any(t.startswith("p.yaml:4: colour: unknown workflow key") for t in texts)
    assert any(t.startswith("p.yaml:9: steps[0].flavour: unknown field 'flavour'") for t in texts)


# --- prompts ----------------------------------------------------------------------------


def test_prompt_required_and_parts() -> None:
    text = """\
workflow:
  name: p
  steps:
    - name: a
      type: claude
    - name: b
      type: gemini
      prompt:
        - type: static
        - type: telepathy
        - type: file
          path: notes.md
"""
    found = errors(check(text))
    assert [(p.line, p.path) for p in found] == [
        (4, "steps[0]"),
        (9, "steps[1].prompt[0]"),
        (10, "steps[1].prompt[1].type"),
    ]
    assert "needs a 'prompt' list" in found[0].message
    assert "needs 'content'" in found[1].message


def test_prompt_not_required_for_batch_with_tasks() -> None:
    text = """\
workflow:
  name: b
  steps:
    - name: batch
      type: claude_batch
      tasks:
        - task_id: t1
          prompt: [{type: static, content: hi}]
        - task_id: t2
"""
    problem = only_error(text)
    assert problem.path == "steps[0].tasks[1]" and problem.line == 9


def test_plain_string_prompt_warning_or_strict_error() -> None:
    text = "workflow:\n  name: s\n  steps:\n    - name: a\n      type: claude\n      prompt: hi\n"
    (warning,) = warnings(check(text))
    assert warning.line == 6 and "plain string" in warning.message
    assert "one static part" in warning.message
    assert only_error(text, strict=True).line == 6


def test_previous_response_must_name_an_earlier_step() -> None:
    text = """\
workflow:
  name: order
  steps:
    - name: first
      type: claude
      prompt:
        - type: previous_response
          step: second
    - name: second
      type: claude
      prompt:
        - type: previous_response
          step: frist
"""
    later, missing = errors(check(text))
    assert later.path == "steps[0].prompt[0].step" and later.line == 8
    assert "runs later (line 9)" in later.message
    assert missing.line == 13 and "does not exist" in missing.message
    assert missing.hint == "did you mean 'first'?"


# --- templates --------------------------------------------------------------------------


def test_template_references() -> None:
    text = """\
workflow:
  name: t
  global_vars: {team: core}
  variables: {round: 1}
  steps:
    - name: setup
      type: set_variable
      variables: {topic: cats}
    - name: ask
      type: claude
      prompt:
        - type: static
          content: "{{topic}} {{state.round}} {{team}} {{global_vars.team}} {{inputs.x}} {{date}}"
        - type: static
          content: "{{steps.setup.variables_set}} {{code_file}} {{workflow.name}}"
        - type: static
          content: "{{steps.later.text}} {{steps.nope.text}}"
        - type: static
          content: "{{ a + }}"
        - type: static
          content: "{{loop.item}}"
    - name: later
      type: claude
      prompt: [{type: static, content: x}]
"""
    found = check(text)
    errs = [(p.line, p.message) for p in errors(found)]
    assert [line for line, _ in errs] == [17, 17, 19, 21]
    assert errs[0][1].startswith("{{steps.later.text}} refers to step 'later', which runs later")
    assert errs[1][1].startswith("{{steps.nope.text}} refers to a step 'nope' that does not")
    assert errs[2][1].startswith("bad template '{{ a + }}'")
    assert errs[3][1].startswith("{{loop.item}}: 'loop' is only defined inside")
    (warning,) = warnings(found)
    assert warning.line == 15 and "--input code_file=" in warning.message


def test_llm_result_field_result_is_an_error_but_not_for_test_echo() -> None:
    text = """\
workflow:
  name: r
  steps:
    - name: echo
      type: test_echo
      value: hi
    - name: ask
      type: claude
      prompt: [{type: static, content: "{{steps.echo.result}}"}]
    - name: ask2
      type: claude
      prompt: [{type: static, content: "{{steps.ask.result}} {{steps.ask.text}}"}]
"""
    problem = only_error(text)
    assert problem.line == 12 and "map interpolated into a string" in problem.message


# --- conditions -------------------------------------------------------------------------


def test_conditions() -> None:
    text = """\
workflow:
  name: c
  steps:
    - name: a
      type: claude
      prompt: [{type: static, content: x}]
    - name: b
      type: claude
      condition: "a.score >"
      prompt: [{type: static, content: x}]
    - name: c
      type: claude
      condition: {and: ["a.success", "d.success", "steps.zz.ok", "aa.x > 1"]}
      prompt: [{type: static, content: x}]
    - name: d
      type: claude
      condition: "{{state.n < 3}} and a.text contains 'x' and flag"
      prompt: [{type: static, content: x}]
"""
    found = check(text)
    errs = errors(found)
    assert [(p.line, p.path) for p in errs] == [(9, "steps[1].condition")] + [
        (13, "steps[2].condition")
    ] * 3
    assert "position 9" in errs[0].message
    assert "runs later" in errs[1].message
    assert "does not exist" in errs[2].message
    assert errs[3].hint == "did you mean 'a'?"
    (warning,) = warnings(found)
    assert warning.line == 17 and "--input flag=" in warning.message


# --- models -----------------------------------------------------------------------------


def test_models() -> None:
    text = """\
workflow:
  name: m
  defaults:
    gemini_model: gemini-9-ultra
  steps:
    - name: a
      type: claude
      claude_options: {model: sonet, fallback_model: haiku}
      prompt: [{type: static, content: x}]
    - name: b
      type: gemini
      model: gemini-1.5-flash
      prompt: [{type: static, content: x}]
    - name: c
      type: parallel_claude
      parallel_tasks:
        - id: one
          claude_options: {model: claude-sonnet-4-20250514}
          prompt: [{type: static, content: x}]
        - id: one
          claude_options: {model: gpt-5}
          prompt: [{type: static, content: x}]
"""
    found = check(text)
    errs = errors(found)
    assert [(p.line, p.path) for p in errs] == [
        (4, "defaults.gemini_model"),
        (8, "steps[0].claude_options.model"),
        (20, "steps[2].parallel_tasks[1].id"),
        (21, "steps[2].parallel_tasks[1].claude_options.model"),
    ]
    assert "'sonnet'" in errs[1].hint
    assert errs[3].message == "'gpt-5' is not a Claude model"
    retired = [p.message for p in warnings(found)]
    assert "model 'gemini-1.5-flash' is retired; it runs as 'gemini-2.5-flash'" in retired
    assert any("claude-sonnet-4-20250514" in m and "runs as" in m for m in retired)


def test_gemini_functions_must_be_defined() -> None:
    text = """\
workflow:
  name: f
  gemini_functions:
    score: {description: d, parameters: {type: object}}
  steps:
    - name: a
      type: gemini
      functions: [score, scroe]
      prompt: [{type: static, content: x}]
"""
    problem = only_error(text)
    assert problem.path == "steps[0].functions[1]" and problem.hint == "did you mean 'score'?"


# --- loops ------------------------------------------------------------------------------


def test_for_loop_scope_and_sources() -> None:
    text = """\
workflow:
  name: l
  steps:
    - name: files
      type: set_variable
      variables: {list: [a, b]}
    - name: each
      type: for_loop
      iterator: file
      data_source: list
      steps:
        - name: inner
          type: claude
          prompt:
            - type: static
              content: "{{loop.file}} {{file}} {{loop.index}} {{loop.parent.x}} {{loop.nope}}"
    - name: bad
      type: for_loop
      iterator: x
      data_source: "previous_response:missing_step"
      steps:
        - {name: s, type: set_variable, variables: {a: "{{x}}"}}
    - name: after
      type: claude
      prompt: [{type: static, content: "{{loop.file}}"}]
"""
    errs = errors(check(text))
    assert [(p.line, p.path) for p in errs] == [
        (16, "steps[1].steps[0].prompt[0].content"),
        (20, "steps[2].data_source"),
        (25, "steps[3].prompt[0].content"),
    ]
    assert "the loop has no 'nope'" in errs[0].message
    assert "does not exist" in errs[1].message
    assert "only defined inside" in errs[2].message


def test_while_loop_condition_sees_body_variables() -> None:
    text = """\
workflow:
  name: w
  variables: {i: 0}
  steps:
    - name: loop
      type: while_loop
      condition: "{{state.i < 3}} and not done"
      max_iterations: 5000
      steps:
        - {name: inc, type: set_variable, variables: {i: "{{state.i + 1}}", done: false}}
"""
    found = check(text)
    assert not errors(found)
    assert [p.line for p in warnings(found)] == [8]


# --- data_transform, file_ops -----------------------------------------------------------


def test_data_transform_and_file_ops() -> None:
    text = """\
workflow:
  name: d
  steps:
    - name: src
      type: set_variable
      variables: {rows: []}
    - name: t
      type: data_transform
      input_source: rows
      operations:
        - {operation: filter, field: a, condition: "a =="}
        - {operation: explode, field: a}
        - {operation: aggregate, field: a, function: median}
    - name: f
      type: file_ops
      operation: copy
      source: /etc/passwd
      destination: "../out.txt"
    - name: g
      type: file_ops
      operation: teleport
      path: ok.txt
"""
    errs = errors(check(text))
    assert [(p.line, p.path) for p in errs] == [
        (11, "steps[1].operations[0].condition"),
        (12, "steps[1].operations[1].operation"),
        (13, "steps[1].operations[2].function"),
        (18, "steps[2].destination"),
        (21, "steps[3].operation"),
    ]
    assert "'..'" in errs[3].message
    # An absolute path may lie inside the workspace: checked at run time, a warning here.
    warned = [p for p in check(text) if p.severity == "warning" and p.line == 17]
    assert warned and "inside the run's workspace" in warned[0].message


def test_output_to_file_must_stay_inside() -> None:
    text = """\
workflow:
  name: o
  steps:
    - name: a
      type: set_variable
      variables: {x: 1}
      output_to_file: ../../x.json
"""
    problem = only_error(text)
    assert problem.line == 7 and problem.path == "steps[0].output_to_file"


# --- nested pipelines -------------------------------------------------------------------


def test_inline_nested_pipeline_gets_path_prefix() -> None:
    text = """\
workflow:
  name: outer
  steps:
    - name: inner
      type: pipeline
      pipeline:
        name: inline
        steps:
          - name: x
            type: clauder
"""
    problem = only_error(text)
    assert problem.path == "steps[0].pipeline.steps[0].type" and problem.line == 10


def test_nested_pipeline_file(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(
        "workflow:\n  name: child\n  steps:\n    - name: c\n      type: nope\n"
    )
    text = """\
workflow:
  name: parent
  steps:
    - name: ok
      type: pipeline
      pipeline_file: child.yaml
    - name: missing
      type: pipeline
      pipeline_file: ghost.yaml
    - name: escape
      type: pipeline
      pipeline_file: ../x.yaml
"""
    found = errors(check(text, base_dir=tmp_path))
    assert [(Path(p.file).name, p.line, p.path) for p in found] == [
        ("child.yaml", 5, "steps[0].type"),
        ("p.yaml", 9, "steps[1].pipeline_file"),
        ("p.yaml", 12, "steps[2].pipeline_file"),
    ]


# --- entry points -----------------------------------------------------------------------


def test_ensure_valid() -> None:
    good = load_text(
        "workflow:\n  name: g\n  colour: x\n  steps:\n"
        "    - {name: a, type: set_variable, variables: {x: 1}}\n"
    )
    (warning,) = ensure_valid(good)
    assert warning.severity == "warning"
    bad = load_text("workflow:\n  name: b\n  steps: []\n", "bad.yaml")
    with pytest.raises(PipelineValidationError) as info:
        ensure_valid(bad)
    assert "bad.yaml:3: steps: 'steps' is empty" in str(info.value)


def test_validate_file_turns_load_errors_into_problems(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("workflow:\n  name: [\n")
    (problem,) = validate_file(path)
    assert problem.severity == "error" and problem.file == str(path) and problem.line


# --- robustness -------------------------------------------------------------------------

KEYS = [
    "name",
    "type",
    "steps",
    "prompt",
    "content",
    "step",
    "condition",
    "variables",
    "iterator",
    "data_source",
    "operations",
    "operation",
    "field",
    "pipeline",
    "files",
    "claude_options",
    "model",
    "parallel_tasks",
    "tasks",
    "input_source",
    "path",
    "and",
    "not",
]
VALUES = [
    "claude",
    "for_loop",
    "while_loop",
    "set_variable",
    "pipeline",
    "data_transform",
    "file_ops",
    "static",
    "previous_response",
    "{{steps.a.text}}",
    "{{loop.x}}",
    "a",
    "../x",
    "{{ bad",
    "filter",
    "haiku",
    "a.b > 1",
    "previous_response:a:b",
    1,
    None,
    True,
    2.5,
]
structures = st.recursive(
    st.sampled_from(VALUES),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS), children, max_size=5)
    ),
    max_leaves=25,
)


step_maps = st.dictionaries(st.sampled_from(KEYS), structures, max_size=6)
workflows = st.fixed_dictionaries(
    {"name": st.sampled_from(["w", None, 3]), "steps": st.lists(step_maps, max_size=5)},
    optional={"variables": structures, "defaults": structures, "global_vars": structures},
)


@settings(max_examples=250, deadline=None)
@given(workflows)
def test_property_any_structure_gives_problems_not_exceptions(workflow: dict[str, object]) -> None:
    from elexirion_app.pipelines.loader import PipelineDocument

    problems = validate_document(PipelineDocument(workflow=dict(workflow), file="fuzz.yaml"))
    assert all(p.severity in ("error", "warning") and p.message for p in problems)
