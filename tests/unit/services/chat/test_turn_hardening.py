"""Issue 7: replies answered once (1), genesis names confined (3), replies never left
streaming (10), the provider that has a key answers (13), strict ids and clean titles (15)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from elexirion_app.config import get_settings
from elexirion_app.core.errors import Conflict, WorkspaceError
from elexirion_app.core.ids import parse_id
from elexirion_app.core.paths import pipeline_file
from elexirion_app.core.text import clean_title
from elexirion_app.core.types import LLMRequest, StreamEvent
from elexirion_app.db.engine import session_scope
from elexirion_app.db.models import LLMCall, Message, Run
from elexirion_app.providers.choice import chat_choice
from elexirion_app.providers.mock import MockProvider
from elexirion_app.services import startup, workspace
from elexirion_app.services.accounts import auth
from elexirion_app.services.chat import agent_turn, chat


def _user(email: str = "turns@example.com") -> int:
    with session_scope() as s:
        return auth.register(s, email, "password-1").id


def _start(uid: int, text: str) -> int:
    with session_scope() as s:
        return chat.start_turn(s, uid, None, text).assistant_message.id


async def _drain(uid: int, reply: int, provider: object = None) -> list[agent_turn.AgentEvent]:
    return [e async for e in agent_turn.agent_reply(uid, reply, provider or MockProvider())]


async def test_a_reply_is_answered_once_and_a_replay_changes_nothing(db_url: str) -> None:
    uid = _user()
    workspace.save_file(uid, "app.py", b"print(1)\n")
    reply = _start(uid, "analyze my code quality")
    events = await _drain(uid, reply)
    assert events[-1].final is not None and events[-1].final.status == "complete"
    with session_scope() as s:
        runs, calls = len(s.exec(select(Run)).all()), len(s.exec(select(LLMCall)).all())
        content = s.get(Message, reply).content  # type: ignore[union-attr]
    for _ in range(3):
        with pytest.raises(Conflict):
            await _drain(uid, reply)
    with session_scope() as s:
        assert len(s.exec(select(Run)).all()) == runs
        assert len(s.exec(select(LLMCall)).all()) == calls
        assert s.get(Message, reply).content == content  # type: ignore[union-attr]
    with pytest.raises(Conflict):  # the service refuses to overwrite a saved reply
        chat.save_reply(uid, reply, 1, "x", "complete", "m", "", None, 0, 0.0, None)  # type: ignore[arg-type]


async def test_concurrent_claims_answer_once(db_url: str) -> None:
    uid = _user()
    reply = _start(uid, "hello there")
    results = await asyncio.gather(*(_drain(uid, reply) for _ in range(5)), return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, list)) == 1
    assert sum(1 for r in results if isinstance(r, Conflict)) == 4


class _Broken(MockProvider):
    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        raise RuntimeError("a bug, not an ElexirionError")
        yield  # pragma: no cover


async def test_any_failure_ends_the_reply_with_a_saved_clear_error(db_url: str) -> None:
    uid = _user()
    reply = _start(uid, "hello there")
    events = await _drain(uid, reply, _Broken())
    final = events[-1].final
    assert final is not None and final.status == "error"
    assert "Error" in final.content and "Traceback" not in final.content
    with session_scope() as s:
        assert s.get(Message, reply).status == "error"  # type: ignore[union-attr]


def test_startup_sweep_marks_orphans_interrupted(db_url: str) -> None:
    uid = _user()
    reply = _start(uid, "hello there")
    assert startup.sweep() == 1
    with session_scope() as s:
        msg = s.get(Message, reply)
        assert msg is not None and msg.status == "interrupted" and "Interrupted" in msg.content
    assert startup.sweep() == 0


class _Slow(MockProvider):
    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        await asyncio.sleep(30)
        yield StreamEvent("delta", text="late")  # pragma: no cover


async def test_stop_cancels_a_running_pipeline(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from elexirion_app.services.runs import pipeline_runs

    uid = _user()
    workspace.save_file(uid, "app.py", b"print(1)\n")
    reply = _start(uid, "analyze my code quality")
    real_get = pipeline_runs.get_provider
    monkeypatch.setattr(pipeline_runs, "get_provider", lambda kind, **kw: _Slow())
    seen: list[agent_turn.AgentEvent] = []

    async def consume() -> None:
        async for e in agent_turn.agent_reply(uid, reply, MockProvider()):
            seen.append(e)

    task = asyncio.create_task(consume())
    for _ in range(200):
        await asyncio.sleep(0.05)
        if any(e.kind == "progress" for e in seen):
            break
    with session_scope() as s:
        chat.request_stop(s, uid, reply)
    await asyncio.wait_for(task, 20)
    monkeypatch.setattr(pipeline_runs, "get_provider", real_get)
    final = seen[-1].final
    assert final is not None and final.status == "stopped" and "cancelled" in final.content
    with session_scope() as s:
        run = s.exec(select(Run)).one()
        assert run.status in ("interrupted", "cancelled")  # resumable


def test_genesis_names_cannot_leave_the_drafts_folder(tmp_path: Path) -> None:
    drafts = tmp_path / "pipelines" / "7"
    drafts.mkdir(parents=True)
    shipped = tmp_path / "shipped"
    for name in ("../../../pipelines/code_analysis", "../8/x", "/etc/passwd", "a\x00b", "..", ""):
        path = pipeline_file(drafts, name, read_only=(shipped,))
        assert path.parent == drafts.resolve() and path.suffix == ".yaml"
    assert len(pipeline_file(drafts, "x" * 5000).name) <= 64 + 5
    with pytest.raises(WorkspaceError):
        pipeline_file(shipped, "code_analysis", read_only=(shipped,))


def test_the_provider_with_a_key_answers_the_chat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", "g-key")
    get_settings.cache_clear()
    try:
        choice = chat_choice()
        assert choice.kind == "gemini" and not choice.offline
        assert choice.describe().startswith("Gemini")
        monkeypatch.delenv("GEMINI_API_KEY")
        monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
        get_settings.cache_clear()
        assert chat_choice().describe() == "offline demo model"
    finally:
        get_settings.cache_clear()


def test_ids_are_parsed_strictly() -> None:
    assert parse_id("42") == 42 and parse_id(42) == 42
    for bad in ("²", 10**30, "1e3", " ", "-1", 0, True, None, {"a": 1}, 3.0, "x" * 10**6):
        assert parse_id(bad) is None


def test_titles_lose_controls_and_bidi_overrides() -> None:
    assert clean_title("evil\u202etxt.exe\x00\n\tnext", 80) == "eviltxt.exe next"
    assert clean_title("\u2066\u2069", 80) == ""
    assert clean_title(10**30, 80) == ""


async def test_renaming_with_only_bidi_controls_is_refused(db_url: str) -> None:
    uid = _user()
    with session_scope() as s:
        turn = chat.start_turn(s, uid, None, "\u202ehello")
    with session_scope() as s:
        assert chat.list_conversations(s, uid)[0].title == "hello"
        from elexirion_app.core.errors import InputError

        with pytest.raises(InputError):
            chat.rename_conversation(s, uid, turn.conversation_id, "\u202e\u202e")
