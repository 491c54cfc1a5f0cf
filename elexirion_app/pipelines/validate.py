"""Validation before execution: every problem at once, with file, line, field path and hint.

CONTRACT:
- ``validate_document(doc, *, strict=False) -> list[Problem]`` — errors and warnings
  (``Problem.severity``). ``strict=True`` also refuses what pipeline_ex's own validation
  refuses but we accept (a prompt written as a plain string).
- ``validate_file(path) -> list[Problem]`` — load + validate; load failures become problems.
- ``ensure_valid(doc)`` — raises ``PipelineValidationError`` if any problem is an error, else
  returns the warnings.

Paths in problems look like ``steps[2].prompt[0].step`` (relative to ``workflow:``); lines
come from the loader's line map. Nested inline pipelines are validated with the path prefix
``steps[i].pipeline.``; nested pipeline files are loaded and validated too (their problems
carry their own file), with cycles (A → B → A) and depth capped.

Known keys, enum values and required fields come from the typed spec (``pipelines/spec``);
a value of a known key that does not fit the spec's type is a warning (``checks/types.py``)
unless another check already reported that key.

This module is the orchestrator: it walks the workflow and its steps and calls the checks of
``pipelines/checks/`` (split by concern). The checks never import this module: they recurse
through the ``Walk`` carried by their context. The tables and helpers of the checks are
re-exported here for older callers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from elexirion_app.core.errors import PipelineValidationError, Problem
from elexirion_app.pipelines.checks.context import (
    Ctx,
    Later,
    StepInfo,
    Walk,
    check_enum,
    format_path,
    kind_of,
    nearest,
)
from elexirion_app.pipelines.checks.data import (
    check_data_transform,
    check_file_ops,
    check_set_variable,
)
from elexirion_app.pipelines.checks.llm import check_llm, check_parallel
from elexirion_app.pipelines.checks.loops import check_for_loop, check_while_loop
from elexirion_app.pipelines.checks.nested import check_pipeline, is_pipeline_file, resolved_file
from elexirion_app.pipelines.checks.paths import check_output_file
from elexirion_app.pipelines.checks.prompts import check_prompt, check_prompt_required
from elexirion_app.pipelines.checks.references import (
    check_condition,
    check_template_text,
    check_templates,
)
from elexirion_app.pipelines.checks.structure import (
    check_defaults,
    check_functions,
    check_inputs,
    check_step_keys,
    check_top_keys,
)
from elexirion_app.pipelines.checks.tables import (
    AGGREGATE_FUNCTIONS,
    BACKOFF,
    CLAUDE_OPTION_KEYS,
    CLAUDE_TYPES,
    COMMON_STEP_KEYS,
    CONVERT_FORMATS,
    DEFAULTS_KEYS,
    ENHANCED_KEYS,
    ENHANCED_TYPES,
    EXTRACTION_FORMATS,
    FALLBACK_ACTIONS,
    FILE_OPS,
    GEMINI_TYPES,
    IGNORED_STEP_KEYS,
    LLM_TYPES,
    LOOP_CONTEXT_KEYS,
    LOOP_TYPES,
    MAX_NESTED_DEPTH,
    MAX_WHILE_ITERATIONS,
    NO_PROMPT_TYPES,
    OUTPUT_FORMATS,
    POST_PROCESSING,
    PRESETS,
    PROMPT_PART_FIELDS,
    SET_SCOPES,
    SET_VARIABLE_RESULT,
    STEP_KEYS,
    STEP_MODEL_BY_TYPE,
    STEP_TYPES,
    TEST_STEP_TYPES,
    TOP_IGNORED,
    TOP_KEYS,
    TRANSFORM_OPS,
)
from elexirion_app.pipelines.checks.types import check_values
from elexirion_app.pipelines.loader import PipelineDocument, load_file
from elexirion_app.pipelines.spec.models import Workflow

__all__ = [
    "AGGREGATE_FUNCTIONS",
    "BACKOFF",
    "CLAUDE_OPTION_KEYS",
    "CLAUDE_TYPES",
    "COMMON_STEP_KEYS",
    "CONVERT_FORMATS",
    "DEFAULTS_KEYS",
    "ENHANCED_KEYS",
    "ENHANCED_TYPES",
    "EXTRACTION_FORMATS",
    "FALLBACK_ACTIONS",
    "FILE_OPS",
    "GEMINI_TYPES",
    "IGNORED_STEP_KEYS",
    "LLM_TYPES",
    "LOOP_CONTEXT_KEYS",
    "LOOP_TYPES",
    "MAX_NESTED_DEPTH",
    "MAX_WHILE_ITERATIONS",
    "NO_PROMPT_TYPES",
    "OUTPUT_FORMATS",
    "POST_PROCESSING",
    "PRESETS",
    "PROMPT_PART_FIELDS",
    "SET_SCOPES",
    "SET_VARIABLE_RESULT",
    "STEP_KEYS",
    "STEP_TYPES",
    "TEST_STEP_TYPES",
    "TOP_IGNORED",
    "TOP_KEYS",
    "TRANSFORM_OPS",
    "Ctx",
    "PipelineValidationError",
    "Problem",
    "StepInfo",
    "check_enum",
    "check_template_text",
    "ensure_valid",
    "errors_of",
    "format_path",
    "nearest",
    "validate_document",
    "validate_file",
]

# --- entry points -----------------------------------------------------------------------


def validate_document(
    doc: PipelineDocument, *, strict: bool = False, _chain: tuple[str, ...] = ()
) -> list[Problem]:
    """Every problem of a loaded pipeline (see the module docstring)."""
    problems: list[Problem] = []
    chain = _chain or ((resolved_file(doc.file),) if is_pipeline_file(doc.file) else ())
    ctx = Ctx(doc=doc, strict=strict, chain=chain, problems=problems, walk=_WALK)
    _validate_workflow(ctx, doc.workflow, ())
    return problems


def validate_file(path: Path, *, strict: bool = False) -> list[Problem]:
    """Load and validate a file; load failures become problems."""
    try:
        doc = load_file(Path(path))
    except PipelineValidationError as exc:
        return list(exc.problems)
    return validate_document(doc, strict=strict)


def ensure_valid(doc: PipelineDocument, *, strict: bool = False) -> list[Problem]:
    """Raise ``PipelineValidationError`` on any error; return the warnings otherwise."""
    problems = validate_document(doc, strict=strict)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise PipelineValidationError(problems)
    return problems


def errors_of(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


# --- the walk ---------------------------------------------------------------------------


def _validate_workflow(ctx: Ctx, wf: Mapping[str, Any], prefix: tuple[Any, ...]) -> None:
    name = wf.get("name")
    if name is None or (isinstance(name, str) and not name.strip()):
        ctx.add(prefix or ("name",), "missing the workflow 'name'", "add: name: my_pipeline")
    elif not isinstance(name, (str, int, float)):
        ctx.add((*prefix, "name"), "the workflow 'name' must be text")
    check_top_keys(ctx, wf, prefix)
    if prefix == ():
        check_defaults(ctx, wf.get("defaults"), ("defaults",))
    ctx.global_vars = (
        set(map(str, wf["global_vars"])) if isinstance(wf.get("global_vars"), dict) else set()
    )
    if "global_vars" in wf and not isinstance(wf.get("global_vars"), dict):
        ctx.add((*prefix, "global_vars"), "global_vars must be a map of name: value")
    variables = wf.get("variables")
    if isinstance(variables, dict):
        ctx.variables |= set(map(str, variables))
    elif variables is not None:
        ctx.add((*prefix, "variables"), "variables must be a map of name: value")
    check_functions(ctx, wf.get("gemini_functions"), (*prefix, "gemini_functions"))
    check_inputs(ctx, wf, (*prefix, "inputs"))
    steps = wf.get("steps")
    if steps is None:
        ctx.add(prefix or ("steps",), "missing 'steps'", "add a list of steps under steps:")
    elif not isinstance(steps, list):
        ctx.add((*prefix, "steps"), "'steps' must be a list of steps")
    elif not steps:
        ctx.add((*prefix, "steps"), "'steps' is empty", "add at least one step")
    else:
        _validate_steps(ctx, steps, (*prefix, "steps"))
    check_values(ctx, Workflow, wf, prefix)


def _validate_steps(ctx: Ctx, steps: list[Any], path: tuple[Any, ...]) -> None:
    """Validate a list of steps; ``ctx`` is updated with what each step makes visible."""
    infos: list[StepInfo | None] = []
    seen: dict[str, int] = {}
    for i, step in enumerate(steps):
        spath = (*path, i)
        if not isinstance(step, dict):
            ctx.add(spath, f"a step must be a map with name and type, not {kind_of(step)}")
            infos.append(None)
            continue
        name = step.get("name")
        if name is None or not str(name).strip():
            ctx.add(spath, "step without a 'name'", "add: name: my_step")
            infos.append(None)
            continue
        name = str(name)
        if name in seen:
            first = ctx.doc.line_of((*path, seen[name]))
            ctx.add((*spath, "name"), f"duplicate step name '{name}' (first on line {first})")
            infos.append(None)
            continue
        seen[name] = i
        infos.append(StepInfo(name, str(step.get("type", "")), spath, step))
    # names visible as "later" (for clear messages about forward references)
    outer_later = ctx.later
    positions = {info.name: (i, info) for i, info in enumerate(infos) if info is not None}
    for i, step in enumerate(steps):
        info = infos[i]
        ctx.later = Later(positions, i, outer_later)
        if isinstance(step, dict):
            _validate_step(ctx, step, (*path, i))
        if info is not None:
            ctx.earlier[info.name] = info
            _record_effects(ctx, info)


def _record_effects(ctx: Ctx, info: StepInfo) -> None:
    """Variables and data_transform output fields a finished step makes visible."""
    step = info.step
    if info.type == "set_variable":
        variables = step.get("variables")
        if isinstance(variables, dict):
            ctx.variables |= set(map(str, variables))
        if "variable" in step:
            ctx.variables.add(str(step["variable"]))
    if info.type == "data_transform" and step.get("output_field"):
        ctx.output_fields[str(step["output_field"])] = info.name


def _validate_step(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    kind = step.get("type")
    if kind is None:
        ctx.add(path, "step without a 'type'", "one of: " + ", ".join(STEP_TYPES))
        return
    kind = str(kind)
    if kind in TEST_STEP_TYPES:
        ctx.warn((*path, "type"), f"'{kind}' is a pipeline_ex test-only step type (echoes 'value')")
    elif kind not in STEP_TYPES:
        ctx.add((*path, "type"), f"unknown step type '{kind}'", nearest(kind, STEP_TYPES))
        return
    check_step_keys(ctx, step, kind, path)
    if "condition" in step and kind != "while_loop":  # a while condition sees the body
        check_condition(ctx, step["condition"], (*path, "condition"))
    check_output_file(ctx, step.get("output_to_file"), (*path, "output_to_file"))
    check_prompt_required(ctx, step, kind, path)
    if isinstance(step.get("prompt"), (list, str)):
        check_prompt(ctx, step["prompt"], (*path, "prompt"))
    check_templates(ctx, step, kind, path)
    checker = _TYPE_CHECKS.get(kind)
    if checker is not None:
        checker(ctx, step, path)
    check_values(ctx, STEP_MODEL_BY_TYPE[kind], step, path)


def _validate_nested_document(
    doc: PipelineDocument, strict: bool, chain: tuple[str, ...]
) -> list[Problem]:
    return validate_document(doc, strict=strict, _chain=chain)


_TYPE_CHECKS = {
    **{kind: check_llm for kind in CLAUDE_TYPES | GEMINI_TYPES},
    "parallel_claude": check_parallel,
    "set_variable": check_set_variable,
    "for_loop": check_for_loop,
    "while_loop": check_while_loop,
    "data_transform": check_data_transform,
    "file_ops": check_file_ops,
    "pipeline": check_pipeline,
}
_WALK = Walk(steps=_validate_steps, workflow=_validate_workflow, document=_validate_nested_document)
