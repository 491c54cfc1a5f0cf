"""Retry policy and attempt records shared by the live providers.

The policy mirrors the Anthropic SDK's own: retry 408/409/429/5xx (and 529), connection errors
and timeouts; honour ``retry-after-ms`` / ``retry-after`` (seconds or HTTP date, capped at
``max_retry_after_s``); otherwise exponential backoff ``base * 2**n`` capped at ``cap`` with
jitter (×0.75–1.0).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from elexirion_app.core.types import StreamEvent, Usage

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait between attempts."""

    max_retries: int = 2
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0

    def delay(self, retry_index: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry number ``retry_index`` (0-based)."""
        if retry_after_s is not None and 0 <= retry_after_s <= self.max_retry_after_s:
            return retry_after_s
        backoff = min(self.base_delay_s * (2.0**retry_index), self.max_delay_s)
        return backoff * (1 - 0.25 * random.random())


def parse_retry_after(headers: Mapping[str, str] | Any | None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (number or HTTP date), else None."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
    except (TypeError, ValueError):
        pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except (TypeError, ValueError):
        pass
    parsed = email.utils.parsedate_tz(str(raw))
    if parsed is None:
        return None
    return max(0.0, float(email.utils.mktime_tz(parsed) - time.time()))


def attempt_event(
    *,
    attempt: int,
    status: int | None,
    error: str | None,
    usage: Usage,
    latency_ms: float,
    model: str,
    turn: int = 1,
    discard_partial: bool = False,
    retry_after_s: float | None = None,
) -> StreamEvent:
    """One ``attempt`` stream event (one LLM-call record for observers).

    ``discard_partial`` is True when this failed attempt had already streamed ``delta`` text:
    consumers must drop the text of this attempt; the next attempt streams the answer anew.
    """
    data: dict[str, Any] = {
        "attempt": attempt,
        "status": status,
        "error": error,
        "usage": usage.to_dict(),
        "latency_ms": round(latency_ms, 3),
        "model": model,
        "turn": turn,
        "discard_partial": discard_partial,
    }
    if retry_after_s is not None:
        data["retry_after_s"] = retry_after_s
    return StreamEvent("attempt", data=data)
