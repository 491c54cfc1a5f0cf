from __future__ import annotations

import pytest

from elexirion_app.core.errors import InputError, Problem
from elexirion_app.editor import view

WORKFLOW = {
    "name": "demo",
    "inputs": [{"name": "topic", "description": "what about"}, {"name": "n", "default": 3}],
    "steps": [
        {"name": "first", "type": "claude", "prompt": [{"type": "static", "content": "hi"}]},
        {
            "name": "loop",
            "type": "for_loop",
            "iterator": "item",
            "data_source": "steps.first.text",
            "steps": [{"name": "inner", "type": "claude"}],
        },
        {
            "name": "par",
            "type": "parallel_claude",
            "parallel_tasks": [{"id": "task_a", "claude_options": {}}],
        },
        {
            "name": "nested",
            "type": "pipeline",
            "pipeline": {"name": "sub", "steps": [{"name": "deep", "type": "claude"}]},
        },
    ],
}


@pytest.mark.parametrize(
    ("path", "node"),
    [
        ("steps[0].prompt[0].content", "first"),
        ("steps[1].steps[0].prompt", "loop/inner"),
        ("steps[1].iterator", "loop"),
        ("steps[2].parallel_tasks[0].claude_options", "par/task_a"),
        ("steps[3].pipeline.steps[0].model", "nested/deep"),
        ("steps[9].name", None),
        ("defaults.model", None),
        ("", None),
    ],
)
def test_problems_are_placed_on_the_deepest_step(path: str, node: str | None) -> None:
    assert view.node_of_path(WORKFLOW, path) == node


@pytest.mark.parametrize("node", ["first", "loop/inner", "par/task_a", "nested/deep"])
def test_step_at_finds_every_node(node: str) -> None:
    step = view.step_at(WORKFLOW, node)
    assert step is not None
    assert node.endswith(str(step.get("name") or step.get("id")))


def test_step_at_refuses_unknown_ids() -> None:
    for bad in ["", "nope", "first/inner", "loop/nope", None, 3]:
        assert view.step_at(WORKFLOW, bad) is None  # type: ignore[arg-type]


def test_problem_rows_errors_first_and_nodes_marked_by_errors_only() -> None:
    problems = [
        Problem("unknown key", "steps[0].foo", line=9, severity="warning"),
        Problem("missing iterator", "steps[1].iterator", line=12),
        Problem("bad model", "steps[1].steps[0].model", line=15),
        Problem("in a nested file", "steps[0]", file="other.yaml", line=2),
    ]
    rows = view.problem_rows(WORKFLOW, problems)
    assert [r["severity"] for r in rows] == ["error", "error", "error", "warning"]
    assert view.node_problems(rows) == {
        "first": "in a nested file",
        "loop": "missing iterator",
        "loop/inner": "bad model",
    }
    lines = [d["line"] for d in view.diagnostics(rows)]
    assert lines == [12, 15, 9]  # the nested file's problem is not a marker in this text


def test_inspector_shows_current_values_of_a_steps_form() -> None:
    step = {
        "name": "s",
        "type": "claude",
        "claude_options": {"max_turns": 3},
        "output_to_file": "out.md",
        "prompt": [{"type": "static", "content": "hi"}, {"type": "previous_response", "step": "x"}],
    }
    fields = {f["key"]: f for f in view.inspector_fields(step)}
    assert fields["output_to_file"]["value"] == "out.md"
    assert fields["claude_options.max_turns"]["value"] == "3"
    assert "name" not in fields and "prompt" not in fields
    parts = view.prompt_parts(step)
    assert [(p["type"], p["field"], p["value"]) for p in parts] == [
        ("static", "content", "hi"),
        ("previous_response", "step", "x"),
    ]
    assert view.inspector_fields({"type": "no_such_type"}) == []


@pytest.mark.parametrize(
    ("kind", "raw", "value"),
    [
        ("integer", "7", 7),
        ("number", "2.5", 2.5),
        ("number", "3", 3),
        ("bool", "true", True),
        ("bool", False, False),
        ("text", "hello", "hello"),
        ("list", "- a\n- b", ["a", "b"]),
        ("object", "a: 1", {"a": 1}),
        ("text", "", None),
    ],
)
def test_coerce_turns_form_text_into_yaml_values(kind: str, raw: object, value: object) -> None:
    assert view.coerce(kind, raw) == value


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("integer", "seven"),
        ("number", "nan"),
        ("number", "inf"),
        ("bool", "maybe"),
        ("list", "[unclosed"),
        ("text", {"a": 1}),
        ("text", "x" * (view.MAX_FIELD_CHARS + 1)),
    ],
)
def test_coerce_refuses_bad_values_clearly(kind: str, raw: object) -> None:
    with pytest.raises(InputError):
        view.coerce(kind, raw)
    with pytest.raises(InputError):
        view.coerce("enum", "c", ["a", "b"])


def test_input_rows_from_declared_inputs() -> None:
    rows = view.input_rows(WORKFLOW)
    assert rows == [
        {"name": "topic", "description": "what about", "required": True, "default": ""},
        {"name": "n", "description": "", "required": False, "default": "3"},
    ]
