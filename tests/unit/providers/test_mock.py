from __future__ import annotations

from decimal import Decimal

from elexirion_app.core.types import ChatMessage, FunctionSpec, LLMRequest
from elexirion_app.providers.base import complete
from elexirion_app.providers.mock import MockProvider, mock_answer


def test_pipeline_ex_claude_mock_answers() -> None:
    def ask(p: str) -> tuple[str, Decimal]:
        text, cost, _ = mock_answer(LLMRequest.from_prompt(p, kind="claude"))
        return text, cost

    assert ask("simple test") == ("Mock response for simple test", Decimal("0.001"))
    assert ask("write Python please") == ("Mock Python code response", Decimal("0.002"))
    assert ask("a calculator") == ("Mock calculator implementation", Decimal("0.004"))
    assert ask("x" * 80) == ("Mock response for: " + "x" * 50 + "...", Decimal("0.001"))


def test_pipeline_ex_gemini_mock_answers_and_function_calls() -> None:
    req = LLMRequest.from_prompt(
        "make a plan", provider="gemini", kind="gemini", functions=(FunctionSpec("f"),)
    )
    text, cost, calls = mock_answer(req)
    assert text == '{"plan": "Mock implementation plan", "complexity": "medium"}'
    assert cost == Decimal("0.003")
    assert calls[0].name == "f" and calls[0].arguments["status"] == "completed"
    text, _, _ = mock_answer(
        LLMRequest.from_prompt("Analyze this", provider="gemini", kind="gemini")
    )
    assert "Mock analysis result" in text


def test_enhanced_mock_answer_reports_prompt_length_and_preset_cost() -> None:
    text, cost, _ = mock_answer(
        LLMRequest.from_prompt("abc", kind="claude_smart", preset="analysis")
    )
    assert text.startswith("Mock enhanced Claude response") and "3 characters" in text
    assert cost == Decimal("0.0015")


async def test_offline_chat_is_deterministic_honest_and_counts_tokens() -> None:
    req = LLMRequest(messages=(ChatMessage("user", "hello"),), kind="chat")
    events = [e async for e in MockProvider().stream(req)]
    deltas = [e.text for e in events if e.kind == "delta"]
    done = events[-1]
    assert done.kind == "done" and done.response is not None
    assert "".join(deltas) == done.response.text
    assert "offline demo model" in done.response.text
    assert (
        done.response.offline and done.response.usage.output > 0 and done.response.usage.input > 0
    )
    again = await complete(MockProvider(), req)
    assert again.text == done.response.text
