"""Chat state: the conversation list, the messages, and the streamed reply.

The growing reply lives in ``streaming_text`` (its own var) so a delta does not resend the
whole conversation; deltas are batched to ~50 ms.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import reflex as rx

from elexirion_app.config import get_settings
from elexirion_app.core.errors import AuthError, ElexirionError
from elexirion_app.db.engine import session_scope
from elexirion_app.providers.registry import get_provider
from elexirion_app.services import chat
from elexirion_app.web import routes
from elexirion_app.web.state.auth import AuthState

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.05


def _msg(view: chat.MessageView) -> dict[str, str]:
    return {k: str(v) for k, v in view.to_dict().items()}


class ChatState(rx.State):
    conversations: list[dict[str, str]] = []
    messages: list[dict[str, str]] = []
    conversation_id: int = 0
    streaming: bool = False
    streaming_text: str = ""
    error: str = ""
    offline: bool = True
    _reply_id: int = 0

    async def _user_id(self) -> int:
        auth_state = await self.get_state(AuthState)
        return auth_state.require_user().id

    def _refresh_conversations(self, user_id: int) -> None:
        with session_scope() as session:
            self.conversations = [
                {"id": str(c.id), "title": c.title}
                for c in chat.list_conversations(session, user_id)
            ]

    def _load_messages(self, user_id: int, conversation_id: int) -> None:
        with session_scope() as session:
            self.messages = [_msg(m) for m in chat.list_messages(session, user_id, conversation_id)]
        self.conversation_id = conversation_id

    @rx.event
    async def load(self) -> Any:
        """on_load of /chat: the user's conversations and the one named by ``?c=``."""
        self.error = ""
        self.offline = get_settings().offline
        try:
            user_id = await self._user_id()
        except AuthError:
            return rx.redirect(routes.LOGIN)
        self._refresh_conversations(user_id)
        raw = self.router.url.query_parameters.get("c", "")
        wanted = int(raw) if raw.isdigit() else 0
        if not wanted and self.conversation_id:
            wanted = self.conversation_id
        if not wanted and self.conversations:
            wanted = int(self.conversations[0]["id"])
        if wanted:
            try:
                self._load_messages(user_id, wanted)
            except ElexirionError as exc:
                self.error = exc.user_message
                self.messages, self.conversation_id = [], 0
        else:
            self.messages, self.conversation_id = [], 0
        return None

    @rx.event
    async def select_conversation(self, conversation_id: Any) -> Any:
        if self.streaming:
            return None
        try:
            cid = int(conversation_id)
            user_id = await self._user_id()
            self._load_messages(user_id, cid)
            self.error = ""
        except AuthError:
            return rx.redirect(routes.LOGIN)
        except (ValueError, TypeError):
            self.error = "This conversation does not exist."
        except ElexirionError as exc:
            self.error = exc.user_message
        return None

    @rx.event
    def new_conversation(self) -> None:
        if not self.streaming:
            self.conversation_id, self.messages, self.error = 0, [], ""

    @rx.event
    async def send(self, form_data: dict[str, Any]) -> Any:
        if self.streaming:
            return None
        text = form_data.get("message", "") if isinstance(form_data, dict) else ""
        try:
            user_id = await self._user_id()
            with session_scope() as session:
                turn = chat.start_turn(session, user_id, self.conversation_id or None, text)
        except AuthError:
            return rx.redirect(routes.LOGIN)
        except ElexirionError as exc:
            self.error = exc.user_message
            return None
        self.error = ""
        if turn.conversation_id != self.conversation_id:
            self.conversation_id = turn.conversation_id
            self._refresh_conversations(user_id)
        self.messages.append(_msg(turn.user_message))
        self._reply_id = turn.assistant_message.id
        self.streaming_text = ""
        self.streaming = True
        return ChatState.stream_reply

    @rx.event(background=True)
    async def stream_reply(self) -> None:
        async with self:
            reply_id = self._reply_id
            try:
                user_id = await self._user_id()
            except AuthError:
                self.streaming = False
                return
        provider = get_provider("claude", token_delay_s=get_settings().chat_token_delay_s)
        pending: list[str] = []
        last_flush = time.monotonic()
        try:
            async for chunk in chat.stream_reply(user_id, reply_id, provider):
                if chunk.final is not None:
                    async with self:
                        self.messages.append(_msg(chunk.final))
                        self.streaming_text = ""
                        self.streaming = False
                    return
                pending.append(chunk.text)
                if time.monotonic() - last_flush >= FLUSH_INTERVAL_S:
                    async with self:
                        self.streaming_text += "".join(pending)
                    pending.clear()
                    last_flush = time.monotonic()
            async with self:  # the stream ended without a final chunk
                self.streaming = False
        except ElexirionError as exc:
            async with self:
                self.error, self.streaming = exc.user_message, False
        except Exception:
            log.exception("streaming the chat reply failed")
            async with self:
                self.error = "The reply failed. Please try again."
                self.streaming = False
