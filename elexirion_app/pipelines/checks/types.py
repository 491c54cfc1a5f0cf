"""Values against the spec's types: every known key's value fits its field in the models.

CONTRACT:
- ``check_values(ctx, model, data, path)``: for every key of ``data`` that is a field of
  ``model``, the value is validated against the field's type (pydantic, lax as ``spec.parse``);
  nested option maps, list items and tagged unions (prompt parts, operations) are followed so
  the warning names the deepest key. A value that does not fit is a **warning** (it may still
  run, but the spec — and so the editor's schema — says otherwise), unless another check
  already reported a problem at that key or under it.
- Unknown keys are skipped (``structure`` warns about them); step lists and inline pipelines
  are skipped (the orchestrator walks them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from elexirion_app.pipelines.checks.context import Ctx, format_path, kind_of
from elexirion_app.pipelines.spec import introspect as si
from elexirion_app.pipelines.spec.describe import describe, members
from elexirion_app.pipelines.spec.models import (
    OPERATION_MODELS,
    PROMPT_PART_MODELS,
    SpecModel,
    StepBase,
    Workflow,
    WrappedWorkflow,
)

_TAGGED: tuple[tuple[str, dict[str, type[SpecModel]]], ...] = (
    ("type", {si.tag(m): m for m in PROMPT_PART_MODELS}),
    ("operation", {si.tag(m, "operation"): m for m in OPERATION_MODELS}),
)
_WALKED_ELSEWHERE = (StepBase, Workflow, WrappedWorkflow)


@dataclass(frozen=True)
class _Plan:
    """What checking a value against one type needs, worked out once per type."""

    annotation: Any
    adapter: TypeAdapter[Any]
    skip: bool  # steps and inline pipelines: walked by the orchestrator
    models: tuple[type[SpecModel], ...]
    items: tuple[Any, ...]  # the item types of the list alternatives
    kinds: frozenset[str]
    literals: tuple[Any, ...]


def check_values(ctx: Ctx, model: type[BaseModel], data: Mapping[str, Any], path: tuple) -> None:
    """Warn about every value of ``data`` that does not fit its field of ``model``."""
    fields = _fields_of(model)
    for key, value in data.items():
        info = fields.get(key) if isinstance(key, str) else None
        if info is not None and value is not None:
            annotation: Any = info.annotation
            plan = _plan(annotation, tuple(info.metadata))
            _check_value(ctx, plan, value, (*path, key), key)


def _check_value(ctx: Ctx, plan: _Plan, value: Any, path: tuple, key: str) -> None:
    if plan.skip:
        return
    if isinstance(value, dict):
        nested = _nested_model(plan.models, value)
        if nested is not None:
            check_values(ctx, nested, value, path)
            return
    if isinstance(value, list) and len(plan.items) == 1:
        item_plan = _plan(plan.items[0], ())
        for i, item in enumerate(value):
            if item is not None:
                _check_value(ctx, item_plan, item, (*path, i), f"{key}[{i}]")
        return
    try:
        plan.adapter.validate_python(value)
    except ValidationError:
        pass
    else:
        return
    if _kind(value) in plan.kinds:
        return  # the right kind of value: its limits are the other checks' business
    if _already_reported(ctx, format_path(path)):
        return
    if plan.literals and isinstance(value, str):
        allowed = ", ".join(map(str, plan.literals))
        ctx.warn(path, f"{key} should be one of {allowed}, not {value!r}")
        return
    ctx.warn(
        path,
        f"{key} should be {describe(plan.annotation)}, not {kind_of(value)}",
        "see docs/pipeline-format.md#reference",
    )


def _already_reported(ctx: Ctx, text: str) -> bool:
    """A problem of this file at ``text`` or under it, or at the map holding it that names
    the key in quotes (``a set_variable step needs a non-empty 'variables' map``)."""
    parent, _sep, key = text.rpartition(".")
    for problem in ctx.problems:
        if problem.file != ctx.doc.file:
            continue
        if problem.path == text or problem.path.startswith((f"{text}.", f"{text}[")):
            return True
        if problem.path == parent and f"'{key}'" in problem.message:
            return True
    return False


@cache
def _fields_of(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {key: si.field(model, key) for key in si.keys(model)}


@cache
def _plan(annotation: Any, metadata: tuple[Any, ...]) -> _Plan:
    found, _optional, _templated = members(annotation)
    typed: Any = Annotated[annotation, *metadata] if metadata else annotation
    return _Plan(
        annotation=annotation,
        adapter=TypeAdapter(typed),
        skip=any(_walked_elsewhere(m) for m in found),
        models=tuple(m for m in found if isinstance(m, type) and issubclass(m, SpecModel)),
        items=tuple(get_args(m)[0] for m in found if _is_list(m) and get_args(m)),
        kinds=frozenset(k for m in found for k in _kinds(m)),
        literals=si.literal_values(annotation),
    )


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    for python, name in ((int, "int"), (float, "float"), (str, "str"), (list, "list")):
        if isinstance(value, python):
            return name
    return "dict" if isinstance(value, dict) else type(value).__name__


def _kinds(member: Any) -> set[str]:
    """The kinds of value a member stands for (a Literal stands for none: its values do)."""
    if member is Any:
        return {"bool", "int", "float", "str", "list", "dict"}
    simple = {str: {"str"}, int: {"int"}, float: {"float", "int"}, bool: {"bool"}}
    if member in simple:
        return simple[member]
    if isinstance(member, type) and issubclass(member, BaseModel):
        return {"dict"}
    origin = getattr(member, "__origin__", None)
    return {"list"} if origin is list else {"dict"} if origin is dict else set()


def _walked_elsewhere(member: Any) -> bool:
    if isinstance(member, type) and issubclass(member, _WALKED_ELSEWHERE):
        return True
    if _is_list(member) and get_args(member):
        items = members(get_args(member)[0])[0]
        return bool(items) and all(isinstance(t, type) and issubclass(t, StepBase) for t in items)
    return False


def _is_list(member: Any) -> bool:
    return getattr(member, "__origin__", None) is list


def _nested_model(
    models: tuple[type[SpecModel], ...], value: Mapping[str, Any]
) -> type[SpecModel] | None:
    """The model a map value is checked against: the only one, or the one its tag names."""
    if len(models) == 1:
        return models[0]
    for tag_key, by_tag in _TAGGED:
        if models and all(m in by_tag.values() for m in models):
            tag = value.get(tag_key)
            return by_tag.get(tag) if isinstance(tag, str) else None
    return None
