"""Which model answers the chat, the router and genesis: whichever provider has a key.

``ELEXIRION_CHAT_PROVIDER`` (``claude`` | ``gemini``) picks one when both keys are set; by
default Claude if its key is set, else Gemini, else the offline model. ``ELEXIRION_CHAT_MODEL``
overrides that provider's default model. ``describe()`` is what the page's banner says, so
it can never claim a live model while the offline one answers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from elexirion_app.config import Settings, get_settings
from elexirion_app.core.models import resolve_model
from elexirion_app.providers.base import Provider
from elexirion_app.providers.registry import get_provider, metered_provider


@dataclass(frozen=True)
class ChatChoice:
    kind: str  # "claude" | "gemini" | "offline"
    model: str
    override: str | None = None  # ELEXIRION_CHAT_MODEL: what requests ask for explicitly

    @property
    def offline(self) -> bool:
        return self.kind == "offline"

    def describe(self) -> str:
        if self.offline:
            return "offline demo model"
        return f"{'Claude' if self.kind == 'claude' else 'Gemini'} ({self.model})"


def chat_choice(settings: Settings | None = None) -> ChatChoice:
    settings = settings or get_settings()
    keys = {"claude": settings.anthropic_api_key, "gemini": settings.gemini_api_key}
    wanted = (os.environ.get("ELEXIRION_CHAT_PROVIDER") or "").strip().lower()
    kind = next(
        (k for k in ([wanted] if wanted in keys else []) + ["claude", "gemini"] if keys[k]),
        "offline",
    )
    if kind == "offline":
        return ChatChoice("offline", "mock")
    override = (os.environ.get("ELEXIRION_CHAT_MODEL") or "").strip() or None
    return ChatChoice(kind, resolve_model(override, kind).model_id, override)


def chat_provider(settings: Settings | None = None, *, token_delay_s: float = 0.0) -> Provider:
    """The provider of ``chat_choice()`` (the offline model when no key is set), metered:
    its calls are reserved against budgets and booked in the ledger (``providers.metered``)."""
    choice = chat_choice(settings)
    kind = "gemini" if choice.kind == "gemini" else "claude"
    return metered_provider(get_provider(kind, settings, token_delay_s=token_delay_s))
