"""CPU work has its own pool and a per-user cap (attacker finding 4): one user's jobs cannot
take every thread, nor the database pool every identity check needs."""

from __future__ import annotations

import asyncio
import threading

import pytest

from elexirion_app.core import threads
from elexirion_app.core.errors import InputError
from elexirion_app.db.engine import DB_POOL


async def _wait_until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_a_users_jobs_run_one_at_a_time_and_leave_a_thread_for_another_user() -> None:
    gate, running, peak = threading.Event(), [], [0]
    lock = threading.Lock()

    def job(name: str) -> str:
        with lock:
            running.append(name)
            peak[0] = max(peak[0], sum(1 for r in running if r.startswith("a")))
        gate.wait(5)
        with lock:
            running.remove(name)
        return name

    first = [asyncio.ensure_future(threads.in_cpu_thread(1, job, f"a{i}")) for i in range(4)]
    await _wait_until(lambda: running == ["a0"])
    other = await asyncio.wait_for(_other_users_job(), 5)  # not queued behind user 1's
    assert other == "b"
    gate.set()
    assert await asyncio.gather(*first) == ["a0", "a1", "a2", "a3"]
    assert peak[0] == 1
    assert threads.CPU_CAP.in_use(1) == 0  # nothing kept once done


async def _other_users_job() -> str:
    return await threads.in_cpu_thread(2, lambda: "b")


async def test_cpu_jobs_never_take_a_database_thread() -> None:
    names: list[str] = []
    await threads.in_cpu_thread(3, lambda: names.append(threading.current_thread().name))
    assert names[0].startswith("elx-cpu") and DB_POOL.prefix not in names[0]


async def test_a_user_queueing_too_many_jobs_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELEXIRION_CPU_QUEUE_PER_USER", "2")
    gate = threading.Event()
    held = [asyncio.ensure_future(threads.in_cpu_thread(4, gate.wait, 5)) for _ in range(3)]
    await _wait_until(lambda: threads.CPU_CAP.in_use(4) == 3)
    with pytest.raises(InputError, match="Too much work"):
        await threads.in_cpu_thread(4, lambda: None)
    gate.set()
    await asyncio.gather(*held)
    assert threads.CPU_CAP.in_use(4) == 0


async def test_a_cancelled_caller_keeps_its_slot_until_the_thread_is_done() -> None:
    gate, started = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        gate.wait(5)

    waiting = asyncio.ensure_future(threads.in_cpu_thread(5, slow))
    await _wait_until(started.is_set)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert threads.CPU_CAP.in_use(5) == 1  # the thread still works for user 5
    gate.set()
    await _wait_until(lambda: threads.CPU_CAP.in_use(5) == 0)


async def test_the_switch_interval_is_lowered_only_while_a_cpu_job_runs() -> None:
    import sys

    before = sys.getswitchinterval()
    assert before > threads.CPU_SWITCH_INTERVAL_S
    seen: list[float] = []
    gate = threading.Event()

    def job() -> None:
        seen.append(sys.getswitchinterval())
        gate.wait(5)

    running = asyncio.ensure_future(threads.in_cpu_thread(1, job))
    await _wait_until(lambda: seen)
    assert seen == [threads.CPU_SWITCH_INTERVAL_S]
    gate.set()
    await running
    assert sys.getswitchinterval() == before  # set back once no CPU job runs
