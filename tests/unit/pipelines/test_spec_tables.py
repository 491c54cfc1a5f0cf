"""Validation's key tables and enum values come from the typed spec, not a second copy."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from elexirion_app.core.errors import Problem
from elexirion_app.pipelines import spec
from elexirion_app.pipelines.checks import tables
from elexirion_app.pipelines.loader import load_text
from elexirion_app.pipelines.spec import introspect as si
from elexirion_app.pipelines.spec import models as m
from elexirion_app.pipelines.validate import validate_document

ROOT = Path(__file__).resolve().parents[3]
CHECKS = ROOT / "elexirion_app" / "pipelines" / "checks"


def check(text: str) -> list[Problem]:
    return validate_document(load_text(text, "p.yaml"))


def _spec_words() -> set[str]:
    """Every step type, key and enum value the spec declares."""
    words: set[str] = set()
    seen: set[type] = set()
    stack: list[type[Any]] = [m.PipelineFile]
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        for key in si.keys(model):
            words.add(key)
            info = si.field(model, key)
            words |= {str(v) for v in si.literal_values(info.annotation)}
            stack.extend(
                t
                for t in _types_in(info.annotation)
                if isinstance(t, type) and issubclass(t, m.SpecModel)
            )
    return words


def _types_in(annotation: Any) -> list[Any]:
    from typing import get_args

    out, stack = [], [annotation]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(get_args(current))
    return out


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    }


def test_the_tables_module_spells_no_key_or_value_the_spec_declares() -> None:
    words = _spec_words()
    assert {"claude_options", "for_loop", "development", "csv_to_json", "extract"} <= words
    # what the tables name themselves: the spec's tag and metadata keys, fields they look up
    allowed = {"type", "operation", "x-requires"} | {
        "preset",
        "output_format",
        "format",
        "post_processing",
        "backoff_strategy",
        "fallback_action",
        "scope",
        "function",
        "order",
        "expression",
        "prompt",
    }
    # names of results and of the loop context, not of the YAML (they may coincide: `first`)
    allowed |= tables.LOOP_CONTEXT_KEYS | set(tables.SET_VARIABLE_RESULT)
    spelled = _string_constants(CHECKS / "tables.py") & words
    assert spelled <= allowed
    # every table entry that names a step type is a step model's tag
    assert set(tables.STEP_KEYS) == {si.tag(model) for model in m.STEP_MODELS}


def test_step_types_and_families_follow_the_step_models() -> None:
    assert tables.STEP_TYPES[:3] == ("set_variable", "claude", "gemini")
    assert len(tables.STEP_TYPES) == 15
    assert tables.TEST_STEP_TYPES == ("test_echo",)
    assert set(tables.ENHANCED_TYPES) == {
        si.tag(model) for model in m.STEP_MODELS if issubclass(model, m.EnhancedClaudeStep)
    }
    assert set(tables.GEMINI_TYPES) == {"gemini", "gemini_instructor"}
    assert "parallel_claude" in tables.LLM_TYPES - tables.CLAUDE_TYPES
    assert set(tables.NO_PROMPT_TYPES) == {
        "parallel_claude",
        "set_variable",
        "pipeline",
        "data_transform",
        "file_ops",
        "for_loop",
        "while_loop",
    }


def test_enum_tables_are_the_literal_values_of_the_spec_fields_in_order() -> None:
    assert tables.PRESETS == ("development", "production", "analysis", "chat")
    assert tables.BACKOFF == ("linear", "exponential", "fixed")
    assert tables.SET_SCOPES == ("global", "session", "loop")
    assert tables.CONVERT_FORMATS == ("csv_to_json", "json_to_csv", "yaml_to_json")
    assert list(tables.TRANSFORM_OPS) == ["filter", "map", "aggregate", "join", "group_by", "sort"]
    assert tables.TRANSFORM_OPS["join"] == ("left_field", "right_source", "join_key")
    assert tables.FILE_OPS["convert"] == ("source", "destination", "format")
    assert tables.PROMPT_PART_FIELDS["previous_response"] == (
        ("step",),
        ("extract", "strict", "extract_with"),
    )
    # an open enum: the known values of a field whose other values are warned about
    assert "simplified_prompt" in tables.FALLBACK_ACTIONS
    assert "generate_summary" in tables.POST_PROCESSING


def test_file_ops_requirements_cover_exactly_the_operations() -> None:
    requires = si.field_extra(m.FileOpsStep, "operation")["x-requires"]
    assert list(requires) == list(si.field_values(m.FileOpsStep, "operation"))
    for fields in requires.values():
        assert set(fields) <= set(si.keys(m.FileOpsStep))


def test_the_metadata_validation_reads_is_in_the_json_schema() -> None:
    defs = spec.json_schema()["$defs"]
    workflow = defs["Workflow"]["properties"]
    assert {k for k, v in workflow.items() if v.get("x-ignored")} == tables.TOP_IGNORED
    assert defs["TestEchoStep"]["x-test-only"] is True
    assert defs["SetVariableStep"]["properties"]["variable"]["deprecated"] is True
    assert defs["SetVariableStep"]["properties"]["variable"]["x-instead"] == "variables"
    assert defs["RetryConfig"]["properties"]["retry_on"]["deprecated"] is True
    assert "x-requires" in defs["FileOpsStep"]["properties"]["operation"]


def test_ignored_workflow_keys_warn_and_hooks_are_refused() -> None:
    problems = check(
        """
