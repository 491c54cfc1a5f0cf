"""A fake Anthropic Messages API (``POST /v1/messages`` with ``stream: true``, SSE)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer, Fault, Hang, Reset, SSEEvent, Status, reset_connection


@dataclass(frozen=True)
class ToolUse:
    name: str
    input: dict[str, Any]
    id: str = "toolu_01"


@dataclass(frozen=True)
class Thinking:
    """An extended-thinking block: ``thinking_delta`` pieces, then one ``signature_delta``."""

    text: str
    signature: str = "sig_fake_0123"


@dataclass(frozen=True)
class Message:
    """One streamed assistant message.

    ``blocks`` are text strings, ``Thinking`` or ``ToolUse``; text and thinking are sent in
    ``chunk``-character deltas and tool input as ``input_json_delta`` pieces. ``usage`` keys:
    input, output, cache_read, cache_write (the final, cumulative figures of
    ``message_delta``; ``output`` includes thinking, as the API bills it) and, optionally,
    thinking (sent as ``output_tokens_details.thinking_tokens``).
    """

    blocks: Sequence[str | Thinking | ToolUse] = ("Hello world",)
    stop_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    model: str | None = None
    chunk: int = 5
    fault: Fault | None = None
    delay_s: float = 0.0


def text(
    answer: str,
    *,
    input: int = 10,
    output: int = 5,
    cache_read: int = 0,
    cache_write: int = 0,
    cache_write_1h: int | None = None,
    fault: Fault | None = None,
) -> Message:
    """A plain text answer with the given (final) usage. ``cache_write_1h`` (1-hour cache
    writes) sends ``cache_creation`` with both lifetimes (``cache_write`` the 5-minute ones)."""
    usage = {"input": input, "output": output, "cache_read": cache_read, "cache_write": cache_write}
    if cache_write_1h is not None:
        usage["cache_write_1h"] = cache_write_1h
    return Message((answer,), "end_turn", usage, fault=fault)


def thinking(
    thought: str,
    answer: str,
    *,
    input: int = 10,
    output: int = 50,
    thinking_tokens: int | None = None,
    then_tool: ToolUse | None = None,
) -> Message:
    """An answer preceded by a thinking block; ``output`` counts thinking and answer tokens.
    ``thinking_tokens`` given: reported in ``output_tokens_details`` (else the API is silent)."""
    usage = {"input": input, "output": output}
    if thinking_tokens is not None:
        usage["thinking"] = thinking_tokens
    blocks: list[str | Thinking | ToolUse] = [Thinking(thought), answer]
    if then_tool is not None:
        blocks.append(then_tool)
    return Message(tuple(blocks), "tool_use" if then_tool else "end_turn", usage)


def tool_use(name: str, args: dict[str, Any], *, id: str = "toolu_01", **usage: int) -> Message:
    """A turn that asks for one tool call (``stop_reason: tool_use``)."""
    u = {"input": 20, "output": 8, "cache_read": 0, "cache_write": 0, **usage}
    return Message(("Let me look.", ToolUse(name, args, id)), "tool_use", u)


def overloaded(**headers: str) -> Status:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    return Status(529, body, dict(headers))


def rate_limited(retry_after: str = "0.01", **headers: str) -> Status:
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited"}}
    return Status(429, body, {"retry-after": retry_after, **headers})


def server_error(**headers: str) -> Status:
    body = {"type": "error", "error": {"type": "api_error", "message": "Internal error"}}
    return Status(500, body, {"retry-after-ms": "10", **headers})


def _events(msg: Message, model: str) -> list[SSEEvent]:
    u = {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0, **msg.usage}
    written = u["cache_write"] + u.get("cache_write_1h", 0)
    start_usage: dict[str, Any] = {
        "input_tokens": u["input"],
        "output_tokens": 1,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": u["cache_read"],
    }
    if "cache_write_1h" in u:  # the API's split of cache writes by lifetime
        start_usage["cache_creation"] = {
            "ephemeral_5m_input_tokens": u["cache_write"],
            "ephemeral_1h_input_tokens": u["cache_write_1h"],
        }
    events: list[SSEEvent] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": msg.model or model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(msg.blocks):
        if isinstance(block, Thinking):
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                    },
                )
            )
            for i in range(0, len(block.text), msg.chunk):
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {
                                "type": "thinking_delta",
                                "thinking": block.text[i : i + msg.chunk],
                            },
                        },
                    )
                )
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "signature_delta", "signature": block.signature},
                    },
                )
            )
        elif isinstance(block, str):
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            for i in range(0, len(block), msg.chunk):
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "text_delta", "text": block[i : i + msg.chunk]},
                        },
                    )
                )
        else:
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {
                            "type": "tool_use",
                            "id": block.id,
                            "name": block.name,
                            "input": {},
                        },
                    },
                )
            )
            raw = json.dumps(block.input)
            for i in range(0, len(raw), 7):
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": raw[i : i + 7]},
                        },
                    )
                )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    final_usage: dict[str, Any] = {
        "input_tokens": u["input"],
        "output_tokens": u["output"],
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": u["cache_read"],
    }
    if "thinking" in u:
        final_usage["output_tokens_details"] = {"thinking_tokens": u["thinking"]}
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": msg.stop_reason or "end_turn", "stop_sequence": None},
                "usage": final_usage,
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _error_event(fault: Fault) -> SSEEvent:
    return (
        "error",
        {"type": "error", "error": {"type": fault.error_type, "message": "mid-stream failure"}},
    )


class FakeAnthropic(FakeServer):
    """Speaks the Messages streaming protocol; ``requests`` holds each request body."""

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/messages", self._messages)]

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        rec = await self.record(request)
        reply = self.next_reply()
        if isinstance(reply, Reset):
            return await reset_connection(request)
        if isinstance(reply, Hang):
            await self.stall(reply.seconds)
            return await reset_connection(request)
        if isinstance(reply, Status):
            return await self.send_status(reply)
        assert isinstance(reply, Message), reply
        model = (rec.body or {}).get("model", "claude-test")
        return await self.stream_sse(
            request,
            _events(reply, model),
            reply.fault,
            _error_event,
            delay_s=reply.delay_s,
            headers={"request-id": f"req_{len(self.requests)}"},
        )

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests]
