"""``POST /api/agent/chat``: one chat turn as Server-Sent Events, through the same router and
conversation store as the chat page (the conversation shows up in the browser too).

Events: ``start`` (conversation and message ids), ``decision`` (the routing decision and its
note), ``delta`` (text; ``reset: true`` voids what was streamed: a retried attempt),
``progress`` (a pipeline run's steps), ``final`` (the saved message). Over budget: HTTP 402
with the numbers before anything starts. A client that goes away
stops the turn; what was said so far is saved as ``stopped``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends
from sse_starlette import EventSourceResponse, ServerSentEvent

from elexirion_app.api.http import streams
from elexirion_app.api.http.deps import Caller, caller, limited
from elexirion_app.api.http.responses import errors, sse
from elexirion_app.api.http.schemas import ChatRequest
from elexirion_app.config import get_settings
from elexirion_app.db.engine import in_db_thread, session_scope
from elexirion_app.providers.choice import chat_provider
from elexirion_app.services.accounts import rate_limits
from elexirion_app.services.billing import meter
from elexirion_app.services.chat import agent_turn, chat

router = APIRouter(prefix="/api", tags=["chat"])


def _start(user_id: int, conversation_id: int | None, text: str) -> chat.TurnStarted:
    with session_scope() as session:
        return chat.start_turn(session, user_id, conversation_id, text)


def _event(kind: str, data: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(event=kind, data=json.dumps(data, default=str))


def _final(message: chat.MessageView) -> dict[str, Any]:
    return {**message.to_dict(), "meta": message.meta}


async def _stream(
    who: Caller, turn: chat.TurnStarted, budget_warning: str | None
) -> AsyncIterator[ServerSentEvent]:
    reply_id = turn.assistant_message.id
    start: dict[str, Any] = {"conversation_id": turn.conversation_id, "message_id": reply_id}
    if budget_warning:
        start["budget_warning"] = budget_warning  # a cap at its warn ratio (80 % by default)
    yield _event("start", start)
    provider = chat_provider(token_delay_s=get_settings().chat_token_delay_s)
    async for event in agent_turn.agent_reply(who.id, reply_id, provider):
        if event.kind == "delta":
            yield _event("delta", {"text": event.text, "reset": event.reset})
        elif event.kind == "final" and event.final is not None:
            yield _event("final", _final(event.final))
        else:
            yield _event(event.kind, event.data)


@router.post(
    "/agent/chat",
    summary="Send a chat message; the reply streams as Server-Sent Events",
    responses={**sse("start", "decision", "delta", "progress", "final"), **errors(400, 402, 404)},
    operation_id="agent_chat",
    response_class=EventSourceResponse,
)
async def agent_chat(body: ChatRequest, who: Caller = Depends(caller)) -> EventSourceResponse:
    verdict = await rate_limits.get_limits().hit_user("chat_user", who.id, who.chat_limit)
    if not verdict.allowed:
        raise limited(verdict.retry_after_s, "chat messages")
    # 402 with the numbers before anything is saved or streamed, when the reply's first call
    # could not fit (a refusal later in the turn — a bigger context, a pipeline step — arrives
    # as the final message's error, like on the chat page).
    slot = streams.take(who.id)  # 429 past the open streams one account may hold
    try:
        warning = await meter.precheck(who.id, body.message)
        turn = await in_db_thread(_start, who.id, body.conversation_id, body.message)
    except BaseException:
        slot.release()
        raise
    return streams.respond(
        slot, _stream(who, turn, warning), ping=15, headers={"Cache-Control": "no-store"}
    )
