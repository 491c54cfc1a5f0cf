"""Every route of the app, in one place."""

from __future__ import annotations

INDEX = "/"
LOGIN = "/login"
REGISTER = "/register"
CHAT = "/chat"
RUNS = "/runs"
RUN_VIEW = "/runs/view"
WORKSPACE = "/workspace"
PUBLIC = frozenset({LOGIN, REGISTER})


def chat_conversation(conversation_id: int) -> str:
    return f"{CHAT}?c={int(conversation_id)}"


def run_view(run_id: str) -> str:
    return f"{RUN_VIEW}?id={run_id}"
