"""The typed spec: its JSON Schema fits every valid file, describes every field, refuses bad."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from elexirion_app.pipelines import spec
from elexirion_app.pipelines.loader import load_file, load_text
from elexirion_app.pipelines.validate import (
    CLAUDE_OPTION_KEYS,
    COMMON_STEP_KEYS,
    DEFAULTS_KEYS,
    FILE_OPS,
    PROMPT_PART_FIELDS,
    STEP_KEYS,
    STEP_TYPES,
    TEST_STEP_TYPES,
    TOP_IGNORED,
    TOP_KEYS,
    TRANSFORM_OPS,
    validate_file,
)
from tests.support import conformance

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "pipelines"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return spec.json_schema()


@pytest.fixture(scope="module")
def checker(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(checker: jsonschema.Draft202012Validator, data: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in checker.iter_errors(data)
    ]


def misfits(checker: jsonschema.Draft202012Validator, files: list[Path]) -> dict[str, list[str]]:
    """Each file's schema errors and parse failure (files with neither are left out)."""
    found: dict[str, list[str]] = {}
    for path in files:
        data = {"workflow": load_file(path).workflow}
        problems = schema_errors(checker, data)
        try:
            spec.parse(data)
        except ValidationError as exc:
            problems.append(f"parse: {exc}")
        if problems:
            found[str(path)] = problems
    return found


def accepted(files: list[Path]) -> list[Path]:
    return [p for p in files if not any(x.severity == "error" for x in validate_file(p))]


# --- valid files fit --------------------------------------------------------------------


def test_every_conformance_file_the_validator_accepts_fits_the_schema_and_parses(
    checker: jsonschema.Draft202012Validator,
) -> None:
    files = accepted(sorted(conformance.require().rglob("*.yaml")))
    assert len(files) >= 20
    assert misfits(checker, files) == {}


def test_every_shipped_pipeline_fits_the_schema_and_parses(
    checker: jsonschema.Draft202012Validator,
) -> None:
    files = sorted(SHIPPED.rglob("*.yaml"))
    assert files
    assert accepted(files) == files
    assert misfits(checker, files) == {}


def test_parse_gives_typed_steps_and_accepts_either_root() -> None:
    text = """
workflow:
  name: demo
  steps:
    - name: each
      type: for_loop
      iterator: item
      data_source: [1, 2]
      max_parallel: "{{inputs.n}}"
      steps:
        - name: ask
          type: claude
          claude_options: {max_turns: 2}
          prompt:
            - type: static
              content: "{{loop.item}}"
"""
    data = load_text(text, "p.yaml").workflow
    for root in (data, {"workflow": data}):
        wf = spec.parse(root)
        loop = wf.steps[0]
        assert isinstance(loop, spec.models.ForLoopStep)
        assert loop.max_parallel == "{{inputs.n}}"
        inner = loop.steps[0]
        assert isinstance(inner, spec.models.ClaudeStep)
        assert inner.claude_options is not None and inner.claude_options.max_turns == 2
        assert isinstance(inner.prompt, list)
        assert isinstance(inner.prompt[0], spec.models.StaticPart)


def test_unknown_keys_are_kept_not_refused(checker: jsonschema.Draft202012Validator) -> None:
    data = {
        "workflow": {
            "name": "x",
            "surprise": 1,
            "steps": [{"name": "a", "type": "claude", "odd": True, "prompt": ["hi"]}],
        }
    }
    assert schema_errors(checker, data) == []
    step = spec.parse(data).steps[0]
    assert step.model_extra == {"odd": True}


# --- descriptions and coverage ----------------------------------------------------------


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    return schema["$defs"][ref.rsplit("/", 1)[-1]]  # type: ignore[no-any-return]


def union_members(
    schema: dict[str, Any], union: dict[str, Any], tag: str
) -> dict[str, dict[str, Any]]:
    """The models of a discriminated union, by the value of their tag field."""
    members = [resolve(schema, m) for m in union["oneOf"]]
    return {m["properties"][tag]["const"]: m for m in members}


def step_union(schema: dict[str, Any]) -> dict[str, Any]:
    items = schema["$defs"]["Workflow"]["properties"]["steps"]["items"]
    return items  # type: ignore[no-any-return]


def test_every_model_and_field_of_the_schema_has_a_description(schema: dict[str, Any]) -> None:
    missing: list[str] = []
    models = {"<root>": schema, **schema["$defs"]}
    for model, body in models.items():
        if not str(body.get("description", "")).strip():
            missing.append(model)
        for name, prop in body.get("properties", {}).items():
            if not str(prop.get("description", "")).strip():
                missing.append(f"{model}.{name}")
    assert missing == []
    assert len(schema["$defs"]) >= 40


