"""An API run's event stream wakes up when the run changes: in this worker through the job's
event, across workers through Redis pub/sub (the real server on 127.0.0.1:6379)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from elexirion_app import config
from elexirion_app.services.runs import live

REDIS = "redis://127.0.0.1:6379/0"


async def test_without_redis_a_foreign_run_is_polled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("REFLEX_REDIS_URL", raising=False)
    config.get_settings.cache_clear()
    async with live.watch(str(uuid.uuid4())) as changed:
        assert await changed(0.01) is False  # a timeout: the stream re-reads the database


async def test_a_change_published_by_another_worker_wakes_the_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", REDIS)
    config.get_settings.cache_clear()
    run_id = str(uuid.uuid4())  # not a job of this process: "another worker" runs it
    try:
        async with live.watch(run_id) as changed:
            assert await changed(0.05) is False  # nothing yet
            publisher = asyncio.create_task(live.publish(run_id))
            assert await changed(30) is True
            await publisher
            other = str(uuid.uuid4())
            await live.publish(other)  # another run's change does not wake this stream
            assert await changed(0.2) is False
    finally:
        for client in live._redis.values():
            await client.aclose()
        live._redis.clear()
        config.get_settings.cache_clear()


async def test_a_local_job_wakes_its_stream_without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    config.get_settings.cache_clear()
    run_id = str(uuid.uuid4())
    job = live.JOBS[run_id] = live.Job(user_id=1)
    try:
        async with live.watch(run_id) as changed:
            asyncio.get_running_loop().call_soon(job.changed.set)
            assert await changed(30) is True
            assert await changed(0.01) is False
    finally:
        live.JOBS.pop(run_id, None)
