"""Read models of pipeline runs for the web pages and the API (ownership checked here)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from elexirion_app.core.errors import NotFound
from elexirion_app.core.money import usd
from elexirion_app.db.models import LLMCall, PipelineDoc, Run, StepRun


@dataclass(frozen=True)
class StepView:
    name: str
    step_type: str
    status: str
    model: str
    tokens: dict[str, int]
    cost_usd: str
    latency_ms: float
    error: str
    result_json: str
    text: str


@dataclass(frozen=True)
class RunView:
    id: str
    pipeline: str
    status: str
    error: str
    cost_usd: str
    tokens: dict[str, int]
    created_at: str
    duration_s: float | None
    llm_calls: int = 0
    failed_calls: int = 0
    steps: list[StepView] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)
    version: int | None = None  # the library version that ran (None: not from the library)


def _money(value: Decimal | None) -> str:
    return usd(value)


def _duration(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def _summary(run: Run) -> RunView:
    return RunView(
        id=run.id,
        pipeline=run.pipeline_name,
        status=run.status,
        error=run.error or "",
        cost_usd=_money(run.cost_usd),
        tokens=dict(run.tokens or {}),
        created_at=run.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        duration_s=_duration(run.started_at, run.finished_at),
        inputs=dict(run.inputs or {}),
        version=run.pipeline_version,
    )


def list_runs(session: Session, user_id: int, limit: int = 100) -> list[RunView]:
    rows = session.exec(
        select(Run).where(Run.user_id == user_id).order_by(col(Run.created_at).desc()).limit(limit)
    ).all()
    return [_summary(r) for r in rows]


def list_runs_of_pipeline(
    session: Session, user_id: int, name: str, limit: int = 50
) -> list[RunView]:
    """Runs of one of the user's library pipelines, newest first."""
    doc = session.exec(
        select(PipelineDoc).where(PipelineDoc.user_id == user_id, PipelineDoc.name == name)
    ).first()
    if doc is None:
        raise NotFound("no such pipeline")
    rows = session.exec(
        select(Run)
        .where(Run.user_id == user_id, Run.pipeline_id == doc.id)
        .order_by(col(Run.created_at).desc())
        .limit(limit)
    ).all()
    return [_summary(r) for r in rows]


def _text_of(result: Any) -> str:
    if isinstance(result, dict):
        for key in ("text", "content", "combined_results"):
            if isinstance(result.get(key), str):
                return str(result[key])
    return ""


_NESTED_MARK = re.compile(r"[\[>]")


def _steps_in_run_order(session: Session, run_id: str) -> list[StepRun]:
    """The run's steps as they ran: each top-level step (by position), then the steps nested
    in it (loop iterations ``loop[2].inner``, a sub-pipeline's ``nested>inner``) in the order
    they started, under their step instead of all before the first one (their rows have no
    position). A nested step whose container is not listed comes last."""
    rows = session.exec(
        select(StepRun)
        .where(StepRun.run_id == run_id)
        .order_by(col(StepRun.position), col(StepRun.id))
    ).all()
    top = [r for r in rows if r.position >= 0]
    inside: dict[str, list[StepRun]] = {}
    for r in rows:
        if r.position < 0:
            inside.setdefault(_NESTED_MARK.split(r.name, maxsplit=1)[0], []).append(r)
    ordered: list[StepRun] = []
    for r in top:
        ordered.append(r)
        ordered.extend(inside.pop(r.name, []))
    for rest in inside.values():
        ordered.extend(rest)
    return ordered


def get_run(session: Session, user_id: int, run_id: Any) -> RunView:
    if not isinstance(run_id, str) or not run_id or len(run_id) > 64:
        raise NotFound("This run does not exist.")
    run = session.get(Run, run_id)
    if run is None or run.user_id != user_id:
        raise NotFound("This run does not exist.")
    steps = _steps_in_run_order(session, run_id)
    calls = session.exec(select(LLMCall).where(LLMCall.run_id == run_id)).all()
    base = _summary(run)
    return RunView(
        **{
            **base.__dict__,
            "llm_calls": len(calls),
            "failed_calls": sum(1 for c in calls if c.status != "ok"),
            "steps": [
                StepView(
                    name=s.name,
                    step_type=s.step_type,
                    status=s.status,
                    model=s.model or "",
                    tokens=dict(s.tokens or {}),
                    cost_usd=_money(s.cost_usd),
                    latency_ms=round(s.latency_ms or 0.0, 1),
                    error=s.error or "",
                    result_json=json.dumps(s.result, indent=2, default=str)[:20000]
                    if s.result is not None
                    else "",
                    text=_text_of(s.result),
                )
                for s in steps
            ],
        }
    )


@dataclass(frozen=True)
class TraceItem:
    kind: str  # "step" | "call"
    label: str
    status: str
    start_ms: float
    duration_ms: float
    detail: str
    error: str = ""


@dataclass(frozen=True)
class TraceView:
    run: RunView
    total_ms: float
    items: list[TraceItem]


def trace(session: Session, user_id: int, run_id: Any) -> TraceView:
    """A run's steps and their LLM attempts (retries and failures included) on one timeline,
    in milliseconds from the run's start. An attempt's start is its recorded end minus its
    latency."""
    view = get_run(session, user_id, run_id)
    run = session.get(Run, run_id)
    assert run is not None
    steps = _steps_in_run_order(session, run_id)
    calls = session.exec(
        select(LLMCall).where(LLMCall.run_id == run_id).order_by(col(LLMCall.created_at))
    ).all()
    origin = run.started_at or run.created_at

    def ms(at: datetime | None) -> float:
        return max(0.0, (at - origin).total_seconds() * 1000) if at and origin else 0.0

    by_step: dict[str, list[LLMCall]] = {}
    for c in calls:
        by_step.setdefault(c.step_name or "", []).append(c)
    items: list[TraceItem] = []
    for s in steps:
        start = ms(s.started_at)
        end = ms(s.finished_at) if s.finished_at else start
        items.append(
            TraceItem(
                "step",
                s.name,
                s.status,
                start,
                max(0.0, end - start),
                f"{s.step_type or 'step'} · {s.model or '—'} · {_money(s.cost_usd)}",
                s.error or "",
            )
        )
        for c in by_step.pop(s.name, []):
            items.append(_call_item(c, ms(c.created_at)))
    for rest in by_step.values():  # attempts of nested steps (loop bodies, sub-pipelines)
        items.extend(_call_item(c, ms(c.created_at)) for c in rest)
    total = max([i.start_ms + i.duration_ms for i in items] + [ms(run.finished_at), 1.0])
    return TraceView(view, total, items)


def _call_item(c: LLMCall, end_ms: float) -> TraceItem:
    tokens = f"{c.input_tokens:,} in / {c.output_tokens:,} out"
    if c.cache_read_tokens or c.cache_write_tokens:
        tokens += f", cache {c.cache_read_tokens:,} read / {c.cache_write_tokens:,} write"
    if c.thinking_tokens:
        tokens += f", {c.thinking_tokens:,} thinking"
    return TraceItem(
        "call",
        f"{c.step_name or 'call'} · attempt {c.attempt}",
        c.status,
        max(0.0, end_ms - c.latency_ms),
        c.latency_ms,
        f"{c.provider}/{c.model} · {tokens} · {_money(c.cost_usd)} · {c.latency_ms:,.0f} ms",
        c.error or "",
    )
