"""Runs a validated pipeline: steps in order, templates, conditions, defaults, events.

The executor knows nothing about persistence, progress bars or costs ledgers: it emits the
``core.events`` stream and every such concern is an observer (Hamilton-style lifecycle hooks).

Public API: ``run_pipeline(...) -> RunOutcome``.

Semantics follow ``shared/conformance/PIPELINE_EX_SPEC.md``. Where pipeline_ex is buggy we do
the sensible thing:

- ``defaults`` are applied (``claude_preset``, ``claude_options``, ``gemini_model``,
  ``gemini_token_budget``, ``output_dir``); top-level ``variables`` seed ``state``.
- ``{{loop.*}}`` works inside loops, and ``set_variable`` changes made in a loop iteration
  persist (global/session scope) instead of being lost.
- Every LLM step has one result shape (``LLMResponse.to_result``); Gemini keeps ``content``
  as an alias of ``text``.
- ``previous_response`` without ``extract`` gives an LLM result's text (other maps as JSON).
- File checkpoints are only read by an explicit resume and are removed when the run
  succeeds; run records (``services.runs.recorder``, ``run_records``) resume without
  re-calling the provider.
- Resumable units are paths, not just top-level names: every step inside a loop iteration
  (``loop[2].inner``) and inside a nested pipeline (``nested>inner``) is reused on resume;
  loops and nested pipelines are re-entered (their finished children are reused, so no
  provider call is repeated) and ``set_variable`` steps are replayed so the state they build
  is the same as in the first attempt.
- Observers are part of the run: an observer that raises fails the run (``ObserverError``
  names it, the traceback is logged) and no further step starts. An observer that may fail
  without consequence (a UI progress feed) is wrapped explicitly in ``optional_observer``.
- Every path (prompt files, ``file_ops``, ``cwd``, ``output_to_file``, ``pipeline_file``) is
  confined to the workspace / output directory / pipeline directory.
- ``test_echo`` (pipeline_ex's test-only step type) echoes its ``value`` as ``{result}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from elexirion_app.core.errors import ElexirionError, ObserverError, PipelineError, StepError
from elexirion_app.core.events import RunFinished, RunStarted, StepFinished, StepStarted
from elexirion_app.pipelines import conditions, run_setup, templating
from elexirion_app.pipelines.checkpoints import CheckpointWriter
from elexirion_app.pipelines.defaults import apply_defaults
from elexirion_app.pipelines.loader import PipelineDocument
from elexirion_app.pipelines.run_context import (
    CURRENT_METER,
    CURRENT_STEP,
    Meter,
    Observer,
    OptionalObserver,
    ProviderResolver,
    RunContext,
    RunOutcome,
    SessionStore,
    optional_observer,
)
from elexirion_app.pipelines.scope import Scope

log = logging.getLogger(__name__)

# Keys whose strings are rendered later (per iteration / in the child pipeline), not up front.
# Conditions are evaluated raw by ``conditions.evaluate`` (it evaluates their ``{{ }}`` parts).
ALWAYS_DEFERRED = frozenset({"condition"})
DEFERRED_KEYS: dict[str, frozenset[str]] = {
    "for_loop": ALWAYS_DEFERRED | {"steps", "break_condition", "continue_condition"},
    "while_loop": ALWAYS_DEFERRED | {"steps", "break_condition", "continue_condition"},
    "pipeline": ALWAYS_DEFERRED | {"pipeline"},
}
# Steps whose children are resumable units: on resume they are re-entered, not reused whole.
CONTAINER_TYPES = frozenset({"for_loop", "while_loop", "pipeline"})
# Steps whose effect is on the run's state, not their result: replayed on resume (no provider).
REPLAYED_TYPES = frozenset({"set_variable"})


# --- templates and conditions ------------------------------------------------------------


def render_step(step: Mapping[str, Any], scope: Scope) -> dict[str, Any]:
    """Interpolate every string of a step (deferred keys of loops/nested pipelines excepted)."""
    deferred = DEFERRED_KEYS.get(str(step.get("type")), ALWAYS_DEFERRED)
    out: dict[str, Any] = {}
    for key, value in step.items():
        if key in deferred or not _has_template(value):
            out[key] = value
        else:
            out[key] = templating.render(value, scope)
    return out


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, Mapping):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_template(v) for v in value)
    return False


def check_condition(condition: Any, scope: Scope) -> bool:
    """Evaluate a raw condition (its ``{{ }}`` parts are evaluated by ``conditions``)."""
    return conditions.evaluate(condition, scope)


def condition_text(condition: Any) -> str:
    if isinstance(condition, str):
        return condition
    return json.dumps(condition, default=str)


# --- one step ------------------------------------------------------------------------------


async def run_step(
    ctx: RunContext, step: Mapping[str, Any], scope: Scope, index: int, prefix: str = ""
) -> Any:
    """Run one step, store its result in ``scope.steps`` and return it.

    Emits ``StepStarted``/``StepFinished``; raises ``StepError`` when the step fails.
    """
    from elexirion_app.pipelines.steps import HANDLERS, model_of

    name = str(step.get("name", f"step_{index}"))
    qualname = f"{prefix}{name}"
    step_type = str(step.get("type", ""))
    if ctx.failures:
        raise ctx.failures[0]
    ctx.step_count[0] += 1
    if ctx.step_count[0] > ctx.max_total_steps:
        raise StepError(qualname, f"the run exceeded max_total_steps ({ctx.max_total_steps})")
    if qualname in ctx.resumed and not _replays(ctx, step_type, qualname):
        reused = ctx.resumed[qualname]
        scope.steps[name] = reused
        ctx.finished[qualname] = reused
        return reused

    started = time.perf_counter()
    try:
        rendered = render_step(step, scope)
        condition = step.get("condition")
        if condition is not None and not check_condition(condition, scope):
            result: Any = {
                "success": True,
                "skipped": True,
                "reason": f"Condition not met: {condition_text(step.get('condition'))}",
            }
            scope.steps[name] = result
            await ctx.emit(
                StepFinished(run_id=ctx.run_id, step=qualname, status="skipped", result=result)
            )
            ctx.finished[qualname] = result
            return result
    except ObserverError:
        raise
    except ElexirionError as exc:
        return await _fail(ctx, scope, name, qualname, exc, started, Meter())

    handler = HANDLERS.get(step_type)
    await ctx.emit(
        StepStarted(
            run_id=ctx.run_id,
            step=qualname,
            step_type=step_type,
            index=index,
            model=model_of(rendered),
        )
    )
    meter = Meter(parent=CURRENT_METER.get() or ctx.run_meter)
    meter_token = CURRENT_METER.set(meter)
    name_token = CURRENT_STEP.set(qualname)
    try:
        if handler is None:
            raise StepError(qualname, f"unknown step type {step_type!r}")
        result = await handler(ctx, rendered, scope, qualname)
        if rendered.get("output_to_file"):
            run_setup.write_output(ctx.output_dir, str(rendered["output_to_file"]), result)
    except ObserverError:
        raise  # not the step's failure: the run stops here (nothing more is emitted for it)
    except ElexirionError as exc:
        return await _fail(ctx, scope, name, qualname, exc, started, meter)
    except TimeoutError:
        exc2 = StepError(qualname, "timed out")
        return await _fail(ctx, scope, name, qualname, exc2, started, meter)
    finally:
        CURRENT_METER.reset(meter_token)
        CURRENT_STEP.reset(name_token)

    scope.steps[name] = result
    await ctx.emit(
        StepFinished(
            run_id=ctx.run_id,
            step=qualname,
            status="succeeded",
            result=result,
            usage=meter.usage,
            cost=meter.cost,
            latency_ms=(time.perf_counter() - started) * 1000,
        )
    )
    ctx.finished[qualname] = result
    return result


def _replays(ctx: RunContext, step_type: str, qualname: str) -> bool:
    """Whether a step finished in an earlier attempt runs again instead of being reused.

    ``set_variable`` always does (it rebuilds the state; no provider call). A loop or nested
    pipeline does when its children were recorded: it is re-entered and they are reused.
    """
    if step_type in REPLAYED_TYPES:
        return True
    if step_type in CONTAINER_TYPES:
        children = (f"{qualname}[", f"{qualname}>")
        return any(key.startswith(children) for key in ctx.resumed)
    return False


async def _fail(
    ctx: RunContext,
    scope: Scope,
    name: str,
    qualname: str,
    exc: ElexirionError,
    started: float,
    meter: Meter,
) -> Any:
    message = exc.user_message
    if isinstance(exc, StepError) and exc.step == qualname:
        err = exc
    else:
        err = StepError(qualname, message)
    scope.steps[name] = {"success": False, "error": message}
    await ctx.emit(
        StepFinished(
            run_id=ctx.run_id,
            step=qualname,
            status="failed",
            result=scope.steps[name],
            error=err.user_message,
            usage=meter.usage,
            cost=meter.cost,
            latency_ms=(time.perf_counter() - started) * 1000,
        )
    )
    raise err from exc


# --- the run --------------------------------------------------------------------------------


async def run_pipeline(
    doc_or_workflow: PipelineDocument | Mapping[str, Any] | Path | str,
    *,
    inputs: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    provider_for: ProviderResolver | None = None,
    observers: Iterable[Observer] = (),
    workspace: Path | str | None = None,
    output_dir: Path | str | None = None,
    resume_results: Mapping[str, Any] | None = None,
    user_id: int | None = None,
    session_store: SessionStore | None = None,
    validate: bool = True,
) -> RunOutcome:
    """Validate and run a pipeline; never raises for a failing step (see ``RunOutcome``).

    Raises ``PipelineValidationError`` (before anything runs) when the document has errors,
    and ``InputError`` for missing required inputs. ``resume_results`` holds results of
    units finished by an earlier attempt of the same run, keyed by path (``step``,
    ``loop[2].inner``, ``nested>inner``): they are reused, never re-run (their provider calls
    are never repeated). An observer that raises fails the run (see ``RunContext.emit``).
    """
    doc = run_setup.as_document(doc_or_workflow)
    if validate:
        from elexirion_app.pipelines.validate import ensure_valid

        ensure_valid(doc)
    workflow = apply_defaults(doc.workflow)
    run_id = run_id or str(uuid.uuid4())
    values = run_setup.resolve_inputs(workflow, inputs or {})
    ctx = RunContext(
        run_id=run_id,
        workflow=workflow,
        workspace=run_setup.workspace_for(doc, workspace),
        output_dir=run_setup.output_dir_for(workflow, output_dir),
        base_dir=doc.base_dir,
        observers=tuple(observers),
        provider_for=provider_for or run_setup.default_provider_for,
        session_store=session_store,
        user_id=user_id,
        pipeline_stack=(doc.real_file or str(Path(doc.file).resolve()),)
        if doc.file.endswith((".yaml", ".yml"))
        else (),
        resumed=dict(resume_results or {}),
    )
    variables = workflow.get("variables")
    scope = Scope(
        inputs=values,
        global_vars=dict(workflow.get("global_vars") or {}),
        steps={},
        variables=dict(variables) if isinstance(variables, Mapping) else {},
        builtins=run_setup.builtins_for(run_id, workflow),
    )
    steps: list[dict[str, Any]] = list(workflow.get("steps") or [])
    checkpoints = CheckpointWriter.for_workflow(workflow, run_id)
    status, error = "succeeded", None
    done = 0
    try:
        await ctx.emit(
            RunStarted(
                run_id=run_id,
                pipeline=str(workflow.get("name", "")),
                inputs=dict(values),
                step_names=tuple(str(s.get("name")) for s in steps),
            )
        )
        for index, step in enumerate(steps):
            await run_step(ctx, step, scope, index)
            done = index + 1
            if checkpoints is not None:
                checkpoints.write(done, scope, ctx.finished)
    except ElexirionError as exc:
        status, error = "failed", exc.user_message
    except asyncio.CancelledError:
        await ctx.emit_final(
            RunFinished(
                run_id=run_id,
                status="interrupted",
                error="cancelled",
                usage=ctx.run_meter.usage,
                cost=ctx.run_meter.cost,
            )
        )
        raise
    except Exception as exc:  # a bug: never a traceback for the user, but logged
        log.exception("run %s crashed", run_id)
        status, error = "failed", f"internal error: {type(exc).__name__}"
    if ctx.failures:  # an observer failed, even if a step handler caught it on the way
        status, error = "failed", ctx.failures[0].user_message
    if checkpoints is not None:
        if status == "succeeded":
            checkpoints.clear()
        else:  # keep what finished inside the failed step (loop iterations, nested steps)
            checkpoints.write(done, scope, ctx.finished)
    finished = await ctx.emit_final(
        RunFinished(
            run_id=run_id,
            status=status,
            error=error,
            usage=ctx.run_meter.usage,
            cost=ctx.run_meter.cost,
        )
    )
    status, error = finished.status, finished.error
    return RunOutcome(
        run_id=run_id,
        status=status,
        error=error,
        steps=dict(scope.steps),
        usage=ctx.run_meter.usage,
        cost=ctx.run_meter.cost,
        pipeline=str(workflow.get("name", "")),
        output_dir=ctx.output_dir,
    )


__all__ = [
    "OptionalObserver",
    "PipelineError",
    "RunContext",
    "RunOutcome",
    "check_condition",
    "optional_observer",
    "render_step",
    "run_pipeline",
    "run_step",
]
