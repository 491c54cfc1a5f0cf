"""Named thread pools for blocking work, each sized by an environment variable.

None of our work goes to the event loop's default executor: Reflex's state manager writes
every changed tab state through that one, so our slow calls queued there held up every chat
stream. Separate pools also keep slow work (uploads, password hashing) from queueing in front
of the quick database reads every event needs.

CPU work on one user's documents (parse, validate, graph, edits, diffs) runs on ``CPU_POOL``
through ``in_cpu_thread(user_id, ...)``: its own threads (four tabs of one user parsing big
texts used to fill the database pool every identity check waits on), and at most
``ELEXIRION_CPU_JOBS_PER_USER`` jobs of one user at a time in this process; a user's further
jobs wait their turn outside the pool (at most ``ELEXIRION_CPU_QUEUE_PER_USER`` of them, then
``InputError``), so another user's job finds a free thread. CPU threads share the GIL with
the event loop: while one runs, the interpreter's switch interval is lowered to 1 ms (from
5 ms) so the loop gets the GIL back sooner at each hand-over (an event makes dozens); once
none runs it is set back (it used to stay at 1 ms for good after the first CPU job: the
database and recorder threads then forced a GIL hand-over every millisecond too, which cost
the served API ~3-4 ms of CPU per run in bench/api.py).
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from elexirion_app.core.errors import InputError

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


def _env_int(env: str, default: int) -> int:
    return max(1, int(os.environ.get(env) or default))


class _Slot:
    __slots__ = ("semaphore", "users")

    def __init__(self, limit: int) -> None:
        self.semaphore = asyncio.Semaphore(limit)
        self.users = 0  # jobs holding or waiting for this key's semaphore


class PerKeyCap:
    """At most ``$env`` (default ``default``) jobs at a time per key (a user id) in this
    process, and at most ``$queue_env`` more waiting; entries exist only while in use."""

    def __init__(self, env: str, default: int, queue_env: str, queue_default: int) -> None:
        self.env, self.default = env, default
        self.queue_env, self.queue_default = queue_env, queue_default
        self._slots: dict[object, _Slot] = {}

    def limit(self) -> int:
        return _env_int(self.env, self.default)

    def in_use(self, key: object) -> int:
        slot = self._slots.get(key)
        return slot.users if slot is not None else 0

    async def acquire(self, key: object) -> None:
        limit = self.limit()
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(limit)
        if slot.users >= limit + _env_int(self.queue_env, self.queue_default):
            raise InputError("Too much work at once: wait until your other tabs are done.")
        slot.users += 1
        try:
            await slot.semaphore.acquire()
        except BaseException:
            self._drop(key, slot)
            raise

    def release(self, key: object) -> None:
        slot = self._slots.get(key)
        if slot is None:
            return
        slot.semaphore.release()
        self._drop(key, slot)

    def _drop(self, key: object, slot: _Slot) -> None:
        slot.users -= 1
        if slot.users <= 0 and self._slots.get(key) is slot:
            del self._slots[key]


CPU_POOL = WorkPool("elx-cpu", "ELEXIRION_CPU_THREADS", 2)
CPU_SWITCH_INTERVAL_S = 0.001
CPU_CAP = PerKeyCap("ELEXIRION_CPU_JOBS_PER_USER", 1, "ELEXIRION_CPU_QUEUE_PER_USER", 8)


class _SwitchInterval:
    """The lowered switch interval while at least one CPU job runs (counted on the loop)."""

    def __init__(self) -> None:
        self.running = 0
        self.saved: float | None = None

    def enter(self) -> None:
        self.running += 1
        if self.running == 1 and sys.getswitchinterval() > CPU_SWITCH_INTERVAL_S:
            self.saved = sys.getswitchinterval()
            sys.setswitchinterval(CPU_SWITCH_INTERVAL_S)

    def leave(self) -> None:
        self.running -= 1
        if self.running == 0 and self.saved is not None:
            sys.setswitchinterval(self.saved)
            self.saved = None


CPU_SWITCH = _SwitchInterval()


async def in_cpu_thread(key: object, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on ``CPU_POOL`` as one of ``key``'s (a user id's) jobs.

    The slot is given back when the thread is done, not when the caller stops waiting: a
    cancelled caller does not let its user start more threads than the cap."""
    await CPU_CAP.acquire(key)
    CPU_SWITCH.enter()
    try:
        call = functools.partial(fn, *args, **kwargs)
        future = asyncio.get_running_loop().run_in_executor(CPU_POOL.executor(), call)
    except BaseException:
        CPU_SWITCH.leave()
        CPU_CAP.release(key)
        raise

    def done(finished: asyncio.Future[T]) -> None:
        CPU_SWITCH.leave()
        CPU_CAP.release(key)
        if not finished.cancelled():
            finished.exception()  # retrieved here too: the caller may have stopped waiting

    future.add_done_callback(done)
    return await asyncio.shield(future)
