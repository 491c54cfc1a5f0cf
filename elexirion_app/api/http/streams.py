"""A cap on the Server-Sent Event streams one account holds open (chat replies and run events).

Each open stream is a task on this worker (following a run, or a chat turn) held for as long as
the client keeps the connection: without a cap one key within its request rate limit could open
thousands. ``open_stream`` takes one of the user's ``MAX_OPEN_STREAMS`` slots before the
response starts (``429`` with ``Retry-After`` when none is free) and gives it back when the
response ends — however it ends: finished, failed, or the client gone. Slots are counted per
worker process: with several workers a user may hold that many on each.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse

from elexirion_app.api.http.deps import limited

MAX_OPEN_STREAMS = int(os.environ.get("ELEXIRION_MAX_STREAMS_PER_USER") or "16")
_open: Counter[int] = Counter()


def open_count(user_id: int) -> int:
    return _open[user_id]


class Slot:
    """One of a user's open-stream slots; ``release`` is idempotent."""

    def __init__(self, user_id: int) -> None:
        self._user_id: int | None = user_id

    def release(self) -> None:
        if self._user_id is not None:
            _open[self._user_id] -= 1
            if _open[self._user_id] <= 0:
                del _open[self._user_id]
            self._user_id = None


def take(user_id: int) -> Slot:
    """A stream slot of ``user_id`` (taken before any await: a burst cannot pass the cap), or
    429. Give it to ``respond``, or ``release`` it if no stream is started."""
    if _open[user_id] >= MAX_OPEN_STREAMS:
        raise limited(
            1,
            f"open event streams ({MAX_OPEN_STREAMS} at a time per account; close one first)",
        )
    _open[user_id] += 1
    return Slot(user_id)


class _CountedStream(EventSourceResponse):
    """An ``EventSourceResponse`` that gives its slot back when the ASGI call ends."""

    def __init__(self, slot: Slot, content: AsyncIterator[Any], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._slot = slot

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slot.release()


def respond(slot: Slot, content: AsyncIterator[Any], **kwargs: Any) -> EventSourceResponse:
    """The SSE response of ``content``, holding ``slot`` until the response ends."""
    try:
        return _CountedStream(slot, content, **kwargs)
    except BaseException:
        slot.release()
        raise
