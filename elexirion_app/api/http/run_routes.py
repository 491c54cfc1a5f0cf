"""Runs: start one (``POST /api/pipeline/execute``), read it, follow its events, cancel it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Path
from sse_starlette import EventSourceResponse, ServerSentEvent

from elexirion_app.api.http import streams
from elexirion_app.api.http.deps import Caller, caller
from elexirion_app.api.http.responses import errors, sse
from elexirion_app.api.http.schemas import (
    CancelResponse,
    ExecuteRequest,
    ExecuteResponse,
    RunOut,
    StepOut,
)
from elexirion_app.db.engine import in_db_thread, session_scope
from elexirion_app.services.billing import meter
from elexirion_app.services.runs import jobs, live, runs

router = APIRouter(prefix="/api", tags=["runs"])
RunId = Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")
POLL_S = 1.0  # a run of another worker is followed through the database this often


@router.post(
    "/pipeline/execute",
    response_model=ExecuteResponse,
    status_code=202,
    summary="Start a run of a pipeline (by name, or YAML text); returns its id at once",
    operation_id="execute_pipeline",
    responses={
        202: {
            "links": {
                name: {"operationId": op, "parameters": {"run_id": "$response.body#/run_id"}}
                for name, op in (
                    ("GetRun", "get_run"),
                    ("RunEvents", "run_events"),
                    ("CancelRun", "cancel_run"),
                )
            }
        },
        **errors(400, 402, 404, 409),
    },
)
async def execute(body: ExecuteRequest, who: Caller = Depends(caller)) -> ExecuteResponse:
    await meter.precheck(who.id, None)  # 402 with the numbers once a cap is used up
    run_id = await jobs.start(who.id, body.pipeline, body.inputs)
    return ExecuteResponse(run_id=run_id, status="queued", events_url=f"/api/runs/{run_id}/events")


def _get(user_id: int, run_id: str) -> runs.RunView:
    with session_scope() as session:
        return runs.get_run(session, user_id, run_id)


@router.get(
    "/runs/{run_id}",
    response_model=RunOut,
    summary="A run: status, step results, tokens and cost",
    operation_id="get_run",
    responses=errors(404),
)
async def get_run(run_id: str = RunId, who: Caller = Depends(caller)) -> RunOut:
    view = await in_db_thread(_get, who.id, run_id)
    return RunOut(
        id=view.id,
        pipeline=view.pipeline,
        status=view.status,
        error=view.error,
        cost_usd=view.cost_usd,
        tokens=view.tokens,
        created_at=view.created_at,
        duration_s=view.duration_s,
        llm_calls=view.llm_calls,
        failed_calls=view.failed_calls,
        version=view.version,
        inputs=view.inputs,
        steps=[
            StepOut(
                name=s.name,
                type=s.step_type,
                status=s.status,
                model=s.model,
                tokens=s.tokens,
                cost_usd=s.cost_usd,
                latency_ms=s.latency_ms,
                error=s.error,
                text=s.text,
            )
            for s in view.steps
        ],
    )


def _event(kind: str, data: Any) -> ServerSentEvent:
    return ServerSentEvent(event=kind, data=json.dumps(data, default=str))


def _changes(
    state: live.RunState, seen: dict[str, live.StepState], status: str
) -> list[ServerSentEvent]:
    """The events that bring a client that saw ``seen`` and ``status`` to ``state``."""
    events = []
    for step in state.steps:
        if seen.get(step.name) != step:
            seen[step.name] = step
            events.append(_event("step", live.step_fields(step)))
    if state.status != status:
        events.append(
            _event(
                "run",
                {
                    "status": state.status,
                    "error": state.error,
                    "cost_usd": state.cost_usd,
                    "tokens": state.tokens,
                },
            )
        )
    if state.finished:
        events.append(_event("end", {"status": state.status}))
    return events


async def _follow(user_id: int, run_id: str, first: live.RunState) -> AsyncIterator[bytes]:
    """Every step's state now (the replay), then each change until the run ends. The events
    of one change go out in one write (the same bytes as one write each: fewer trips through
    the middleware stack and the server)."""
    seen: dict[str, live.StepState] = {}
    status = ""
    state = first
    async with live.watch(run_id) as changed:
        if not first.finished and not live.is_local(run_id):
            # Another worker's run: a change published before the subscription above was
            # missed; read it again now that none can be (else a wait of POLL_S).
            state = await jobs.current(user_id, run_id)
        while True:
            events = _changes(state, seen, status)
            status = state.status
            if events:
                yield b"".join(e.encode() for e in events)
            if state.finished:
                return
            await changed(POLL_S)
            # No database read while it runs here, nor for a change another worker sent
            state = changed.state or await jobs.current(user_id, run_id)


@router.get(
    "/runs/{run_id}/events",
    summary="A run's events as Server-Sent Events: what happened so far, then what happens",
    responses={**sse("step", "run", "end"), **errors(404)},
    response_class=EventSourceResponse,
    operation_id="run_events",
)
async def run_events(run_id: str = RunId, who: Caller = Depends(caller)) -> EventSourceResponse:
    slot = streams.take(who.id)  # 429 past the open streams one account may hold
    try:
        first = await jobs.current(who.id, run_id)  # NotFound before streaming
    except BaseException:
        slot.release()
        raise
    return streams.respond(
        slot, _follow(who.id, run_id, first), ping=15, headers={"Cache-Control": "no-store"}
    )


@router.post(
    "/runs/{run_id}/cancel",
    response_model=CancelResponse,
    summary="Cancel a run that is going (a finished run is left as it is)",
    operation_id="cancel_run",
    responses=errors(404, 409),
)
async def cancel_run(run_id: str = RunId, who: Caller = Depends(caller)) -> CancelResponse:
    status = await jobs.cancel(who.id, run_id)
    return CancelResponse(run_id=run_id, status=status)
