"""Safe YAML loading: the workflow root, line numbers, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from elexirion_app.core.errors import PipelineValidationError, Problem
from elexirion_app.pipelines.loader import load_file, load_text

PIPELINE = """\
# a comment
workflow:
  name: demo
  global_vars:
    team: core
  steps:
    - name: first
      type: claude
      prompt:
        - type: static
          content: hello
    - name: second
      type: gemini
      prompt:
        - type: previous_response
          step: first
"""


def load_error(text: str, filename: str = "p.yaml") -> Problem:
    with pytest.raises(PipelineValidationError) as info:
        load_text(text, filename)
    assert len(info.value.problems) == 1
    return info.value.problems[0]


def test_workflow_is_the_plain_dict_under_the_root() -> None:
    doc = load_text(PIPELINE, "p.yaml")
    assert doc.file == "p.yaml"
    assert doc.workflow["name"] == "demo"
    assert doc.workflow["steps"][1]["prompt"][0] == {"type": "previous_response", "step": "first"}


def test_line_numbers_of_keys_and_items() -> None:
    doc = load_text(PIPELINE)
    assert doc.line_of(()) == 2
    assert doc.line_of(("name",)) == 3
    assert doc.line_of(("global_vars", "team")) == 5
    assert doc.line_of(("steps",)) == 6
    assert doc.line_of(("steps", 0)) == 7
    assert doc.line_of(("steps", 1, "type")) == 13
    assert doc.line_of(("steps", 1, "prompt", 0)) == 15
    assert doc.line_of(("steps", 1, "prompt", 0, "step")) == 16


def test_line_of_unknown_path_gives_nearest_parent() -> None:
    doc = load_text(PIPELINE)
    assert doc.line_of(("steps", 1, "prompt", 0, "nope", 3)) == 15
    assert doc.line_of(("missing",)) == 2


def test_load_file_sets_base_dir(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "p.yaml"
    path.parent.mkdir()
    path.write_text(PIPELINE)
    doc = load_file(path)
    assert doc.base_dir == path.parent.resolve()
    assert doc.file == str(path)


def test_missing_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(PipelineValidationError, match="not found"):
        load_file(tmp_path / "nope.yaml")


def test_missing_workflow_root_tells_the_fix() -> None:
    problem = load_error("name: x\nsteps:\n  - name: a\n")
    assert "missing the 'workflow:' root" in problem.message
    assert "found name, steps" in problem.message
    assert "workflow:" in problem.hint


def test_workflow_must_be_a_map() -> None:
    problem = load_error("workflow:\n  - a\n")
    assert "must be a map" in problem.message and problem.line == 1


def test_top_level_list_and_scalar() -> None:
    assert "is a list" in load_error("- workflow: {}\n").message
    assert "is a string" in load_error("just text\n").message


def test_invalid_yaml_has_line() -> None:
    problem = load_error("workflow:\n  name: x\n  steps: [a, b\n  other: 1\n")
    assert problem.message.startswith("invalid YAML")
    assert problem.line is not None and problem.line >= 3
    assert problem.file == "p.yaml"


def test_duplicate_keys_are_errors_with_both_lines() -> None:
    problem = load_error("workflow:\n  name: a\n  steps: []\n  name: b\n")
    assert problem.line == 4
    assert "duplicate key 'name'" in problem.message and "line 2" in problem.message


def test_duplicate_keys_in_nested_maps() -> None:
    text = "workflow:\n  steps:\n    - name: a\n      type: claude\n      type: gemini\n"
    problem = load_error(text)
    assert problem.line == 5 and "duplicate key 'type'" in problem.message


def test_multiple_documents_are_refused() -> None:
    problem = load_error("workflow: {name: a}\n---\nworkflow: {name: b}\n")
    assert "single document" in problem.message


def test_small_aliases_and_merge_keys_still_work() -> None:
    text = """\
workflow:
  name: a
  defaults: &opts {max_turns: 2}
  steps:
    - name: s
      type: claude
      claude_options:
        <<: *opts
        verbose: true
      prompt: [{type: static, content: x}]
"""
    doc = load_text(text)
    assert doc.workflow["steps"][0]["claude_options"] == {"max_turns": 2, "verbose": True}
    assert doc.line_of(("steps", 0, "claude_options", "verbose")) == 9


def test_non_string_keys_and_values_keep_yaml_types() -> None:
    doc = load_text("workflow:\n  name: a\n  map:\n    1: one\n    null: yes\n  n: 1.5\n")
    assert doc.workflow["map"] == {1: "one", None: True}
    assert doc.workflow["n"] == 1.5
    assert doc.line_of(("map", 1)) == 4


def test_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + PIPELINE.encode())
    assert load_file(path).workflow["name"] == "demo"


def test_keys_equal_in_python_are_duplicates() -> None:
    problem = load_error("workflow:\n  m:\n    1: a\n    true: b\n")
    assert "duplicate key True" in problem.message and problem.line == 4
