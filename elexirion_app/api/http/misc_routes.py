"""Usage totals of the caller, and the health check."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import text
from starlette.responses import JSONResponse

from elexirion_app.api.http.deps import Caller, caller
from elexirion_app.api.http.responses import errors
from elexirion_app.api.http.schemas import HealthOut, UsageGroup, UsageOut
from elexirion_app.config import get_settings
from elexirion_app.db.engine import get_engine, in_db_thread, session_scope
from elexirion_app.services.billing import usage as usage_service

router = APIRouter(tags=["usage"])

Group = Literal["day", "model", "provider", "pipeline", "status"]


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _usage(
    user_id: int, since: datetime | None, until: datetime | None, group_by: str | None
) -> usage_service.Usage:
    since, until = usage_service.check_range(since, until, datetime.now(UTC))
    with session_scope() as session:
        return usage_service.usage(session, user_id, since, until, group_by)


@router.get(
    "/api/usage",
    response_model=UsageOut,
    summary="Your calls, tokens by type and cost over a time range (default: 30 days)",
    responses=errors(400),
)
async def get_usage(
    since: datetime | None = Query(default=None, alias="from"),
    until: datetime | None = Query(default=None, alias="to"),
    group_by: Group | None = Query(default=None),
    who: Caller = Depends(caller),
) -> UsageOut:
    result = await in_db_thread(_usage, who.id, _aware(since), _aware(until), group_by)
    return UsageOut(
        since=result.since.isoformat(),
        until=result.until.isoformat(),
        calls=result.calls,
        errors=result.errors,
        cost_usd=f"{result.cost_usd:.6f}",
        tokens=result.tokens,
        group_by=group_by,
        groups=[
            UsageGroup(
                key=g.key,
                calls=g.calls,
                errors=g.errors,
                cost_usd=f"{g.cost_usd:.6f}",
                tokens=g.tokens,
            )
            for g in result.groups
        ],
    )


def _db_ok() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))


async def _redis_state() -> str:
    url = get_settings().redis_url
    if not url:
        return "not configured"
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()  # type: ignore[misc]
        return "ok"
    except (OSError, aioredis.RedisError) as exc:
        return f"down: {type(exc).__name__}"
    finally:
        await client.aclose()


HEALTH_TTL_S = 2.0  # one probe of the database and Redis per this long, whatever the traffic
_health: dict[tuple[str, str | None], tuple[float, HealthOut]] = {}
_probing: dict[tuple[str, str | None], asyncio.Lock] = {}


async def _probe() -> HealthOut:
    try:
        await in_db_thread(_db_ok)
        db = "ok"
    except Exception as exc:  # reported as the answer, not swallowed
        db = f"down: {type(exc).__name__}"
    redis_state = await _redis_state()
    ok = db == "ok" and redis_state in ("ok", "not configured")
    return HealthOut(status="ok" if ok else "degraded", db=db, redis=redis_state)


async def health() -> HealthOut:
    """The health of this worker's database and Redis, probed at most every ``HEALTH_TTL_S``:
    ``/healthz`` is public, and each probe costs a database round trip and a Redis connection;
    concurrent callers wait for the one probe in flight."""
    settings = get_settings()
    key = (settings.database_url, settings.redis_url)
    cached = _health.get(key)
    if cached is not None and time.monotonic() - cached[0] < HEALTH_TTL_S:
        return cached[1]
    lock = _probing.setdefault(key, asyncio.Lock())
    async with lock:
        cached = _health.get(key)
        if cached is not None and time.monotonic() - cached[0] < HEALTH_TTL_S:
            return cached[1]
        body = await _probe()
        _health[key] = (time.monotonic(), body)
        return body


@router.get(
    "/healthz",
    response_model=HealthOut,
    summary="Liveness and readiness: the database and Redis answer",
    responses={503: {"model": HealthOut, "description": "A dependency is down"}},
)
async def healthz() -> JSONResponse:
    body = await health()
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)
