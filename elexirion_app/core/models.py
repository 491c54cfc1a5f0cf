"""The model catalogue: aliases, retired ids, and the known models of litellm's price map.

Reads litellm's bundled price-map JSON directly (no ``import litellm``: that is slow and,
without ``LITELLM_LOCAL_MODEL_COST_MAP=True``, tries the network).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

PRICE_MAP_FILE = "model_prices_and_context_window_backup.json"

# pipeline_ex's aliases → current ids (checked against the bundled price map).
CLAUDE_ALIASES: dict[str, str] = {
    "haiku": "claude-haiku-4-5",
    "sonnet": "claude-sonnet-4-6",
    "opus": "claude-opus-4-7",
}
DEFAULT_CLAUDE_MODEL = "claude-sonnet-4-6"
DEFAULT_GEMINI_MODEL = "gemini-2.5-flash"

# Ids used by pipeline_ex files that Google/Anthropic have retired → what we run instead.
RETIRED: dict[str, str] = {
    "gemini-1.5-flash": "gemini-2.5-flash",
    "gemini-1.5-pro": "gemini-2.5-pro",
    "gemini-2.0-flash": "gemini-2.5-flash",
    "gemini-2.0-flash-exp": "gemini-2.5-flash",
    "gemini-2.5-flash-lite-preview-06-17": "gemini-2.5-flash-lite",
    "gemini-flash-lite-latest": "gemini-2.5-flash-lite",
    "gemini-flash-latest": "gemini-2.5-flash",
    "claude-opus-4-20250514": "claude-opus-4-7",
    "claude-sonnet-4-20250514": "claude-sonnet-4-6",
}


@dataclass(frozen=True)
class ModelInfo:
    requested: str
    model_id: str  # the id we send to the provider
    provider: str  # "claude" | "gemini"
    known: bool
    retired: bool = False


@lru_cache(maxsize=1)
def price_map() -> dict[str, dict[str, Any]]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / PRICE_MAP_FILE
    try:
        data: dict[str, dict[str, Any]] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


@lru_cache(maxsize=1)
def price_map_date() -> str:
    """The modification date of the bundled price table (recorded next to costs). Read once
    per process, as ``price_map`` is: every booked attempt records it, and the lookup (a
    module search on ``sys.path`` and a ``stat``) cost more than the rest of the booking's
    pricing."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return "unknown"
    path = Path(next(iter(spec.submodule_search_locations))) / PRICE_MAP_FILE
    try:
        import datetime as _dt

        return _dt.date.fromtimestamp(path.stat().st_mtime).isoformat()
    except OSError:
        return "unknown"


def provider_of(model_id: str) -> str:
    return "gemini" if model_id.startswith("gemini") else "claude"


def resolve_model(name: str | None, default_provider: str = "claude") -> ModelInfo:
    """Map an alias / retired id / id to what we call, and say whether we know it."""
    if not name:
        mid = DEFAULT_GEMINI_MODEL if default_provider == "gemini" else DEFAULT_CLAUDE_MODEL
        return ModelInfo(requested="", model_id=mid, provider=default_provider, known=True)
    key = name.strip()
    if key in CLAUDE_ALIASES:
        return ModelInfo(key, CLAUDE_ALIASES[key], "claude", True)
    if key in RETIRED:
        new = RETIRED[key]
        return ModelInfo(key, new, provider_of(new), True, retired=True)
    prices = price_map()
    known = key in prices or f"gemini/{key}" in prices or key == "offline-demo"
    return ModelInfo(key, key, provider_of(key), known)
