"""Value types shared by every layer: token usage, LLM requests/responses, stream events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "thinking")


@dataclass(frozen=True)
class Usage:
    """Tokens of one call (or a sum of calls), by type.

    ``input`` excludes cached tokens (Anthropic's ``input_tokens`` convention); ``output``
    excludes thinking tokens; ``cache_write`` is 5-minute cache writes and ``cache_write_1h``
    1-hour ones (Anthropic's ``cache_creation.ephemeral_1h_input_tokens``), priced apart.
    Every kind is priced apart by ``core.pricing.cost``.
    """

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    thinking: int = 0
    cache_write_1h: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input=self.input + other.input,
            output=self.output + other.output,
            cache_read=self.cache_read + other.cache_read,
            cache_write=self.cache_write + other.cache_write,
            thinking=self.thinking + other.thinking,
            cache_write_1h=self.cache_write_1h + other.cache_write_1h,
        )

    @property
    def total(self) -> int:
        return (
            self.input
            + self.output
            + self.cache_read
            + self.cache_write
            + self.cache_write_1h
            + self.thinking
        )

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in TOKEN_KINDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        return cls(**{k: int(data.get(k) or 0) for k in TOKEN_KINDS})


Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class FunctionSpec:
    """A function the model may call (Gemini ``gemini_functions``)."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LLMRequest:
    """Everything a provider needs for one call.

    ``messages`` is the conversation; the last message is the user's turn. ``kind`` is the
    pipeline step type (``claude``, ``gemini``, ``claude_smart`` ...) or ``chat``; the offline
    model uses it (and ``preset``) to reproduce pipeline_ex's mock answers.
    """

    messages: tuple[ChatMessage, ...]
    provider: Literal["claude", "gemini"] = "claude"
    model: str | None = None
    system: str | None = None
    max_tokens: int = 4096
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    # Claude tool loop
    allowed_tools: tuple[str, ...] = ()
    disallowed_tools: tuple[str, ...] = ()
    max_turns: int = 3
    workspace: Path | None = None
    # Gemini
    functions: tuple[FunctionSpec, ...] = ()
    response_schema: Mapping[str, Any] | None = None
    # policy
    timeout_s: float | None = None
    max_retries: int | None = None
    # offline model
    kind: str = "chat"
    preset: str | None = None

    @classmethod
    def from_prompt(cls, prompt: str, **kwargs: Any) -> LLMRequest:
        return cls(messages=(ChatMessage("user", prompt),), **kwargs)

    @property
    def prompt(self) -> str:
        """The last user message (what pipeline_ex calls the prompt)."""
        for msg in reversed(self.messages):
            if msg.role == "user":
                return msg.content
        return ""


@dataclass(frozen=True)
class FunctionCall:
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LLMResponse:
    """The outcome of one provider call (after the tool loop, if any)."""

    text: str
    model: str
    usage: Usage = Usage()
    cost: Decimal = Decimal("0")
    latency_ms: float = 0.0
    offline: bool = False
    stop_reason: str | None = None
    function_calls: tuple[FunctionCall, ...] = ()
    structured: Any = None
    turns: int = 1

    def to_result(self, *, gemini: bool = False) -> dict[str, Any]:
        """The one result shape of an LLM step (``content`` aliases ``text`` for Gemini)."""
        result: dict[str, Any] = {
            "text": self.text,
            "success": True,
            "cost": float(self.cost),
            "model": self.model,
            "tokens": self.usage.to_dict(),
            "latency_ms": round(self.latency_ms, 3),
        }
        if gemini:
            result["content"] = self.text
        if self.function_calls:
            result["function_calls"] = [
                {"name": c.name, "arguments": dict(c.arguments)} for c in self.function_calls
            ]
        if self.structured is not None:
            result["structured"] = self.structured
        return result


StreamKind = Literal["delta", "usage", "tool_call", "tool_result", "attempt", "done"]


@dataclass(frozen=True)
class StreamEvent:
    """One normalised event of a provider stream.

    - ``delta``: ``text`` is the next chunk of the answer.
    - ``usage``: ``usage`` is the cumulative usage of the current attempt so far.
    - ``tool_call`` / ``tool_result``: ``data`` holds ``{name, input}`` / ``{name, output}``.
    - ``attempt``: one provider HTTP attempt finished (``data``: ``{attempt, status, error,
      usage, latency_ms, model}``); observers write one LLM-call record per attempt.
    - ``done``: ``response`` is the final ``LLMResponse``; always the last event.
    """

    kind: StreamKind
    text: str = ""
    usage: Usage | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    response: LLMResponse | None = None
