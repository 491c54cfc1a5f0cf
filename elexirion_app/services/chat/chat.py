"""Chat turns: conversations and messages of one user, and the streamed assistant reply.

Messages form a tree: a user message's parent is the assistant message before it, an
assistant message's parent is the user message it answers. Regenerating or editing adds a
sibling; ``Conversation.current_leaf_id`` selects the branch that is shown.

Every function takes the acting ``user_id`` and checks ownership itself; another user's
conversation or message is reported as not found (no existence leak).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import delete, func, literal, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from elexirion_app.config import get_settings
from elexirion_app.core.errors import Conflict, ElexirionError, InputError, NotFound
from elexirion_app.core.ids import parse_id
from elexirion_app.core.text import clean_title
from elexirion_app.core.types import ChatMessage, LLMRequest, StreamEvent, Usage
from elexirion_app.db.engine import in_db_thread, session_scope
from elexirion_app.db.models import Conversation, Message, utcnow
from elexirion_app.providers.base import Provider
from elexirion_app.providers.choice import chat_choice
from elexirion_app.services.billing import ledger, meter

log = logging.getLogger(__name__)

HISTORY_MESSAGES = 40
PAGE_SIZE = 50
TITLE_MAX = 80

# Replies whose stop button was pressed (checked by the streaming loop of this process;
# a conversation's websocket events always reach the worker that streams its reply).
_stop_requested: set[int] = set()


@dataclass(frozen=True)
class MessageView:
    id: int
    role: str
    content: str
    status: str
    model: str
    sibling_index: int = 1
    sibling_count: int = 1
    meta: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "status": self.status,
            "model": self.model,
            "sibling_index": self.sibling_index,
            "sibling_count": self.sibling_count,
            "run_id": self.run_id,
        }


@dataclass(frozen=True)
class ConversationView:
    id: int
    title: str


@dataclass(frozen=True)
class ThreadView:
    messages: list[MessageView]
    has_more: bool  # older messages exist above the window (counted no further)


def _view(m: Message, index: int = 1, count: int = 1) -> MessageView:
    assert m.id is not None
    return MessageView(
        m.id,
        m.role,
        m.content,
        m.status,
        m.model or "",
        index,
        count,
        dict(m.meta or {}),
        m.run_id or "",
    )


def clean_message(text: Any) -> str:
    """Validate a user's chat message (text, non-empty, within the size limit)."""
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


def owned_message(session: Session, user_id: int, message_id: int) -> Message:
    msg = session.get(Message, message_id)
    if msg is None or msg.user_id != user_id:
        raise NotFound("This message does not exist.")
    return msg


def list_conversations(session: Session, user_id: int, limit: int = 200) -> list[ConversationView]:
    rows = session.exec(
        select(Conversation)
        .where(Conversation.user_id == user_id)
        .order_by(col(Conversation.updated_at).desc(), col(Conversation.id).desc())
        .limit(limit)
    ).all()
    return [ConversationView(c.id, c.title) for c in rows if c.id is not None]


def rename_conversation(session: Session, user_id: int, conversation_id: int, title: Any) -> None:
    if not isinstance(title, str) or not title.strip():
        raise InputError("Give the conversation a name.")
    conv = owned_conversation(session, user_id, conversation_id)
    cleaned = clean_title(title, TITLE_MAX)
    if not cleaned:
        raise InputError("Give the conversation a name.")
    conv.title = cleaned
    session.add(conv)


def delete_conversation(session: Session, user_id: int, conversation_id: int) -> None:
    conv = owned_conversation(session, user_id, conversation_id)
    ledger.unlink_conversation(session, conversation_id)  # cost rows stay, unlinked
    # Children before parents (self-referencing parent_id), newest first.
    ids = session.exec(
        select(Message.id)
        .where(Message.conversation_id == conversation_id)
        .order_by(col(Message.id).desc())
    ).all()
    for mid in ids:
        session.execute(delete(Message).where(col(Message.id) == mid))
    session.delete(conv)


# --- the message tree ------------------------------------------------------------------


@dataclass
class _Tree:
    parent: dict[int, int | None]
    role: dict[int, str]
    children: dict[int | None, list[int]]


