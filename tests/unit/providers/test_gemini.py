"""GeminiProvider: the real google-genai SDK against a fake Gemini API on 127.0.0.1."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from elexirion_app.core.errors import (
    ProviderAuthError,
    ProviderConnectionError,
    ProviderOverloaded,
    ProviderResponseError,
    ProviderTimeout,
    RateLimited,
)
from elexirion_app.core.types import FunctionSpec, LLMRequest, LLMResponse, StreamEvent, Usage
from elexirion_app.providers.gemini_provider import GeminiProvider
from tests.fakes.base import Fault, Hang, Reset, Status
from tests.fakes.fake_gemini import FakeGemini, Reply, function_call, status, text


def provider(fake: FakeGemini, **kw: Any) -> GeminiProvider:
    opts: dict[str, Any] = {
        "timeout_s": 1.0,
        "max_retries": 2,
        "retry_base_delay_s": 0.01,
        "retry_max_delay_s": 0.02,
        **kw,
    }
    return GeminiProvider("test-key", base_url=fake.url, **opts)


def req(prompt: str = "hi", **kw: Any) -> LLMRequest:
    return LLMRequest.from_prompt(prompt, provider="gemini", **kw)


async def run(p: GeminiProvider, request: LLMRequest) -> list[StreamEvent]:
    return [e async for e in p.stream(request)]


def final(events: list[StreamEvent]) -> LLMResponse:
    assert events[-1].kind == "done" and events[-1].response is not None
    return events[-1].response


def attempts(events: list[StreamEvent]) -> list[dict[str, Any]]:
    return [dict(e.data) for e in events if e.kind == "attempt"]


async def test_streams_text_and_keeps_the_last_usage(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(
        text("Hello there, world!", prompt=12_000, cached=4_000, candidates=700, thoughts=300)
    )
    request = req(
        "hi",
        model="gemini-2.5-flash",
        system="Be brief.",
        temperature=0.3,
        top_p=0.9,
        top_k=20,
        max_tokens=512,
    )
    events = await run(provider(fake_gemini), request)
    assert "".join(e.text for e in events if e.kind == "delta") == "Hello there, world!"
    resp = final(events)
    assert resp.text == "Hello there, world!"
    assert resp.model == "gemini-2.5-flash"
    # prompt - cached → input; cached → cache_read; thoughts apart; last chunk wins (no sum)
    assert resp.usage == Usage(input=8_000, output=700, cache_read=4_000, thinking=300)
    # gemini/gemini-2.5-flash: 8000*3e-7 + 700*2.5e-6 + 4000*3e-8 + 300*2.5e-6
    assert resp.cost == Decimal("0.0024") + Decimal("0.00175") + Decimal("0.00012") + Decimal(
        "0.00075"
    )
    assert resp.stop_reason == "stop"
    [att] = attempts(events)
    assert att["status"] == 200 and att["error"] is None

    [rec] = fake_gemini.requests
    assert rec.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert rec.query == {"alt": "sse"}
    assert rec.headers["x-goog-api-key"] == "test-key"
    gen = rec.body["generationConfig"]
    assert gen["temperature"] == 0.3 and gen["topP"] == 0.9 and gen["topK"] == 20
    assert gen["maxOutputTokens"] == 512
    assert rec.body["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert rec.body["contents"] == [{"parts": [{"text": "hi"}], "role": "user"}]


async def test_retired_model_ids_are_mapped(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(text("ok"))
    resp = final(await run(provider(fake_gemini), req(model="gemini-1.5-flash")))
    assert resp.model == "gemini-2.5-flash"
    assert "gemini-2.5-flash:" in fake_gemini.requests[0].path


async def test_429_with_retry_after_then_success(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(status(429, retry_after="0.02"), text("ok"))
    events = await run(provider(fake_gemini), req())
    assert final(events).text == "ok"
    atts = attempts(events)
    assert [a["status"] for a in atts] == [429, 200]
    assert [a["attempt"] for a in atts] == [1, 2]
    assert atts[0]["retry_after_s"] == pytest.approx(0.02)
    assert len(fake_gemini.requests) == 2


async def test_500_503_and_reset_are_retried(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(status(500), status(503), text("ok"))
    events = await run(provider(fake_gemini), req())
    assert final(events).text == "ok"
    assert [a["status"] for a in attempts(events)] == [500, 503, 200]

    fake_gemini.queue(Reset(), text("back"))
    events = await run(provider(fake_gemini), req())
    assert final(events).text == "back"
    assert attempts(events)[0]["error"].startswith("ProviderConnectionError")


async def test_exhausted_retries_raise_typed_errors(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(*(status(429, retry_after="0.01") for _ in range(3)))
    seen: list[StreamEvent] = []
    with pytest.raises(RateLimited) as info:
        async for e in provider(fake_gemini).stream(req()):
            seen.append(e)
    assert info.value.attempts == 3 and info.value.retry_after_s == pytest.approx(0.01)
    assert len(attempts(seen)) == 3

    fake_gemini.queue(status(503), status(503))
    with pytest.raises(ProviderOverloaded):
        await run(provider(fake_gemini, max_retries=1), req())

    fake_gemini.queue(Reset(), Reset())
    with pytest.raises(ProviderConnectionError):
        await run(provider(fake_gemini, max_retries=1), req())


async def test_auth_error_is_not_retried(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(status(401, "API key not valid"))
    with pytest.raises(ProviderAuthError):
        await run(provider(fake_gemini), req())
    assert len(fake_gemini.requests) == 1


async def test_stalled_stream_times_out(fake_gemini: FakeGemini) -> None:
    stall = Fault("stall", after=1, seconds=5)
    fake_gemini.queue(text("slow answer here", fault=stall), text("slow answer", fault=stall))
    with pytest.raises(ProviderTimeout):
        await run(provider(fake_gemini, timeout_s=0.5, max_retries=1), req())
    assert len(fake_gemini.requests) == 2


async def test_no_response_headers_is_a_timeout(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(Hang(5), text("after hang"))
    events = await run(provider(fake_gemini, timeout_s=0.4), req())
    assert final(events).text == "after hang"
    assert attempts(events)[0]["error"].startswith("ProviderTimeout")

    fake_gemini.queue(Hang(5), Hang(5))
    with pytest.raises(ProviderTimeout):
        await run(provider(fake_gemini, timeout_s=0.3, max_retries=1), req())


async def test_stall_then_success_marks_partial_text_for_discard(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(
        text("first try text", fault=Fault("stall", after=1, seconds=5)), text("second")
    )
    events = await run(provider(fake_gemini, timeout_s=0.5), req())
    first, second = attempts(events)
    assert first["error"].startswith("ProviderTimeout") and first["discard_partial"] is True
    assert second["error"] is None
    assert final(events).text == "second"


async def test_truncated_stream_is_retried_then_raises(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(text("cut short text", fault=Fault("truncate", after=1)), text("whole"))
    events = await run(provider(fake_gemini), req())
    assert final(events).text == "whole"
    assert attempts(events)[0]["error"].startswith("ProviderResponseError")

    fake_gemini.queue(*(text("cut short", fault=Fault("truncate", after=1)) for _ in range(2)))
    with pytest.raises(ProviderResponseError, match="truncated"):
        await run(provider(fake_gemini, max_retries=1), req())


async def test_error_chunk_mid_stream(fake_gemini: FakeGemini) -> None:
    fault = Fault("error_event", after=1, error_type="UNAVAILABLE")
    fake_gemini.queue(text("partial answer", fault=fault), text("recovered"))
    events = await run(provider(fake_gemini), req())
    assert final(events).text == "recovered"
    first = attempts(events)[0]
    assert first["error"].startswith("ProviderOverloaded") and first["discard_partial"] is True

    fake_gemini.queue(
        *(
            text("partial", fault=Fault("error_event", after=1, error_type="INTERNAL"))
            for _ in range(2)
        )
    )
    with pytest.raises(ProviderResponseError):
        await run(provider(fake_gemini, max_retries=1), req())


async def test_reset_mid_stream_is_retried(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(text("some text here", fault=Fault("reset", after=1)), text("again"))
    events = await run(provider(fake_gemini), req())
    assert final(events).text == "again"
    assert attempts(events)[0]["error"].startswith("ProviderConnectionError")


async def test_function_calling(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(function_call("get_weather", {"city": "Paris", "days": 2}))
    params = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    }
    request = req(
        "Weather in Paris?", functions=(FunctionSpec("get_weather", "Look up weather", params),)
    )
    events = await run(provider(fake_gemini), request)
    resp = final(events)
    assert [(c.name, dict(c.arguments)) for c in resp.function_calls] == [
        ("get_weather", {"city": "Paris", "days": 2})
    ]
    assert resp.to_result(gemini=True)["function_calls"][0]["name"] == "get_weather"
    assert any(e.kind == "tool_call" for e in events)
    body = fake_gemini.bodies[0]
    [decl] = body["tools"][0]["functionDeclarations"]
    assert decl["name"] == "get_weather" and decl["description"] == "Look up weather"
    # the SDK serialises this field in snake_case; the API accepts both spellings
    assert decl.get("parametersJsonSchema", decl.get("parameters_json_schema")) == params


async def test_structured_output(fake_gemini: FakeGemini) -> None:
    fake_gemini.queue(Reply('{"plan": "ship it", "complexity": "low"}', usage={"prompt": 5}))
    schema = {
        "type": "object",
        "properties": {"plan": {"type": "string"}, "complexity": {"type": "string"}},
        "required": ["plan"],
    }
    resp = final(await run(provider(fake_gemini), req("Plan it", response_schema=schema)))
    assert resp.structured == {"plan": "ship it", "complexity": "low"}
    gen = fake_gemini.bodies[0]["generationConfig"]
    assert gen["responseMimeType"] == "application/json"
    assert gen["responseJsonSchema"] == schema

    fake_gemini.queue(Reply("not json"))
    with pytest.raises(ProviderResponseError):
        await run(provider(fake_gemini), req("Plan it", response_schema=schema))


async def test_retry_delay_from_google_retry_info(fake_gemini: FakeGemini) -> None:
    body = {
        "error": {
            "code": 429,
            "message": "quota",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.03s"}
            ],
        }
    }
    fake_gemini.queue(Status(429, body), text("ok"))
    events = await run(provider(fake_gemini), req())
    assert final(events).text == "ok"
    assert attempts(events)[0]["retry_after_s"] == pytest.approx(0.03)
