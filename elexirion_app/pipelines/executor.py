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
import contextvars
import datetime as _dt
import inspect
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from elexirion_app.core import logs
from elexirion_app.core.errors import (
    ElexirionError,
    InputError,
    ObserverError,
    PipelineError,
    StepError,
)
from elexirion_app.core.events import (
    RunEvent,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from elexirion_app.core.paths import resolve_in_workspace
from elexirion_app.core.types import Usage
from elexirion_app.pipelines import conditions, templating
from elexirion_app.pipelines.checkpoints import CheckpointWriter
from elexirion_app.pipelines.defaults import apply_defaults, declared_inputs
from elexirion_app.pipelines.loader import PipelineDocument
from elexirion_app.pipelines.scope import Scope
from elexirion_app.providers.base import Provider

log = logging.getLogger(__name__)

ProviderResolver = Callable[[str], Provider]
SessionStore = Callable[[str], "str | Awaitable[str]"]
Observer = Callable[[RunEvent], Any]

# Keys whose strings are rendered later (per iteration / in the child pipeline), not up front.
# Conditions are evaluated raw by ``conditions.evaluate`` (it evaluates their ``{{ }}`` parts).
ALWAYS_DEFERRED = frozenset({"condition"})
DEFERRED_KEYS: dict[str, frozenset[str]] = {
    "for_loop": ALWAYS_DEFERRED | {"steps", "break_condition", "continue_condition"},
    "while_loop": ALWAYS_DEFERRED | {"steps", "break_condition", "continue_condition"},
    "pipeline": ALWAYS_DEFERRED | {"pipeline"},
}
DEFAULT_MAX_DEPTH = 10
DEFAULT_MAX_TOTAL_STEPS = 10_000
# Steps whose children are resumable units: on resume they are re-entered, not reused whole.
CONTAINER_TYPES = frozenset({"for_loop", "while_loop", "pipeline"})
# Steps whose effect is on the run's state, not their result: replayed on resume (no provider).
REPLAYED_TYPES = frozenset({"set_variable"})


def observer_name(observer: Any) -> str:
    """A readable name for an observer (its class, or the function's qualified name)."""
    inner = getattr(observer, "observer", None)
    if isinstance(observer, OptionalObserver) and inner is not None:
        return f"optional {observer_name(inner)}"
    if inspect.isfunction(observer) or inspect.ismethod(observer):
        return str(getattr(observer, "__qualname__", repr(observer)))
    return type(observer).__name__


def _event_label(event: RunEvent) -> str:
    step = getattr(event, "step", None)
    return f"{type(event).__name__}({step})" if step else type(event).__name__


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    line = line if len(line) <= limit else line[: limit - 1] + "…"
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


@dataclass(frozen=True)
class OptionalObserver:
    """An observer whose failures are logged (with traceback) and do not fail the run.

    Only for observers nothing depends on, such as a live progress feed to a page: the run
    recorder, the cost ledger and anything written ahead must stay plain observers.
    """

    observer: Observer

    async def __call__(self, event: RunEvent) -> None:
        try:
            maybe = self.observer(event)
            if inspect.isawaitable(maybe):
                await maybe
        except Exception:
            log.warning(
                "optional observer %s failed on %s (the run goes on)",
                observer_name(self.observer),
                _event_label(event),
                exc_info=True,
            )


def optional_observer(observer: Observer) -> OptionalObserver:
    """Mark ``observer`` as optional: its exceptions are logged instead of failing the run."""
    return OptionalObserver(observer)


@dataclass(frozen=True)
class RunOutcome:
    """What a run produced. ``steps`` maps top-level step names to their results."""

    run_id: str
    status: str  # "succeeded" | "failed"
    error: str | None
    steps: dict[str, Any]
    usage: Usage = Usage()
    cost: Decimal = Decimal("0")
    pipeline: str = ""
    output_dir: Path | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--json`` object."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "error": self.error,
            "steps": self.steps,
            "cost_usd": float(self.cost),
            "tokens": self.usage.to_dict(),
        }


@dataclass
class Meter:
    """Usage and cost of one step (and, through ``parent``, of its enclosing steps)."""

    usage: Usage = Usage()
    cost: Decimal = Decimal("0")
    parent: Meter | None = None

    def add(self, usage: Usage, cost: Decimal) -> None:
        meter: Meter | None = self
        while meter is not None:
            meter.usage = meter.usage + usage
            meter.cost += cost
            meter = meter.parent


