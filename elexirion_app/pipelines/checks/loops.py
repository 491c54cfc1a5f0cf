"""Loops: for_loop (iterator, data source, break/continue conditions) and while_loop.

CONTRACT:
- ``check_for_loop(ctx, step, path)`` and ``check_while_loop(ctx, step, path)``. Loop bodies
  are validated in a child context that sees the iterator, ``loop.*`` and every variable the
  body sets, through ``ctx.walk.steps`` (never by importing the orchestrator).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from elexirion_app.pipelines.checks.context import Ctx
from elexirion_app.pipelines.checks.data import check_data_source
from elexirion_app.pipelines.checks.references import check_condition
from elexirion_app.pipelines.checks.tables import MAX_WHILE_ITERATIONS


def _loop_ctx(ctx: Ctx, iterator: str | None) -> Ctx:
    iterators = (iterator, *ctx.iterators) if iterator else ctx.iterators
    return ctx.child(iterators=iterators, in_loop=True)


def _check_loop_body(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    body = step.get("steps")
    if body is None:
        ctx.add(path, f"a {step.get('type')} needs 'steps' to repeat")
    elif not isinstance(body, list) or not body:
        ctx.add((*path, "steps"), "the loop's 'steps' must be a non-empty list")
    else:
        # every set_variable of the body is visible to the body (later iterations see it)
        for inner in body:
            is_set = isinstance(inner, dict) and inner.get("type") == "set_variable"
            if is_set and isinstance(inner.get("variables"), dict):
                ctx.variables |= set(map(str, inner["variables"]))
                ctx.loop_keys |= set(map(str, inner["variables"]))  # scope: loop
        ctx.walk.steps(ctx, body, (*path, "steps"))


def check_for_loop(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    iterator = step.get("iterator")
    if iterator is None:
        ctx.add(path, "a for_loop needs an 'iterator' name", "iterator: item")
    elif not isinstance(iterator, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", iterator):
        ctx.add((*path, "iterator"), "the iterator must be a simple name like item")
        iterator = None
    source = step.get("data_source")
    if source is None:
        ctx.add(path, "a for_loop needs a 'data_source'", "data_source: previous_response:step")
    else:
        check_data_source(ctx, source, (*path, "data_source"), strict_missing=True)
    inner = _loop_ctx(ctx, iterator)
    for key in ("break_condition", "continue_condition"):
        if key in step:
            check_condition(inner, step[key], (*path, key))
    _check_loop_body(inner, step, path)


def check_while_loop(ctx: Ctx, step: Mapping[str, Any], path: tuple[Any, ...]) -> None:
    inner = _loop_ctx(ctx, None)
    if step.get("condition") is None:
        ctx.add(path, "a while_loop needs a 'condition'")
    maxi = step.get("max_iterations")
    if maxi is not None:
        if not isinstance(maxi, int) or isinstance(maxi, bool) or maxi < 1:
            ctx.add((*path, "max_iterations"), "max_iterations must be a positive whole number")
        elif maxi > MAX_WHILE_ITERATIONS:
            ctx.warn(
                (*path, "max_iterations"), f"max_iterations is capped at {MAX_WHILE_ITERATIONS}"
            )
    _check_loop_body(inner, step, path)
    if step.get("condition") is not None:
        check_condition(inner, step["condition"], (*path, "condition"))
