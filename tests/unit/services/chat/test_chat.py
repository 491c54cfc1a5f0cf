from __future__ import annotations

import pytest
from sqlmodel import select

from elexirion_app.core.errors import InputError, NotFound
from elexirion_app.db.engine import session_scope
from elexirion_app.db.models import LLMCall, Message
from elexirion_app.providers.mock import MockProvider
from elexirion_app.services.accounts import auth
from elexirion_app.services.chat import chat


def _users() -> tuple[int, int]:
    with session_scope() as s:
        a = auth.register(s, "a@example.com", "password-1").id
        b = auth.register(s, "b@example.com", "password-2").id
    return a, b


async def _run_turn(
    user_id: int, conversation_id: int | None, text: str
) -> tuple[int, str, list[str]]:
    with session_scope() as s:
        turn = chat.start_turn(s, user_id, conversation_id, text)
    chunks: list[str] = []
    final = None
    async for chunk in chat.stream_reply(user_id, turn.assistant_message.id, MockProvider()):
        if chunk.final is not None:
            final = chunk.final
        else:
            chunks.append(chunk.text)
    assert final is not None
    return turn.conversation_id, final.content, chunks


async def test_reply_streams_in_chunks_and_both_messages_are_saved(db_url: str) -> None:
    a, _ = _users()
    cid, text, chunks = await _run_turn(a, None, "Hello there")
    assert len(chunks) > 10
    assert "".join(chunks) == text
    assert "offline demo model" in text
    with session_scope() as s:
        msgs = chat.list_messages(s, a, cid)
        calls = s.exec(select(LLMCall)).all()
    assert [(m.role, m.status) for m in msgs] == [("user", "complete"), ("assistant", "complete")]
    assert msgs[0].content == "Hello there" and msgs[1].content == text
    assert len(calls) == 1 and calls[0].user_id == a and calls[0].output_tokens > 0


async def test_multi_turn_history_reaches_the_model(db_url: str) -> None:
    a, _ = _users()
    cid, _, _ = await _run_turn(a, None, "first")
    _, text, _ = await _run_turn(a, cid, "second")
    assert "turn 2 of this conversation" in text


async def test_another_user_never_sees_or_writes_a_conversation(db_url: str) -> None:
    a, b = _users()
    cid, _, _ = await _run_turn(a, None, "secret of a")
    with session_scope() as s:
        assert chat.list_conversations(s, b) == []
        with pytest.raises(NotFound):
            chat.list_messages(s, b, cid)
    with pytest.raises(NotFound), session_scope() as s:
        chat.start_turn(s, b, cid, "intrusion")
    with session_scope() as s:
        assert all(m.user_id == a for m in s.exec(select(Message)).all())
    with session_scope() as s:
        reply_id = s.exec(select(Message).where(Message.role == "assistant")).first().id  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        async for _ in chat.stream_reply(b, reply_id, MockProvider()):  # type: ignore[arg-type]
            pass


@pytest.mark.parametrize("text", ["", "   \n ", "x" * 100_000])
def test_empty_or_huge_message_is_refused_and_nothing_is_written(db_url: str, text: str) -> None:
    a, _ = _users()
    with pytest.raises(InputError) as err, session_scope() as s:
        chat.start_turn(s, a, None, text)
    assert err.value.user_message
    with session_scope() as s:
        assert s.exec(select(Message)).all() == []
        assert chat.list_conversations(s, a) == []


class _FailingProvider:
    name = "failing"
    offline = False

    async def stream(self, request):  # type: ignore[no-untyped-def]
        from elexirion_app.core.errors import RateLimited
        from elexirion_app.core.types import StreamEvent

        yield StreamEvent("delta", text="partial ")
        raise RateLimited(provider="failing", status=429)


async def test_provider_failure_ends_the_reply_with_a_clear_saved_error(db_url: str) -> None:
    a, _ = _users()
    with session_scope() as s:
        turn = chat.start_turn(s, a, None, "hi")
    finals = [c async for c in chat.stream_reply(a, turn.assistant_message.id, _FailingProvider())]  # type: ignore[arg-type]
    last = finals[-1]
    assert last.final is not None and last.final.status == "error"
    assert "rate limiting" in last.final.content and "Traceback" not in last.final.content


