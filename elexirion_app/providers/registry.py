"""Which provider serves a request: live SDKs with keys, else the offline model.

CONTRACT: ``get_provider(kind, settings=None) -> Provider`` where ``kind`` is "claude" or
"gemini". Without the matching API key it returns the offline ``MockProvider``.
"""

from __future__ import annotations

from elexirion_app.config import Settings, get_settings
from elexirion_app.providers.base import Provider
from elexirion_app.providers.mock import MockProvider


def get_provider(kind: str, settings: Settings | None = None, *, token_delay_s: float = 0.0) -> Provider:
    settings = settings or get_settings()
    # Live providers are wired in by the provider work; until then everything is offline.
    return MockProvider(token_delay_s=token_delay_s)
