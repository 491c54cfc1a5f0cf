"""The ledger tells the truth (issue 10): hand-computed costs through the REAL SDKs against
the fake servers, one row per provider attempt (the fake's request count == rows), the
offline model at $0, a stopped stream booked with the tokens it used."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session, select

from elexirion_app.core.errors import RateLimited
from elexirion_app.core.types import LLMRequest
from elexirion_app.db.engine import get_engine
from elexirion_app.db.models import LLMCall, UsageRollup
from elexirion_app.providers.anthropic_provider import AnthropicProvider
from elexirion_app.providers.gemini_provider import GeminiProvider
from elexirion_app.providers.mock import MockProvider
from elexirion_app.services.billing import meter
from tests.fakes import fake_anthropic, fake_gemini
from tests.fakes.fake_anthropic import FakeAnthropic
from tests.fakes.fake_gemini import FakeGemini

FAST = {"timeout_s": 2.0, "retry_base_delay_s": 0.01, "retry_max_delay_s": 0.02}


@pytest.fixture
async def anthropic_fake() -> AsyncIterator[FakeAnthropic]:
    server = FakeAnthropic()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def gemini_fake() -> AsyncIterator[FakeGemini]:
    server = FakeGemini()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def _rows() -> list[LLMCall]:
    with Session(get_engine()) as s:
        return list(s.exec(select(LLMCall).order_by(LLMCall.id)).all())


def _rollups() -> list[UsageRollup]:
    with Session(get_engine()) as s:
        return list(s.exec(select(UsageRollup)).all())


async def _drain(provider: Any, request: LLMRequest) -> list[Any]:
    return [e async for e in provider.stream(request)]


async def test_claude_5min_and_1h_cache_writes_and_cache_reads_are_priced_apart(
    db_url: str, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.queue(
        fake_anthropic.text(
            "cached answer",
            input=1000,
            output=200,
            cache_read=3000,
            cache_write=400,
            cache_write_1h=500,
        )
    )
    live = AnthropicProvider("k", base_url=anthropic_fake.url, max_retries=0, **FAST)
    provider = meter.bind(live, caller="api", user_id=None)
    events = await _drain(provider, LLMRequest.from_prompt("hi", model="claude-sonnet-4-5"))
    # claude-sonnet-4-5 per token: input $3e-6, output $15e-6, cache read $0.3e-6,
    # 5-minute write $3.75e-6, 1-hour write $6e-6 (litellm's map, ..._above_1hr)
    expected = (
        1000 * Decimal("0.000003")
        + 200 * Decimal("0.000015")
        + 3000 * Decimal("0.0000003")
        + 400 * Decimal("0.00000375")
        + 500 * Decimal("0.000006")
    )
    assert expected == Decimal("0.0114")
    [row] = _rows()
    assert (row.input_tokens, row.output_tokens, row.cache_read_tokens) == (1000, 200, 3000)
    assert (row.cache_write_tokens, row.cache_write_1h_tokens) == (400, 500)
    assert row.cost_usd == expected and row.caller == "api" and row.provider == "claude"
    assert row.status == "ok" and not row.offline and row.price_date
    assert row.ttft_ms is not None and row.ttft_ms >= 0
    attempt = next(e for e in events if e.kind == "attempt")
    assert Decimal(attempt.data["cost_usd"]) == expected  # the engine's totals are the ledger's
    [roll] = _rollups()
    assert roll.cost_usd == expected and roll.cache_write_1h_tokens == 500 and roll.calls == 1
    assert len(anthropic_fake.requests) == len(_rows()) == 1


async def test_gemini_thinking_tokens_are_priced(db_url: str, gemini_fake: FakeGemini) -> None:
    gemini_fake.queue(
        fake_gemini.text(
            "thought it through", prompt=1200, cached=200, candidates=300, thoughts=700
        )
    )
    live = GeminiProvider("k", base_url=gemini_fake.url, max_retries=0, **FAST)
    provider = meter.bind(live, caller="api")
    await _drain(
        provider, LLMRequest.from_prompt("hi", provider="gemini", model="gemini-2.5-flash")
    )
    # gemini/gemini-2.5-flash: input $0.3e-6, cached $0.03e-6, output and reasoning $2.5e-6
    expected = (
        1000 * Decimal("0.0000003")
        + 200 * Decimal("0.00000003")
        + 300 * Decimal("0.0000025")
        + 700 * Decimal("0.0000025")
    )
    [row] = _rows()
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (1000, 200, 300)
    assert row.thinking_tokens == 700 and row.cost_usd == expected == Decimal("0.002806")
    assert len(gemini_fake.requests) == 1


async def test_every_attempt_is_one_row_failed_ones_included(
    db_url: str, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.queue(
        fake_anthropic.rate_limited(), fake_anthropic.server_error(), fake_anthropic.text("ok")
    )
    live = AnthropicProvider("k", base_url=anthropic_fake.url, max_retries=2, **FAST)
    await _drain(meter.bind(live, caller="chat"), LLMRequest.from_prompt("hi"))
    rows = _rows()
    assert len(rows) == len(anthropic_fake.requests) == 3
    assert [r.status for r in rows] == ["error", "error", "ok"]
    [roll] = _rollups()
    assert (roll.calls, roll.errors) == (3, 2)
    assert roll.cost_usd == sum((r.cost_usd for r in rows), Decimal("0"))


async def test_a_call_that_fails_after_its_retries_is_booked_attempt_by_attempt(
    db_url: str, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.queue(fake_anthropic.rate_limited(), fake_anthropic.rate_limited())
    live = AnthropicProvider("k", base_url=anthropic_fake.url, max_retries=1, **FAST)
    with pytest.raises(RateLimited):
        await _drain(meter.bind(live, caller="chat"), LLMRequest.from_prompt("hi"))
    assert len(_rows()) == len(anthropic_fake.requests) == 2
    assert {r.status for r in _rows()} == {"error"}


async def test_the_offline_model_books_zero_with_a_labelled_live_estimate(db_url: str) -> None:
    provider = meter.bind(MockProvider(), caller="step")
    events = await _drain(provider, LLMRequest.from_prompt("simple test", kind="claude"))
    done = events[-1].response
    assert done is not None and done.cost == 0  # pipeline_ex's mock said $0.001
    [row] = _rows()
    assert row.offline and row.cost_usd == 0 and row.provider == "offline"
    assert row.live_estimate_usd is not None and row.live_estimate_usd > 0
    [roll] = _rollups()
    assert roll.cost_usd == 0 and roll.offline_calls == 1
    assert roll.live_estimate_usd == row.live_estimate_usd


async def test_a_stream_closed_early_books_the_tokens_it_used(
    db_url: str, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.queue(fake_anthropic.text("word " * 200, input=1000, output=400))
    live = AnthropicProvider("k", base_url=anthropic_fake.url, max_retries=0, **FAST)
    stream = meter.bind(live, caller="chat").stream(
        LLMRequest.from_prompt("hi", model="claude-sonnet-4-5")
    )
    seen = 0
    async for event in stream:
        seen += event.kind == "delta"
        if seen == 3:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    [row] = _rows()
    assert row.status == "stopped" and row.input_tokens == 1000
    assert row.output_tokens >= 3  # at least the text received
    price = Decimal("0.000003") * 1000 + Decimal("0.000015") * row.output_tokens
    assert row.cost_usd == price > 0
