"""Every API error is JSON ``{"error": {"code", "message"}}`` with the right status; never a
traceback. Our error hierarchy maps onto statuses here, in one place."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from elexirion_app.core.errors import (
    AuthError,
    BudgetExceeded,
    Conflict,
    ElexirionError,
    InputError,
    NotFound,
    PermissionDenied,
    PipelineValidationError,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered as is: status, code, message, optional headers and extra fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers, self.extra = headers, extra or {}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _json(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def status_of(exc: ElexirionError) -> tuple[int, str]:
    if isinstance(exc, PipelineValidationError):
        return 422, "invalid_pipeline"
    if isinstance(exc, PermissionDenied):
        return 403, "forbidden"
    if isinstance(exc, AuthError):
        return 401, "unauthorized"
    if isinstance(exc, NotFound):
        return 404, "not_found"
    if isinstance(exc, Conflict):
        return 409, "conflict"
    if isinstance(exc, InputError):
        return 400, "invalid_input"
    if isinstance(exc, BudgetExceeded):
        return 402, "budget_exceeded"
    return 400, "failed"


def problems_of(exc: PipelineValidationError) -> list[dict[str, Any]]:
    return [
        {
            "severity": p.severity,
            "line": p.line,
            "path": p.path,
            "message": p.message,
            "hint": p.hint,
        }
        for p in exc.problems
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_request: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status, exc.code, exc.message, exc.headers, **exc.extra)

    @app.exception_handler(ElexirionError)
    async def _ours(_request: Request, exc: ElexirionError) -> JSONResponse:
        status, code = status_of(exc)
        extra: dict[str, Any] = {}
        if isinstance(exc, PipelineValidationError):
            extra["problems"] = problems_of(exc)
        if isinstance(exc, BudgetExceeded):
            extra.update(exc.numbers())  # 402 with the numbers: cap, spent, reserved, estimate
        return _json(status, code, exc.user_message, None, **extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", ""))}
            for e in exc.errors()[:20]
        ]
        return _json(422, "invalid_request", "The request is not valid.", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status_code, "http_error"
        )
        return _json(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("API %s %s failed", request.method, request.url.path)
        return _json(500, "internal", "The server failed to answer; the error is logged.")
