"""An API run as its event stream sees it without reading the database (issue 9, performance):
the job's live state is what the database says once the writes land, another worker gets it
in the change message, and the recorder's batched writes still leave every row right."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from elexirion_app import config
from elexirion_app.core.errors import NotFound
from elexirion_app.db.engine import get_engine, session_scope
from elexirion_app.db.models import AppUser, Run, StepRun
from elexirion_app.pipelines.loader import load_text
from elexirion_app.services.runs import jobs, live
from elexirion_app.services.runs.recorder import RunRecorder
from elexirion_app.services.runs.run_records import run_recorded
from tests.unit.pipelines.engine_fakes import CountingProvider

REDIS = "redis://127.0.0.1:6379/9"
PIPELINE = """workflow:
  name: live_three
  steps:
    - name: one
      type: claude
      prompt: [{type: static, content: "Echo: one"}]
    - name: two
      type: claude
      prompt: [{type: static, content: "Echo: two"}]
    - name: three
      type: claude
      prompt: [{type: static, content: "Echo: three"}]
"""


def _user() -> int:
    with session_scope() as session:
        user = AppUser(email=f"{uuid.uuid4().hex[:8]}@example.com")
        session.add(user)
        session.flush()
        assert user.id is not None
        return user.id


async def _finish(run_id: str) -> list[live.RunState]:
    """Every live state the job shows while it goes, then wait for its end."""
    job = live.JOBS[run_id]
    seen: list[live.RunState] = []
    assert job.task is not None
    while not job.task.done():
        if job.live is not None and (not seen or seen[-1] != job.live):
            seen.append(job.live)
        await asyncio.sleep(0)
    return seen


async def test_the_live_state_is_what_the_database_says(db_url: str) -> None:
    uid = _user()
    run_id = await jobs.start(uid, PIPELINE)
    states = await _finish(run_id)
    assert states, "no live state while the run went"
    last = states[-1]
    final = jobs.snapshot(uid, run_id)  # the database, after every write
    assert final.status == "succeeded"
    assert last.status == "running"  # the end always comes from the database
    assert [s.name for s in last.steps] == [s.name for s in final.steps] == ["one", "two", "three"]
    assert last.steps == final.steps  # same fields, same values, same order
    # Step states only move forward in what a stream is shown.
    order = {"queued": 0, "running": 1, "succeeded": 2}
    for before, after in itertools.pairwise(states):
        for a, b in zip(before.steps, after.steps, strict=True):
            assert order[b.status] >= order[a.status], (a, b)
    # A finished job's streams read the database, not the live view.
    assert (await jobs.current(uid, run_id)).status == "succeeded"


async def test_another_users_id_gets_no_live_state(db_url: str) -> None:
    owner, other = _user(), _user()
    run_id = await jobs.start(owner, PIPELINE)
    try:
        with pytest.raises(NotFound):
            await jobs.current(other, run_id)
    finally:
        await _finish(run_id)


async def test_the_recorder_batches_leave_every_row_right(db_url: str) -> None:
    uid = _user()
    run_id = await jobs.start(uid, PIPELINE)
    await _finish(run_id)
    with Session(get_engine()) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.status == "succeeded" and run.finished_at is not None
        steps = session.exec(
            select(StepRun).where(StepRun.run_id == run_id).order_by(StepRun.position)
        ).all()
    assert [(s.name, s.status) for s in steps] == [
        ("one", "succeeded"),
        ("two", "succeeded"),
        ("three", "succeeded"),
    ]
    assert all(s.started_at and s.finished_at and s.started_at <= s.finished_at for s in steps)
    assert all(s.result and "text" in s.result for s in steps)


async def test_another_worker_gets_the_state_in_the_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", REDIS)
    config.get_settings.cache_clear()
    run_id = str(uuid.uuid4())  # not a job of this process: "another worker" runs it
    state = live.RunState(
        "running",
        "",
        "0.000000",
        {},
        (live.StepState("one", "succeeded", "offline", {"input": 3}, "0.000000", 1.5, ""),),
    )
    try:
        async with live.watch(run_id) as changed:
            publisher = asyncio.create_task(live.publish(run_id, state))
            assert await changed(30) is True
            await publisher
            assert changed.state == state
            await live.publish(run_id)  # the final signal carries no state: read the database
            assert await changed(30) is True
            assert changed.state is None
    finally:
        for client in live._redis.values():
            await client.aclose()
        live._redis.clear()
        config.get_settings.cache_clear()


async def test_a_failed_write_in_a_batch_keeps_the_writes_before_it(
    db_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step's final write and the next step's ``running`` one go in one transaction; when
    the second fails, the first is still written (its result is reused by a resume)."""
    real = RunRecorder._step_started

    def failing(self: RunRecorder, event: Any) -> None:
        if event.step == "two":
            raise OperationalError("UPDATE step_run", {}, Exception("disk I/O error"))
        real(self, event)

    monkeypatch.setattr(RunRecorder, "_step_started", failing)
    provider = CountingProvider()
    outcome = await run_recorded(
        load_text(PIPELINE),
        pipeline_yaml=PIPELINE,
        engine=get_engine(db_url),
        provider_for=provider,
        workspace=tmp_path / "ws",
        output_dir=tmp_path / "out",
    )
    assert outcome.status == "failed" and "disk I/O error" in (outcome.error or "")
    assert provider.calls == 1  # "two" never called its provider
    with Session(get_engine(db_url)) as session:
        steps = {s.name: s for s in session.exec(select(StepRun)).all()}
        run = session.exec(select(Run)).one()
    assert steps["one"].status == "succeeded" and steps["one"].result is not None
    assert steps["two"].status in ("queued", "failed")
    assert run.status == "failed"