def test_the_schema_covers_every_step_type_and_field_validate_knows(
    schema: dict[str, Any],
) -> None:
    steps = union_members(schema, step_union(schema), "type")
    assert set(steps) == {*STEP_TYPES, *TEST_STEP_TYPES}
    for kind, model in steps.items():
        assert set(model["properties"]) == COMMON_STEP_KEYS | STEP_KEYS[kind], kind
    defs = schema["$defs"]
    assert set(defs["Workflow"]["properties"]) == TOP_KEYS | TOP_IGNORED
    assert set(defs["Defaults"]["properties"]) == DEFAULTS_KEYS
    assert set(defs["ClaudeOptions"]["properties"]) == CLAUDE_OPTION_KEYS
    prompt_items = steps["claude"]["properties"]["prompt"]["anyOf"][0]["items"]["anyOf"][0]
    parts = union_members(schema, prompt_items, "type")
    assert {k: set(v["properties"]) - {"type"} for k, v in parts.items()} == {
        k: set(req) | set(opt) for k, (req, opt) in PROMPT_PART_FIELDS.items()
    }
    for kind, (required, _optional) in PROMPT_PART_FIELDS.items():
        assert set(required) <= set(parts[kind]["required"]), kind
    ops_union = steps["data_transform"]["properties"]["operations"]["anyOf"][0]["items"]
    ops = union_members(schema, ops_union, "operation")
    assert set(ops) == set(TRANSFORM_OPS)
    for op, required in TRANSFORM_OPS.items():
        assert set(required) <= set(ops[op]["required"]), op
    assert set(steps["file_ops"]["properties"]["operation"]["enum"]) == set(FILE_OPS)


# --- refusals ---------------------------------------------------------------------------


def workflow(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"workflow": {"name": "neg", "steps": list(steps)}}


STATIC = [{"type": "static", "content": "hi"}]


@pytest.mark.parametrize(
    ("label", "data"),
    [
        ("unknown step type", workflow({"name": "a", "type": "claude_turbo", "prompt": STATIC})),
        ("claude prompt is a map", workflow({"name": "a", "type": "claude", "prompt": {"x": 1}})),
        ("claude prompt is a number", workflow({"name": "a", "type": "claude", "prompt": 3})),
        ("claude without prompt", workflow({"name": "a", "type": "claude"})),
        (
            "unknown prompt part type",
            workflow({"name": "a", "type": "claude", "prompt": [{"type": "url", "href": "x"}]}),
        ),
        (
            "for_loop without steps",
            workflow({"name": "a", "type": "for_loop", "iterator": "i", "data_source": "[1]"}),
        ),
        (
            "for_loop with empty steps",
            workflow(
                {"name": "a", "type": "for_loop", "iterator": "i", "data_source": "s", "steps": []}
            ),
        ),
        (
            "while_loop without condition",
            workflow(
                {"name": "a", "type": "while_loop", "steps": [{"name": "b", "type": "test_echo"}]}
            ),
        ),
        ("step without type", workflow({"name": "a", "prompt": STATIC})),
        (
            "max_turns not positive",
            workflow(
                {
                    "name": "a",
                    "type": "claude",
                    "prompt": STATIC,
                    "claude_options": {"max_turns": 0},
                }
            ),
        ),
        ("no steps", {"workflow": {"name": "neg", "steps": []}}),
        ("no name", {"workflow": {"steps": [{"name": "a", "type": "claude", "prompt": STATIC}]}}),
        (
            "file_ops unknown operation",
            workflow({"name": "a", "type": "file_ops", "operation": "zip"}),
        ),
    ],
)
def test_bad_structure_is_refused_by_schema_and_parse(
    checker: jsonschema.Draft202012Validator, label: str, data: dict[str, Any]
) -> None:
    assert schema_errors(checker, data), label
    with pytest.raises(ValidationError):
        spec.parse(data)


def test_the_step_union_rejects_an_unknown_type_naming_the_known_ones() -> None:
    with pytest.raises(ValidationError) as caught:
        spec.parse(workflow({"name": "a", "type": "claude_turbo", "prompt": STATIC}))
    text = str(caught.value)
    assert "claude_turbo" in text
    assert "for_loop" in text and "set_variable" in text


def test_templates_stand_in_for_numbers_bools_and_enums(
    checker: jsonschema.Draft202012Validator,
) -> None:
    data = workflow(
        {
            "name": "a",
            "type": "for_loop",
            "iterator": "i",
            "data_source": "{{inputs.items}}",
            "parallel": "{{inputs.fast}}",
            "batch_size": "{{inputs.size}}",
            "steps": [
                {"name": "b", "type": "claude_robust", "preset": "{{inputs.p}}", "prompt": STATIC}
            ],
        }
    )
    assert schema_errors(checker, data) == []
    spec.parse(data)
    not_template = workflow(
        {
            "name": "a",
            "type": "for_loop",
            "iterator": "i",
            "data_source": "s",
            "parallel": "maybe",
            "steps": [{"name": "b", "type": "test_echo"}],
        }
    )
    assert schema_errors(checker, not_template)


def test_json_schema_returns_a_fresh_copy() -> None:
    first = spec.json_schema()
    first["$defs"].clear()
    assert spec.json_schema()["$defs"]
