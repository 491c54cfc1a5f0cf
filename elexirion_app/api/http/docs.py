"""``/api/docs``: Swagger UI served from our own origin.

The Swagger UI files come from npm (``swagger-ui-dist``, installed into ``.tools`` by
``make``), never from a CDN; the page starts it from a file of ours because the CSP allows no
inline script."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, HTMLResponse

from elexirion_app.api.http.errors import ApiError
from elexirion_app.config import PROJECT_ROOT

router = APIRouter(include_in_schema=False)
SWAGGER_DIR = PROJECT_ROOT / ".tools" / "node_modules" / "swagger-ui-dist"
OUR_DIR = Path(__file__).parent / "static"
ASSETS = {
    "swagger-ui.css": (SWAGGER_DIR, "text/css"),
    "swagger-ui-bundle.js": (SWAGGER_DIR, "text/javascript"),
    "docs-init.js": (OUR_DIR, "text/javascript"),
}
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>ElexirionDSP API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css">
</head><body>
<div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/assets/docs-init.js"></script>
</body></html>
"""


@router.get("/api/docs")
async def docs_page() -> HTMLResponse:
    if not (SWAGGER_DIR / "swagger-ui-bundle.js").is_file():
        raise ApiError(503, "docs_missing", "Swagger UI is not installed: run `make apidocs`.")
    return HTMLResponse(PAGE)


@router.get("/api/docs/assets/{name}")
async def docs_asset(name: str) -> FileResponse:
    found = ASSETS.get(name)
    if found is None or not (found[0] / name).is_file():
        raise ApiError(404, "not_found", "No such file.")
    folder, media = found
    return FileResponse(folder / name, media_type=media, headers={"Cache-Control": "max-age=3600"})
