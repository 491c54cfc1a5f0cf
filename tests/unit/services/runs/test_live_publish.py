"""What a run of this worker tells the other workers (``live.LiveView`` over Redis pub/sub):
its state while another worker's stream listens, only "it changed" while none does."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from elexirion_app import config
from elexirion_app.core.events import StepStarted
from elexirion_app.services.runs import live

REDIS = "redis://127.0.0.1:6379/9"


@pytest.fixture
async def redis_set(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    monkeypatch.setenv("REDIS_URL", REDIS)
    config.get_settings.cache_clear()
    try:
        yield
    finally:
        for client in live._redis.values():
            await client.aclose()
        live._redis.clear()
        config.get_settings.cache_clear()


def _state() -> live.RunState:
    steps = (
        live.StepState("nested", "running", "", {}, "0.000000", 0.0, ""),
        live.StepState("one", "succeeded", "offline", {"input": 3}, "0.000120", 1.5, ""),
    )
    return live.RunState("running", "", "0.000120", {"input": 3}, steps)


def test_the_message_is_the_state_as_before() -> None:
    """The message (built field by field) is the JSON ``dataclasses.asdict`` gave, and the
    receiving worker reads the same state back."""
    state = _state()
    message = live._as_message(state)
    assert json.loads(message) == json.loads(json.dumps(dataclasses.asdict(state)))
    assert live._state_of({"type": "message", "data": message}) == state


async def _next_message(pubsub: aioredis.client.PubSub) -> bytes:
    for _ in range(100):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            return bytes(message["data"])
    raise AssertionError("no message within 10 s")


async def _subscribers(client: aioredis.Redis, run_id: str, n: int) -> None:
    """Until Redis counts ``n`` subscribers of the run's channel (SUBSCRIBE and UNSUBSCRIBE
    are sent, not waited for)."""
    for _ in range(200):
        if (await client.pubsub_numsub(live._channel(run_id)))[0][1] == n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the channel never had {n} subscribers")


async def _change(view: live.LiveView, step: str) -> None:
    await view(StepStarted(run_id=view.run_id, step=step, step_type="claude", index=0))
    await view.drained()


async def test_unfollowed_changes_carry_no_state_until_a_stream_listens(redis_set: None) -> None:
    run_id = str(uuid.uuid4())
    view = live.LiveView(run_id, live.Job(user_id=1), ("one", "two"))
    other_worker = aioredis.from_url(REDIS)
    pubsub = other_worker.pubsub()
    try:
        await _change(view, "one")  # nobody listens: the state went to no one
        assert view._followed is False

        await pubsub.subscribe(live._channel(run_id))
        await _subscribers(other_worker, run_id, 1)
        await _change(view, "two")  # "it changed", then the state itself at once
        assert await _next_message(pubsub) == b"1"
        assert view._followed is True
        got = live._state_of({"data": await _next_message(pubsub)})
        assert got == view.job.live
        assert got is not None and [s.status for s in got.steps] == ["running", "running"]

        await _change(view, "one")  # followed now: the state only
        again = live._state_of({"data": await _next_message(pubsub)})
        assert again == view.job.live

        await pubsub.unsubscribe()
        await _subscribers(other_worker, run_id, 0)
        await _change(view, "one")  # the stream left: back to plain signals
        assert view._followed is False
    finally:
        await pubsub.aclose()
        await other_worker.aclose()


async def test_a_failing_publisher_does_not_fail_the_run(
    redis_set: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An error that is not Redis's (a state that cannot be serialised) is logged; the run's
    end still drains and sends its final signal."""

    def broken(state: live.RunState) -> bytes:
        raise TypeError("not serialisable")

    monkeypatch.setattr(live, "_as_message", broken)
    view = live.LiveView(str(uuid.uuid4()), live.Job(user_id=1), ("one",))
    await _change(view, "one")  # drained() returns instead of raising
    assert "live change not published" in caplog.text


async def test_without_redis_nothing_is_published(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    config.get_settings.cache_clear()
    try:
        assert await live.publish(str(uuid.uuid4()), _state()) is None
        view = live.LiveView(str(uuid.uuid4()), live.Job(user_id=1), ("one",))
        await _change(view, "one")
        assert view._pump is None  # no publisher task at all
        assert view.job.live is not None and view.job.live.steps[0].status == "running"
    finally:
        config.get_settings.cache_clear()
