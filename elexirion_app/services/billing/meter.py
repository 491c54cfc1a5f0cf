"""The services' side of ``providers.metered``: budgets reserved and attempts booked.

``LedgerMeter`` is installed once (``install()``, done on import of this module and by every
caller that makes provider calls: chat turns, run records, the CLI), and from then on every
provider that ``providers.choice.chat_provider`` or a pipeline step hands out is metered:
- ``reserve``: live calls only — ``budgets.estimate`` held against the caps of the call's user
  and run (``BudgetExceeded`` before anything is sent); offline calls are never refused.
- ``price``: ``core.pricing.cost`` on the model that answered; the offline demo model costs 0
  and its ``live_estimate`` is what the same tokens would cost on the requested model.
- ``book``: one ledger row per attempt (``ledger.record`` through the DB pool), the
  reservation settled in the same transaction as the call's last attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from elexirion_app.core import pricing
from elexirion_app.core.models import resolve_model
from elexirion_app.core.types import LLMRequest, Usage
from elexirion_app.db.engine import in_db_thread
from elexirion_app.providers import registry
from elexirion_app.providers.base import Provider
from elexirion_app.providers.choice import chat_choice
from elexirion_app.providers.metered import CallContext, Priced, with_context
from elexirion_app.services.billing import budgets, ledger

log = logging.getLogger(__name__)


def _live_model(request: LLMRequest) -> str:
    return resolve_model(request.model, request.provider).model_id


class LedgerMeter:
    async def reserve(
        self, ctx: CallContext, request: LLMRequest, provider: Provider
    ) -> budgets.Reservation | None:
        if provider.offline:
            return None  # the offline model is free: never refused
        return await in_db_thread(_reserve, ctx, request)

    def price(self, request: LLMRequest, provider: Provider, model: str, usage: Usage) -> Priced:
        if provider.offline:
            live = pricing.cost(_live_model(request), usage) if usage.total else Decimal("0")
            return Priced(Decimal("0"), live)
        model = model or _live_model(request)  # e.g. a stopped stream: the model it asked
        return Priced(pricing.cost(model, usage) if usage.total else Decimal("0"))

    async def book(
        self,
        ctx: CallContext,
        request: LLMRequest,
        provider: Provider,
        data: Mapping[str, Any],
        priced: Priced,
        hold: Any,
    ) -> None:
        attempt = attempt_of(ctx, request, provider, data, priced, hold)
        await in_db_thread(lambda: ledger.record(attempt, engine=ctx.ledger))

    async def release(self, hold: Any) -> None:
        if isinstance(hold, budgets.Reservation):
            await in_db_thread(lambda: budgets.release(hold.id, engine=hold.engine))


def attempt_of(
    ctx: CallContext,
    request: LLMRequest,
    provider: Provider,
    data: Mapping[str, Any],
    priced: Priced,
    hold: Any = None,
) -> ledger.Attempt:
    """The ledger row of one ``attempt`` event (``data``) of a call made in ``ctx``."""
    usage = Usage.from_dict(data.get("usage") or {})
    error = data.get("error")
    status = "stopped" if data.get("stopped") else ("error" if error else "ok")
    ttft = data.get("ttft_ms")
    return ledger.Attempt(
        caller=ctx.caller or "api",
        provider=provider.name,
        model=str(
            data.get("model")
            or ("offline-demo" if provider.offline else "")
            or _live_model(request)
        ),
        status=status,
        error=str(error) if error else None,
        user_id=ctx.user_id,
        run_id=ctx.run_id,
        step_name=ctx.step,
        conversation_id=ctx.conversation_id,
        pipeline=ctx.pipeline,
        attempt=int(data.get("attempt") or 1),
        input_tokens=usage.input,
        output_tokens=usage.output,
        cache_read_tokens=usage.cache_read,
        cache_write_tokens=usage.cache_write,
        cache_write_1h_tokens=usage.cache_write_1h,
        thinking_tokens=usage.thinking,
        cost_usd=priced.cost,
        latency_ms=float(data.get("latency_ms") or 0.0),
        ttft_ms=float(ttft) if ttft is not None else None,
        offline=provider.offline,
        live_estimate_usd=priced.live_estimate,
        price_date=pricing.price_table_date(),
        reservation_id=hold.id if isinstance(hold, budgets.Reservation) else None,
    )


def _reserve(ctx: CallContext, request: LLMRequest) -> budgets.Reservation | None:
    """On the DB pool: count the input tokens (tiktoken), then reserve atomically."""
    amount = budgets.estimate(request, _live_model(request))
    if amount <= 0:
        return None
    return budgets.reserve(ctx.user_id, ctx.run_id, amount, engine=ctx.ledger)


def opening_estimate(text: str) -> Decimal | None:
    """The least the first live call of a chat turn holds: ``text`` (the user's message) as
    input and the default ``max_tokens`` of output on the chat model — the turn's own
    reservation (with the conversation as context) is at least this. None when the chat model
    is the offline one (never refused)."""
    choice = chat_choice()
    if choice.kind == "offline":
        return None
    return budgets.estimate(LLMRequest.from_prompt(text, model=choice.model), choice.model)


async def precheck(user_id: int, text: str | None) -> str | None:
    """Refuse work that cannot start within the user's budgets, before it starts (HTTP 402).

    ``text``: a chat message (its ``opening_estimate`` must fit); None: a run, refused only
    once a cap is used up (its steps' own reservations settle the rest). Offline chat: no
    check. Returns a cap's 80 % warning, if any."""

    def check() -> str | None:
        if text is None:
            return budgets.precheck(user_id, Decimal("0"))
        amount = opening_estimate(text)
        return None if amount is None else budgets.precheck(user_id, amount)

    return await in_db_thread(check)


_METER = LedgerMeter()


def bind(provider: Provider, **fields: Any) -> Provider:
    """``provider`` metered by the ledger meter, its calls booked with these context fields."""
    return with_context(provider, _METER, **fields)


def install() -> None:
    """Meter every provider handed out from now on (idempotent)."""
    registry.install_meter(_METER)


install()
