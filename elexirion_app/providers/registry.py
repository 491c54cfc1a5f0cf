"""Which provider serves a request: live SDKs with keys, else the offline model.

CONTRACT: ``get_provider(kind, settings=None, *, token_delay_s=0.0) -> Provider`` where ``kind``
is ``"claude"`` (aliases ``anthropic``, ``chat``) or ``"gemini"``. With the matching API key it
returns the live provider (``AnthropicProvider`` / ``GeminiProvider``, pointed at
``settings.*_base_url`` when set); without it, the offline ``MockProvider``.

Live providers (and their SDK clients, with their connection pools) are cached per
``(kind, key fingerprint, base_url)`` and per running event loop (an async HTTP pool must not
outlive or cross its loop); SDK modules are imported only when a live provider is
first built, so importing this module never loads ``anthropic`` or ``google.genai``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import weakref
from typing import Any

from elexirion_app.config import Settings, get_settings
from elexirion_app.providers.base import Provider
from elexirion_app.providers.metered import Meter, metered, with_context
from elexirion_app.providers.mock import MockProvider

log = logging.getLogger(__name__)

_KIND_ALIASES = {"claude": "claude", "anthropic": "claude", "chat": "claude", "gemini": "gemini"}
_CacheKey = tuple[str, str, str | None]
_cache: dict[_CacheKey, Provider] = {}  # used outside any event loop
_loop_cache: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_CacheKey, Provider]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def _fingerprint(key: str) -> str:
    """Cache on a digest, so the key itself is kept only inside the SDK client."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def normalize_kind(kind: str) -> str:
    """``claude`` or ``gemini`` for a step type / provider name (``gemini_instructor`` → gemini)."""
    k = (kind or "claude").strip().lower()
    if k in _KIND_ALIASES:
        return _KIND_ALIASES[k]
    return "gemini" if k.startswith("gemini") else "claude"


def get_provider(
    kind: str, settings: Settings | None = None, *, token_delay_s: float = 0.0
) -> Provider:
    """The provider for ``kind``: live when its API key is configured, else offline."""
    settings = settings or get_settings()
    which = normalize_kind(kind)
    if which == "claude" and settings.anthropic_api_key:
        key, base_url = settings.anthropic_api_key, settings.anthropic_base_url
    elif which == "gemini" and settings.gemini_api_key:
        key, base_url = settings.gemini_api_key, settings.gemini_base_url
    else:
        return MockProvider(token_delay_s=token_delay_s)
    cache_key = (which, _fingerprint(key), base_url)
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    with _lock:
        cache = _cache if loop is None else _loop_cache.setdefault(loop, {})
        provider = cache.get(cache_key)
        if provider is None:
            provider = _build(which, key, base_url)
            cache[cache_key] = provider
            log.info("live %s provider ready (base_url=%s)", which, base_url or "default")
    return provider


def _build(which: str, key: str, base_url: str | None) -> Provider:
    if which == "gemini":
        from elexirion_app.providers.gemini_provider import GeminiProvider

        return GeminiProvider(key, base_url=base_url)
    from elexirion_app.providers.anthropic_provider import AnthropicProvider

    return AnthropicProvider(key, base_url=base_url)


_meter: Meter | None = None


def install_meter(meter: Meter | None) -> None:
    """The meter (``services.billing.meter``) that ``metered_provider`` wraps providers with."""
    global _meter
    _meter = meter


def installed_meter() -> Meter | None:
    return _meter


def metered_provider(provider: Provider) -> Provider:
    """``provider`` behind the installed meter (budgets + ledger), if one is installed."""
    return metered(provider, _meter)


def bound_provider(provider: Provider, **fields: Any) -> Provider:
    """A metered ``provider`` with these ``CallContext`` fields bound (e.g. the router's
    ``caller``); a provider that is not metered is returned unchanged (whether a call is
    metered is the services' choice: they hand out metered providers)."""
    return with_context(provider, None, **fields)


def clear_cache() -> None:
    """Forget cached live providers (tests, key rotation)."""
    with _lock:
        _cache.clear()
        _loop_cache.clear()
