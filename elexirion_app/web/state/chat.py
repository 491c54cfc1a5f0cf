"""Chat state: the conversation list, the shown branch, and the streamed reply.

The growing reply lives in ``streaming_text`` (its own var) so a delta does not resend the
whole conversation; deltas are batched to ~50 ms. Every handler re-checks the user and passes
the user id to the service, which checks ownership of every id the client sent.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import reflex as rx

from elexirion_app.config import get_settings
from elexirion_app.core.errors import ElexirionError
from elexirion_app.core.ids import parse_id
from elexirion_app.db.engine import in_db_thread, in_session
from elexirion_app.providers.choice import chat_choice, chat_provider
from elexirion_app.services.accounts import auth, rate_limits
from elexirion_app.services.billing import budgets
from elexirion_app.services.chat import agent_turn, chat
from elexirion_app.web import routes
from elexirion_app.web.identity import current_user_id

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.05
COMPOSER_ID = "chat-input"  # the message box, cleared once a message is taken
WINDOW = 50
TAIL_FOLD = 20


@dataclasses.dataclass
class ChatMsg:
    id: int = 0
    role: str = ""
    content: str = ""
    status: str = ""
    model: str = ""
    sibling_index: int = 1
    sibling_count: int = 1
    run_id: str = ""
    note: str = ""
    # A pipeline the reply wrote into the user's library ("Open in editor").
    pipeline: str = ""


@dataclasses.dataclass
class ProgressRow:
    name: str = ""
    status: str = ""
    model: str = ""
    tokens: str = ""
    cost: str = ""
    preview: str = ""


def _msg(view: chat.MessageView) -> ChatMsg:
    return ChatMsg(
        id=view.id,
        role=view.role,
        content=view.content,
        status=view.status,
        model=view.model,
        sibling_index=view.sibling_index,
        sibling_count=view.sibling_count,
        run_id=view.run_id,
        note=str(view.meta.get("note") or ""),
        pipeline=str(view.meta.get("pipeline") or ""),
    )


def _form_text(form: Any, key: str) -> Any:
    return form.get(key) if isinstance(form, dict) else None


async def _budget_notice(user_id: int) -> tuple[str, str] | None:
    """The budget banner after a turn (None if it could not be read: the banner stays)."""
    try:
        return await in_db_thread(budgets.notice, user_id)
    except Exception:  # the reply is saved; a failed banner read is logged, never shown
        log.exception("reading the budget notice of user %s failed", user_id)
        return None


class ChatState(rx.State):
    conversations: list[dict[str, str]] = []
    messages: list[ChatMsg] = []
    # Messages added since the thread was loaded: appending here resends only this short
    # list, so the bytes a reply costs do not grow with the conversation's length.
    tail: list[ChatMsg] = []
    conversation_id: int = 0
    has_more: bool = False
    window: int = WINDOW
    streaming: bool = False
    streaming_text: str = ""
    # The current turn's routing decision and live pipeline progress.
    streaming_note: str = ""
    progress_head: str = ""
    progress_steps: list[ProgressRow] = []
    error: str = ""
    offline: bool = True
    model_label: str = ""  # who answers: "offline demo model" or "Claude (model id)"
    budget_level: str = ""  # "warn" (at 80 % of a cap), "exceeded", or ""
    budget_note: str = ""
    editing_id: int = 0
    renaming_id: int = 0
    _reply_id: int = 0  # made by a turn handler, taken (and cleared) by stream_reply
    _active_reply_id: int = 0  # being answered now (what Stop stops)

    async def _refresh_conversations(self, user_id: int) -> None:
        rows = await in_session(chat.list_conversations, user_id)
        self.conversations = [{"id": str(c.id), "title": c.title} for c in rows]

    async def _load_thread(self, user_id: int, conversation_id: int) -> None:
        view = await in_session(chat.thread, user_id, conversation_id, self.window)
        self.messages = [_msg(m) for m in view.messages]
        self.tail = []
        self.has_more = view.has_more
        self.conversation_id = conversation_id

    async def _guard(self) -> int | None:
        """The id of the user whose session cookie sent this event, or None."""
        return await current_user_id(self)

    @rx.event
    async def load(self) -> Any:
        """on_load of /chat: the user's conversations and the one named by ``?c=``."""
        self.error, self.editing_id, self.renaming_id = "", 0, 0
        choice = chat_choice()
        self.offline, self.model_label = choice.offline, choice.describe()
        user_id = await self._guard()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        await self._refresh_conversations(user_id)
        self.budget_level, self.budget_note = await in_db_thread(budgets.notice, user_id)
        wanted = parse_id(self.router.url.query_parameters.get("c", "")) or 0
        if not wanted and self.conversation_id:
            wanted = self.conversation_id
        if not wanted and self.conversations:
            wanted = int(self.conversations[0]["id"])
        self.window = WINDOW
        if wanted:
            try:
                await self._load_thread(user_id, wanted)
            except ElexirionError as exc:
                self.error = exc.user_message
                self.messages, self.tail, self.conversation_id = [], [], 0
        else:
            self.messages, self.tail, self.conversation_id, self.has_more = [], [], 0, False
        return None

    async def _act(self, action: Any) -> Any:
        """Run ``action(session, user_id)`` with the user checked and errors shown."""
        user_id = await self._guard()
        if user_id is None:
            return rx.redirect(routes.LOGIN)

        try:
            await in_session(action, user_id)
            self.error = ""
        except ElexirionError as exc:
            self.error = exc.user_message
        return user_id

    @rx.event
    async def select_conversation(self, conversation_id: Any = None) -> Any:
        if self.streaming:
            return None
        user_id = await self._guard()
        if user_id is None:
            return rx.redirect(routes.LOGIN)
        self.window, self.editing_id = WINDOW, 0
        cid = parse_id(conversation_id)
        if cid is None:
            self.error = "This conversation does not exist."
            return None
        try:
            await self._load_thread(user_id, cid)
            self.error = ""
        except ElexirionError as exc:
            self.error = exc.user_message
        return None

    @rx.event
    async def load_earlier(self) -> Any:
        user_id = await self._guard()
        if user_id is None or not self.conversation_id:
            return None
        self.window += WINDOW
        try:
            await self._load_thread(user_id, self.conversation_id)
        except ElexirionError as exc:
            self.error = exc.user_message
        return None

    @rx.event
    def new_conversation(self) -> None:
        if not self.streaming:
            self.conversation_id, self.messages, self.tail, self.error = 0, [], [], ""
            self.has_more, self.editing_id = False, 0

    @rx.event
    def start_rename(self, conversation_id: Any = None) -> None:
        self.renaming_id = parse_id(conversation_id) or 0

    @rx.event
    async def rename(self, form_data: Any = None) -> Any:
        cid = self.renaming_id
        self.renaming_id = 0
        user_id = await self._act(
            lambda s, uid: chat.rename_conversation(s, uid, cid, _form_text(form_data, "title"))
        )
        if isinstance(user_id, int):
            await self._refresh_conversations(user_id)
        return None if isinstance(user_id, int) else user_id

    @rx.event
    async def delete_conversation(self, conversation_id: Any = None) -> Any:
        if self.streaming:
            return None
        cid = parse_id(conversation_id)
        if cid is None:
            self.error = "This conversation does not exist."
            return None
        user_id = await self._act(lambda s, uid: chat.delete_conversation(s, uid, cid))
        if not isinstance(user_id, int):
            return user_id
        await self._refresh_conversations(user_id)
        if cid == self.conversation_id and not self.error:
            self.conversation_id, self.messages, self.has_more = 0, [], False
            self.tail = []
        return None

    @rx.event
    async def switch_sibling(self, message_id: Any = None, step: Any = None) -> Any:
        if self.streaming:
            return None
        user_id = await self._act(lambda s, uid: chat.switch_sibling(s, uid, message_id, step))
        if isinstance(user_id, int) and self.conversation_id:
            try:
                await self._load_thread(user_id, self.conversation_id)
            except ElexirionError as exc:
                self.error = exc.user_message
            return None
        return None if isinstance(user_id, int) else user_id

    @rx.event
    def start_edit(self, message_id: Any = None) -> None:
        if not self.streaming:
            self.editing_id = parse_id(message_id) or 0

    @rx.event
    def cancel_edit(self) -> None:
        self.editing_id = 0

    async def _begin_stream(self, user_id: int, turn: chat.TurnStarted, *, reload: bool) -> Any:
        self.error, self.editing_id = "", 0
        if turn.conversation_id != self.conversation_id:
            self.conversation_id = turn.conversation_id
            await self._refresh_conversations(user_id)
        if reload:
            await self._load_thread(user_id, turn.conversation_id)
            # The placeholder is shown by the streaming bubble, not in the list.
            self.messages = [m for m in self.messages if m.id != turn.assistant_message.id]
        else:
            if len(self.tail) >= TAIL_FOLD:
                self.messages = (self.messages + self.tail)[-self.window :]
                self.tail = []
            if turn.user_message is not None:
                self.tail.append(_msg(turn.user_message))
        self._reply_id = turn.assistant_message.id
        self.streaming_text, self.streaming_note = "", ""
        self.progress_head, self.progress_steps = "", []
        self.streaming = True
        return ChatState.stream_reply

    async def _turn(self, make_turn: Any, *, reload: bool = True) -> Any:
        if self.streaming:
            return None
        user_id = await self._guard()
        if user_id is None:
            return rx.redirect(routes.LOGIN)

        own_limit = (await in_session(auth.own_limits, user_id))[0]
        verdict = await rate_limits.get_limits().hit_user("chat_user", user_id, own_limit)
        if not verdict.allowed:
            self.error = f"Too many messages: try again in {verdict.retry_after_s} s."
            return None

        try:
            turn: chat.TurnStarted = await in_session(make_turn, user_id)  # off the event loop
        except ElexirionError as exc:
            self.error = exc.user_message
            return None
        return await self._begin_stream(user_id, turn, reload=reload)

    @rx.event
    async def send(self, form_data: Any = None) -> Any:
        text = _form_text(form_data, "message")
        cid = self.conversation_id or None
        started = await self._turn(lambda s, uid: chat.start_turn(s, uid, cid, text), reload=False)
        if started is ChatState.stream_reply:
            # Cleared only once the message is taken: a refused one (too long, rate limit,
            # budget) stays in the box to be shortened or sent again.
            return [rx.set_value(COMPOSER_ID, ""), started]
        return started

    @rx.event
    async def regenerate(self, message_id: Any = None) -> Any:
        return await self._turn(lambda s, uid: chat.regenerate(s, uid, message_id))

    @rx.event
    async def save_edit(self, form_data: Any = None) -> Any:
        mid, text = self.editing_id, _form_text(form_data, "text")
        return await self._turn(lambda s, uid: chat.edit_and_resend(s, uid, mid, text))

    @rx.event
    async def stop(self) -> Any:
        reply_id = self._active_reply_id or self._reply_id
        if not self.streaming or not reply_id:
            return None
        await self._act(lambda s, uid: chat.request_stop(s, uid, reply_id))
        return None

    def _still_mine(self, reply_id: int) -> bool:
        """False once this tab's state was reset because it belongs to someone else now (the
        identity middleware resets the whole tree): a cheap check, made at every flush."""
        return self._active_reply_id == reply_id

    @rx.event(background=True)
    async def stream_reply(self) -> None:
        """Answer the reply ``send``/``regenerate``/``save_edit`` just made. Idempotent: the
        pending reply id is taken and cleared atomically, and the service answers a reply
        only while it is still ``streaming`` — a replayed event does nothing."""
        async with self:
            reply_id, self._reply_id = self._reply_id, 0
            user_id = await current_user_id(self)
            if not reply_id:
                return
            if user_id is None:
                self.streaming = False
                return
            self._active_reply_id = reply_id
        provider = chat_provider(token_delay_s=get_settings().chat_token_delay_s)
        pending: list[str] = []
        last_flush = time.monotonic()
        shown = True  # False once the tab was taken over: keep saving, stop showing
        try:
            async for event in agent_turn.agent_reply(user_id, reply_id, provider):
                if not shown:
                    continue
                if event.kind == "delta" and not event.reset:
                    pending.append(event.text)
                    if time.monotonic() - last_flush < FLUSH_INTERVAL_S:
                        continue
                async with self:
                    if not self._still_mine(reply_id):
                        shown = False
                        continue
                    self._apply(event, pending)
                last_flush = time.monotonic()
        except ElexirionError as exc:
            async with self:
                if self._still_mine(reply_id):
                    self.error = exc.user_message
        except Exception:  # a bug: logged with its traceback, the user gets a clear line
            log.exception("streaming reply %s failed", reply_id)
            async with self:
                if self._still_mine(reply_id):
                    self.error = "The reply failed. Please try again."
        finally:
            notice = await _budget_notice(user_id)
            async with self:
                if notice is not None:
                    self.budget_level, self.budget_note = notice
                if self._active_reply_id == reply_id:
                    self._active_reply_id = 0
                    self.streaming = False

    def _apply(self, event: agent_turn.AgentEvent, pending: list[str]) -> None:
        """Show one agent event (under the state lock)."""
        if event.kind == "final" and event.final is not None:
            self.tail.append(_msg(event.final))
            self.streaming_text, self.streaming_note = "", ""
            self.progress_head, self.progress_steps = "", []
            self.streaming = False
            # Done: the next turn may start at once, and this task's ``finally`` must not
            # touch the ``streaming`` flag that turn sets.
            self._active_reply_id = 0
        elif event.kind == "delta":
            if event.reset:
                self.streaming_text = ""
            else:
                self.streaming_text += "".join(pending)
            pending.clear()
        elif event.kind == "decision":
            self.streaming_note = str(event.data.get("note") or "")
        elif event.kind == "progress":
            self._show_progress(event.data)

    def _show_progress(self, data: dict[str, Any]) -> None:
        steps = data.get("steps") or []
        done = sum(1 for st in steps if st.get("status") in ("succeeded", "skipped", "failed"))
        self.progress_head = (
            f"{data.get('pipeline', '')}: {data.get('status', '')} · {done}/{len(steps)} steps"
            f" · {data.get('tokens', 0):,} tokens · {data.get('cost', '')}"
        )
        self.progress_steps = [
            ProgressRow(
                name=str(st.get("name", "")),
                status=str(st.get("status", "")),
                model=str(st.get("model", "")),
                tokens=str(st.get("tokens", "")),
                cost=str(st.get("cost", "")),
                preview=str(st.get("preview", "")),
            )
            for st in steps
        ]
