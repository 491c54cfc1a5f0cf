"""Test providers for the engine tests: the real offline model, counted and steerable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from elexirion_app.core.errors import ProviderError
from elexirion_app.core.types import LLMRequest, StreamEvent
from elexirion_app.pipelines.loader import load_text
from elexirion_app.providers.mock import MockProvider


class CountingProvider(MockProvider):
    """The offline model, recording every request; optionally slow or failing."""

    def __init__(
        self,
        *,
        delay_s: float = 0.0,
        fail: Callable[[LLMRequest], bool] | None = None,
    ) -> None:
        super().__init__()
        self.requests: list[LLMRequest] = []
        self.delay_s = delay_s
        self.fail = fail
        self.active = 0
        self.max_active = 0

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.fail is not None and self.fail(request):
                yield StreamEvent(
                    "attempt",
                    data={
                        "attempt": 1,
                        "status": 500,
                        "error": "server error",
                        "usage": {},
                        "latency_ms": 1.0,
                        "model": "offline-demo",
                    },
                )
                raise ProviderError("server error (api_error)", provider="offline", status=500)
            async for event in super().stream(request):
                yield event
        finally:
            self.active -= 1

    def __call__(self, kind: str) -> CountingProvider:
        """Use the instance itself as ``provider_for``."""
        return self


def doc(yaml_text: str, base_dir: Path | None = None, filename: str = "<test>") -> Any:
    return load_text(yaml_text, filename=filename, base_dir=base_dir)
