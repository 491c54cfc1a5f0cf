"""The provider interface every model backend implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from elexirion_app.core.errors import ProviderResponseError
from elexirion_app.core.types import LLMRequest, LLMResponse, StreamEvent

EventCallback = Callable[[StreamEvent], Awaitable[None] | None]


@dataclass(frozen=True)
class ThinkingRequest(LLMRequest):
    """An ``LLMRequest`` with extended thinking: ``thinking_budget`` tokens of reasoning.

    Providers read ``getattr(request, "thinking_budget", None)``, so the field can move into
    ``core.types.LLMRequest`` without touching them (this subclass then goes away).
    """

    thinking_budget: int | None = None


def thinking_budget(request: LLMRequest) -> int | None:
    """The extended-thinking budget of ``request`` (None: no thinking)."""
    budget = getattr(request, "thinking_budget", None)
    return int(budget) if budget else None


@runtime_checkable
class Provider(Protocol):
    """A model backend. ``stream`` yields normalised events and ends with ``done``."""

    name: str
    offline: bool

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]: ...


async def complete(
    provider: Provider, request: LLMRequest, on_event: EventCallback | None = None
) -> LLMResponse:
    """Run ``provider.stream`` to the end, forwarding every event, and return the response."""
    response: LLMResponse | None = None
    async for event in provider.stream(request):
        if on_event is not None:
            maybe = on_event(event)
            if maybe is not None:
                await maybe
        if event.kind == "done":
            response = event.response
    if response is None:
        raise ProviderResponseError(f"{provider.name}: stream ended without a final response")
    return response