_CURRENT_METER: contextvars.ContextVar[Meter | None] = contextvars.ContextVar(
    "elexirion_step_meter", default=None
)
_CURRENT_STEP: contextvars.ContextVar[str] = contextvars.ContextVar(
    "elexirion_step_name", default=""
)


@dataclass
class RunContext:
    """Mutable state of one run, shared by the whole tree of (nested) steps."""

    run_id: str
    workflow: dict[str, Any]
    workspace: Path
    output_dir: Path
    base_dir: Path
    observers: tuple[Observer, ...]
    provider_for: ProviderResolver
    session_store: SessionStore | None = None
    user_id: int | None = None
    depth: int = 0
    pipeline_stack: tuple[str, ...] = ()
    max_total_steps: int = DEFAULT_MAX_TOTAL_STEPS
    step_count: list[int] = field(default_factory=lambda: [0])
    run_meter: Meter = field(default_factory=Meter)
    sessions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    providers: dict[str, Provider] = field(default_factory=dict)
    provider_calls: list[int] = field(default_factory=lambda: [0])
    # Resume: results of finished units by path (``a``, ``loop[2].b``, ``nested>c``).
    resumed: dict[str, Any] = field(default_factory=dict)
    # Every unit finished (or reused) in this attempt, by path: what a checkpoint stores.
    finished: dict[str, Any] = field(default_factory=dict)
    # Observer failures (shared by nested contexts): the first one fails the run.
    failures: list[ObserverError] = field(default_factory=list)

    # --- events ------------------------------------------------------------------------

    async def emit(self, event: RunEvent) -> None:
        """Deliver ``event`` to every observer in order; raise ``ObserverError`` if one fails.

        Once an observer has failed, the run is doomed: every later emit raises the first
        failure again (so a step nested in a handler that catches errors cannot go on).
        """
        if self.failures:
            raise self.failures[0]
        logs.run_event(event)  # run started, step finished (a JSON line in prod)
        for observer in self.observers:
            await self._deliver(observer, event)

    async def emit_final(self, event: RunFinished) -> RunFinished:
        """Deliver the last event to every observer even if some fail (each failure logged).

        When an observer fails on a successful finish, the observers after it receive the
        failed version instead; returns the event as finally reported.
        """
        for observer in self.observers:
            try:
                await self._deliver(observer, event)
            except ObserverError as exc:
                if event.status == "succeeded":
                    event = RunFinished(
                        run_id=event.run_id,
                        status="failed",
                        error=exc.user_message,
                        usage=event.usage,
                        cost=event.cost,
                    )
        logs.run_event(event)
        return event

    async def _deliver(self, observer: Observer, event: RunEvent) -> None:
        try:
            maybe = observer(event)
            if inspect.isawaitable(maybe):
                await maybe
        except Exception as exc:
            err = ObserverError(observer_name(observer), _event_label(event), _first_line(exc))
            log.error("run %s: %s", self.run_id, err.message, exc_info=exc)
            self.failures.append(err)
            raise err from exc

    # --- providers / metering ----------------------------------------------------------

    def provider(self, kind: str) -> Provider:
        prov = self.providers.get(kind)
        if prov is None:
            prov = self.provider_for(kind)
            self.providers[kind] = prov
        return prov

    def add_usage(self, usage: Usage, cost: Decimal) -> None:
        meter = _CURRENT_METER.get()
        if meter is not None:
            meter.add(usage, cost)
        else:
            self.run_meter.add(usage, cost)

    @property
    def current_step(self) -> str:
        return _CURRENT_STEP.get()

    # --- running steps -----------------------------------------------------------------

    def child(self, **changes: Any) -> RunContext:
        """A context for a nested pipeline (shares counters, observers and providers)."""
        data = dict(self.__dict__)
        data.update(changes)
        return RunContext(**data)

    async def run_steps(
        self, steps: Sequence[Mapping[str, Any]], scope: Scope, prefix: str = ""
    ) -> dict[str, Any]:
        """Run a nested list of steps in ``scope``; raise ``StepError`` on the first failure."""
        results: dict[str, Any] = {}
        for index, step in enumerate(steps):
            results[str(step.get("name"))] = await run_step(self, step, scope, index, prefix)
        return results


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
    meter = Meter(parent=_CURRENT_METER.get() or ctx.run_meter)
    meter_token = _CURRENT_METER.set(meter)
    name_token = _CURRENT_STEP.set(qualname)
    try:
        if handler is None:
            raise StepError(qualname, f"unknown step type {step_type!r}")
        result = await handler(ctx, rendered, scope, qualname)
        if rendered.get("output_to_file"):
            write_output(ctx.output_dir, str(rendered["output_to_file"]), result)
    except ObserverError:
        raise  # not the step's failure: the run stops here (nothing more is emitted for it)
    except ElexirionError as exc:
        return await _fail(ctx, scope, name, qualname, exc, started, meter)
    except TimeoutError:
        exc2 = StepError(qualname, "timed out")
        return await _fail(ctx, scope, name, qualname, exc2, started, meter)
    finally:
        _CURRENT_METER.reset(meter_token)
        _CURRENT_STEP.reset(name_token)

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


