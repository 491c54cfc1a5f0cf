"""Chat turns: conversations and messages of one user, and the streamed assistant reply.

Every function takes the acting ``user_id`` and checks ownership itself; a conversation of
another user is reported as not found (no existence leak).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

from sqlmodel import Session, col, select

from elexirion_app.config import get_settings
from elexirion_app.core.errors import ElexirionError, InputError, NotFound
from elexirion_app.core.types import ChatMessage, LLMRequest, Usage
from elexirion_app.db.engine import session_scope
from elexirion_app.db.models import Conversation, LLMCall, Message, utcnow
from elexirion_app.providers.base import Provider

log = logging.getLogger(__name__)

HISTORY_MESSAGES = 40
PAGE_SIZE = 100


@dataclass(frozen=True)
class MessageView:
    id: int
    role: str
    content: str
    status: str
    model: str

    def to_dict(self) -> dict[str, str | int]:
        return {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "status": self.status,
            "model": self.model,
        }


@dataclass(frozen=True)
class ConversationView:
    id: int
    title: str


def _view(m: Message) -> MessageView:
    assert m.id is not None
    return MessageView(m.id, m.role, m.content, m.status, m.model or "")


def clean_message(text: str) -> str:
    """Validate a user's chat message (non-empty, within the size limit)."""
    if not isinstance(text, str):
        raise InputError("The message must be text.")
    text = text.strip()
    if not text:
        raise InputError("Type a message first.")
    limit = get_settings().max_message_chars
    if len(text) > limit:
        raise InputError(
            f"The message is too long ({len(text):,} characters; the limit is {limit:,})."
        )
    return text


def owned_conversation(session: Session, user_id: int, conversation_id: int) -> Conversation:
    conv = session.get(Conversation, conversation_id)
    if conv is None or conv.user_id != user_id:
        raise NotFound("This conversation does not exist.")
    return conv


def list_conversations(session: Session, user_id: int, limit: int = 100) -> list[ConversationView]:
    rows = session.exec(
        select(Conversation)
        .where(Conversation.user_id == user_id)
        .order_by(col(Conversation.updated_at).desc())
        .limit(limit)
    ).all()
    return [ConversationView(c.id, c.title) for c in rows if c.id is not None]


def list_messages(
    session: Session, user_id: int, conversation_id: int, limit: int = PAGE_SIZE
) -> list[MessageView]:
    """The newest ``limit`` messages of a conversation, oldest first."""
    owned_conversation(session, user_id, conversation_id)
    rows = session.exec(
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.user_id == user_id)
        .order_by(col(Message.id).desc())
        .limit(limit)
    ).all()
    return [_view(m) for m in reversed(rows)]


@dataclass(frozen=True)
class TurnStarted:
    conversation_id: int
    user_message: MessageView
    assistant_message: MessageView


def start_turn(
    session: Session, user_id: int, conversation_id: int | None, text: str
) -> TurnStarted:
    """Save the user's message and a placeholder assistant message (status ``streaming``)."""
    text = clean_message(text)
    if conversation_id is None:
        conv = Conversation(user_id=user_id, title=_title_from(text))
        session.add(conv)
        session.flush()
    else:
        conv = owned_conversation(session, user_id, conversation_id)
        conv.updated_at = utcnow()
        session.add(conv)
    assert conv.id is not None
    user_msg = Message(conversation_id=conv.id, user_id=user_id, role="user", content=text)
    session.add(user_msg)
    session.flush()
    reply = Message(
        conversation_id=conv.id,
        user_id=user_id,
        role="assistant",
        content="",
        status="streaming",
        parent_id=user_msg.id,
    )
    session.add(reply)
    session.flush()
    return TurnStarted(conv.id, _view(user_msg), _view(reply))


def _title_from(text: str) -> str:
    line = text.splitlines()[0] if text else "New chat"
    return (line[:60] + "…") if len(line) > 60 else line


def history(
    session: Session, user_id: int, conversation_id: int, before_id: int
) -> list[ChatMessage]:
    """The conversation up to (not including) message ``before_id``, for the model."""
    rows = session.exec(
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.user_id == user_id,
            col(Message.id) < before_id,
            Message.status != "error",
        )
        .order_by(col(Message.id).desc())
        .limit(HISTORY_MESSAGES)
    ).all()
    out = [
        ChatMessage("user" if m.role == "user" else "assistant", m.content) for m in reversed(rows)
    ]
    while out and out[0].role != "user":
        out.pop(0)
    return [m for m in out if m.content]


@dataclass(frozen=True)
class ReplyChunk:
    """Text appended to the reply; ``final`` carries the saved message when the reply ends."""

    text: str = ""
    final: MessageView | None = None
    error: str | None = None


async def stream_reply(
    user_id: int, assistant_message_id: int, provider: Provider
) -> AsyncIterator[ReplyChunk]:
    """Generate the assistant reply for a message started by ``start_turn``.

    Yields text chunks as they arrive, then a final chunk with the persisted message. Provider
    failures end the reply with a clear error message (saved, status ``error``).
    """
    with session_scope() as session:
        msg = session.get(Message, assistant_message_id)
        if msg is None or msg.user_id != user_id or msg.role != "assistant":
            raise NotFound("This message does not exist.")
        conversation_id = msg.conversation_id
        messages = history(session, user_id, conversation_id, assistant_message_id)
    request = LLMRequest(messages=tuple(messages), kind="chat")
    started = time.perf_counter()
    parts: list[str] = []
    status, error, model = "complete", None, ""
    usage, cost = Usage(), Decimal("0")
    try:
        async for event in provider.stream(request):
            if event.kind == "delta" and event.text:
                parts.append(event.text)
                yield ReplyChunk(text=event.text)
            elif event.kind == "done" and event.response is not None:
                usage, cost, model = event.response.usage, event.response.cost, event.response.model
    except ElexirionError as exc:
        status, error = "error", exc.user_message
    except Exception:  # never a traceback in the UI
        log.exception("chat reply failed")
        status, error = "error", "The model failed to answer. Please try again."
    text = "".join(parts)
    if error:
        text = f"{text}\n\n**Error:** {error}" if text else f"**Error:** {error}"
    latency = (time.perf_counter() - started) * 1000
    with session_scope() as session:
        msg = session.get(Message, assistant_message_id)
        if msg is None:
            raise NotFound("This message was deleted.")
        msg.content, msg.status, msg.model = text, status, model or provider.name
        session.add(msg)
        session.add(
            LLMCall(
                user_id=user_id,
                conversation_id=conversation_id,
                provider=provider.name,
                model=model or provider.name,
                status="ok" if status == "complete" else "error",
                error=error,
                input_tokens=usage.input,
                output_tokens=usage.output,
                cache_read_tokens=usage.cache_read,
                cache_write_tokens=usage.cache_write,
                thinking_tokens=usage.thinking,
                cost_usd=cost,
                latency_ms=latency,
            )
        )
        session.flush()
        final = _view(msg)
    yield ReplyChunk(final=final, error=error)
