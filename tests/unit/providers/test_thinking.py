"""Extended thinking on the Anthropic provider: the request asks for it, thinking blocks are
parsed (never part of the answer), and thinking tokens are reported apart from output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elexirion_app.core import pricing
from elexirion_app.core.types import LLMRequest, LLMResponse, StreamEvent, Usage
from elexirion_app.providers.anthropic_provider import AnthropicProvider
from elexirion_app.providers.base import ThinkingRequest
from tests.fakes.fake_anthropic import FakeAnthropic, ToolUse, text, thinking


def provider(fake: FakeAnthropic) -> AnthropicProvider:
    return AnthropicProvider(
        "k", base_url=fake.url, timeout_s=2.0, retry_base_delay_s=0.001, retry_max_delay_s=0.002
    )


async def run(p: AnthropicProvider, request: LLMRequest) -> list[StreamEvent]:
    return [e async for e in p.stream(request)]


def final(events: list[StreamEvent]) -> LLMResponse:
    assert events[-1].response is not None
    return events[-1].response


async def test_thinking_is_requested_and_reported_tokens_are_kept_apart(
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.queue(
        thinking("Let me reason about this step by step.", "42", output=50, thinking_tokens=30)
    )
    request = ThinkingRequest.from_prompt(
        "hard question", model="sonnet", max_tokens=8000, thinking_budget=2048
    )
    events = await run(provider(fake_anthropic), request)

    [body] = fake_anthropic.bodies
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 8000
    resp = final(events)
    assert resp.text == "42"  # the thinking is not the answer
    assert "".join(e.text for e in events if e.kind == "delta") == "42"
    assert resp.usage == Usage(input=10, output=20, thinking=30)
    # thinking is billed as output: the split does not change the cost
    assert resp.cost == pricing.cost(resp.model, Usage(input=10, output=50))
    [attempt] = [e.data for e in events if e.kind == "attempt"]
    assert attempt["usage"]["thinking"] == 30 and attempt["usage"]["output"] == 20


async def test_thinking_tokens_are_estimated_when_the_api_gives_no_figure(
    fake_anthropic: FakeAnthropic,
) -> None:
    thought = "x" * 80  # ~20 tokens at 4 characters a token
    fake_anthropic.queue(thinking(thought, "answer", output=50))
    request = ThinkingRequest.from_prompt("q", thinking_budget=1024, max_tokens=4096)
    resp = final(await run(provider(fake_anthropic), request))
    assert resp.usage.thinking == 20
    assert resp.usage.output == 30
    assert resp.usage.output + resp.usage.thinking == 50


async def test_max_tokens_leaves_room_for_the_answer_above_the_budget(
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.queue(thinking("hmm", "ok"))
    request = ThinkingRequest.from_prompt("q", thinking_budget=4096, max_tokens=1000)
    await run(provider(fake_anthropic), request)
    [body] = fake_anthropic.bodies
    assert body["thinking"]["budget_tokens"] == 4096
    assert body["max_tokens"] == 5096  # budget_tokens must stay below max_tokens


async def test_no_thinking_unless_asked(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.queue(text("plain"), text("plain"))
    for request in (
        LLMRequest.from_prompt("q"),
        ThinkingRequest.from_prompt("q", thinking_budget=None),
    ):
        resp = final(await run(provider(fake_anthropic), request))
        assert resp.usage.thinking == 0
    assert all("thinking" not in body for body in fake_anthropic.bodies)


async def test_thinking_blocks_go_back_with_their_signature_in_the_tool_loop(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    (tmp_path / "f.txt").write_text("file content")
    fake_anthropic.queue(
        thinking(
            "I should read the file.",
            "Reading.",
            output=40,
            thinking_tokens=12,
            then_tool=ToolUse("Read", {"path": "f.txt"}),
        ),
        thinking("Now I know.", "It says file content.", output=30, thinking_tokens=8),
    )
    request = ThinkingRequest.from_prompt(
        "what is in f.txt?",
        allowed_tools=("Read",),
        workspace=tmp_path,
        thinking_budget=2048,
        max_tokens=8000,
    )
    resp = final(await run(provider(fake_anthropic), request))

    assert resp.text == "It says file content." and resp.turns == 2
    assert resp.usage.thinking == 20 and resp.usage.output == 50
    second: dict[str, Any] = fake_anthropic.bodies[1]
    assistant = second["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == {
        "type": "thinking",
        "thinking": "I should read the file.",
        "signature": "sig_fake_0123",
    }
    assert [b["type"] for b in assistant["content"]] == ["thinking", "text", "tool_use"]
