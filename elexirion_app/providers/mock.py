"""The offline demo model: deterministic, free, and the default without API keys.

For pipeline steps it reproduces pipeline_ex's mock answers (``TEST_MODE=mock``) so its files
behave alike; for chat it gives an honest reply that says it is the offline demo model.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from decimal import Decimal

from elexirion_app.core.errors import ProviderResponseError
from elexirion_app.core.types import (
    FunctionCall,
    LLMRequest,
    LLMResponse,
    StreamEvent,
    Usage,
)

OFFLINE_MODEL = "offline-demo"
ENHANCED_KINDS = {
    "claude_smart",
    "claude_session",
    "claude_extract",
    "claude_batch",
    "claude_robust",
}
PRESET_COST = {
    "development": Decimal("0.002"),
    "production": Decimal("0.001"),
    "analysis": Decimal("0.0015"),
    "chat": Decimal("0.0005"),
}
_TOKEN_RE = re.compile(r"\S+\s*|\s+")


def estimate_tokens(text: str) -> int:
    """A plausible token count (~4 characters a token, at least 1 for non-empty text)."""
    return 0 if not text else max(1, (len(text) + 3) // 4)


def _first50(prompt: str) -> str:
    return prompt[:50]


def mock_answer(request: LLMRequest) -> tuple[str, Decimal, tuple[FunctionCall, ...]]:
    """pipeline_ex's mock answer for a request: (text, pipeline_ex's mock cost, function_calls).

    The cost is what pipeline_ex's mock reported; ours books offline calls at $0."""
    prompt = request.prompt
    if request.kind == "chat":
        return _chat_answer(request), Decimal("0"), ()
    if request.kind in ENHANCED_KINDS:
        preset = request.preset or "development"
        suffix = "" if preset == "development" else f" ({preset})"
        text = (
            f"Mock enhanced Claude response{suffix}. "
            f"Original prompt length: {len(prompt)} characters."
        )
        return text, PRESET_COST.get(preset, Decimal("0.002")), ()
    if request.provider == "gemini":
        if "This will fail" in prompt:
            raise ProviderResponseError(
                "Mock Gemini failure requested by the prompt", provider="offline"
            )
        calls: tuple[FunctionCall, ...] = tuple(
            FunctionCall(f.name, {"result": "mock_function_result", "status": "completed"})
            for f in request.functions
        )
        if "plan" in prompt:
            text = json.dumps({"plan": "Mock implementation plan", "complexity": "medium"})
            return text, Decimal("0.003"), calls
        if "analyze" in prompt.lower():
            text = json.dumps({"analysis": "Mock analysis result", "confidence": 0.9})
            return text, Decimal("0.004"), calls
        return f"Mock Gemini response for: {_first50(prompt)}...", Decimal("0.002"), calls
    if prompt == "simple test":
        return "Mock response for simple test", Decimal("0.001"), ()
    if "Python" in prompt:
        return "Mock Python code response", Decimal("0.002"), ()
    if "calculator" in prompt:
        return "Mock calculator implementation", Decimal("0.004"), ()
    return f"Mock response for: {_first50(prompt)}...", Decimal("0.001"), ()


def _chat_answer(request: LLMRequest) -> str:
    prompt = request.prompt.strip()
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:8]
    words = len(prompt.split())
    quoted = prompt if len(prompt) <= 120 else prompt[:117] + "..."
    turns = sum(1 for m in request.messages if m.role == "user")
    return (
        "I am the **offline demo model**: no API key is configured, so this answer is "
        "generated locally and deterministically, not by Claude or Gemini.\n\n"
        f"You wrote {words} word(s) (turn {turns} of this conversation, "
        f"fingerprint `{digest}`):\n\n"
        f"> {quoted}\n\n"
        "Set `ANTHROPIC_API_KEY` or `GEMINI_API_KEY` on the server for real answers."
    )


class MockProvider:
    """Deterministic offline provider. ``token_delay_s`` paces the stream (0 in the engine)."""

    name = "offline"
    offline = True

    def __init__(self, token_delay_s: float = 0.0) -> None:
        self.token_delay_s = token_delay_s

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        # pipeline_ex's mock "cost" is not spend: the offline model is free (issue 10), so the
        # response and the ledger say $0 (a labelled live estimate is kept by the ledger).
        text, _pipeline_ex_cost, calls = mock_answer(request)
        structured = None
        if request.response_schema is not None:
            structured = _structured_from(text)
        input_tokens = sum(estimate_tokens(m.content) for m in request.messages)
        input_tokens += estimate_tokens(request.system or "")
        emitted = 0
        for chunk in _TOKEN_RE.findall(text):
            emitted += 1
            if self.token_delay_s:
                await asyncio.sleep(self.token_delay_s)
            yield StreamEvent("delta", text=chunk)
        usage = Usage(input=input_tokens, output=max(emitted, estimate_tokens(text)))
        latency = (time.perf_counter() - started) * 1000
        yield StreamEvent("usage", usage=usage)
        yield StreamEvent(
            "attempt",
            data={
                "attempt": 1,
                "status": 200,
                "error": None,
                "usage": usage.to_dict(),
                "latency_ms": latency,
                "model": OFFLINE_MODEL,
            },
        )
        response = LLMResponse(
            text=text,
            model=OFFLINE_MODEL,
            usage=usage,
            cost=Decimal("0"),
            latency_ms=latency,
            offline=True,
            stop_reason="end_turn",
            function_calls=calls,
            structured=structured,
        )
        yield StreamEvent("done", response=response)


def _structured_from(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return {"text": text}