def _tree(session: Session, conversation_id: int) -> _Tree:
    rows = session.exec(
        select(Message.id, Message.parent_id, Message.role)
        .where(Message.conversation_id == conversation_id)
        .order_by(col(Message.id))
    ).all()
    tree = _Tree({}, {}, {})
    for mid, parent, role in rows:
        assert mid is not None
        tree.parent[mid] = parent
        tree.role[mid] = role
        tree.children.setdefault(parent, []).append(mid)
    return tree


def _latest_leaf(tree: _Tree, node: int) -> int:
    while tree.children.get(node):
        node = tree.children[node][-1]
    return node


def _branch(
    session: Session, conversation_id: int, leaf: int | None, limit: int
) -> tuple[list[int], bool]:
    """The newest ``limit`` ids of the branch ending at ``leaf`` (oldest first), and whether
    older ones exist: one recursive query up the parent ids, however long the conversation."""
    if leaf is None or limit <= 0:
        return [], False
    up = (
        select(Message.id, Message.parent_id, literal(0).label("depth"))
        .where(Message.id == leaf, Message.conversation_id == conversation_id)
        .cte("branch", recursive=True)
    )
    parent = aliased(Message)
    up = up.union_all(
        select(parent.id, parent.parent_id, up.c.depth + 1).where(
            parent.id == up.c.parent_id,
            parent.conversation_id == conversation_id,
            up.c.depth < limit,
        )
    )
    rows = session.exec(select(up.c.id).order_by(up.c.depth.desc())).all()  # type: ignore[call-overload]
    ids = [int(r) for r in rows]
    return (ids[1:], True) if len(ids) > limit else (ids, False)


def _current_leaf(session: Session, conv: Conversation) -> int | None:
    """The leaf of the shown branch (the newest message when none is recorded)."""
    if conv.current_leaf_id is not None:
        found = session.exec(
            select(Message.id).where(
                Message.id == conv.current_leaf_id, Message.conversation_id == conv.id
            )
        ).first()
        if found is not None:
            return conv.current_leaf_id
    newest = session.exec(
        select(func.max(Message.id)).where(Message.conversation_id == conv.id)
    ).one()
    return int(newest) if newest is not None else None


def _sibling_positions(
    session: Session, conversation_id: int, rows: list[Message]
) -> dict[int, tuple[int, int]]:
    """``{message id: (index among its siblings, 1-based; sibling count)}`` for ``rows``."""
    parents = {m.parent_id for m in rows}
    query = select(Message.id, Message.parent_id).where(Message.conversation_id == conversation_id)
    conds = [col(Message.parent_id).in_([p for p in parents if p is not None])]
    if None in parents:
        conds.append(col(Message.parent_id).is_(None))
    siblings: dict[int | None, list[int]] = {}
    for mid, parent_id in session.exec(query.where(or_(*conds)).order_by(col(Message.id))).all():
        if mid is not None:
            siblings.setdefault(parent_id, []).append(int(mid))
    out = {}
    for m in rows:
        assert m.id is not None
        group = siblings.get(m.parent_id, [m.id])
        out[m.id] = (group.index(m.id) + 1 if m.id in group else 1, len(group))
    return out


def thread(
    session: Session, user_id: int, conversation_id: int, limit: int = PAGE_SIZE
) -> ThreadView:
    """The shown branch of a conversation: its newest ``limit`` messages, oldest first."""
    conv = owned_conversation(session, user_id, conversation_id)
    window, more = _branch(session, conversation_id, _current_leaf(session, conv), limit)
    rows = {m.id: m for m in session.exec(select(Message).where(col(Message.id).in_(window))).all()}
    ordered = [rows[mid] for mid in window if mid in rows]
    positions = _sibling_positions(session, conversation_id, ordered)
    views = [_view(m, *positions[m.id]) for m in ordered if m.id is not None]
    return ThreadView(views, has_more=more)


def list_messages(
    session: Session, user_id: int, conversation_id: int, limit: int = PAGE_SIZE
) -> list[MessageView]:
    return thread(session, user_id, conversation_id, limit).messages


@dataclass(frozen=True)
class TurnStarted:
    conversation_id: int
    user_message: MessageView | None
    assistant_message: MessageView


