"""What a call cost: one function, ``cost(model, usage) -> Decimal``, over litellm's price map.

Prices come from litellm's bundled JSON (read by ``core.models.price_map`` without importing
litellm). Every token kind is priced apart:

- ``input``       → ``input_cost_per_token``
- ``output``      → ``output_cost_per_token``
- ``cache_read``  → ``cache_read_input_token_cost`` (else the input price)
- ``cache_write`` → ``cache_creation_input_token_cost`` (5-minute writes; else the input price)
- ``cache_write_1h`` → ``cache_creation_input_token_cost_above_1hr`` (1-hour writes; else the
  5-minute price, else the input price)
- ``thinking``    → ``output_cost_per_reasoning_token`` (else the output price)

Tiered prices (``<key>_above_<N>k_tokens``) apply to the whole call when its prompt (input +
cache read + cache write) exceeds N thousand tokens, as the providers bill them. Arithmetic is
exact: every float of the table goes through ``Decimal(str(x))``. An unknown model costs 0 and
logs a warning once, never an exception; the offline demo model is free.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from functools import lru_cache
from typing import Any

from elexirion_app.core.models import price_map, price_map_date, resolve_model
from elexirion_app.core.types import Usage

log = logging.getLogger(__name__)

ZERO = Decimal("0")
OFFLINE_MODELS = frozenset({"offline-demo", "offline", "mock"})
_TIER_RE = re.compile(r"^(?P<base>.+)_above_(?P<n>\d+)(?P<unit>k?)_tokens$")

# (usage field, price key, fallback price key)
_KINDS: tuple[tuple[str, str, str], ...] = (
    ("input", "input_cost_per_token", "input_cost_per_token"),
    ("output", "output_cost_per_token", "output_cost_per_token"),
    ("cache_read", "cache_read_input_token_cost", "input_cost_per_token"),
    ("cache_write", "cache_creation_input_token_cost", "input_cost_per_token"),
    (
        "cache_write_1h",
        "cache_creation_input_token_cost_above_1hr",
        "cache_creation_input_token_cost",
    ),
    ("thinking", "output_cost_per_reasoning_token", "output_cost_per_token"),
)


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def price_entry(model: str) -> tuple[str, dict[str, Any]] | None:
    """The price-map key and entry for ``model`` (alias/retired ids resolved), or None."""
    info = resolve_model(model, "gemini" if model.startswith("gemini") else "claude")
    prices = price_map()
    mid = info.model_id
    candidates: list[str] = []
    if info.provider == "gemini" or mid.startswith("gemini"):
        # We call the Gemini API (AI Studio), whose prices litellm files under "gemini/".
        candidates += [f"gemini/{mid}", mid]
    else:
        candidates += [mid, f"anthropic/{mid}"]
    if "/" in mid:
        candidates.append(mid.split("/", 1)[1])
    for key in candidates:
        entry = prices.get(key)
        if isinstance(entry, dict) and "input_cost_per_token" in entry:
            return key, entry
    return None


def _tiers(entry: dict[str, Any], key: str) -> list[tuple[int, Decimal]]:
    """``[(threshold_tokens, price)]`` for ``key``'s ``_above_Nk_tokens`` variants."""
    out: list[tuple[int, Decimal]] = []
    for k, v in entry.items():
        m = _TIER_RE.match(k)
        if not m or m.group("base") != key:
            continue
        price = _dec(v)
        if price is None:
            continue
        n = int(m.group("n")) * (1000 if m.group("unit") == "k" else 1)
        out.append((n, price))
    return sorted(out)


@lru_cache(maxsize=256)
def _warn_unknown(model: str) -> None:
    log.warning("no price for model %r in the price table (%s): cost 0", model, price_map_date())


Rates = tuple[tuple[str, Decimal, tuple[tuple[int, Decimal], ...]], ...]


@lru_cache(maxsize=512)
def _rates(model: str) -> Rates | None:
    """``((usage field, base price, tiers), ...)`` for ``model``, or None (not in the table).

    A pure function of the model name and the price table (read once per process): every
    attempt is priced, and matching the entry's ~100 keys against the tier pattern for each
    token kind was most of ``cost``."""
    found = price_entry(model)
    if found is None:
        return None
    entry = found[1]
    out = []
    for field, key, fallback in _KINDS:
        base = _dec(entry.get(key))
        if base is None:
            base = _dec(entry.get(fallback))
            key = fallback
            if base is None:  # e.g. a 1-hour write on a model with no cache-write price at all
                base = _dec(entry.get("input_cost_per_token")) or ZERO
                key = "input_cost_per_token"
        out.append((field, base, tuple(_tiers(entry, key))))
    return tuple(out)


def cost(model: str, usage: Usage) -> Decimal:
    """The exact cost in USD of ``usage`` on ``model`` (0 for unknown or offline models)."""
    if not model or model in OFFLINE_MODELS:
        return ZERO
    rates = _rates(model)
    if rates is None:
        _warn_unknown(model)
        return ZERO
    prompt_tokens = usage.input + usage.cache_read + usage.cache_write + usage.cache_write_1h
    total = ZERO
    for field, base, tiers in rates:
        tokens = getattr(usage, field)
        if tokens:
            price = base
            for threshold, tier_price in tiers:
                if prompt_tokens > threshold:
                    price = tier_price
            total += Decimal(tokens) * price
    return total


def known(model: str) -> bool:
    """Whether the price table has ``model`` (after alias resolution)."""
    return model in OFFLINE_MODELS or price_entry(model) is not None


PRICE_TABLE_DATE = price_map_date()


def price_table_date() -> str:
    """The date of the price table, recorded next to every cost."""
    return price_map_date()
