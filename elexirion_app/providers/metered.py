"""The metered provider: the one place every provider call passes for budgets and the ledger.

``MeteredProvider(inner, meter)`` wraps any ``Provider``. For each ``stream(request)`` it asks
the meter to ``reserve`` the call's worst case (which may refuse with ``BudgetExceeded``
before anything is sent), prices every ``attempt`` event (the price is added to the event's
data as ``cost_usd``, so the engine's totals are the ledger's), books each attempt through the
meter (one ledger row each: failed attempts too), and settles the reservation with the last
one. A stream that ends early (a stopped reply, a cancelled run, a broken connection before
the provider's own attempt record) is booked as one ``stopped`` attempt with the tokens seen
so far: input from the last ``usage`` event, output at least the text received.

Who is calling comes from ``CallContext``: the ambient one, set by a coroutine around its call
with ``call_context(caller=..., user_id=..., ...)`` (a context variable: it follows asyncio
tasks; nested contexts inherit what they do not set), overridden by the fields bound to the
provider with ``with_context(provider, caller=...)`` (for async generators such as the chat's
stream, where a context variable set between yields would leak into the consumer). The meter
itself is installed by the services layer (``services/billing/meter``); providers never
import it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Protocol

from elexirion_app.core import logs, metrics
from elexirion_app.core.errors import BudgetExceeded, ProviderError
from elexirion_app.core.types import LLMRequest, StreamEvent, Usage
from elexirion_app.providers.base import Provider


@dataclass(frozen=True)
class CallContext:
    """Who a provider call is for (the ledger row's links)."""

    caller: str = ""  # chat | router | genesis | step | dspy | api
    user_id: int | None = None
    conversation_id: int | None = None
    run_id: str | None = None
    step: str | None = None
    pipeline: str = ""
    # Where the services book this call (an SQLAlchemy engine; None: the app's database).
    ledger: Any = None


_CONTEXT: ContextVar[CallContext | None] = ContextVar("elx_call_context", default=None)
log = logging.getLogger(__name__)


def current_context() -> CallContext:
    return _CONTEXT.get() or CallContext()


def in_call_context() -> bool:
    """Whether a caller of the services layer set who calls (pipeline steps are metered
    only then: the engine alone, e.g. in its tests, books nothing)."""
    return _CONTEXT.get() is not None


def _log_ids() -> dict[str, Any]:
    ctx = _CONTEXT.get()
    if ctx is None:
        return {}
    return {
        "user_id": ctx.user_id,
        "run_id": ctx.run_id,
        "step": ctx.step,
        "conversation_id": ctx.conversation_id,
    }


logs.add_context_source(_log_ids)  # log records made inside a call context carry its ids


@contextmanager
def call_context(**changes: Any) -> Iterator[CallContext]:
    """Calls made inside are booked with these fields (others inherited from the outer one)."""
    ctx = replace(current_context(), **changes)
    token = _CONTEXT.set(ctx)
    try:
        yield ctx
    finally:
        _CONTEXT.reset(token)


@dataclass(frozen=True)
class Priced:
    cost: Decimal
    live_estimate: Decimal | None = None


class Meter(Protocol):
    """What the services layer plugs in (``services.billing.meter.LedgerMeter``)."""

    async def reserve(self, ctx: CallContext, request: LLMRequest, provider: Provider) -> Any: ...

    def price(
        self, request: LLMRequest, provider: Provider, model: str, usage: Usage
    ) -> Priced: ...

    async def book(
        self,
        ctx: CallContext,
        request: LLMRequest,
        provider: Provider,
        data: Mapping[str, Any],
        priced: Priced,
        hold: Any,
    ) -> None: ...

    async def release(self, hold: Any) -> None: ...


def _tokens_in(text: str) -> int:
    return 0 if not text else max(1, (len(text) + 3) // 4)


class MeteredProvider:
    """A ``Provider`` whose calls are reserved against budgets and booked in the ledger."""

    def __init__(
        self, inner: Provider, meter: Meter, bound: Mapping[str, Any] | None = None
    ) -> None:
        self.inner = inner
        self.meter = meter
        self.bound = dict(bound or {})
        self.name = inner.name
        self.offline = inner.offline

    def __getattr__(self, item: str) -> Any:  # e.g. a mock's token_delay_s
        return getattr(self.inner, item)

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        ctx = replace(current_context(), **self.bound)
        try:
            hold = await self.meter.reserve(ctx, request, self.inner)
        except BudgetExceeded as exc:
            _refused(ctx, request, exc)
            raise
        pending: tuple[dict[str, Any], Priced] | None = None
        seen_attempts = 0
        booked = 0
        mark = time.perf_counter()
        first_delta: float | None = None
        text: list[str] = []
        last_usage = Usage()
        model = request.model or ""

        async def book(data: dict[str, Any], priced: Priced, final: bool) -> None:
            nonlocal booked
            await self.meter.book(ctx, request, self.inner, data, priced, hold if final else None)
            booked += 1
            _booked(ctx, request, self.inner, data, priced)

        def priced_attempt(data: Mapping[str, Any]) -> tuple[dict[str, Any], Priced]:
            usage = Usage.from_dict(data.get("usage") or {})
            priced = self.meter.price(request, self.inner, str(data.get("model") or model), usage)
            out = {**data, "cost_usd": str(priced.cost)}
            if "ttft_ms" not in out and first_delta is not None:
                out["ttft_ms"] = round((first_delta - mark) * 1000, 3)
            return out, priced

        try:
            async for event in self.inner.stream(request):
                if event.kind == "delta":
                    if first_delta is None:
                        first_delta = time.perf_counter()
                    text.append(event.text)
                elif event.kind == "usage" and event.usage is not None:
                    last_usage = event.usage
                elif event.kind == "attempt":
                    seen_attempts += 1
                    if pending is not None:
                        await book(*pending, final=False)
                    pending = priced_attempt(event.data)
                    event = StreamEvent("attempt", data=pending[0])
                    mark, first_delta, text, last_usage = time.perf_counter(), None, [], Usage()
                elif event.kind == "done" and pending is not None:
                    current, pending = pending, None
                    await book(*current, final=True)
                yield event
        except ProviderError as exc:
            if pending is None and seen_attempts == 0:  # failed without an attempt record
                pending = priced_attempt(
                    {
                        "attempt": max(exc.attempts, 1),
                        "status": exc.status,
                        "error": exc.user_message,
                        "usage": last_usage.to_dict(),
                        "latency_ms": round((time.perf_counter() - mark) * 1000, 3),
                        "model": model,
                    }
                )
            raise
        finally:
            if pending is None and (text or last_usage.total):
                # ended mid-attempt (stopped, cancelled): what was used is still billed
                used = replace(last_usage, output=max(last_usage.output, _tokens_in("".join(text))))
                pending = priced_attempt(
                    {
                        "attempt": seen_attempts + 1,
                        "status": None,
                        "error": "stopped before the answer was complete",
                        "stopped": True,
                        "usage": used.to_dict(),
                        "latency_ms": round((time.perf_counter() - mark) * 1000, 3),
                        "model": model,
                    }
                )
            if pending is not None:
                await asyncio.shield(book(*pending, final=True))
            elif booked == 0 and hold is not None:
                await asyncio.shield(self.meter.release(hold))


def _booked(
    ctx: CallContext,
    request: LLMRequest,
    provider: Provider,
    data: Mapping[str, Any],
    priced: Priced,
) -> None:
    """Metrics and the log line of one booked attempt (never its prompt or text)."""
    usage = Usage.from_dict(data.get("usage") or {})
    status = "stopped" if data.get("stopped") else ("error" if data.get("error") else "ok")
    model = str(
        data.get("model") or ("offline-demo" if provider.offline else "") or request.model or ""
    )
    latency_ms = float(data.get("latency_ms") or 0.0)
    ttft = data.get("ttft_ms")
    caller = ctx.caller or "api"
    metrics.llm_attempt(
        model=model,
        provider=provider.name,
        caller=caller,
        status=status,
        usage=usage,
        cost=priced.cost,
        latency_s=latency_ms / 1000,
        ttft_s=float(ttft) / 1000 if ttft is not None else None,
    )
    log.log(
        logging.WARNING if status == "error" else logging.INFO,
        "LLM call booked: %s %s %s",
        provider.name,
        model,
        status,
        extra={
            "event": "llm_call",
            "model": model,
            "provider": provider.name,
            "caller": caller,
            "status": status,
            "attempt": int(data.get("attempt") or 1),
            "tokens": usage.to_dict(),
            "cost_usd": str(priced.cost),
            "latency_ms": latency_ms,
            "ttft_ms": float(ttft) if ttft is not None else None,
            "pipeline": ctx.pipeline or None,
            "user_id": ctx.user_id,
            "run_id": ctx.run_id,
            "step": ctx.step,
            "conversation_id": ctx.conversation_id,
        },
    )


def _refused(ctx: CallContext, request: LLMRequest, exc: BudgetExceeded) -> None:
    caller = ctx.caller or "api"
    metrics.budget_refused(scope=exc.scope, caller=caller)
    log.info(
        "LLM call refused: the %s budget is exhausted",
        exc.scope,
        extra={
            "event": "budget_refused",
            **exc.numbers(),
            "caller": caller,
            "model": request.model or "",
            "user_id": ctx.user_id,
            "run_id": ctx.run_id,
            "step": ctx.step,
        },
    )


def metered(provider: Provider, meter: Meter | None) -> Provider:
    """``provider`` wrapped by ``meter`` (once; unchanged without a meter)."""
    if meter is None or isinstance(provider, MeteredProvider):
        return provider
    return MeteredProvider(provider, meter)


def with_context(provider: Provider, meter: Meter | None = None, **fields: Any) -> Provider:
    """``provider`` with ``fields`` of its calls' ``CallContext`` bound (metered by ``meter``
    when it is not metered yet; unchanged when there is no meter at all)."""
    if isinstance(provider, MeteredProvider):
        return MeteredProvider(provider.inner, provider.meter, {**provider.bound, **fields})
    if meter is None:
        return provider
    return MeteredProvider(provider, meter, fields)