def _placeholder(session: Session, conv: Conversation, user_id: int, parent_id: int) -> Message:
    assert conv.id is not None
    reply = Message(
        conversation_id=conv.id,
        user_id=user_id,
        role="assistant",
        content="",
        status="streaming",
        parent_id=parent_id,
    )
    session.add(reply)
    session.flush()
    conv.current_leaf_id = reply.id
    conv.updated_at = utcnow()
    session.add(conv)
    return reply


def start_turn(
    session: Session, user_id: int, conversation_id: int | None, text: Any
) -> TurnStarted:
    """Save the user's message (after the shown branch) and a streaming placeholder reply."""
    text = clean_message(text)
    if conversation_id is None:
        conv = Conversation(user_id=user_id, title=_title_from(text))
        session.add(conv)
        session.flush()
        parent: int | None = None
    else:
        conv = owned_conversation(session, user_id, conversation_id)
        assert conv.id is not None
        parent = _current_leaf(session, conv)
    assert conv.id is not None
    user_msg = Message(
        conversation_id=conv.id, user_id=user_id, role="user", content=text, parent_id=parent
    )
    session.add(user_msg)
    session.flush()
    assert user_msg.id is not None
    reply = _placeholder(session, conv, user_id, user_msg.id)
    return TurnStarted(conv.id, _view(user_msg), _view(reply))


def regenerate(session: Session, user_id: int, assistant_message_id: Any) -> TurnStarted:
    """A new answer to the same user message; the old one stays as a sibling."""
    old = owned_message(session, user_id, _as_id(assistant_message_id))
    if old.role != "assistant" or old.parent_id is None:
        raise InputError("Only an answer can be regenerated.")
    conv = owned_conversation(session, user_id, old.conversation_id)
    reply = _placeholder(session, conv, user_id, old.parent_id)
    assert conv.id is not None
    return TurnStarted(conv.id, None, _view(reply))


def edit_and_resend(session: Session, user_id: int, user_message_id: Any, text: Any) -> TurnStarted:
    """Edit a user message: a sibling with the new text, answered afresh."""
    old = owned_message(session, user_id, _as_id(user_message_id))
    if old.role != "user":
        raise InputError("Only your own messages can be edited.")
    text = clean_message(text)
    conv = owned_conversation(session, user_id, old.conversation_id)
    assert conv.id is not None
    user_msg = Message(
        conversation_id=conv.id,
        user_id=user_id,
        role="user",
        content=text,
        parent_id=old.parent_id,
    )
    session.add(user_msg)
    session.flush()
    assert user_msg.id is not None
    reply = _placeholder(session, conv, user_id, user_msg.id)
    return TurnStarted(conv.id, _view(user_msg), _view(reply))


def switch_sibling(session: Session, user_id: int, message_id: Any, step: Any) -> int:
    """Show the previous (-1) or next (+1) sibling branch; returns the conversation id."""
    msg = owned_message(session, user_id, _as_id(message_id))
    if step not in (-1, 1):
        raise InputError("Move by one sibling at a time.")
    conv = owned_conversation(session, user_id, msg.conversation_id)
    tree = _tree(session, msg.conversation_id)
    siblings = tree.children.get(msg.parent_id, [])
    assert msg.id is not None
    target = siblings[(siblings.index(msg.id) + step) % len(siblings)]
    conv.current_leaf_id = _latest_leaf(tree, target)
    session.add(conv)
    return msg.conversation_id


def _as_id(value: Any) -> int:
    number = parse_id(value)
    if number is None:
        raise NotFound("This message does not exist.")
    return number


def _title_from(text: str) -> str:
    line = clean_title(text.splitlines()[0] if text else "", 1000) or "New chat"
    return (line[:60] + "…") if len(line) > 60 else line


def branch_ids(
    session: Session, conversation_id: int, leaf: int | None, limit: int = 200
) -> list[int]:
    """The newest ``limit`` ids of the branch ending at ``leaf`` (oldest first)."""
    return _branch(session, conversation_id, leaf, limit)[0]


