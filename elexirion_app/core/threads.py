"""Named thread pools for blocking work, each sized by an environment variable.

None of our work goes to the event loop's default executor: Reflex's state manager writes
every changed tab state through that one, so our slow calls queued there held up every chat
stream. Separate pools also keep slow work (uploads, password hashing) from queueing in front
of the quick database reads every event needs.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class WorkPool:
    """A lazily started ``ThreadPoolExecutor`` of ``$env`` (default ``default``) threads."""

    def __init__(
        self,
        prefix: str,
        env: str,
        default: int,
        initializer: Callable[[], None] | None = None,
    ) -> None:
        self.prefix, self.env, self.default, self.initializer = prefix, env, default, initializer
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                raw = os.environ.get(self.env) or str(self.default)
                workers = max(1, int(raw))
                self._executor = ThreadPoolExecutor(
                    workers, thread_name_prefix=self.prefix, initializer=self.initializer
                )
            return self._executor

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on this pool, awaited from the event loop."""
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.executor(), call)
