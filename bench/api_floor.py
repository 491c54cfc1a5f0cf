"""The floor of bench/api.py: the same two HTTP requests per run, served by the same stack
(granian, FastAPI, sse-starlette, the same worker count), doing no work at all.

``POST /api/pipeline/execute`` checks the Bearer header against the bench's keys, reads the
JSON body and answers a new run id; ``GET /api/runs/{id}/events`` checks the header and
streams what a finished 3-step run sends (a ``step`` event per step, a ``run`` event, the
``end`` event), one write per step as the app does. No database, no engine, no model, no
state between requests (so any worker can answer either request). Whatever the app's runs
cost beyond this is ours; the single-client vs 60-concurrent ratio of this floor is what the
machine, the server and the client give before any of our code runs.

    granian --interface asgi --workers N --port P bench.api_floor:app   (bench/api.py does it)

Keys come from ``ELEXIRION_FLOOR_KEYS`` (comma-separated).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI, Header, HTTPException, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

app = FastAPI()
_KEYS = frozenset(k for k in os.environ.get("ELEXIRION_FLOOR_KEYS", "").split(",") if k)
_IDS = itertools.count(1)
_STEPS = ("one", "two", "three")


@app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}


def _check(authorization: str | None) -> None:
    if not authorization or authorization.removeprefix("Bearer ") not in _KEYS:
        raise HTTPException(status_code=401, detail="unknown key")


@app.post("/api/pipeline/execute")
async def execute(request: Request, authorization: str | None = Header(None)) -> dict[str, str]:
    _check(authorization)
    body = await request.json()
    if not isinstance(body.get("pipeline"), str):
        raise HTTPException(status_code=422, detail="pipeline missing")
    return {"run_id": f"{os.getpid()}-{next(_IDS)}"}


async def _events(run_id: str) -> AsyncIterator[bytes]:
    for name in _STEPS:
        step = {"name": name, "status": "succeeded", "text": f"Echo: {name}", "run_id": run_id}
        yield ServerSentEvent(event="step", data=json.dumps(step)).encode()
        await asyncio.sleep(0)
    run: dict[str, object] = {"status": "succeeded", "error": None, "cost_usd": 0.0, "tokens": {}}
    yield (
        ServerSentEvent(event="run", data=json.dumps(run)).encode()
        + ServerSentEvent(event="end", data=json.dumps({"status": "succeeded"})).encode()
    )


@app.get("/api/runs/{run_id}/events")
async def events(run_id: str, authorization: str | None = Header(None)) -> EventSourceResponse:
    _check(authorization)
    return EventSourceResponse(_events(run_id), ping=15, headers={"Cache-Control": "no-store"})