def branch_history(session: Session, user_id: int, message_id: int) -> list[ChatMessage]:
    """The branch above message ``message_id`` (excluded), newest ``HISTORY_MESSAGES``."""
    msg = owned_message(session, user_id, message_id)
    ids = branch_ids(session, msg.conversation_id, msg.parent_id, HISTORY_MESSAGES)
    rows = {m.id: m for m in session.exec(select(Message).where(col(Message.id).in_(ids))).all()}
    out = [
        ChatMessage("user" if rows[i].role == "user" else "assistant", rows[i].content)
        for i in ids
        if rows[i].content and rows[i].status != "error"
    ]
    while out and out[0].role != "user":
        out.pop(0)
    return out


# A reply is made ``streaming`` (a placeholder), claimed once as ``generating`` by whoever
# answers it, and saved once with its final status; a startup sweep ends orphans.
OPEN_STATUSES = ("streaming", "generating")
INTERRUPTED_NOTE = "**Interrupted:** the server restarted before this reply finished."


def claim_reply(session: Session, user_id: int, message_id: int) -> Message:
    """Take the placeholder ``message_id`` for answering, exactly once (atomic update):
    a second claim — a replayed event, another tab — gets ``Conflict``."""
    result = session.execute(
        update(Message)
        .where(
            col(Message.id) == message_id,
            col(Message.user_id) == user_id,
            col(Message.role) == "assistant",
            col(Message.status) == "streaming",
        )
        .values(status="generating")
    )
    msg = owned_message(session, user_id, message_id)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        if msg.role != "assistant":
            raise NotFound("This message does not exist.")
        raise Conflict("This reply has already been answered.")
    session.refresh(msg)
    return msg


def stop_requested(message_id: int) -> bool:
    return message_id in _stop_requested


def clear_stop(message_id: int) -> None:
    _stop_requested.discard(message_id)


def sweep_orphaned_replies(session: Session, older_than_s: float | None = None) -> int:
    """Mark replies left open by a dead process ``interrupted`` (all of them, or those older
    than ``older_than_s`` when other workers may still be answering theirs)."""
    query = select(Message).where(col(Message.status).in_(OPEN_STATUSES))
    if older_than_s is not None:
        cutoff = utcnow() - timedelta(seconds=older_than_s)
        query = query.where(col(Message.created_at) < cutoff)
    count = 0
    for msg in session.exec(query).all():
        msg.status = "interrupted"
        msg.content = f"{msg.content}\n\n{INTERRUPTED_NOTE}" if msg.content else INTERRUPTED_NOTE
        session.add(msg)
        count += 1
    if count:
        log.warning("marked %d orphaned chat replies interrupted", count)
    return count


def fail_open_reply(user_id: int, message_id: int, text: str) -> MessageView | None:
    """End a reply that is still open with ``text`` as its error (None: already ended)."""
    with session_scope() as session:
        msg = owned_message(session, user_id, message_id)
        if msg.status not in OPEN_STATUSES:
            return None
        msg.content, msg.status = text, "error"
        session.add(msg)
        session.flush()
        assert msg.id is not None
        return _view(msg, *_sibling_positions(session, msg.conversation_id, [msg])[msg.id])


def request_stop(session: Session, user_id: int, message_id: Any) -> None:
    msg = owned_message(session, user_id, _as_id(message_id))
    if msg.status in OPEN_STATUSES:
        assert msg.id is not None
        _stop_requested.add(msg.id)


@dataclass(frozen=True)
class ReplyChunk:
    """Text appended to the reply; ``final`` carries the saved message when the reply ends."""

    text: str = ""
    final: MessageView | None = None
    error: str | None = None
    reset: bool = False


