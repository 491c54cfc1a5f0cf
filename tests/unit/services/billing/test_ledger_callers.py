"""Every caller books exactly one ledger row per provider attempt (issue 10): the chat turn
(router + answer), genesis, pipeline steps (failed attempts in the step and run totals);
deleting a conversation unlinks its rows and keeps them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from elexirion_app.agent.genesis import generate_pipeline
from elexirion_app.db.engine import get_engine, session_scope
from elexirion_app.db.models import LLMCall, Run, RunRollup, StepRun, UsageRollup
from elexirion_app.pipelines.loader import load_text
from elexirion_app.providers.anthropic_provider import AnthropicProvider
from elexirion_app.services.accounts import auth
from elexirion_app.services.billing import meter
from elexirion_app.services.chat import chat
from elexirion_app.services.chat.agent_turn import agent_reply
from elexirion_app.services.runs.run_records import run_recorded
from tests.fakes import fake_anthropic
from tests.fakes.base import Fault
from tests.fakes.fake_anthropic import FakeAnthropic

FAST = {"timeout_s": 2.0, "retry_base_delay_s": 0.01, "retry_max_delay_s": 0.02}
ONE_STEP = """
workflow:
  name: priced
  steps:
    - name: ask
      type: claude
      claude_options: {model: claude-sonnet-4-5, max_tokens: 50}
      prompt: [{type: static, content: "say hi"}]
