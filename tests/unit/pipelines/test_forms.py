"""Inspector forms generated from the spec: every step type, described, with the right kinds."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from elexirion_app.pipelines import spec
from elexirion_app.pipelines.checks import tables
from elexirion_app.pipelines.spec import introspect as si
from elexirion_app.pipelines.spec.forms import (
    GROUPS,
    KINDS,
    FormField,
    form_fields,
    prompt_part_fields,
)
from elexirion_app.pipelines.spec.models import PROMPT_PART_MODELS, STEP_MODELS

STEP_TYPES = [si.tag(model) for model in STEP_MODELS]
PART_TYPES = [si.tag(model) for model in PROMPT_PART_MODELS]


def by_path(fields: list[FormField]) -> dict[tuple[str, ...], FormField]:
    return {f.path: f for f in fields}


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    """The object schemas a node may be (through $ref and anyOf)."""
    if "$ref" in node:
        return _resolve(schema, schema["$defs"][node["$ref"].rsplit("/", 1)[-1]])
    if "anyOf" in node:
        return [s for member in node["anyOf"] for s in _resolve(schema, member)]
    return [node]


def _schema_has(schema: dict[str, Any], model_name: str, path: tuple[str, ...]) -> bool:
    nodes = [schema["$defs"][model_name]]
    for key in path:
        nodes = [
            s
            for node in nodes
            for n in _resolve(schema, node)
            if key in n.get("properties", {})
            for s in [n["properties"][key]]
        ]
        if not nodes:
            return False
    return True


def test_every_step_type_has_a_form_starting_with_its_name() -> None:
    assert len(STEP_TYPES) == 16
    for kind in STEP_TYPES:
        fields = form_fields(kind)
        assert fields, kind
        assert fields[0].path == ("name",) and fields[0].required, kind
        paths = [f.path for f in fields]
        assert len(paths) == len(set(paths)), kind


@pytest.mark.parametrize("kind", STEP_TYPES)
def test_every_field_is_described_kinded_grouped_and_in_group_order(kind: str) -> None:
    fields = form_fields(kind)
    for f in fields:
        assert f.description.strip(), (kind, f.path)
        assert f.label.strip(), (kind, f.path)
        assert f.kind in KINDS, (kind, f.path, f.kind)
        assert f.group in GROUPS, (kind, f.path, f.group)
    ranks = [GROUPS.index(f.group) for f in fields]
    assert ranks == sorted(ranks), kind


@pytest.mark.parametrize("kind", STEP_TYPES)
def test_every_form_path_is_a_key_of_the_json_schema(kind: str) -> None:
    schema = spec.json_schema()
    model = next(m for m in STEP_MODELS if si.tag(m) == kind)
    for f in form_fields(kind):
        assert _schema_has(schema, model.__name__, f.path), (kind, f.path)


def test_the_form_leaves_out_the_tag_and_the_ignored_keys() -> None:
    for kind in STEP_TYPES:
        top = {f.path[0] for f in form_fields(kind)}
        assert "type" not in top
        assert not top & tables.IGNORED_STEP_KEYS - tables.STEP_KEYS[kind], kind
        assert top == (tables.COMMON_STEP_KEYS - {"type"}) | tables.STEP_KEYS[kind], kind


def test_kinds_map_from_the_spec_types() -> None:
    claude = by_path(form_fields("claude"))
    assert claude[("prompt",)].kind == "prompt" and claude[("prompt",)].group == "Prompt"
    assert claude[("prompt",)].required
    assert claude[("claude_options", "max_turns")].kind == "integer"
    assert claude[("claude_options", "temperature")].kind == "number"
    assert claude[("claude_options", "allowed_tools")].kind == "list"
    assert claude[("claude_options", "system_prompt")].kind == "textarea"
    assert claude[("claude_options", "verbose")].kind == "bool"
    assert claude[("claude_options", "model")].kind == "text"
    assert claude[("claude_options", "model")].group == "Basics"
    assert claude[("condition",)].kind == "text"
    assert claude[("claude_options", "retry_config", "max_retries")].group == "Options"
    loop = by_path(form_fields("for_loop"))
    assert loop[("steps",)].kind == "steps" and loop[("steps",)].required
    assert loop[("iterator",)].required and loop[("iterator",)].group == "Basics"
    assert loop[("parallel",)].kind == "bool"
    assert by_path(form_fields("while_loop"))[("steps",)].kind == "steps"
    assert by_path(form_fields("parallel_claude"))[("parallel_tasks",)].kind == "list"
    nested = by_path(form_fields("pipeline"))
    assert nested[("inputs",)].kind == "object"
    assert nested[("config", "inherit_context")].kind == "bool"
    assert by_path(form_fields("claude_batch"))[("prompt",)].required is False


def test_enums_carry_their_options() -> None:
    robust = by_path(form_fields("claude_robust"))
    assert robust[("preset",)].kind == "enum"
    assert robust[("preset",)].options == tables.PRESETS
    assert robust[("retry_config", "backoff_strategy")].options == tables.BACKOFF
    assert robust[("retry_config", "fallback_action")].options == tables.FALLBACK_ACTIONS
    ops = by_path(form_fields("file_ops"))
    assert ops[("operation",)].options == tuple(tables.FILE_OPS)
    assert ops[("operation",)].required
    assert ops[("format",)].options == tables.CONVERT_FORMATS
    extract = by_path(form_fields("claude_extract"))
    assert extract[("extraction_config", "format")].options == tables.EXTRACTION_FORMATS
    assert extract[("extraction_config", "post_processing")].kind == "list"
    assert extract[("extraction_config", "post_processing")].options == tables.POST_PROCESSING
    for kind in STEP_TYPES:
        for f in form_fields(kind):
            if f.kind == "enum":
                assert f.options, (kind, f.path)


def test_compatibility_keys_and_deprecated_spellings_are_advanced() -> None:
    claude = by_path(form_fields("claude"))
    assert claude[("model",)].group == "Advanced"  # checked, not used
    assert claude[("claude_options", "print")].group == "Advanced"
    assert claude[("role",)].group == "Advanced"
    setvar = by_path(form_fields("set_variable"))
    assert setvar[("variables",)].group == "Basics"
    assert setvar[("variable",)].group == "Advanced"
    assert "write `variables` instead" in setvar[("variable",)].description


def test_prompt_part_forms() -> None:
    assert PART_TYPES == [
        "static",
        "file",
        "previous_response",
        "session_context",
        "claude_continue",
    ]
    for part in PART_TYPES:
        fields = prompt_part_fields(part)
        assert fields, part
        assert all(f.description.strip() and f.kind in KINDS for f in fields), part
        assert "type" not in {f.path[0] for f in fields}
        required, optional = tables.PROMPT_PART_FIELDS[part]
        assert [f.path[0] for f in fields if f.required] == list(required), part
        assert {f.path[0] for f in fields} == {*required, *optional}, part
    static = by_path(prompt_part_fields("static"))
    assert static[("content",)].kind == "textarea" and static[("content",)].required
    previous = by_path(prompt_part_fields("previous_response"))
    assert previous[("strict",)].kind == "bool"
    assert previous[("extract_with",)].group == "Advanced"


def test_unknown_types_are_refused_like_a_missing_key() -> None:
    with pytest.raises(KeyError, match="claude_turbo"):
        form_fields("claude_turbo")
    with pytest.raises(KeyError, match="url"):
        prompt_part_fields("url")


def test_form_fields_are_frozen_and_callers_get_their_own_list() -> None:
    fields = form_fields("claude")
    with pytest.raises(dataclasses.FrozenInstanceError):
        fields[0].label = "x"  # type: ignore[misc]
    fields.clear()
    assert form_fields("claude")