async def stream_reply(
    user_id: int,
    assistant_message_id: int,
    provider: Provider,
    *,
    messages: list[ChatMessage] | None = None,
    meta: dict[str, Any] | None = None,
    claimed: bool = False,
) -> AsyncIterator[ReplyChunk]:
    """Generate the assistant reply for a placeholder made by a turn function.

    Yields text chunks as they arrive, then a final chunk with the persisted message. A stop
    request ends it early (status ``stopped``, the partial text kept); provider failures end
    it with a clear error message (status ``error``). ``messages`` replaces the branch
    history as the model's context (the agent passes a trimmed context with run summaries).
    A retried attempt that already streamed text yields a chunk with ``reset=True``: the
    partial text so far is void.
    """
    conversation_id, context = await in_db_thread(
        _reply_context, user_id, assistant_message_id, messages, claimed
    )
    request = LLMRequest(messages=tuple(context), kind="chat", model=chat_choice().override)
    # Reserved against the user's budgets and booked in the ledger, attempt by attempt (a
    # stopped reply too: closing the stream books what it used so far).
    provider = meter.bind(provider, caller="chat", user_id=user_id, conversation_id=conversation_id)
    started = time.perf_counter()
    parts: list[str] = []
    status, error, model = "complete", None, ""
    usage, cost = Usage(), Decimal("0")
    attempts: list[dict[str, Any]] = []
    try:
        stream = cast(AsyncGenerator[StreamEvent, None], provider.stream(request))
        async with contextlib.aclosing(stream) as events:
            async for event in events:
                if assistant_message_id in _stop_requested:
                    status = "stopped"
                    break
                if event.kind == "delta" and event.text:
                    parts.append(event.text)
                    yield ReplyChunk(text=event.text)
                elif event.kind == "attempt":
                    attempts.append(dict(event.data))
                    if event.data.get("discard_partial"):
                        parts.clear()
                        yield ReplyChunk(reset=True)
                elif event.kind == "usage" and event.usage is not None:
                    usage = event.usage
                elif event.kind == "done" and event.response is not None:
                    usage, cost, model = (
                        event.response.usage,
                        event.response.cost,
                        event.response.model,
                    )
                    if event.response.text and event.response.text != "".join(parts):
                        parts = [event.response.text]  # the final response is authoritative
    except ElexirionError as exc:
        status, error = "error", exc.user_message
    except Exception:  # never a traceback in the UI
        log.exception("chat reply failed")
        status, error = "error", "The model failed to answer. Please try again."
    finally:
        _stop_requested.discard(assistant_message_id)
    text = "".join(parts)
    if error:
        text = f"{text}\n\n**Error:** {error}" if text else f"**Error:** {error}"
    latency = (time.perf_counter() - started) * 1000
    final = await in_db_thread(
        save_reply,
        user_id,
        assistant_message_id,
        conversation_id,
        text,
        status,
        model or provider.name,
        provider.name,
        usage,
        cost,
        latency,
        error,
        meta=meta,
        attempts=attempts,
    )
    yield ReplyChunk(final=final, error=error)


def _reply_context(
    user_id: int, message_id: int, messages: list[ChatMessage] | None, claimed: bool
) -> tuple[int, list[ChatMessage]]:
    with session_scope() as session:
        if claimed:
            msg = owned_message(session, user_id, message_id)
            if msg.role != "assistant" or msg.status != "generating":
                raise Conflict("This reply has already been answered.")
        else:
            msg = claim_reply(session, user_id, message_id)
        if messages is None:
            messages = branch_history(session, user_id, message_id)
        return msg.conversation_id, messages


def save_reply(
    user_id: int,
    message_id: int,
    conversation_id: int,
    text: str,
    status: str,
    model: str,
    provider: str,
    usage: Usage,
    cost: Decimal,
    latency_ms: float,
    error: str | None,
    meta: dict[str, Any] | None = None,
    run_id: str | None = None,
    attempts: list[dict[str, Any]] | None = None,
) -> MessageView:
    """Persist a finished reply; returns the saved message.

    Its LLM calls are not written here: the metered provider booked one ledger row per
    attempt as each ended (``services/billing``), stopped and failed ones too. ``provider``,
    ``usage``, ``cost``, ``latency_ms`` and ``attempts`` describe the reply for logs only.
    """
    with session_scope() as session:
        msg = owned_message(session, user_id, message_id)
        if msg.status not in OPEN_STATUSES:  # saved once: a replay never overwrites it
            raise Conflict("This reply has already been answered.")
        msg.content, msg.status, msg.model = text, status, model
        if meta is not None:
            msg.meta = meta
        if run_id is not None:
            msg.run_id = run_id
        session.add(msg)
        session.flush()
        assert msg.id is not None
        return _view(msg, *_sibling_positions(session, conversation_id, [msg])[msg.id])
