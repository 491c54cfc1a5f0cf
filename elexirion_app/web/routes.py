"""Every route of the app, in one place."""

from __future__ import annotations

INDEX = "/"
LOGIN = "/login"
REGISTER = "/register"
CHAT = "/chat"
PUBLIC = frozenset({LOGIN, REGISTER})


def chat_conversation(conversation_id: int) -> str:
    return f"{CHAT}?c={int(conversation_id)}"