"""


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    server = FakeAnthropic()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def _live(fake: FakeAnthropic, retries: int = 2) -> AnthropicProvider:
    return AnthropicProvider("k", base_url=fake.url, max_retries=retries, **FAST)


def _user(email: str = "a@example.com") -> int:
    with session_scope() as s:
        uid = auth.register(s, email, "password-1").id
    assert uid is not None
    return uid


def _rows() -> list[LLMCall]:
    with Session(get_engine()) as s:
        return list(s.exec(select(LLMCall).order_by(LLMCall.id)).all())


async def test_a_chat_turn_books_the_router_and_the_answer_then_delete_unlinks(
    db_url: str, fake: FakeAnthropic
) -> None:
    decision = {
        "kind": "answer",
        "pipeline": None,
        "inputs": {},
        "confidence": 0.95,
        "reason": "a question",
        "question": None,
    }
    fake.queue(
        fake_anthropic.text(json.dumps(decision), input=300, output=40),
        fake_anthropic.text("Hello there, friend.", input=120, output=9),
    )
    uid = _user()
    with session_scope() as s:
        turn = chat.start_turn(s, uid, None, "what is a pipeline?")
    events = [e async for e in agent_reply(uid, turn.assistant_message.id, _live(fake))]
    assert events[-1].final is not None and events[-1].final.status == "complete"
    rows = _rows()
    assert len(rows) == len(fake.requests) == 2
    assert [r.caller for r in rows] == ["router", "chat"]
    assert {r.user_id for r in rows} == {uid}
    assert {r.conversation_id for r in rows} == {turn.conversation_id}
    assert all(r.cost_usd > 0 for r in rows)
    with session_scope() as s:
        chat.delete_conversation(s, uid, turn.conversation_id)
    kept = _rows()
    assert len(kept) == 2 and {r.conversation_id for r in kept} == {None}
    assert {r.user_id for r in kept} == {uid}  # still the user's spend


async def test_a_stopped_reply_books_its_tokens_at_their_real_cost(
    db_url: str, fake: FakeAnthropic
) -> None:
    fake.queue(fake_anthropic.text("word " * 300, input=700, output=600))
    uid = _user()
    with session_scope() as s:
        turn = chat.start_turn(s, uid, None, "talk a lot")
    reply_id = turn.assistant_message.id
    seen = 0
    final = None
    async for chunk in chat.stream_reply(uid, reply_id, _live(fake)):
        if chunk.final is not None:
            final = chunk.final
            continue
        seen += 1
        if seen == 4:
            with session_scope() as s:
                chat.request_stop(s, uid, reply_id)
    assert final is not None and final.status == "stopped"
    [row] = _rows()  # booked before the reply was saved
    assert row.status == "stopped" and row.caller == "chat" and row.input_tokens == 700
    assert row.cost_usd == Decimal("0.000003") * 700 + Decimal("0.000015") * row.output_tokens


async def test_genesis_books_every_attempt_and_its_cost_is_their_sum(
    db_url: str, fake: FakeAnthropic, tmp_path: Path
) -> None:
    fake.queue(*(fake_anthropic.text("no yaml here", input=500, output=50) for _ in range(2)))
    result = await generate_pipeline(
        "a pipeline that says hi", meter.bind(_live(fake), caller="chat"), max_tries=2,
        base_dir=tmp_path,
    )  # fmt: skip
    rows = _rows()
    assert not result.valid and len(rows) == len(fake.requests) == 2
    assert {r.caller for r in rows} == {"genesis"}
    assert result.cost == sum((r.cost_usd for r in rows), Decimal("0")) > 0


async def test_pipeline_steps_book_each_attempt_and_totals_include_the_failed_one(
    db_url: str, fake: FakeAnthropic, tmp_path: Path
) -> None:
    fake.queue(
        # dies mid-stream after message_start: its input tokens were used and are billed
        fake_anthropic.text("partial", input=900, output=30, fault=Fault("error_event", after=3)),
        fake_anthropic.text("hi!", input=900, output=30),
    )
    uid = _user()
    outcome = await run_recorded(
        load_text(ONE_STEP),
        pipeline_yaml=ONE_STEP,
        provider_for=lambda _kind: _live(fake),
        user_id=uid,
        workspace=tmp_path / "ws",
        output_dir=tmp_path / "out",
        heartbeat_s=0,
    )
    assert outcome.status == "succeeded"
    rows = _rows()
    assert len(rows) == len(fake.requests) == 2
    assert [r.status for r in rows] == ["error", "ok"] and rows[0].cost_usd > 0
    assert {(r.caller, r.run_id, r.step_name, r.pipeline, r.user_id) for r in rows} == {
        ("step", outcome.run_id, "ask", "priced", uid)
    }
    total = sum((r.cost_usd for r in rows), Decimal("0"))
    with Session(get_engine()) as s:
        run = s.get(Run, outcome.run_id)
        step = s.exec(select(StepRun).where(StepRun.name == "ask")).one()
        rolled = s.exec(select(RunRollup)).one()
        usage = s.exec(select(UsageRollup)).one()
    assert run is not None and run.cost_usd == total == outcome.cost
    assert step.cost_usd == total  # the failed attempt counts in the step too
    assert (rolled.runs, rolled.status, rolled.pipeline, rolled.cost_usd) == (
        1, "succeeded", "priced", total
    )  # fmt: skip
    assert (usage.calls, usage.errors, usage.cost_usd, usage.pipeline) == (2, 1, total, "priced")


async def test_an_offline_run_costs_nothing_anywhere(db_url: str, tmp_path: Path) -> None:
    from elexirion_app.providers.mock import MockProvider

    outcome: Any = await run_recorded(
        load_text(ONE_STEP),
        pipeline_yaml=ONE_STEP,
        provider_for=lambda _kind: MockProvider(),
        user_id=_user(),
        workspace=tmp_path / "ws",
        output_dir=tmp_path / "out",
        heartbeat_s=0,
    )
    [row] = _rows()
    assert outcome.cost == 0 and outcome.steps["ask"]["cost"] == 0
    assert row.offline and row.cost_usd == 0 and row.live_estimate_usd


def test_an_attempt_of_a_conversation_deleted_mid_reply_is_booked_unlinked(db_url: str) -> None:
    """The reply's attempt lands after its conversation was deleted: its row stays in the
    ledger (unlinked, the user's spend), and the live conversation in the same batch keeps
    its link and its cost booking."""
    from elexirion_app.db.billing_models import ConversationBooking
    from elexirion_app.services.billing import ledger

    uid = _user()
    with session_scope() as s:
        live = chat.start_turn(s, uid, None, "kept").conversation_id
        gone = chat.start_turn(s, uid, None, "deleted").conversation_id
    with session_scope() as s:
        chat.delete_conversation(s, uid, gone)
    ledger.record_many(
        [
            ledger.Attempt("chat", "anthropic", "m", user_id=uid, conversation_id=gone,
                           cost_usd=Decimal("0.2")),
            ledger.Attempt("chat", "anthropic", "m", user_id=uid, conversation_id=live,
                           cost_usd=Decimal("0.1")),
        ]
    )  # fmt: skip
    rows = _rows()
    assert [(r.conversation_id, r.cost_usd) for r in rows] == [
        (None, Decimal("0.2")),
        (live, Decimal("0.1")),
    ]
    with Session(get_engine()) as s:
        booked = {b.conversation_id: b.cost_usd for b in s.exec(select(ConversationBooking))}
    assert booked == {live: Decimal("0.1")}
    with pytest.raises(Exception, match="FOREIGN KEY"):  # another broken link still fails
        ledger.record(ledger.Attempt("step", "anthropic", "m", user_id=uid, run_id="nope"))
