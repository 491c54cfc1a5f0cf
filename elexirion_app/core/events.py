"""The engine's lifecycle event stream (Hamilton-style hooks).

The executor emits these; observers (run-record persistence, cost ledger, chat progress,
CLI progress, metrics) subscribe. Observers never change execution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from elexirion_app.core.types import StreamEvent, Usage


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    pipeline: str
    inputs: dict[str, Any] = field(default_factory=dict)
    step_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepStarted:
    run_id: str
    step: str
    step_type: str
    index: int
    model: str | None = None


@dataclass(frozen=True)
class StepDelta:
    """A streamed provider event inside a step (text deltas, usage, tool calls)."""

    run_id: str
    step: str
    event: StreamEvent


@dataclass(frozen=True)
class LLMCallFinished:
    """One provider attempt (failed attempts too): one LLM-call record each."""

    run_id: str
    step: str
    model: str
    provider: str
    usage: Usage
    cost: Decimal
    latency_ms: float
    attempt: int = 1
    status: str = "ok"  # "ok" | "error"
    error: str | None = None


@dataclass(frozen=True)
class StepFinished:
    run_id: str
    step: str
    status: str  # "succeeded" | "failed" | "skipped"
    result: Any = None
    error: str | None = None
    usage: Usage = Usage()
    cost: Decimal = Decimal("0")
    latency_ms: float = 0.0


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    status: str  # "succeeded" | "failed" | "interrupted"
    error: str | None = None
    usage: Usage = Usage()
    cost: Decimal = Decimal("0")


RunEvent = RunStarted | StepStarted | StepDelta | LLMCallFinished | StepFinished | RunFinished


class Observer(Protocol):
    """Receives every run event. May be sync or async (return an awaitable)."""

    def __call__(self, event: RunEvent) -> Any: ...