workflow:
  name: x
  mcp_servers: {a: 1}
  hooks: {pre_tool_use: [x]}
  steps:
    - {name: a, type: test_echo, value: 1}
"""
    )
    by_path = {p.path: p for p in problems}
    assert by_path["mcp_servers"].severity == "warning"
    assert "ignored by pipeline_ex and by us" in by_path["mcp_servers"].message
    assert by_path["hooks"].severity == "error"


def test_gemini_instructor_reads_output_schema_so_it_is_not_called_ignored() -> None:
    problems = check(
        """
workflow:
  name: x
  steps:
    - name: g
      type: gemini_instructor
      output_schema: {type: object}
      prompt: [{type: static, content: hi}]
    - name: c
      type: claude
      output_schema: {type: object}
      prompt: [{type: static, content: hi}]
"""
    )
    assert [(p.path, p.severity, p.message) for p in problems] == [
        ("steps[1].output_schema", "warning", "'output_schema' is ignored by pipeline_ex and by us")
    ]


STATIC_PROMPT = [{"type": "static", "content": "hi"}]
MINIMAL_STEPS: dict[str, dict[str, Any]] = {
    "set_variable": {"variables": {"a": 1}},
    "claude": {"prompt": STATIC_PROMPT},
    "gemini": {"prompt": STATIC_PROMPT},
    "parallel_claude": {"parallel_tasks": [{"id": "t", "prompt": STATIC_PROMPT}]},
    "gemini_instructor": {"prompt": STATIC_PROMPT},
    "claude_smart": {"prompt": STATIC_PROMPT},
    "claude_session": {"prompt": STATIC_PROMPT},
    "claude_extract": {"prompt": STATIC_PROMPT},
    "claude_batch": {"prompt": STATIC_PROMPT},
    "claude_robust": {"prompt": STATIC_PROMPT},
    "for_loop": {
        "iterator": "i",
        "data_source": [1],
        "steps": [{"name": "b", "type": "test_echo", "value": 1}],
    },
    "while_loop": {"condition": "false", "steps": [{"name": "b", "type": "test_echo"}]},
    "data_transform": {"input_source": [1], "operations": [{"operation": "sort", "field": "x"}]},
    "file_ops": {"operation": "list", "path": "."},
    "pipeline": {"pipeline": {"name": "kid", "steps": [{"name": "k", "type": "test_echo"}]}},
    "test_echo": {"value": 1},
}


def _step_problems(kind: str, body: dict[str, Any]) -> list[Problem]:
    import yaml

    step = {"name": "a", "type": kind, **body}
    text = yaml.safe_dump({"workflow": {"name": "x", "steps": [step]}}, sort_keys=False)
    return validate_document(load_text(text, "p.yaml"))


def test_every_minimal_step_is_valid_and_fits_the_spec() -> None:
    assert set(MINIMAL_STEPS) == set(tables.STEP_KEYS)
    for kind, body in MINIMAL_STEPS.items():
        errors = [p.format() for p in _step_problems(kind, body) if p.severity == "error"]
        assert errors == [], kind
        spec.parse({"workflow": {"name": "x", "steps": [{"name": "a", "type": kind, **body}]}})


def test_every_key_the_spec_requires_is_an_error_when_missing() -> None:
    checked = 0
    for model in m.STEP_MODELS:
        kind = si.tag(model)
        for key in set(si.required_keys(model)) - {"type", "name"}:
            body = {k: v for k, v in MINIMAL_STEPS[kind].items() if k != key}
            errors = [p for p in _step_problems(kind, body) if p.severity == "error"]
            assert any(f"'{key}'" in p.message for p in errors), (kind, key)
            checked += 1
    assert checked >= 12
