"""``/api/*`` goes straight to the API app (Reflex's contexts set first); every other path, and
every non-HTTP scope, still goes through Reflex's whole stack."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from elexirion_app.api.http.app import api_first


def _answering(text: str) -> Starlette:
    async def ok(request: object) -> PlainTextResponse:
        return PlainTextResponse(text)

    return Starlette(routes=[Route("/{rest:path}", ok)])


async def _get(app: Any, path: str) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return (await client.get(path)).text


async def test_api_paths_skip_the_backend_and_set_the_contexts_first() -> None:
    calls: list[str] = []
    app = api_first(_answering("backend"), _answering("api"), lambda: calls.append("ctx"))
    assert await _get(app, "/api/runs/x") == "api"
    assert calls == ["ctx"]
    for path in ("/", "/login/", "/apix", "/api", "/healthz", "/_upload"):
        assert await _get(app, path) == "backend", path
    assert calls == ["ctx"]  # only the API request


async def test_other_scopes_go_to_the_backend() -> None:
    seen: list[str] = []

    async def backend(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(f"backend {scope['type']}")

    async def api(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(f"api {scope['type']}")

    app = api_first(backend, api, lambda: None)
    await app({"type": "lifespan"}, None, None)
    await app({"type": "websocket", "path": "/api/x"}, None, None)
    assert seen == ["backend lifespan", "backend websocket"]
