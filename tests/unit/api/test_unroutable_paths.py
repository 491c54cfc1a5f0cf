"""``/api`` paths that Starlette's mounts cannot route still get our JSON error.

Reflex mounts the backend under ``Mount("")``, whose pattern does not match a path holding a
percent-decoded newline: schemathesis found ``GET /api/pipelines/%0A`` answering Starlette's
plain-text ``Not Found``, outside the documented ``{error: {code, message}}``."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from elexirion_app.api.http.app import unroutable_api_paths


def _reflex_like() -> Starlette:
    async def ok(request: object) -> PlainTextResponse:
        return PlainTextResponse("routed")

    inner = Starlette(routes=[Route("/api/{rest:path}", ok)])
    return Starlette(routes=[Mount("", inner)])


async def _get(app: object, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path)


async def test_the_mount_alone_answers_plain_text() -> None:
    """The bug, shown without the wrapper (so the test below proves something)."""
    response = await _get(_reflex_like(), "/api/pipelines/a%0Ab")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")


async def test_newline_paths_get_the_json_404() -> None:
    app = unroutable_api_paths(_reflex_like())
    response = await _get(app, "/api/pipelines/a%0Ab")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such API route."}}


async def test_other_paths_pass_through() -> None:
    app = unroutable_api_paths(_reflex_like())
    assert (await _get(app, "/api/pipelines/ab")).text == "routed"
    # not ours: the pages keep the framework's answer
    assert (await _get(app, "/chat/a%0Ab")).status_code == 404
