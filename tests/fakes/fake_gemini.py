"""A fake Gemini API: ``POST /v1beta/models/<model>:streamGenerateContent?alt=sse``.

Each SSE ``data:`` line is one ``GenerateContentResponse`` JSON chunk. Every chunk carries
``usageMetadata`` with the running totals (the last one is final, as the real API does), and
the last chunk has ``finishReason``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer, Fault, Hang, Reset, SSEEvent, Status, reset_connection


@dataclass(frozen=True)
class FunctionCallPart:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """One streamed answer: text split into ``chunk``-character pieces, then function calls.

    ``usage`` keys: prompt, cached, candidates, thoughts (final figures).
    """

    text: str = "Hello from Gemini"
    calls: Sequence[FunctionCallPart] = ()
    usage: dict[str, int] = field(default_factory=dict)
    finish_reason: str = "STOP"
    chunk: int = 6
    fault: Fault | None = None
    model_version: str | None = None
    delay_s: float = 0.0


def text(
    answer: str,
    *,
    prompt: int = 10,
    cached: int = 0,
    candidates: int = 5,
    thoughts: int = 0,
    fault: Fault | None = None,
) -> Reply:
    usage = {"prompt": prompt, "cached": cached, "candidates": candidates, "thoughts": thoughts}
    return Reply(answer, (), usage, fault=fault)


def function_call(name: str, args: dict[str, Any], *, answer: str = "") -> Reply:
    return Reply(answer, (FunctionCallPart(name, args),), {"prompt": 30, "candidates": 12})


def status(code: int, message: str = "error", *, retry_after: str | None = None) -> Status:
    names = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 401: "UNAUTHENTICATED"}
    body = {"error": {"code": code, "message": message, "status": names.get(code, "UNKNOWN")}}
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return Status(code, body, headers)


def _usage(u: dict[str, int], fraction: float) -> dict[str, int]:
    full = {"prompt": 0, "cached": 0, "candidates": 0, "thoughts": 0, **u}
    cand = int(full["candidates"] * fraction)
    out = {
        "promptTokenCount": full["prompt"],
        "candidatesTokenCount": cand,
        "totalTokenCount": full["prompt"] + cand + full["thoughts"],
    }
    if full["cached"]:
        out["cachedContentTokenCount"] = full["cached"]
    if full["thoughts"]:
        out["thoughtsTokenCount"] = full["thoughts"]
    return out


def _events(reply: Reply, model: str) -> list[SSEEvent]:
    pieces: list[dict[str, Any]] = [
        {"text": reply.text[i : i + reply.chunk]} for i in range(0, len(reply.text), reply.chunk)
    ]
    pieces += [{"functionCall": {"name": c.name, "args": c.args}} for c in reply.calls]
    if not pieces:
        pieces = [{"text": ""}]
    events: list[SSEEvent] = []
    for n, part in enumerate(pieces, start=1):
        last = n == len(pieces)
        cand: dict[str, Any] = {"content": {"parts": [part], "role": "model"}, "index": 0}
        if last:
            cand["finishReason"] = reply.finish_reason
        events.append(
            (
                None,
                {
                    "candidates": [cand],
                    "usageMetadata": _usage(reply.usage, n / len(pieces)),
                    "modelVersion": reply.model_version or model,
                    "responseId": "fake-response",
                },
            )
        )
    return events


def _error_event(fault: Fault) -> SSEEvent:
    code = 503 if fault.error_type in ("overloaded_error", "UNAVAILABLE") else 500
    status_name = "UNAVAILABLE" if code == 503 else "INTERNAL"
    return (None, {"error": {"code": code, "message": "mid-stream failure", "status": status_name}})


class FakeGemini(FakeServer):
    """Speaks ``streamGenerateContent?alt=sse``; ``requests`` holds each request body."""

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/{version}/models/{target}", self._generate)]

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        target = request.match_info["target"]
        model, _, method = target.partition(":")
        if method != "streamGenerateContent":
            return web.json_response({"error": {"code": 404, "message": method}}, status=404)
        reply = self.next_reply()
        if isinstance(reply, Reset):
            return await reset_connection(request)
        if isinstance(reply, Hang):
            await self.stall(reply.seconds)
            return await reset_connection(request)
        if isinstance(reply, Status):
            return await self.send_status(reply)
        assert isinstance(reply, Reply), reply
        return await self.stream_sse(
            request, _events(reply, model), reply.fault, _error_event, delay_s=reply.delay_s
        )

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests]
