"""The error responses every route may give, for the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from elexirion_app.api.http.schemas import ErrorBody


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Invalid input",
        401: "No valid API key",
        402: "Over budget",
        403: "Not allowed",
        404: "Not found (or not yours)",
        409: "Conflict",
        413: "Request body too large",
        422: "Invalid request or pipeline",
        429: "Rate limited (see Retry-After)",
    }
    return {
        s: {"model": ErrorBody, "description": descriptions[s]}
        for s in (401, 413, 422, 429, *statuses)
    }


def sse(*kinds: str) -> dict[int | str, dict[str, Any]]:
    """A 200 answer streaming Server-Sent Events of the given kinds (``data`` is JSON)."""
    event = {
        "type": "object",
        "properties": {
            "event": {"type": "string", "enum": list(kinds)},
            "data": {"type": "string", "contentMediaType": "application/json"},
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
        "required": ["event", "data"],
    }
    return {
        200: {
            "description": "A stream of Server-Sent Events: " + ", ".join(kinds),
            "content": {"text/event-stream": {"schema": event}},
        }
    }
