"""``for_loop`` and ``while_loop``.

Each iteration runs its steps in a child scope: the loop context ``{<iterator>, index, total,
first, last, level, parent}`` is ``scope.loop`` (so ``{{loop.item}}`` works), step results are
iteration-local, and the run's variables are shared (``set_variable`` changes persist).

``batch_size`` (for_loop): the items are processed in batches of that many, one batch after
the other; inside a batch the iterations run one by one, or concurrently (up to
``max_parallel``) with ``parallel: true``. Results stay in item order; the result then also
carries ``batches_processed``. A ``break_condition`` met in a batch stops the loop after that
batch (at once when not parallel).

Every iteration's steps are resumable units (``loop[2].inner``, see the executor): a resume
re-enters the loop and reuses what finished.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from elexirion_app.core.errors import ElexirionError, ObserverError, StepError
from elexirion_app.pipelines.scope import Scope
from elexirion_app.pipelines.steps.util import (
    MISSING,
    gather_or_cancel,
    parse_json_text,
    resolve_source,
)

if TYPE_CHECKING:
    from elexirion_app.pipelines.run_context import RunContext

DEFAULT_MAX_PARALLEL = 5
MAX_PARALLEL_CAP = 10
DEFAULT_MAX_ITERATIONS = 100
MAX_ITERATIONS_CAP = 1000


def _items(value: Any, source: Any, name: str) -> list[Any]:
    if value is MISSING or value is None:
        raise StepError(name, f"data_source {source!r} did not resolve to any data")
    if isinstance(value, str):
        parsed = parse_json_text(value)
        value = parsed if parsed is not None else value
    if isinstance(value, dict):
        if "text" in value and "success" in value:
            parsed = parse_json_text(value)
            if parsed is not None:
                value = parsed
        if isinstance(value, dict):
            return [{"key": k, "value": v} for k, v in value.items()]
    if isinstance(value, list | tuple):
        return list(value)
    raise StepError(name, f"data_source {source!r} is not a list (got {type(value).__name__})")


def _batch_size(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        size = int(str(value).strip())
    except ValueError:
        size = 0
    if isinstance(value, bool) or size < 1:
        raise StepError(name, f"batch_size must be a positive integer (got {value!r})")
    return size


def _level(scope: Scope) -> int:
    return int(scope.loop.get("level", 0)) + 1 if scope.loop else 0


async def run_for_loop(ctx: RunContext, step: dict[str, Any], scope: Scope, name: str) -> Any:
    from elexirion_app.pipelines.executor import check_condition

    iterator = str(step.get("iterator") or "item")
    source = step.get("data_source")
    items = _items(resolve_source(source, scope), source, name)
    body = list(step.get("steps") or [])
    break_on_error = bool(step.get("break_on_error", True))
    batch_size = _batch_size(step.get("batch_size"), name)
    total = len(items)
    level = _level(scope)

    def iteration_scope(index: int, item: Any) -> Scope:
        loop_ctx = {
            iterator: item,
            "item": item,
            "index": index,
            "total": total,
            "first": index == 0,
            "last": index == total - 1,
            "level": level,
            "parent": scope.loop,
        }
        return scope.child(steps=dict(scope.steps), loop=loop_ctx)

    async def one(index: int, item: Any) -> dict[str, Any]:
        child = iteration_scope(index, item)
        if step.get("continue_condition") and check_condition(step["continue_condition"], child):
            return {"index": index, "item": item, "success": True, "skipped": True, "results": {}}
        try:
            results = await ctx.run_steps(body, child, prefix=f"{name}[{index}].")
        except ObserverError:
            raise  # the run itself cannot go on: never a failed iteration
        except ElexirionError as exc:
            if break_on_error:
                raise StepError(name, f"iteration {index} failed: {exc.user_message}") from exc
            return {
                "index": index,
                "item": item,
                "success": False,
                "error": exc.user_message,
                "results": {},
            }
        entry = {"index": index, "item": item, "success": True, "results": results}
        if step.get("break_condition") and check_condition(step["break_condition"], child):
            entry["break"] = True
        return entry

    parallel = bool(step.get("parallel"))
    limit = max(1, min(int(step.get("max_parallel") or DEFAULT_MAX_PARALLEL), MAX_PARALLEL_CAP))
    semaphore = asyncio.Semaphore(limit)

    async def guarded(index: int, item: Any) -> dict[str, Any]:
        async with semaphore:
            return await one(index, item)

    async def run_batch(batch: list[tuple[int, Any]]) -> tuple[list[dict[str, Any]], bool]:
        """The batch's iterations in order, and whether a break condition was met."""
        if parallel:
            done = await gather_or_cancel(guarded(i, x) for i, x in batch)
            return done, any(it.get("break") for it in done)
        done = []
        for index, item in batch:
            entry = await one(index, item)
            done.append(entry)
            if entry.get("break"):
                return done, True
        return done, False

    indexed = list(enumerate(items))
    size = batch_size or max(total, 1)
    iterations: list[dict[str, Any]] = []
    batches = 0
    for start in range(0, total, size):
        done, broke = await run_batch(indexed[start : start + size])
        iterations.extend(done)
        batches += 1
        if broke:
            break
    completed = sum(1 for it in iterations if it["success"])
    result = {
        "success": all(it["success"] for it in iterations),
        "iterations": iterations,
        "total_items": total,
        "completed_items": completed,
        "broke_early": any(it.get("break") for it in iterations),
    }
    if batch_size is not None:
        result["batches_processed"] = batches
    return result


async def run_while_loop(ctx: RunContext, step: dict[str, Any], scope: Scope, name: str) -> Any:
    from elexirion_app.pipelines.executor import check_condition

    condition = step.get("condition")
    if condition is None:
        raise StepError(name, "while_loop needs a condition")
    max_iterations = int(step.get("max_iterations") or DEFAULT_MAX_ITERATIONS)
    max_iterations = max(0, min(max_iterations, MAX_ITERATIONS_CAP))
    body = list(step.get("steps") or [])
    level = _level(scope)
    iterations: list[dict[str, Any]] = []
    condition_met = False
    timeout = step.get("timeout_seconds")

    async def loop() -> None:
        nonlocal condition_met
        for index in range(max_iterations):
            loop_ctx = {
                "index": index,
                "iteration": index + 1,
                "level": level,
                "parent": scope.loop,
            }
            child = scope.child(steps=dict(scope.steps), loop=loop_ctx)
            if not check_condition(condition, child):
                condition_met = True
                return
            results = await ctx.run_steps(body, child, prefix=f"{name}[{index}].")
            iterations.append({"index": index, "success": True, "results": results})
            if step.get("break_condition") and check_condition(step["break_condition"], child):
                condition_met = True
                return
        final = scope.child(
            steps=dict(scope.steps),
            loop={"index": max_iterations, "level": level, "parent": scope.loop},
        )
        condition_met = not check_condition(condition, final)

    if timeout:
        await asyncio.wait_for(loop(), timeout=float(timeout))
    else:
        await loop()
    return {
        "success": True,
        "iterations": len(iterations),
        "condition_met": condition_met,
        "max_iterations_reached": not condition_met and len(iterations) >= max_iterations,
        "results": iterations[-1]["results"] if iterations else {},
        "iteration_results": iterations,
    }
