from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from elexirion_app.core.types import LLMRequest, StreamEvent
from elexirion_app.db.engine import session_scope
from elexirion_app.db.models import LLMCall, Run, StepRun
from elexirion_app.providers.mock import MockProvider
from elexirion_app.services import workspace
from elexirion_app.services.accounts import auth
from elexirion_app.services.chat import agent_turn, chat
from elexirion_app.services.chat.agent_turn import AgentEvent
from elexirion_app.services.runs import pipeline_runs


def _user() -> int:
    with session_scope() as s:
        return auth.register(s, "agent@example.com", "password-1").id


async def _turn(user_id: int, cid: int | None, text: str) -> tuple[int, list[AgentEvent]]:
    with session_scope() as s:
        turn = chat.start_turn(s, user_id, cid, text)
    events = [
        e async for e in agent_turn.agent_reply(user_id, turn.assistant_message.id, MockProvider())
    ]
    assert events[-1].kind == "final" and events[-1].final is not None
    return turn.conversation_id, events


async def test_analyze_request_runs_the_pipeline_with_live_progress_and_a_report(
    db_url: str,
) -> None:
    uid = _user()
    workspace.save_file(uid, "app.py", b"def f(x):\n    return eval(x)\n")
    _, events = await _turn(uid, None, "analyze my code quality")
    decision = next(e for e in events if e.kind == "decision")
    assert decision.data["decision"]["pipeline"] == "code_analysis"
    assert "Routed to **code_analysis**" in decision.data["note"]
    progress = [e.data for e in events if e.kind == "progress"]
    assert progress and progress[-1]["status"] == "succeeded"
    assert [s["status"] for s in progress[-1]["steps"]] == ["succeeded"] * 3
    final = events[-1].final
    assert final is not None and final.status == "complete" and final.run_id
    assert "code_analysis — succeeded" in final.content
    assert "| analyse | succeeded |" in final.content
    with session_scope() as s:
        run = s.get(Run, final.run_id)
        assert run is not None and run.user_id == uid and run.status == "succeeded"
        assert run.workspace == str(workspace.workspace_dir(uid).resolve())
        steps = s.exec(select(StepRun).where(StepRun.run_id == final.run_id)).all()
        assert {st.status for st in steps} == {"succeeded"}
        listed = next(st for st in steps if st.name == "list_sources").result
        assert "app.py" in str(listed)
        calls = s.exec(select(LLMCall)).all()
        # The run's own calls only: the chat reply does not double-count them.
        assert calls and all(c.run_id == final.run_id for c in calls)


async def test_override_reruns_with_the_named_pipeline(db_url: str) -> None:
    uid = _user()
    cid, _ = await _turn(uid, None, "analyze my code quality")
    _, events = await _turn(uid, cid, "no, use the refactoring pipeline")
    decision = next(e for e in events if e.kind == "decision").data["decision"]
    assert decision["pipeline"] == "refactoring" and decision["source"] == "override"


async def test_small_talk_is_answered_with_the_offline_model(db_url: str) -> None:
    uid = _user()
    _, events = await _turn(uid, None, "hi, how are you?")
    final = events[-1].final
    assert final is not None and "offline demo model" in final.content
    assert not [e for e in events if e.kind == "progress"]


async def test_genesis_writes_a_valid_draft_that_runs_offline(db_url: str) -> None:
    uid = _user()
    _, events = await _turn(
        uid, None, "create a pipeline that summarises a changelog and drafts release notes"
    )
    final = events[-1].final
    assert final is not None and final.status == "complete", final and final.content
    assert "It validates" in final.content and "succeeded" in final.content
    drafts = list(agent_turn.drafts_dir(uid).glob("*.yaml"))
    assert len(drafts) == 1
    names = [e.name for e in agent_turn.catalogue_for(uid)]
    assert drafts[0].stem in names or any(n in final.content for n in names)


async def test_session_context_parts_read_this_users_conversation(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid = _user()
    cid, _ = await _turn(uid, None, "remember the word PINEAPPLE")
    pipeline = tmp_path / "ctx.yaml"
    pipeline.write_text(
        "workflow:\n"
        "  name: ctx\n"
        "  steps:\n"
        "    - name: recall\n"
        "      type: claude\n"
        "      prompt:\n"
        "        - type: session_context\n"
        "          session_id: current\n"
        "        - type: static\n"
        "          content: What word?\n"
    )
    prompts: list[str] = []

    class Spy(MockProvider):
        async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
            prompts.append(request.prompt)
            async for event in super().stream(request):
                yield event

    monkeypatch.setattr(pipeline_runs, "get_provider", lambda kind, **_: Spy())
    here = await pipeline_runs.run_for_user(uid, pipeline, {}, conversation_id=cid)
    elsewhere = await pipeline_runs.run_for_user(uid, pipeline, {}, conversation_id=None)
    assert here.succeeded and elsewhere.succeeded
    assert "PINEAPPLE" in prompts[0] and "What word?" in prompts[0]
    assert "PINEAPPLE" not in prompts[1]


class _Recording(MockProvider):
    """The offline model, keeping what each call was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[LLMRequest] = []

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        self.sent.append(request)
        async for event in super().stream(request):
            yield event


async def test_a_long_message_late_in_a_conversation_keeps_the_earlier_turns(
    db_url: str,
) -> None:
    """A message of nearly the longest accepted length, sent as a 4th turn, reaches the model
    whole and after the three earlier turns (the context budget was 6,000 tokens, ~24,000
    characters: such a message was cut in the middle and every earlier turn dropped)."""
    uid = _user()
    cid = None
    for n in (1, 2, 3):
        cid, _ = await _turn(uid, cid, f"hi, this is turn {n} of this chat")
    long_text = ("please keep all of this " * 1_250).strip()  # ~30,000 characters
    with session_scope() as s:
        turn = chat.start_turn(s, uid, cid, long_text)
    provider = _Recording()
    async for _event in agent_turn.agent_reply(uid, turn.assistant_message.id, provider):
        pass
    answer = provider.sent[-1]  # the reply's call (the router came first)
    assert answer.messages[-1].content == long_text
    sent = "\n".join(m.content for m in answer.messages)
    assert all(f"turn {n} of this chat" in sent for n in (1, 2, 3))
    assert "characters cut to fit" not in sent


async def test_analyze_with_an_empty_workspace_says_so_before_any_model_call(
    db_url: str,
) -> None:
    uid = _user()
    provider = _Recording()
    with session_scope() as s:
        turn = chat.start_turn(s, uid, None, "analyze my code quality")
    events = [e async for e in agent_turn.agent_reply(uid, turn.assistant_message.id, provider)]
    final = events[-1].final
    assert final is not None and final.run_id
    assert "upload the files to your workspace first" in final.content
    with session_scope() as s:
        run = s.get(Run, final.run_id)
        assert run is not None and run.status == "failed"
        assert not s.exec(select(LLMCall).where(LLMCall.run_id == final.run_id)).all()


def test_the_card_of_a_known_pipeline_missing_an_input_names_it() -> None:
    from elexirion_app.agent.decision import RouteDecision

    lacking = RouteDecision(
        kind="clarify", pipeline="refactoring", missing_inputs=("file",), confidence=1.0
    )
    assert agent_turn.decision_note(lacking).startswith("**refactoring** needs more input")
    unsure = RouteDecision(kind="clarify", confidence=0.2)
    assert agent_turn.decision_note(unsure).startswith("Not sure which pipeline you mean")
