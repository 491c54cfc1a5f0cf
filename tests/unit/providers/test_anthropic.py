"""AnthropicProvider: the real anthropic SDK against a fake Messages API on 127.0.0.1."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
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
from elexirion_app.core.types import LLMRequest, LLMResponse, StreamEvent, Usage
from elexirion_app.providers.anthropic_provider import AnthropicProvider
from tests.fakes.base import Fault, Hang, Reset, Status
from tests.fakes.fake_anthropic import (
    FakeAnthropic,
    overloaded,
    rate_limited,
    server_error,
    text,
    tool_use,
)

FAST = {"retry_base_delay_s": 0.01, "retry_max_delay_s": 0.02}


def provider(fake: FakeAnthropic, **kw: Any) -> AnthropicProvider:
    opts: dict[str, Any] = {"timeout_s": 1.0, "max_retries": 2, **FAST, **kw}
    return AnthropicProvider("test-key", base_url=fake.url, **opts)


async def run(p: AnthropicProvider, request: LLMRequest) -> list[StreamEvent]:
    return [e async for e in p.stream(request)]


def final(events: list[StreamEvent]) -> LLMResponse:
    assert events[-1].kind == "done"
    assert events[-1].response is not None
    return events[-1].response


def attempts(events: list[StreamEvent]) -> list[dict[str, Any]]:
    return [dict(e.data) for e in events if e.kind == "attempt"]


async def test_streams_text_usage_with_cache_tokens_and_exact_cost(
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.queue(
        text("Hello there, world!", input=1200, output=340, cache_read=5000, cache_write=800)
    )
    req = LLMRequest.from_prompt("hi", model="sonnet", system="Be brief.", max_tokens=256)
    events = await run(provider(fake_anthropic), req)

    assert "".join(e.text for e in events if e.kind == "delta") == "Hello there, world!"
    resp = final(events)
    assert resp.text == "Hello there, world!"
    assert resp.model == "claude-sonnet-4-6"
    assert resp.usage == Usage(input=1200, output=340, cache_read=5000, cache_write=800)
    # 1200*3e-6 + 340*1.5e-5 + 5000*3e-7 + 800*3.75e-6
    assert resp.cost == Decimal("0.0036") + Decimal("0.0051") + Decimal("0.0015") + Decimal("0.003")
    assert resp.stop_reason == "end_turn"
    usages = [e.usage for e in events if e.kind == "usage"]
    assert usages[0] == Usage(input=1200, output=1, cache_read=5000, cache_write=800)
    assert usages[-1] == resp.usage  # message_delta is cumulative: assigned, not added
    [att] = attempts(events)
    assert att["status"] == 200 and att["error"] is None and att["attempt"] == 1
    assert att["usage"]["cache_read"] == 5000

    [body] = fake_anthropic.bodies
    assert body["model"] == "claude-sonnet-4-6"  # alias mapped
    assert body["system"] == "Be brief."
    assert body["max_tokens"] == 256
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    headers = fake_anthropic.requests[0].headers
    assert "test-key" in (headers.get("x-api-key", "") + headers.get("authorization", ""))


async def test_429_with_retry_after_then_success_records_each_attempt(
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.queue(rate_limited("0.05"), text("ok"))
    events = await run(provider(fake_anthropic), LLMRequest.from_prompt("hi"))
    assert final(events).text == "ok"
    atts = attempts(events)
    assert [a["status"] for a in atts] == [429, 200]
    assert [a["attempt"] for a in atts] == [1, 2]
    assert atts[0]["retry_after_s"] == pytest.approx(0.05)
    assert atts[0]["error"] and atts[1]["error"] is None
    assert len(fake_anthropic.requests) == 2
    assert fake_anthropic.requests[1].headers["x-stainless-retry-count"] == "1"


async def test_529_overloaded_then_success(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue(overloaded(**{"retry-after-ms": "5"}), text("fine"))
    events = await run(provider(fake_anthropic), LLMRequest.from_prompt("hi"))
    assert final(events).text == "fine"
    assert [a["status"] for a in attempts(events)] == [529, 200]


async def test_500_then_success(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue(server_error(), text("fine"))
    events = await run(provider(fake_anthropic), LLMRequest.from_prompt("hi"))
    assert final(events).text == "fine"
    assert [a["status"] for a in attempts(events)] == [500, 200]


async def test_connection_reset_then_success(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue(Reset(), text("back"))
    events = await run(provider(fake_anthropic), LLMRequest.from_prompt("hi"))
    assert final(events).text == "back"
    atts = attempts(events)
    assert atts[0]["status"] is None and "Connection" in atts[0]["error"]
    assert atts[1]["status"] == 200


async def test_exhausted_retries_raise_typed_errors(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue(*(rate_limited("0.01") for _ in range(3)))
    seen: list[StreamEvent] = []
    with pytest.raises(RateLimited) as info:
        async for e in provider(fake_anthropic).stream(LLMRequest.from_prompt("hi")):
            seen.append(e)
    assert info.value.retry_after_s == pytest.approx(0.01)
    assert info.value.attempts == 3
    assert [a["status"] for a in attempts(seen)] == [429, 429, 429]
    assert len(fake_anthropic.requests) == 3

    fake_anthropic.queue(*(overloaded(**{"retry-after-ms": "1"}) for _ in range(2)))
    with pytest.raises(ProviderOverloaded):
        await run(provider(fake_anthropic, max_retries=1), LLMRequest.from_prompt("hi"))

    fake_anthropic.queue(Reset(), Reset())
    with pytest.raises(ProviderConnectionError):
        await run(provider(fake_anthropic, max_retries=1), LLMRequest.from_prompt("hi"))


async def test_auth_error_is_not_retried(fake_anthropic: FakeAnthropic) -> None:
    body = {"type": "error", "error": {"type": "authentication_error", "message": "bad key"}}
    fake_anthropic.queue(Status(401, body))
    with pytest.raises(ProviderAuthError):
        await run(provider(fake_anthropic), LLMRequest.from_prompt("hi"))
    assert len(fake_anthropic.requests) == 1


async def test_stalled_stream_times_out(fake_anthropic: FakeAnthropic) -> None:
    stall = Fault("stall", after=3, seconds=5)
    fake_anthropic.queue(text("slow answer", fault=stall), text("slow answer", fault=stall))
    with pytest.raises(ProviderTimeout):
        await run(
            provider(fake_anthropic, timeout_s=0.4, max_retries=1), LLMRequest.from_prompt("x")
        )
    assert len(fake_anthropic.requests) == 2


async def test_no_response_headers_is_a_timeout_retried_by_the_sdk(
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.queue(Hang(5), text("after hang"))
    events = await run(provider(fake_anthropic, timeout_s=0.4), LLMRequest.from_prompt("x"))
    assert final(events).text == "after hang"
    first, second = attempts(events)
    assert first["status"] is None and first["error"].startswith("ProviderTimeout")
    assert second["status"] == 200

    fake_anthropic.queue(Hang(5), Hang(5))
    with pytest.raises(ProviderTimeout) as info:
        await run(
            provider(fake_anthropic, timeout_s=0.3, max_retries=1), LLMRequest.from_prompt("x")
        )
    assert info.value.attempts == 2


async def test_ping_only_stream_hits_the_idle_timeout(fake_anthropic: FakeAnthropic) -> None:
    # pings keep the socket busy (no httpx read timeout); the idle timeout still fires
    fake_anthropic.queue(text("hello world", fault=Fault("pings", after=3, seconds=5)))
    p = provider(fake_anthropic, timeout_s=5.0, idle_timeout_s=0.5, max_retries=0)
    with pytest.raises(ProviderTimeout):
        await run(p, LLMRequest.from_prompt("x"))


async def test_stall_then_success_marks_partial_text_for_discard(
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.queue(
        text("first try text", fault=Fault("stall", after=4, seconds=5)), text("second try")
    )
    events = await run(provider(fake_anthropic, timeout_s=0.4), LLMRequest.from_prompt("x"))
    atts = attempts(events)
    assert atts[0]["error"].startswith("ProviderTimeout") and atts[0]["discard_partial"] is True
    assert atts[1]["error"] is None and atts[1]["attempt"] == 2
    assert final(events).text == "second try"
    # deltas after the last attempt event before done rebuild the answer
    idx = max(i for i, e in enumerate(events) if e.kind == "attempt" and e.data["error"])
    assert "".join(e.text for e in events[idx:] if e.kind == "delta") == "second try"


async def test_truncated_stream_is_retried_then_raises(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue(text("cut short", fault=Fault("truncate", after=4)), text("whole"))
    events = await run(provider(fake_anthropic), LLMRequest.from_prompt("x"))
    assert final(events).text == "whole"
    assert attempts(events)[0]["error"].startswith("ProviderResponseError")

    fake_anthropic.queue(*(text("cut", fault=Fault("truncate", after=3)) for _ in range(2)))
    with pytest.raises(ProviderResponseError, match="truncated"):
        await run(provider(fake_anthropic, max_retries=1), LLMRequest.from_prompt("x"))


async def test_error_event_mid_stream(fake_anthropic: FakeAnthropic) -> None:
    fault = Fault("error_event", after=4, error_type="overloaded_error")
    fake_anthropic.queue(text("partial answer", fault=fault), text("recovered"))
    events = await run(provider(fake_anthropic), LLMRequest.from_prompt("x"))
    assert final(events).text == "recovered"
    first = attempts(events)[0]
    assert first["error"].startswith("ProviderOverloaded") and first["discard_partial"] is True

    fault = Fault("error_event", after=2, error_type="api_error")
    fake_anthropic.queue(text("a", fault=fault), text("b", fault=fault))
    with pytest.raises(ProviderResponseError):
        await run(provider(fake_anthropic, max_retries=1), LLMRequest.from_prompt("x"))


async def test_reset_mid_stream_is_retried(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue(text("some text here", fault=Fault("reset", after=4)), text("again"))
    events = await run(provider(fake_anthropic), LLMRequest.from_prompt("x"))
    assert final(events).text == "again"
    assert attempts(events)[0]["error"].startswith("ProviderConnectionError")


# --- tool loop -----------------------------------------------------------------------------


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    last = body["messages"][-1]
    assert last["role"] == "user"
    return [b for b in last["content"] if b["type"] == "tool_result"]


async def test_tool_loop_reads_workspace_file(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("the secret word is PINEAPPLE\n")
    fake_anthropic.queue(
        tool_use("Read", {"path": "notes.txt"}, id="toolu_a", input=100, output=20),
        text("The word is PINEAPPLE.", input=150, output=10, cache_read=100),
    )
    req = LLMRequest.from_prompt(
        "What is the secret word?",
        model="haiku",
        allowed_tools=("Read", "Glob", "Bash"),
        workspace=tmp_path,
        max_turns=3,
    )
    events = await run(provider(fake_anthropic), req)
    resp = final(events)
    assert resp.text == "The word is PINEAPPLE."
    assert resp.turns == 2
    assert resp.usage == Usage(input=250, output=30, cache_read=100)
    # haiku-4-5: 250*1e-6 + 30*5e-6 + 100*1e-7
    assert resp.cost == Decimal("0.00025") + Decimal("0.00015") + Decimal("0.00001")

    first, second = fake_anthropic.bodies
    assert {t["name"] for t in first["tools"]} == {"Read", "Glob"}  # Bash is never offered
    assert "Bash" in first["system"]
    [result] = tool_results(second)
    assert result["tool_use_id"] == "toolu_a"
    assert "PINEAPPLE" in result["content"] and not result.get("is_error")
    assistant = second["messages"][-2]
    assert assistant["role"] == "assistant"
    assert any(
        b["type"] == "tool_use" and b["input"] == {"path": "notes.txt"}
        for b in assistant["content"]
    )
    kinds = [e.kind for e in events]
    assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("done")
    assert len(attempts(events)) == 2


async def test_tool_loop_refuses_paths_outside_workspace(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    fake_anthropic.queue(
        tool_use("Read", {"path": "../etc/passwd"}),
        tool_use("Bash", {"command": "cat /etc/passwd"}, id="toolu_b"),
        text("I cannot read that."),
    )
    req = LLMRequest.from_prompt(
        "Read ../etc/passwd", allowed_tools=("Read",), workspace=tmp_path, max_turns=5
    )
    resp = final(await run(provider(fake_anthropic), req))
    assert resp.text == "I cannot read that."
    [refused] = tool_results(fake_anthropic.bodies[1])
    assert refused["is_error"] is True and "outside the workspace" in refused["content"]
    [bash] = tool_results(fake_anthropic.bodies[2])
    assert bash["is_error"] is True and "not available" in bash["content"]


async def test_max_turns_is_honoured(fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    fake_anthropic.queue(*(tool_use("LS", {"path": "."}, id=f"t{i}") for i in range(5)))
    req = LLMRequest.from_prompt("loop", allowed_tools=("LS",), workspace=tmp_path, max_turns=2)
    resp = final(await run(provider(fake_anthropic), req))
    assert resp.turns == 2
    assert resp.stop_reason == "max_turns"
    assert len(fake_anthropic.requests) == 2
    assert "a.txt" in tool_results(fake_anthropic.bodies[1])[0]["content"]


async def test_disallowed_tools_and_no_tools_without_allowed(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    fake_anthropic.queue(text("one"), text("two"))
    req = LLMRequest.from_prompt(
        "x", allowed_tools=("Read", "Write"), disallowed_tools=("Write",), workspace=tmp_path
    )
    await run(provider(fake_anthropic), req)
    await run(provider(fake_anthropic), LLMRequest.from_prompt("y"))
    assert [t["name"] for t in fake_anthropic.bodies[0]["tools"]] == ["Read"]
    assert "tools" not in fake_anthropic.bodies[1]


async def test_request_options_and_conversation_are_sent(fake_anthropic: FakeAnthropic) -> None:
    from elexirion_app.core.types import ChatMessage

    fake_anthropic.queue(text("third"))
    request = LLMRequest(
        messages=(
            ChatMessage("user", "one"),
            ChatMessage("assistant", "two"),
            ChatMessage("user", "three?"),
        ),
        model="claude-opus-4-20250514",
        temperature=0.2,
        top_k=5,
    )
    resp = final(await run(provider(fake_anthropic), request))
    assert resp.model == "claude-opus-4-7"  # retired id mapped
    [body] = fake_anthropic.bodies
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    # anthropic 2.x's Messages API has no sampling parameters: they are not sent
    assert not {"temperature", "top_k", "top_p"} & set(body)
    assert "system" not in body and "tools" not in body


async def test_request_max_retries_overrides_the_provider(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue(server_error(), text("never reached"))
    with pytest.raises(ProviderResponseError) as info:
        await run(provider(fake_anthropic), LLMRequest.from_prompt("x", max_retries=0))
    assert info.value.status == 500 and info.value.attempts == 1
    assert len(fake_anthropic.requests) == 1


def test_fake_server_runs_in_a_thread_for_sync_callers() -> None:
    import asyncio

    fake = FakeAnthropic().start_in_thread()
    try:
        fake.queue(text("from a thread"))
        p = AnthropicProvider("k", base_url=fake.url, timeout_s=2)
        events = asyncio.run(run(p, LLMRequest.from_prompt("x")))
        assert final(events).text == "from a thread"
    finally:
        fake.stop_thread()


async def test_tool_loop_retry_inside_a_turn_counts_only_the_good_attempt(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    (tmp_path / "f.txt").write_text("content")
    fake_anthropic.queue(
        tool_use("Read", {"path": "f.txt"}, input=100, output=10),
        text("broken", input=999, output=999, fault=Fault("truncate", after=3)),
        text("done", input=200, output=20),
    )
    req = LLMRequest.from_prompt("x", allowed_tools=("Read",), workspace=tmp_path)
    events = await run(provider(fake_anthropic), req)
    resp = final(events)
    assert resp.text == "done" and resp.turns == 2
    assert resp.usage == Usage(input=300, output=30)
    atts = attempts(events)
    assert [(a["turn"], a["attempt"], bool(a["error"])) for a in atts] == [
        (1, 1, False),
        (2, 2, True),
        (2, 3, False),
    ]
    assert atts[1]["usage"]["input"] == 999  # the failed attempt keeps its own usage
    # the retried turn re-sends the same conversation (with the tool result)
    assert fake_anthropic.bodies[1]["messages"] == fake_anthropic.bodies[2]["messages"]
