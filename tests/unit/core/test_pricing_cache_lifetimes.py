"""core.pricing prices 5-minute and 1-hour Claude cache writes apart (issue 10) and Gemini
thinking tokens at the reasoning price; the offline model is free."""

from __future__ import annotations

from decimal import Decimal

from elexirion_app.core import pricing
from elexirion_app.core.types import Usage


def test_one_hour_cache_writes_use_the_above_1hr_price() -> None:
    five = pricing.cost("claude-sonnet-4-5", Usage(cache_write=1_000_000))
    hour = pricing.cost("claude-sonnet-4-5", Usage(cache_write_1h=1_000_000))
    assert five == Decimal("3.75")  # 1.25 x the $3/MTok input price
    assert hour == Decimal("6.00")  # 2 x, litellm's cache_creation_input_token_cost_above_1hr


def test_a_model_without_cache_write_prices_bills_1h_writes_as_input() -> None:
    entry = pricing.price_entry("gemini-2.5-flash")
    assert entry is not None and "cache_creation_input_token_cost" not in entry[1]
    assert pricing.cost("gemini-2.5-flash", Usage(cache_write_1h=1_000_000)) == Decimal("0.3")


def test_gemini_thinking_tokens_are_priced_at_the_reasoning_price() -> None:
    cost = pricing.cost("gemini-2.5-flash", Usage(thinking=1_000_000))
    assert cost == Decimal("2.5")


def test_the_offline_model_is_free() -> None:
    assert pricing.cost("offline-demo", Usage(input=10**6, output=10**6)) == 0
