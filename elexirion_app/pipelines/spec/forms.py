"""Inspector forms generated from the spec models: one field description per editable key.

CONTRACT:
- ``form_fields(step_type) -> list[FormField]``: the form of a step type (every type of
  ``STEP_MODELS``, ``test_echo`` included); raises ``KeyError`` for an unknown type, like a
  mapping (validation is what tells the user about it). The tag ``type`` is not a field
  (changing it is a palette action).
- ``prompt_part_fields(part_type) -> list[FormField]``: the form of one prompt part (its
  ``type`` left out likewise); ``KeyError`` for an unknown part type.
- Nested option maps (``claude_options``, ``retry_config``, ``token_budget``, ...) are
  flattened: ``("claude_options", "max_turns")``. Lists of maps (``parallel_tasks``, ``tasks``,
  ``operations``, ``files``, ``outputs``) stay one ``list`` field.
- ``kind`` is one of ``KINDS``: the prompt is ``prompt`` (the web layer renders prompt parts
  itself, with ``prompt_part_fields``), a nested list of steps is ``steps``, a ``Literal`` (also
  an open one) is ``enum`` with its ``options``; a number that may be a ``{{ }}`` template is
  still ``integer``/``number``.
- ``group`` is one of ``GROUPS``: Basics (the name, what the type needs, the model, preset,
  condition and output file; a field's ``x-group`` in the spec chooses too), Prompt, Options
  (everything else the step uses), Advanced (keys accepted for compatibility that change
  nothing, and deprecated spellings). Fields come in group order, then in the spec's order.
- Descriptions are the spec's ``Field(description=...)`` texts (deprecated fields say what to
  write instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from elexirion_app.pipelines.spec import introspect as si
from elexirion_app.pipelines.spec.describe import members
from elexirion_app.pipelines.spec.models import (
    PROMPT_PART_MODELS,
    STEP_MODELS,
    SpecModel,
    StepBase,
)

FormKind = Literal[
    "text", "textarea", "number", "integer", "bool", "enum", "list", "object", "prompt", "steps"
]
KINDS: tuple[str, ...] = get_args(FormKind)
GROUPS = ("Basics", "Prompt", "Options", "Advanced")
# keys every step may have that belong with the basics
_BASIC_KEYS = frozenset({"name", "model", "preset", "condition", "output_to_file"})
_BASIC_PATHS = frozenset({("claude_options", "model")})
_MAX_DEPTH = 3  # claude_options.retry_config.max_retries


@dataclass(frozen=True)
class FormField:
    """One field of an inspector form."""

    path: tuple[str, ...]
    label: str
    kind: str
    description: str
    options: tuple[str, ...] = ()
    default: Any = None
    required: bool = False
    group: str = "Options"


@cache
def _step_models() -> dict[str, type[StepBase]]:
    return {si.tag(model): model for model in STEP_MODELS}


@cache
def _part_models() -> dict[str, type[SpecModel]]:
    return {si.tag(model): model for model in PROMPT_PART_MODELS}


def form_fields(step_type: str) -> list[FormField]:
    """The inspector form of a step type (see the module docstring)."""
    model = _step_models().get(step_type)
    if model is None:
        raise KeyError(f"unknown step type {step_type!r}")
    return list(_step_form(model))


def prompt_part_fields(part_type: str) -> list[FormField]:
    """The form of one prompt part (see the module docstring)."""
    model = _part_models().get(part_type)
    if model is None:
        raise KeyError(f"unknown prompt part type {part_type!r}")
    return list(_part_form(model))


@cache
def _step_form(model: type[StepBase]) -> tuple[FormField, ...]:
    own = si.own_keys(model, StepBase)
    common = [k for k in si.keys(StepBase) if k not in own]
    order = ["name", *own, *(k for k in common if k != "name")]
    fields = [f for key in order for f in _fields(model, key, (), parent_required=True)]
    return _in_group_order(fields)


@cache
def _part_form(model: type[SpecModel]) -> tuple[FormField, ...]:
    keys = [k for k in si.keys(model) if k != si.TAG]
    fields = [f for key in keys for f in _fields(model, key, (), parent_required=True)]
    return _in_group_order(fields)


def _in_group_order(fields: list[FormField]) -> tuple[FormField, ...]:
    return tuple(sorted(fields, key=lambda f: GROUPS.index(f.group)))


def _fields(
    model: type[BaseModel], key: str, prefix: tuple[str, ...], *, parent_required: bool
) -> list[FormField]:
    info = si.field(model, key)
    path = (*prefix, key)
    extra = si.field_extra(model, key)
    required = parent_required and info.is_required()
    advanced = bool(extra.get("x-unused") or extra.get("deprecated"))
    nested = _option_model(info.annotation)
    if nested is not None and len(path) < _MAX_DEPTH:
        out: list[FormField] = []
        for sub in si.keys(nested):
            for f in _fields(nested, sub, path, parent_required=required):
                out.append(_with_group(f, "Advanced") if advanced else f)
        return out
    kind = _kind(key, info.annotation, extra)
    description = info.description or ""
    if extra.get("deprecated") and extra.get("x-instead"):
        description = f"{description} Deprecated: write `{extra['x-instead']}` instead."
    return [
        FormField(
            path=path,
            label=_label(key),
            kind=kind,
            description=description,
            options=si.field_values(model, key) if kind in ("enum", "list") else (),
            default=None if info.default is PydanticUndefined else info.default,
            required=required,
            group=_group(path, kind, required, advanced, extra.get("x-group")),
        )
    ]


def _with_group(f: FormField, group: str) -> FormField:
    return FormField(f.path, f.label, f.kind, f.description, f.options, f.default, False, group)


def _group(path: tuple[str, ...], kind: str, required: bool, advanced: bool, chosen: Any) -> str:
    if advanced:
        return "Advanced"
    if isinstance(chosen, str) and chosen in GROUPS:
        return chosen
    if kind == "prompt":
        return "Prompt"
    if path in _BASIC_PATHS:
        return "Basics"
    if len(path) == 1 and (required or path[0] in _BASIC_KEYS or kind == "steps"):
        return "Basics"
    return "Options"


def _label(key: str) -> str:
    return key.replace("_", " ").strip().capitalize()


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a type without ``None`` and ``{{ }}`` templates."""
    return members(annotation)[0]


def _option_model(annotation: Any) -> type[SpecModel] | None:
    """The model of a nested option map (``ClaudeOptions | None``), else None."""
    members = _members(annotation)
    if len(members) == 1 and isinstance(members[0], type) and issubclass(members[0], SpecModel):
        return members[0]
    return None


def _is_step_list(member: Any) -> bool:
    if get_origin(member) is not list:
        return False
    items = _members(get_args(member)[0])
    return bool(items) and all(isinstance(t, type) and issubclass(t, StepBase) for t in items)


def _kind(key: str, annotation: Any, extra: dict[str, Any]) -> str:
    form = extra.get("x-form")
    if isinstance(form, str) and form in KINDS:
        return form
    members = _members(annotation)
    if key == "prompt":
        return "prompt"
    if any(_is_step_list(m) for m in members):
        return "steps"
    if si.literal_values(annotation) and all(get_origin(m) is Literal or m is str for m in members):
        return "enum"
    for scalar, kind in ((str, "text"), (bool, "bool"), (float, "number"), (int, "integer")):
        if scalar in members:
            return kind
    if any(get_origin(m) is list for m in members):
        return "list"
    if members and all(m is Any for m in members):
        return "text"
    return "object"