async def _finish(user_id: int, reply_id: int) -> chat.MessageView:
    final = None
    async for chunk in chat.stream_reply(user_id, reply_id, MockProvider()):
        final = chunk.final or final
    assert final is not None
    return final


async def test_regenerate_keeps_the_old_answer_as_a_sibling_you_can_switch_to(db_url: str) -> None:
    a, _ = _users()
    cid, _, _ = await _run_turn(a, None, "question")
    with session_scope() as s:
        old_reply = chat.list_messages(s, a, cid)[-1]
        turn = chat.regenerate(s, a, old_reply.id)
    new = await _finish(a, turn.assistant_message.id)
    assert (new.sibling_index, new.sibling_count) == (2, 2)
    with session_scope() as s:
        shown = chat.list_messages(s, a, cid)
    assert [m.id for m in shown][-1] == new.id and len(shown) == 2
    with session_scope() as s:
        chat.switch_sibling(s, a, new.id, -1)
    with session_scope() as s:
        shown = chat.list_messages(s, a, cid)
    assert shown[-1].id == old_reply.id and shown[-1].sibling_index == 1


async def test_edit_resends_from_there_and_the_model_sees_the_edited_branch(db_url: str) -> None:
    a, _ = _users()
    cid, _, _ = await _run_turn(a, None, "one")
    _, _, _ = await _run_turn(a, cid, "two")
    with session_scope() as s:
        shown = chat.list_messages(s, a, cid)
        first_user = shown[0]
        turn = chat.edit_and_resend(s, a, first_user.id, "one, edited")
    final = await _finish(a, turn.assistant_message.id)
    assert "turn 1 of this conversation" in final.content  # "two" is on the other branch
    with session_scope() as s:
        shown = chat.list_messages(s, a, cid)
    assert shown[0].content == "one, edited"
    assert shown[0].sibling_count == 2 and len(shown) == 2


async def test_stop_ends_the_stream_and_keeps_the_partial_text(db_url: str) -> None:
    a, _ = _users()
    with session_scope() as s:
        turn = chat.start_turn(s, a, None, "long answer please")
    reply_id = turn.assistant_message.id
    seen: list[str] = []
    final = None
    async for chunk in chat.stream_reply(a, reply_id, MockProvider()):
        if chunk.final is not None:
            final = chunk.final
            continue
        seen.append(chunk.text)
        if len(seen) == 5:
            with session_scope() as s:
                chat.request_stop(s, a, reply_id)
    assert final is not None and final.status == "stopped"
    assert final.content == "".join(seen) and len(seen) == 5


async def test_forged_ids_and_other_users_messages_are_refused(db_url: str) -> None:
    a, b = _users()
    cid, _, _ = await _run_turn(a, None, "mine")
    with session_scope() as s:
        reply = chat.list_messages(s, a, cid)[-1]
    for forged in (reply.id, "abc", None, -1, 10**12):
        with pytest.raises(NotFound), session_scope() as s:
            chat.regenerate(s, b, forged)
    with pytest.raises(NotFound), session_scope() as s:
        chat.delete_conversation(s, b, cid)
    with pytest.raises(NotFound), session_scope() as s:
        chat.rename_conversation(s, b, cid, "hacked")
    with session_scope() as s:
        assert chat.list_conversations(s, a)[0].title == "mine"


async def test_rename_and_delete_conversation(db_url: str) -> None:
    a, _ = _users()
    cid, _, _ = await _run_turn(a, None, "to be deleted")
    with session_scope() as s:
        chat.rename_conversation(s, a, cid, "  Renamed  ")
    with session_scope() as s:
        assert chat.list_conversations(s, a)[0].title == "Renamed"
        chat.delete_conversation(s, a, cid)
    with session_scope() as s:
        assert chat.list_conversations(s, a) == []
        assert s.exec(select(Message)).all() == []


async def test_long_conversation_is_windowed(db_url: str) -> None:
    a, _ = _users()
    cid = None
    for i in range(30):
        cid, _, _ = await _run_turn(a, cid, f"message {i}")
    assert cid is not None
    with session_scope() as s:
        view = chat.thread(s, a, cid, limit=20)
    assert len(view.messages) == 20 and view.has_more
    assert [m.content for m in view.messages][::2][-1] == "message 29"
    everything = chat.thread(s, a, cid, limit=60)
    assert len(everything.messages) == 60 and not everything.has_more
    assert view.messages[-2].content == "message 29"
