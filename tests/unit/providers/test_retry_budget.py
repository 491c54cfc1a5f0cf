"""One retry budget per API call: at most ``max_retries + 1`` HTTP requests, whatever fails.

The SDK's own retries (HTTP status, connection errors) and ours (failures after the response
headers: error events, truncation, resets, stalls) share the budget, and every HTTP request is
exactly one ``attempt`` event.
"""

from __future__ import annotations

from typing import Any

import pytest

from elexirion_app.core.errors import ProviderError
from elexirion_app.core.types import LLMRequest, StreamEvent
from elexirion_app.providers.anthropic_provider import AnthropicProvider
from elexirion_app.providers.gemini_provider import GeminiProvider
from tests.fakes import fake_anthropic as fa
from tests.fakes import fake_gemini as fg
from tests.fakes.base import Fault, Reset

FAST = {"retry_base_delay_s": 0.001, "retry_max_delay_s": 0.002}

# (name, replies queued first, the persistent reply every later request gets)
ANTHROPIC_FAILURES: list[tuple[str, list[Any], Any]] = [
    ("500", [], fa.server_error(**{"retry-after-ms": "1"})),
    ("529", [], fa.overloaded(**{"retry-after-ms": "1"})),
    ("429", [], fa.rate_limited("0.001")),
    ("reset", [], Reset()),
    ("mid-stream error", [], fa.text("partial", fault=Fault("error_event", after=4))),
    ("truncated", [], fa.text("partial", fault=Fault("truncate", after=4))),
    (
        "mid-stream error, then 500s",
        [fa.text("partial", fault=Fault("error_event", after=4))],
        fa.server_error(**{"retry-after-ms": "1"}),
    ),
    (
        "500, then mid-stream errors",
        [fa.server_error(**{"retry-after-ms": "1"})],
        fa.text("partial", fault=Fault("error_event", after=4)),
    ),
    (
        "each try: 500, 500, mid-stream error",
        [
            *[fa.server_error(**{"retry-after-ms": "1"})] * 2,
            fa.text("partial", fault=Fault("error_event", after=4)),
        ]
        * 3,
        fa.text("never sent"),
    ),
    (
        "500, 529, then mid-stream error",
        [fa.server_error(**{"retry-after-ms": "1"}), fa.overloaded(**{"retry-after-ms": "1"})],
        fa.text("partial", fault=Fault("error_event", after=4)),
    ),
]


def _attempts(events: list[StreamEvent]) -> list[dict[str, Any]]:
    return [dict(e.data) for e in events if e.kind == "attempt"]


async def _drain(p: Any, request: LLMRequest) -> tuple[list[StreamEvent], ProviderError]:
    seen: list[StreamEvent] = []
    with pytest.raises(ProviderError) as info:
        async for event in p.stream(request):
            seen.append(event)
    return seen, info.value


@pytest.mark.parametrize(
    ("first", "persistent"),
    [(f, p) for _, f, p in ANTHROPIC_FAILURES],
    ids=[n for n, _, _ in ANTHROPIC_FAILURES],
)
async def test_anthropic_makes_at_most_max_retries_plus_one_requests(
    fake_anthropic: fa.FakeAnthropic, first: list[Any], persistent: Any
) -> None:
    fake_anthropic.queue(*first)
    fake_anthropic.default = persistent
    p = AnthropicProvider("k", base_url=fake_anthropic.url, timeout_s=2.0, max_retries=2, **FAST)

    events, error = await _drain(p, LLMRequest.from_prompt("hi"))

    assert len(fake_anthropic.requests) == 3
    atts = _attempts(events)
    assert [a["attempt"] for a in atts] == [1, 2, 3]  # one attempt event per HTTP request
    assert all(a["error"] for a in atts)
    assert error.attempts == 3
    assert not any(e.kind == "done" for e in events)


async def test_anthropic_request_max_retries_is_the_budget(
    fake_anthropic: fa.FakeAnthropic,
) -> None:
    fake_anthropic.queue(fa.text("partial", fault=Fault("error_event", after=4)))
    fake_anthropic.default = fa.server_error(**{"retry-after-ms": "1"})
    p = AnthropicProvider("k", base_url=fake_anthropic.url, timeout_s=2.0, max_retries=5, **FAST)

    events, error = await _drain(p, LLMRequest.from_prompt("hi", max_retries=1))

    assert len(fake_anthropic.requests) == 2
    assert [a["attempt"] for a in _attempts(events)] == [1, 2]
    assert error.attempts == 2


