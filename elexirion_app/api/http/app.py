"""The FastAPI app of ``/api/*`` and ``/healthz`` (mounted by Reflex's ``api_transformer``:
what it does not route falls through to Reflex)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.routing import Route

from elexirion_app.api.http import (
    chat_routes,
    docs,
    errors,
    metrics_routes,
    misc_routes,
    pipeline_routes,
    run_routes,
)
from elexirion_app.api.http.errors import ApiError
from elexirion_app.api.upload_guard import drain_body

MAX_BODY_BYTES = 2 * 1024 * 1024
DESCRIPTION = """Everything the chat and the editor do, for scripts.

Authenticate with an API key from **Settings**: `Authorization: Bearer elx_…`. A key carries its
owner's rights only. Errors are JSON `{"error": {"code", "message"}}`; `429` answers carry
`Retry-After`."""


class _BodyCap:
    """Refuse ``/api`` request bodies over ``MAX_BODY_BYTES`` while they stream (413)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or not str(scope.get("path", "")).startswith("/api/"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers") or []:
            if name == b"content-length" and (not value.isdigit() or int(value) > MAX_BODY_BYTES):
                raise_413 = True
                break
        else:
            raise_413 = False
        if raise_413:
            from starlette.responses import JSONResponse

            response = JSONResponse(
                errors.error_body(
                    "too_large", f"A request body is at most {MAX_BODY_BYTES:,} bytes."
                ),
                status_code=413,
            )
            await drain_body(receive, Headers(scope=scope))  # no reset instead of the 413
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message: dict[str, Any] = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY_BYTES:
                    if message.get("more_body", False):
                        await drain_body(receive, Headers(scope=scope))
                    # Starlette's HTTPException: FastAPI re-raises it from a body read (any
                    # other error there became its 400 "error parsing the body"); the
                    # handler in errors.py answers {error: {code: too_large, ...}}.
                    raise HTTPException(413, f"A request body is at most {MAX_BODY_BYTES:,} bytes.")
            return message

        await self.app(scope, counted, send)


def unroutable_api_paths(app: Any) -> Any:
    """Answer ``/api`` paths that no Starlette mount can route with our JSON 404.

    Reflex mounts everything under ``Mount("")``, whose pattern ``^/(?P<path>.*)$`` does not
    match a path holding a (percent-decoded) newline, so such a request never reaches the API
    and Starlette's plain-text ``Not Found`` came back instead of ``{error: ...}`` (found by
    schemathesis on ``GET /api/pipelines/{name}``). This wraps the whole backend app."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = str(scope.get("path", ""))
        if scope.get("type") == "http" and "\n" in path and path.startswith("/api/"):
            from starlette.responses import JSONResponse

            response = JSONResponse(
                errors.error_body("not_found", "No such API route."), status_code=404
            )
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    return wrapped


def api_first(backend: Any, api: Any, set_contexts: Callable[[], object]) -> Any:
    """Hand ``/api/*`` requests straight to ``api`` (the FastAPI app ``build`` made), in front
    of ``backend`` (Reflex's whole stack, in which ``api`` is mounted too).

    Through Reflex's stack an API request crossed its outer Starlette app (error, CORS and
    context middlewares, a router and a ``Mount``), the security headers a second time and the
    upload guard before it reached ``api``: ~10 ASGI layers per request and per sent message
    that change nothing for ``/api`` (``api`` has its own error handling and the same CORS
    middleware; the headers are added outside this). ``set_contexts`` is what Reflex's
    context middleware did for the request."""

    async def routed(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and str(scope.get("path", "")).startswith("/api/"):
            set_contexts()
            await api(scope, receive, send)
            return
        await backend(scope, receive, send)

    return routed


class _NoSuchRoute:
    """The JSON 404 of an unknown /api route (raised, so the API's error handlers answer)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raise ApiError(404, "not_found", "No such API route.")


def build() -> FastAPI:
    api = FastAPI(
        title="ElexirionDSP API",
        version="1",
        description=DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    metrics_routes.setup_server()  # logs and metrics of the served app (no-op in tests)
    errors.install(api)
    for module in (chat_routes, run_routes, pipeline_routes, misc_routes, metrics_routes, docs):
        api.include_router(module.router)

    # Every other /api path, with ANY method (an ASGI endpoint: Starlette lets it match all
    # methods), so nothing under /api falls through to the Mount("") Reflex adds after it.
    api.router.routes.append(Route("/api/{rest:path}", _NoSuchRoute(), include_in_schema=False))

    api.add_middleware(_BodyCap)
    api.add_middleware(metrics_routes.MetricsMiddleware)  # outermost: sees 413s and 500s too
    return api
