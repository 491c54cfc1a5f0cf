"""``GET /metrics`` (Prometheus text format) and the ASGI middleware that counts requests.

Who may read it: ``Authorization: Bearer <ELEXIRION_METRICS_TOKEN>`` (a scraper's token,
compared in constant time; at least 16 characters, else it is not accepted) or an admin's API
key. No header or a bad one: 401; a member's key: 403 — the API's JSON errors. The route is
left out of the OpenAPI schema (its answer is plain text, not JSON).

The middleware wraps the API app, which wraps Reflex's backend: it sees every HTTP request
(labelled by the route template that answered, never the raw path) and every websocket
session (Reflex's ``/_event`` socket: counted when accepted and when closed). A 5xx answer is
logged as ``http_5xx``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from elexirion_app.api.http.deps import bearer, caller
from elexirion_app.api.http.errors import ApiError
from elexirion_app.config import get_settings
from elexirion_app.core import logs, metrics
from elexirion_app.db.engine import get_engine, in_db_thread
from elexirion_app.db.models import Run

log = logging.getLogger(__name__)
router = APIRouter(tags=["monitoring"])

TOKEN_ENV = "ELEXIRION_METRICS_TOKEN"
MIN_TOKEN_CHARS = 16
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def metrics_token() -> str | None:
    token = os.environ.get(TOKEN_ENV) or ""
    return token if len(token) >= MIN_TOKEN_CHARS else None


async def metrics_reader(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> str:
    """``token`` or ``admin <id>``; else 401 (no or a bad credential) / 403 (not an admin)."""
    token = metrics_token()
    if (
        token is not None
        and credentials is not None
        and credentials.scheme.lower() == "bearer"
        and hmac.compare_digest(credentials.credentials.encode(), token.encode())
    ):
        return "token"
    who = await caller(request, credentials)  # 401 / 429 as every API route
    if not who.user.is_admin:
        raise ApiError(
            403,
            "forbidden",
            f"Only an admin's API key or the metrics token ({TOKEN_ENV}) may read /metrics.",
        )
    return f"admin {who.id}"


def run_counts() -> dict[str, int] | None:
    """Runs by status among queued and running (an indexed count); None: no database."""
    table = Run.__table__  # type: ignore[attr-defined]
    try:
        with get_engine().connect() as conn:
            rows = conn.execute(
                select(table.c.status, func.count())
                .where(table.c.status.in_(("queued", "running")))
                .group_by(table.c.status)
            ).all()
    except SQLAlchemyError as exc:
        log.warning(
            "metrics: the database did not answer (%s)",
            type(exc).__name__,
            extra={"event": "metrics_db_down"},
        )
        return None
    return {str(status): int(count) for status, count in rows}


@router.get("/metrics", include_in_schema=False)
async def get_metrics(_reader: str = Depends(metrics_reader)) -> Response:
    body, content_type = await in_db_thread(metrics.render, [metrics.RunsCollector(run_counts)])
    return Response(body, media_type=content_type)


# --- the middleware -----------------------------------------------------------------------


def route_label(scope: Scope) -> str:
    """The template of the route that answered (``/api/runs/{run_id}``), never a raw path."""
    route = scope.get("route")
    if route is None:
        return "unmatched"
    path = str(getattr(route, "path", "") or "")
    if not hasattr(route, "endpoint"):
        return f"{path}/*" if path else "frontend"  # a mount: Reflex's socket, the pages
    return path or "/"


class MetricsMiddleware:
    """Counts and times HTTP requests and websocket sessions (pure ASGI)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "http":
            await self._http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 0))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except asyncio.CancelledError:
            status = status or 499  # the client went away before an answer
            raise
        except Exception:
            status = status if status >= 500 else 500
            raise
        finally:
            seconds = time.perf_counter() - started
            method = str(scope.get("method", "")).upper()
            route = route_label(scope)
            metrics.observe_http(route, method if method in METHODS else "OTHER", status, seconds)
            if status >= 500:
                log.error(
                    "HTTP %s %s answered %s",
                    method,
                    route,
                    status,
                    extra={
                        "event": "http_5xx",
                        "route": route,
                        "method": method,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                    },
                )

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        accepted = False

        async def sending(message: Message) -> None:
            nonlocal accepted
            if message.get("type") == "websocket.accept" and not accepted:
                accepted = True
                metrics.websocket_opened()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if accepted:
                metrics.websocket_closed()


def setup_server(env: MutableMapping[str, str] | None = None) -> None:
    """At the served app's start (the reflex CLI runs it; not when a test builds the API):
    the logs, and multiprocess metrics when several workers serve (Redis, GRANIAN_WORKERS)."""
    env = os.environ if env is None else env
    if env.get("REFLEX_MANAGED_LOGGING") != "true":
        return
    logs.configure(env=env)
    settings = get_settings()
    workers = int(env.get("GRANIAN_WORKERS") or 0)
    several = workers > 1 or (workers == 0 and bool(settings.redis_url))
    folder = metrics.prepare_multiprocess(settings.data_dir, several, env)
    if env.get(TOKEN_ENV) and metrics_token() is None:
        log.warning(
            "%s is shorter than %d characters: it is not accepted", TOKEN_ENV, MIN_TOKEN_CHARS
        )
    log.info(
        "metrics: %s",
        f"several workers, shared folder {folder}" if folder else "one process",
        extra={"event": "metrics_ready"},
    )
