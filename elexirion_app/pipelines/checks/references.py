"""References inside templates and conditions: steps, inputs, globals, variables, loop keys.

CONTRACT:
- ``check_template_text(ctx, text, path)``: the syntax and every reference of one templated
  string; ``check_templates(ctx, step, kind, path)``: every templated string of a step, except
  the keys checked elsewhere in their own scope (loop bodies, loop conditions, inline pipelines).
- ``check_step_ref(ctx, name, path, what) -> bool``: an error unless ``name`` is an earlier step
  (the message says when it runs later, or suggests the nearest name).
- ``check_condition(ctx, condition, path, *, item_relative=False)``: the syntax and (unless
  item-relative) the steps and variables a condition reads.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any

from elexirion_app.core.errors import ConditionError, TemplateError
from elexirion_app.pipelines import conditions, templating
from elexirion_app.pipelines.checks.context import Ctx, nearest
from elexirion_app.pipelines.checks.tables import LLM_TYPES, LOOP_CONTEXT_KEYS


def check_template_text(ctx: Ctx, text: str, path: tuple[Any, ...]) -> None:
    """Syntax and every reference of one templated string."""
    try:
        refs = templating.references(text)
    except TemplateError as exc:
        ctx.add(path, str(exc))
        return
    for ref in refs:
        _check_reference(ctx, ref, path)


def check_step_ref(ctx: Ctx, name: str, path: tuple[Any, ...], what: str) -> bool:
    """An error unless ``name`` is an earlier step; True when it is."""
    if name in ctx.earlier:
        return True
    if name in ctx.later:
        later = ctx.later[name]
        ctx.add(
            path,
            f"{what} refers to step '{name}', which runs later (line "
            f"{ctx.doc.line_of(later.path)})",
            "a step can only use the results of steps before it",
        )
    else:
        ctx.add(
            path,
            f"{what} refers to a step '{name}' that does not exist",
            nearest(name, ctx.earlier),
        )
    return False


# keys whose values are validated elsewhere with their own scope
_DEFERRED = {
    "for_loop": frozenset({"steps", "break_condition", "continue_condition", "data_source"}),
    "while_loop": frozenset({"steps", "condition"}),
    "pipeline": frozenset({"pipeline"}),
    "data_transform": frozenset({"input_source"}),
}


def _strings(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every string inside ``value`` with its path (iterative)."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, path)]
    while stack:
        cur, cpath = stack.pop()
        if isinstance(cur, str):
            yield cpath, cur
        elif isinstance(cur, dict):
            stack.extend((v, (*cpath, k)) for k, v in reversed(list(cur.items())))
        elif isinstance(cur, list):
            stack.extend((v, (*cpath, i)) for i, v in reversed(list(enumerate(cur))))


def check_templates(ctx: Ctx, step: Mapping[str, Any], kind: str, path: tuple[Any, ...]) -> None:
    deferred = _DEFERRED.get(kind, frozenset())
    for key, value in step.items():
        if key in deferred or key == "condition":
            continue
        for spath, text in _strings(value, (*path, key)):
            if "{{" in text:
                check_template_text(ctx, text, spath)


def _check_reference(ctx: Ctx, ref: templating.Reference, path: tuple[Any, ...]) -> None:
    if ref.root == "steps":
        _check_steps_ref(ctx, ref, path)
    elif ref.root == "global_vars":
        if ref.path and ref.path[0] not in ctx.global_vars:
            ctx.warn(
                path,
                f"{ref.raw}: '{ref.path[0]}' is not in global_vars (stays verbatim unless a "
                "parent pipeline provides it)",
                nearest(ref.path[0], ctx.global_vars),
            )
    elif ref.root == "inputs":
        if ctx.inputs is not None and ref.path and ref.path[0] not in ctx.inputs:
            ctx.warn(
                path,
                f"{ref.raw}: input '{ref.path[0]}' is not declared in inputs:",
                nearest(ref.path[0], ctx.inputs),
            )
    elif ref.root == "state":
        if ref.path and ref.path[0] not in ctx.variables:
            ctx.warn(
                path,
                f"{ref.raw}: variable '{ref.path[0]}' is not set by an earlier set_variable "
                "or the workflow's variables (renders empty)",
                nearest(ref.path[0], ctx.variables),
            )
    elif ref.root == "loop":
        _check_loop_ref(ctx, ref, path)
    elif ref.root == "bare":
        _check_bare_ref(ctx, ref, path)


def _check_steps_ref(ctx: Ctx, ref: templating.Reference, path: tuple[Any, ...]) -> None:
    if not ref.path:
        ctx.add(path, f"{ref.raw}: name a step, e.g. steps.my_step.text")
        return
    name = ref.path[0]
    if name in ctx.output_fields and name not in ctx.earlier and name not in ctx.later:
        owner = ctx.output_fields[name]
        ctx.warn(
            path,
            f"{ref.raw}: '{name}' is the output_field of step '{owner}', not a step "
            "(stays verbatim)",
            f"write {{{{steps.{owner}.{name}}}}}",
        )
        return
    if not check_step_ref(ctx, name, path, ref.raw):
        return
    info = ctx.earlier[name]
    if info.type in LLM_TYPES and len(ref.path) > 1 and ref.path[1] == "result":
        ctx.add(
            path,
            f"{ref.raw}: a {info.type} step's result has no 'result' field; pipeline_ex puts "
            "the whole result map here and fails (a map interpolated into a string)",
            f"use {{{{steps.{name}.text}}}} for the answer text",
        )


def _check_loop_ref(ctx: Ctx, ref: templating.Reference, path: tuple[Any, ...]) -> None:
    if not ctx.in_loop:
        ctx.add(path, f"{ref.raw}: 'loop' is only defined inside for_loop/while_loop steps")
        return
    if not ref.path:
        return
    head = ref.path[0]
    if head in LOOP_CONTEXT_KEYS or head in ctx.iterators or head in ctx.loop_keys:
        return
    ctx.add(
        path,
        f"{ref.raw}: the loop has no '{head}'",
        nearest(head, [*ctx.iterators, *ctx.loop_keys, *LOOP_CONTEXT_KEYS]),
    )


def _check_bare_ref(ctx: Ctx, ref: templating.Reference, path: tuple[Any, ...]) -> None:
    head = ref.path[0]
    if head in ctx.variables or head in ctx.global_vars or head in ctx.iterators:
        return
    if ctx.inputs is not None and head in ctx.inputs:
        return
    ctx.warn(
        path,
        f"{ref.raw}: '{head}' is not a variable, global_var or loop item; it will be read "
        f"from run inputs (--input {head}=...)",
        _known_hint(ctx, head) or "renders empty when no such input is given",
    )


def _known_hint(ctx: Ctx, name: str) -> str:
    """A 'did you mean' over every name a template or condition may use here."""
    names = [*ctx.variables, *ctx.global_vars, *ctx.iterators, *(ctx.inputs or ()), *ctx.earlier]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    return f"did you mean '{close[0]}'?" if close else ""


def check_condition(
    ctx: Ctx, condition: Any, path: tuple[Any, ...], *, item_relative: bool = False
) -> None:
    """Syntax, and (unless ``item_relative``) the steps/variables a condition reads."""
    try:
        parts = conditions.paths(condition)
    except ConditionError as exc:
        ctx.add(path, f"bad condition: {exc}")
        return
    if item_relative:
        return
    for parts_ in parts:
        _check_condition_path(ctx, tuple(str(p) for p in parts_), path)


def _check_condition_path(ctx: Ctx, parts: tuple[str, ...], path: tuple[Any, ...]) -> None:
    root = parts[0]
    raw = ".".join(parts)
    if root == "steps":
        if len(parts) > 1:
            check_step_ref(ctx, parts[1], path, f"condition '{raw}'")
        return
    if root == "loop":
        _check_loop_ref(ctx, templating.Reference("loop", parts[1:], raw), path)
        return
    if root in ("inputs", "global_vars", "state") or root in templating.BUILTIN_NAMES:
        return
    if root in ctx.earlier or root in ctx.variables or root in ctx.iterators:
        return
    if root in ctx.global_vars or (ctx.inputs is not None and root in ctx.inputs):
        return
    if root in ctx.later:
        check_step_ref(ctx, root, path, f"condition '{raw}'")
        return
    if len(parts) > 1:
        ctx.add(
            path,
            f"condition '{raw}': '{root}' is not an earlier step or a variable",
            nearest(root, [*ctx.earlier, *ctx.variables]),
        )
    else:
        ctx.warn(
            path,
            f"condition '{raw}': '{root}' is not a step or variable; it will be read from "
            f"run inputs (--input {root}=...)",
            _known_hint(ctx, root),
        )