def write_output(output_dir: Path, filename: str, result: Any) -> Path:
    """``output_to_file``: strings raw, anything else pretty JSON, confined to ``output_dir``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    target = resolve_in_workspace(output_dir, filename.strip())
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(result, str):
        target.write_text(result, encoding="utf-8")
    else:
        target.write_text(
            json.dumps(result, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
        )
    return target


# --- the run --------------------------------------------------------------------------------


def _as_document(doc_or_workflow: Any) -> PipelineDocument:
    from elexirion_app.pipelines import loader

    if isinstance(doc_or_workflow, PipelineDocument):
        return doc_or_workflow
    if isinstance(doc_or_workflow, str | Path):
        return loader.load_file(Path(doc_or_workflow))
    if isinstance(doc_or_workflow, Mapping):
        data = dict(doc_or_workflow)
        if isinstance(data.get("workflow"), Mapping):
            data = dict(data["workflow"])
        return PipelineDocument(workflow=data, file="<inline>", base_dir=Path.cwd())
    raise InputError(f"cannot run a {type(doc_or_workflow).__name__} as a pipeline")


def resolve_inputs(workflow: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Declared ``inputs:`` give defaults and required checks; undeclared inputs pass through."""
    values = dict(given)
    missing = []
    for spec in declared_inputs(workflow):
        name = spec["name"]
        if name in values and values[name] not in (None, ""):
            continue
        if "default" in spec:
            values[name] = spec["default"]
        elif spec.get("required"):
            missing.append(name)
    if missing:
        raise InputError(
            f"missing required input(s): {', '.join(missing)} (pass --input NAME=VALUE)"
        )
    return values


def _workspace_for(doc: PipelineDocument, workspace: Path | str | None) -> Path:
    if workspace is not None:
        root = Path(workspace).resolve()
    else:
        sub = str(doc.workflow.get("workspace_dir") or "./workspace")
        root = resolve_in_workspace(doc.base_dir, sub)
    root.mkdir(parents=True, exist_ok=True)
    return root


def _output_dir_for(workflow: Mapping[str, Any], output_dir: Path | str | None) -> Path:
    if output_dir is not None:
        return Path(output_dir).resolve()
    defaults = workflow.get("defaults") or {}
    configured = defaults.get("output_dir") if isinstance(defaults, Mapping) else None
    return (Path.cwd() / str(configured or "outputs")).resolve()


def builtins_for(run_id: str, workflow: Mapping[str, Any]) -> dict[str, Any]:
    now = _dt.datetime.now(_dt.UTC)
    return {
        "timestamp": now.strftime("%Y%m%d_%H%M%S"),
        "date": now.date().isoformat(),
        "execution_id": run_id,
        "workflow": {
            "name": workflow.get("name", ""),
            "description": workflow.get("description", ""),
            "version": workflow.get("version", ""),
        },
    }


def _default_provider_for(kind: str) -> Provider:
    from elexirion_app.providers.registry import get_provider

    return get_provider(kind)


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
    doc = _as_document(doc_or_workflow)
    if validate:
        from elexirion_app.pipelines.validate import ensure_valid

        ensure_valid(doc)
    workflow = apply_defaults(doc.workflow)
    run_id = run_id or str(uuid.uuid4())
    values = resolve_inputs(workflow, inputs or {})
    ctx = RunContext(
        run_id=run_id,
        workflow=workflow,
        workspace=_workspace_for(doc, workspace),
        output_dir=_output_dir_for(workflow, output_dir),
        base_dir=doc.base_dir,
        observers=tuple(observers),
        provider_for=provider_for or _default_provider_for,
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
        builtins=builtins_for(run_id, workflow),
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
    "write_output",
]
