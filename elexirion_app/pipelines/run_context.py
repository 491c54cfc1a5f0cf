"""One run's shared state (``RunContext``), its observers and what it produces.

``RunContext`` is what every step handler receives: the run's paths, providers, counters,
meters and observers; ``emit`` delivers events to the observers in order (an observer that
raises fails the run: ``ObserverError``), ``emit_final`` delivers the last one to all of them.
``OptionalObserver`` marks an observer whose failures are only logged. ``Meter`` sums a step's
usage and cost into its enclosing steps; ``CURRENT_METER`` / ``CURRENT_STEP`` say which step
runs in this task. ``RunOutcome`` is what ``executor.run_pipeline`` returns.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from elexirion_app.core import logs
from elexirion_app.core.errors import ObserverError
from elexirion_app.core.events import RunEvent, RunFinished
from elexirion_app.core.types import Usage
from elexirion_app.pipelines.scope import Scope
from elexirion_app.providers.base import Provider

log = logging.getLogger(__name__)

ProviderResolver = Callable[[str], Provider]
SessionStore = Callable[[str], "str | Awaitable[str]"]
Observer = Callable[[RunEvent], Any]

DEFAULT_MAX_TOTAL_STEPS = 10_000


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


CURRENT_METER: contextvars.ContextVar[Meter | None] = contextvars.ContextVar(
    "elexirion_step_meter", default=None
)
CURRENT_STEP: contextvars.ContextVar[str] = contextvars.ContextVar(
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
        meter = CURRENT_METER.get()
        if meter is not None:
            meter.add(usage, cost)
        else:
            self.run_meter.add(usage, cost)

    @property
    def current_step(self) -> str:
        return CURRENT_STEP.get()

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
        from elexirion_app.pipelines.executor import run_step  # executor imports this module

        results: dict[str, Any] = {}
        for index, step in enumerate(steps):
            results[str(step.get("name"))] = await run_step(self, step, scope, index, prefix)
        return results
