"""core.pricing: exact Decimal costs from litellm's bundled price map."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from elexirion_app.core import pricing
from elexirion_app.core.types import Usage


def test_claude_cost_prices_every_token_kind_apart() -> None:
    usage = Usage(input=1000, output=500, cache_read=2000, cache_write=400, thinking=100)
    # sonnet-4-6: in 3e-06, out 1.5e-05, cache read 3e-07, cache write 3.75e-06, thinking = out
    expected = (
        Decimal(1000) * Decimal("3e-06")
        + Decimal(500) * Decimal("1.5e-05")
        + Decimal(2000) * Decimal("3e-07")
        + Decimal(400) * Decimal("3.75e-06")
        + Decimal(100) * Decimal("1.5e-05")
    )
    assert pricing.cost("claude-sonnet-4-6", usage) == expected == Decimal("0.0141")


def test_alias_and_retired_ids_resolve() -> None:
    usage = Usage(input=1_000_000)
    assert pricing.cost("sonnet", usage) == pricing.cost("claude-sonnet-4-6", usage)
    assert pricing.cost("haiku", usage) == Decimal("1.000000")
    assert pricing.cost("gemini-1.5-flash", usage) == pricing.cost("gemini-2.5-flash", usage)


def test_gemini_cost_with_cache_and_thinking() -> None:
    usage = Usage(input=10_000, output=2_000, cache_read=4_000, thinking=3_000)
    # gemini/gemini-2.5-flash: in 3e-07, out 2.5e-06, cache read 3e-08, reasoning 2.5e-06
    expected = Decimal("0.003") + Decimal("0.005") + Decimal("0.00012") + Decimal("0.0075")
    assert pricing.cost("gemini-2.5-flash", usage) == expected


def test_gemini_tier_above_200k_applies_to_whole_call() -> None:
    small = Usage(input=100_000, output=1000)
    big = Usage(input=150_000, cache_read=60_000, output=1000)
    assert pricing.cost("gemini-2.5-pro", small) == Decimal("0.125") + Decimal("0.01")
    assert pricing.cost("gemini-2.5-pro", big) == (
        Decimal(150_000) * Decimal("2.5e-06")
        + Decimal(60_000) * Decimal("2.5e-07")
        + Decimal(1000) * Decimal("1.5e-05")
    )


def test_unknown_model_costs_zero_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    pricing._warn_unknown.cache_clear()  # it warns once per model per process
    with caplog.at_level(logging.WARNING, logger="elexirion_app.core.pricing"):
        assert pricing.cost("no-such-model-xyz", Usage(input=10, output=10)) == Decimal(0)
    assert "no-such-model-xyz" in caplog.text


def test_offline_is_free_and_table_date_known() -> None:
    assert pricing.cost("offline-demo", Usage(input=10**6, output=10**6)) == 0
    assert pricing.PRICE_TABLE_DATE == pricing.price_table_date() != ""
