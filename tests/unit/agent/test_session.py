"""Multi-turn memory: trimming to a token budget, run summaries, and the executor's session
store adapter (used by ``session_context`` / ``claude_continue`` prompt parts)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from elexirion_app.agent.session import (
    RunSummary,
    build_context,
    make_session_store,
    session_text,
    summarise_run,
)
from elexirion_app.core.errors import NotFound
from elexirion_app.core.types import ChatMessage, LLMRequest, StreamEvent
from elexirion_app.pipelines.executor import RunOutcome, run_pipeline
from elexirion_app.pipelines.loader import load_text
from elexirion_app.providers.mock import MockProvider, estimate_tokens


def _conversation(turns: int, size: int = 200) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for i in range(turns):
        out.append(ChatMessage("user", f"question {i} " + "q" * size))
        out.append(ChatMessage("assistant", f"answer {i} " + "a" * size))
    out.append(ChatMessage("user", "the current question"))
    return out


def _tokens(messages: list[ChatMessage]) -> int:
    return sum(estimate_tokens(m.content) for m in messages)


def test_everything_fits_unchanged() -> None:
    messages = _conversation(2, size=10)
    assert build_context(messages, (), budget_tokens=10_000) == messages


@pytest.mark.parametrize("budget", [30, 120, 300, 1000])
def test_trimming_keeps_the_newest_within_the_budget(budget: int) -> None:
    messages = _conversation(10)
    context = build_context(messages, (), budget_tokens=budget)
    assert _tokens(context) <= budget
    # The current message is last and whole (the context block may be prefixed to it).
    assert context[-1].role == "user"
    assert context[-1].content.endswith("\n\nthe current question") or context[-1] == messages[-1]
    assert context[0].role == "user"
    # The kept turns are the newest ones, whole and in order.
    kept = [m for m in context[:-1] if m in messages]
    if kept:
        start = messages.index(kept[0])
        assert kept == messages[start:-1]
    if budget >= 300:
        assert "answer 9" in context[-2].content
        assert "earlier message(s) omitted" in context[0].content
    if budget == 1000:
        # Room to spare: the note quotes the newest questions that were left out.
        dropped = [m for m in messages[:-1] if m not in context and m.role == "user"]
        assert "earlier you asked" in context[0].content
        assert dropped[-1].content[:20] in context[0].content


def test_an_over_budget_current_message_is_truncated_with_a_marker() -> None:
    big = "start " + "x" * 5000 + " the end"
    messages = [
        ChatMessage("user", "old"),
        ChatMessage("assistant", "older"),
        ChatMessage("user", big),
    ]
    (only,) = build_context(messages, (), budget_tokens=200)
    assert estimate_tokens(only.content) <= 200
    assert only.content.startswith("start ") and only.content.endswith(" the end")
    assert "characters cut to fit the context" in only.content


def test_run_summaries_are_included_newest_first_within_their_share() -> None:
    runs = [
        RunSummary(
            "code_analysis",
            "succeeded",
            {"report": "3 findings " + "z" * 400},
            Decimal("0.0123"),
            run_id="run-old",
        ),
        RunSummary(
            "refactoring",
            "failed",
            {},
            Decimal("0.002"),
            run_id="run-new",
            error="file 'a.py' does not exist",
        ),
    ]
    messages = _conversation(3, size=40)
    context = build_context(messages, runs, budget_tokens=2000)
    block = context[0].content
    assert block.startswith("Context from earlier in this conversation:")
    assert "Run of pipeline 'code_analysis': succeeded, cost $0.0123" in block
    assert "Run of pipeline 'refactoring': failed" in block and "does not exist" in block
    assert block.index("code_analysis") < block.index("refactoring")  # oldest first
    assert context[-1] == messages[-1]
    assert _tokens(context) <= 2000
    # With a small budget only the newest run summary fits.
    small = build_context(messages, runs, budget_tokens=200)
    assert _tokens(small) <= 200
    text = "\n".join(m.content for m in small)
    assert "refactoring" in text and "code_analysis" not in text


def test_roles_alternate_after_the_context_block() -> None:
    messages = _conversation(3, size=40)
    context = build_context(messages, ["a note about an earlier run"], budget_tokens=90)
    roles = [m.role for m in context]
    assert roles[0] == "user"
    assert all(a != b for a, b in itertools.pairwise(roles))


def test_summarise_run_of_a_real_outcome() -> None:
    outcome = RunOutcome(
        run_id="1234567890abcdef",
        status="succeeded",
        error=None,
        steps={
            "list": {"files": ["a.py"]},
            "analyse": {"text": "Found  two\nbugs.", "success": True},
            "report": {"text": "# Report\n" + "r" * 1000, "success": True},
            "skipped": {"success": True, "skipped": True},
        },
        cost=Decimal("0.0042"),
        pipeline="code_analysis",
    )
    summary = summarise_run(outcome)
    assert summary.pipeline == "code_analysis" and summary.cost == Decimal("0.0042")
    assert list(summary.outputs) == ["analyse", "report", "skipped"]
    text = summary.text()
    assert "run 12345678" in text
    assert "analyse: Found two bugs." in text
    assert "skipped: (skipped)" in text
    assert len(summary.outputs["report"]) <= 240
    assert RunSummary.from_dict(summary.to_dict()) == summary
    assert RunSummary.from_dict({"cost": "not a number"}).cost == Decimal("0")


def test_session_text_formats_turns() -> None:
    messages = [
        ChatMessage("user", "hi"),
        ChatMessage("assistant", "hello"),
        ChatMessage("user", "bye"),
    ]
    assert session_text(messages) == "User: hi\n\nAssistant: hello\n\nUser: bye"
    assert session_text(messages, last_n=1) == "User: bye"
    assert session_text(messages, last_n=0) == ""


async def test_session_store_adapter_sync_async_and_unknown() -> None:
    conversations = {"c1": [ChatMessage("user", "x" * 4000), ChatMessage("user", "recent")]}

    def load(session_id: str) -> list[ChatMessage]:
        if session_id not in conversations:
            raise NotFound("This conversation does not exist.")
        return conversations[session_id]

    store = make_session_store(load, budget_tokens=100)
    assert store("c1") == "User: recent"  # the old, big turn does not fit the budget
    assert store("nope") == ""

    async def aload(session_id: str) -> list[ChatMessage]:
        return load(session_id)

    astore = make_session_store(aload)
    pending = astore("c1")
    assert not isinstance(pending, str)
    assert (await pending).endswith("User: recent")
    missing = astore("nope")
    assert not isinstance(missing, str) and await missing == ""


class _CapturingProvider(MockProvider):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[LLMRequest] = []

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        async for event in super().stream(request):
            yield event


async def test_the_store_feeds_session_context_parts_of_a_real_run(tmp_path: Path) -> None:
    doc = load_text(
        """
workflow:
  name: follow_up
  steps:
    - name: answer
      type: claude
      prompt:
        - type: session_context
          session_id: chat-7
        - type: claude_continue
          session_id: chat-7
          new_prompt: "Now summarise that."
"""
    )
    history = {
        "chat-7": [
            ChatMessage("user", "analyze my code"),
            ChatMessage("assistant", "Two bugs in a.py."),
        ]
    }
    provider = _CapturingProvider()
    outcome = await run_pipeline(
        doc,
        workspace=tmp_path / "ws",
        output_dir=tmp_path / "out",
        provider_for=lambda kind: provider,
        session_store=make_session_store(lambda sid: history.get(sid, [])),
    )
    assert outcome.status == "succeeded", outcome.error
    (request,) = provider.requests
    expected = "User: analyze my code\n\nAssistant: Two bugs in a.py."
    assert request.prompt == f"{expected}\n{expected}\nNow summarise that."