async def test_anthropic_success_within_the_budget_after_mixed_failures(
    fake_anthropic: fa.FakeAnthropic,
) -> None:
    fake_anthropic.queue(
        fa.text("partial", fault=Fault("error_event", after=4)),
        fa.server_error(**{"retry-after-ms": "1"}),
        fa.text("finally"),
    )
    p = AnthropicProvider("k", base_url=fake_anthropic.url, timeout_s=2.0, max_retries=2, **FAST)
    events = [e async for e in p.stream(LLMRequest.from_prompt("hi"))]

    assert events[-1].response is not None and events[-1].response.text == "finally"
    atts = _attempts(events)
    assert [(a["attempt"], a["status"], bool(a["error"])) for a in atts] == [
        (1, 200, True),
        (2, 500, True),
        (3, 200, False),
    ]
    assert atts[0]["discard_partial"] is True
    assert len(fake_anthropic.requests) == 3
    # the retry count sent to the API counts our mid-stream retry too
    counts = [r.headers["x-stainless-retry-count"] for r in fake_anthropic.requests]
    assert counts == ["0", "1", "2"]


async def test_anthropic_budget_is_per_api_call_in_the_tool_loop(
    fake_anthropic: fa.FakeAnthropic, tmp_path: Any
) -> None:
    (tmp_path / "f.txt").write_text("content")
    fake_anthropic.queue(
        fa.server_error(**{"retry-after-ms": "1"}),
        fa.tool_use("Read", {"path": "f.txt"}),
        fa.text("partial", fault=Fault("truncate", after=4)),
        fa.server_error(**{"retry-after-ms": "1"}),
    )
    fake_anthropic.default = fa.server_error(**{"retry-after-ms": "1"})
    p = AnthropicProvider("k", base_url=fake_anthropic.url, timeout_s=2.0, max_retries=2, **FAST)
    request = LLMRequest.from_prompt("hi", allowed_tools=("Read",), workspace=tmp_path)

    events, error = await _drain(p, request)

    # turn 1: 500 + success (2 requests); turn 2: three failed requests, then give up
    assert len(fake_anthropic.requests) == 5
    atts = _attempts(events)
    assert [(a["turn"], a["attempt"]) for a in atts] == [(1, 1), (1, 2), (2, 3), (2, 4), (2, 5)]
    assert error.attempts == 5


GEMINI_FAILURES: list[tuple[str, list[Any], Any]] = [
    ("500", [], fg.status(500, retry_after="0.001")),
    ("503", [], fg.status(503, retry_after="0.001")),
    ("429", [], fg.status(429, retry_after="0.001")),
    ("reset", [], Reset()),
    ("mid-stream error", [], fg.text("partial text", fault=Fault("error_event", after=1))),
    (
        "mid-stream error, then 500s",
        [fg.text("partial text", fault=Fault("error_event", after=1))],
        fg.status(500, retry_after="0.001"),
    ),
    (
        "429, then mid-stream errors",
        [fg.status(429, retry_after="0.001")],
        fg.text("partial text", fault=Fault("error_event", after=1)),
    ),
]


@pytest.mark.parametrize(
    ("first", "persistent"),
    [(f, p) for _, f, p in GEMINI_FAILURES],
    ids=[n for n, _, _ in GEMINI_FAILURES],
)
async def test_gemini_makes_at_most_max_retries_plus_one_requests(
    fake_gemini: fg.FakeGemini, first: list[Any], persistent: Any
) -> None:
    fake_gemini.queue(*first)
    fake_gemini.default = persistent
    p = GeminiProvider("k", base_url=fake_gemini.url, timeout_s=2.0, max_retries=2, **FAST)

    events, error = await _drain(p, LLMRequest.from_prompt("hi", provider="gemini"))

    assert len(fake_gemini.requests) == 3
    assert [a["attempt"] for a in _attempts(events)] == [1, 2, 3]
    assert error.attempts == 3
