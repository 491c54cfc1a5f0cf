"""Run records: write-ahead rows, LLM calls per attempt, heartbeat, stale sweep, resume."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from elexirion_app.core.errors import Conflict, InputError, NotFound
from elexirion_app.core.events import StepStarted
from elexirion_app.db.engine import get_engine
from elexirion_app.db.models import AppUser, LLMCall, Run, StepRun, utcnow
from elexirion_app.pipelines.loader import load_text
from elexirion_app.services.runs.recorder import RunRecorder, queue_run
from elexirion_app.services.runs.run_records import (
    load_resume,
    resume_run,
    run_recorded,
    sweep_stale,
)
from tests.unit.pipelines.engine_fakes import CountingProvider

PIPELINE = """
workflow:
  name: recorded
  steps:
    - name: first
      type: claude
      prompt: [{type: static, content: "simple test"}]
    - name: second
      type: gemini
      prompt: [{type: static, content: "make a plan"}]
    - name: skipped
      type: claude
      condition: "first.text == 'nope'"
      prompt: [{type: static, content: "never"}]
    - name: third
      type: claude
      prompt:
        - type: previous_response
          step: second
          extract: plan
"""


def _user(engine: Any) -> int:
    with Session(engine) as s:
        user = AppUser(email="a@example.com")
        s.add(user)
        s.commit()
        assert user.id is not None
        return user.id


async def _run(engine: Any, provider: CountingProvider, tmp_path: Path, **kw: Any) -> Any:
    return await run_recorded(
        load_text(PIPELINE),
        pipeline_yaml=PIPELINE,
        engine=engine,
        provider_for=provider,
        inputs={"who": "me"},
        workspace=tmp_path / "ws",
        output_dir=tmp_path / "out",
        **kw,
    )


async def test_records_runs_steps_and_calls(db_url: str, tmp_path: Path) -> None:
    engine = get_engine(db_url)
    user_id = _user(engine)
    seen: list[tuple[str, dict[str, str], str]] = []

    def probe(event: Any) -> None:
        """Runs after the recorder: the DB already shows what happened so far."""
        if isinstance(event, StepStarted):
            with Session(engine) as s:
                run = s.exec(select(Run)).one()
                steps = {r.name: r.status for r in s.exec(select(StepRun))}
            seen.append((event.step, steps, run.status))

    outcome = await _run(engine, CountingProvider(), tmp_path, user_id=user_id, observers=[probe])
    assert outcome.status == "succeeded"
    assert seen[0] == (
        "first",
        {"first": "running", "second": "queued", "skipped": "queued", "third": "queued"},
        "running",
    )
    assert seen[1][1]["first"] == "succeeded" and seen[1][1]["second"] == "running"
    with Session(engine) as s:
        run = s.exec(select(Run)).one()
        assert run.id == outcome.run_id and run.status == "succeeded"
        assert run.user_id == user_id and run.pipeline_name == "recorded"
        assert run.pipeline_yaml == PIPELINE and run.inputs == {"who": "me"}
        assert run.cost_usd == Decimal("0") == outcome.cost  # the offline model is free
        assert run.tokens == outcome.usage.to_dict()
        assert run.finished_at is not None and run.heartbeat_at is not None
        steps = {r.name: r for r in s.exec(select(StepRun).order_by(StepRun.position))}
        assert [r.position for r in steps.values()] == [0, 1, 2, 3]
        assert steps["skipped"].status == "skipped"
        assert steps["first"].result["text"] == "Mock response for simple test"
        assert steps["second"].cost_usd == Decimal("0")
        assert steps["second"].tokens["output"] > 0 and steps["second"].step_type == "gemini"
        calls = s.exec(select(LLMCall).order_by(LLMCall.id)).all()
        assert [c.step_name for c in calls] == ["first", "second", "third"]
        assert all(c.user_id == user_id and c.run_id == run.id for c in calls)
        assert calls[0].cost_usd == Decimal("0") and calls[0].output_tokens > 0
        assert calls[0].offline and calls[0].caller == "step" and calls[0].pipeline == "recorded"
        assert calls[0].model == "offline-demo" and calls[0].status == "ok"


async def test_failed_attempts_get_their_own_call_rows(db_url: str, tmp_path: Path) -> None:
    engine = get_engine(db_url)
    provider = CountingProvider(fail=lambda r: r.provider == "gemini")
    outcome = await _run(engine, provider, tmp_path)
    assert outcome.status == "failed"
    with Session(engine) as s:
        run = s.exec(select(Run)).one()
        assert run.status == "failed" and "second" in (run.error or "")
        statuses = {r.name: r.status for r in s.exec(select(StepRun))}
        assert statuses == {
            "first": "succeeded",
            "second": "failed",
            "skipped": "queued",
            "third": "queued",
        }
        calls = s.exec(select(LLMCall).order_by(LLMCall.id)).all()
        assert [(c.step_name, c.status) for c in calls] == [("first", "ok"), ("second", "error")]
        assert calls[1].error == "server error"


async def test_heartbeat_moves_while_running(db_url: str, tmp_path: Path) -> None:
    engine = get_engine(db_url)
    beats: list[Any] = []

    async def watch() -> None:
        for _ in range(30):
            await asyncio.sleep(0.02)
            with Session(engine) as s:
                run = s.exec(select(Run)).first()
                if run is not None and run.status == "running":
                    beats.append(run.heartbeat_at)

    watcher = asyncio.create_task(watch())
    await _run(engine, CountingProvider(delay_s=0.1), tmp_path, heartbeat_s=0.02)
    await watcher
    assert len(set(beats)) >= 3


async def test_sweep_marks_stale_runs_interrupted(db_url: str) -> None:
    engine = get_engine(db_url)
    for run_id, age in (("stale", 600), ("fresh", 1)):
        queue_run(engine, run_id=run_id, pipeline_name="p", step_names=["a", "b"])
        with Session(engine) as s:
            run = s.get(Run, run_id)
            assert run is not None
            run.status = "running"
            run.heartbeat_at = utcnow() - timedelta(seconds=age)
            s.add(run)
            step = s.exec(
                select(StepRun).where(StepRun.run_id == run_id, StepRun.name == "a")
            ).one()
            step.status = "running"
            s.add(step)
            s.commit()
    with Session(engine) as s:
        assert sweep_stale(s, older_than_s=60) == ["stale"]
        s.commit()
    with Session(engine) as s:
        stale, fresh = s.get(Run, "stale"), s.get(Run, "fresh")
        assert stale is not None and fresh is not None
        assert stale.status == "interrupted" and fresh.status == "running"
        steps = {(r.run_id, r.name): r.status for r in s.exec(select(StepRun))}
        assert steps[("stale", "a")] == "interrupted" and steps[("stale", "b")] == "queued"
        assert steps[("fresh", "a")] == "running"


async def test_resume_reuses_finished_steps(db_url: str, tmp_path: Path) -> None:
    engine = get_engine(db_url)
    failing = CountingProvider(fail=lambda r: r.provider == "gemini")
    first = await _run(engine, failing, tmp_path)
    assert first.status == "failed" and failing.calls == 2

    counting = CountingProvider()
    # No workspace/output_dir given: the resume continues where the run read and wrote.
    resumed = await resume_run(first.run_id, engine=engine, provider_for=counting)
    assert resumed.status == "succeeded" and resumed.run_id == first.run_id
    assert resumed.output_dir == (tmp_path / "out").resolve()
    # "first" is never sent to the provider again: only "second" and "third" are
    assert [r.prompt for r in counting.requests] == ["make a plan", "Mock implementation plan"]
    assert resumed.steps["first"]["text"] == "Mock response for simple test"
    with Session(engine) as s:
        run = s.get(Run, first.run_id)
        assert run is not None and run.status == "succeeded" and run.error is None
        assert run.workspace == str((tmp_path / "ws").resolve())
        assert run.cost_usd == Decimal("0")  # offline calls, before and now, cost $0
        statuses = {r.name: r.status for r in s.exec(select(StepRun))}
        assert set(statuses.values()) == {"succeeded", "skipped"}
        with pytest.raises(Conflict, match="succeeded"):
            load_resume(s, first.run_id)
        with pytest.raises(NotFound):
            load_resume(s, "missing")


async def test_cancelled_run_is_interrupted_and_resumable(db_url: str, tmp_path: Path) -> None:
    engine = get_engine(db_url)
    slow = CountingProvider(delay_s=5)
    task = asyncio.create_task(_run(engine, slow, tmp_path, heartbeat_s=0))
    while slow.calls == 0:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with Session(engine) as s:
        run = s.exec(select(Run)).one()
        assert run.status == "interrupted"
        first = s.exec(select(StepRun).where(StepRun.name == "first")).one()
        assert first.status == "interrupted"
    counting = CountingProvider()
    resumed = await resume_run(
        run.id, engine=engine, provider_for=counting, workspace=tmp_path / "ws"
    )
    assert resumed.status == "succeeded" and counting.calls == 3


def test_recorder_is_a_plain_observer(db_url: str) -> None:
    recorder = RunRecorder(engine=get_engine(db_url))
    assert callable(recorder)


async def test_queued_run_moves_to_running_then_succeeded(db_url: str, tmp_path: Path) -> None:
    engine = get_engine(db_url)
    names = ["first", "second", "skipped", "third"]
    queue_run(
        engine, run_id="q1", pipeline_name="recorded", pipeline_yaml=PIPELINE, step_names=names
    )
    with Session(engine) as s:
        run = s.get(Run, "q1")
        assert run is not None and run.status == "queued" and run.started_at is None
    outcome = await _run(engine, CountingProvider(), tmp_path, run_id="q1")
    assert outcome.status == "succeeded"
    with Session(engine) as s:
        rows = s.exec(select(StepRun).where(StepRun.run_id == "q1")).all()
        assert sorted(r.name for r in rows) == sorted(names)  # no duplicates
        run = s.get(Run, "q1")
        assert run is not None and run.status == "succeeded" and run.started_at is not None


async def test_queued_run_refused_before_start_is_marked_failed(
    db_url: str, tmp_path: Path
) -> None:
    engine = get_engine(db_url)
    text = PIPELINE.replace("  name: recorded\n", "  name: recorded\n  inputs: [{name: x}]\n")
    queue_run(engine, run_id="q2", pipeline_name="recorded", pipeline_yaml=text)
    with pytest.raises(InputError):
        await run_recorded(
            load_text(text),
            pipeline_yaml=text,
            engine=engine,
            inputs={},
            run_id="q2",
            provider_for=CountingProvider(),
            workspace=tmp_path,
        )
    with Session(engine) as s:
        run = s.get(Run, "q2")
        assert run is not None and run.status == "failed" and "x" in (run.error or "")


# --- failures are loud ------------------------------------------------------------------------


async def test_a_failed_record_write_fails_the_run(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = get_engine(db_url)
    real = RunRecorder._step_finished

    def failing(self: RunRecorder, event: Any) -> None:
        if event.step == "first":
            raise OperationalError("UPDATE step_run", {}, Exception("disk I/O error"))
        real(self, event)

    monkeypatch.setattr(RunRecorder, "_step_finished", failing)
    provider = CountingProvider()
    outcome = await _run(engine, provider, tmp_path)
    assert outcome.status == "failed"
    assert "RunRecorder" in (outcome.error or "") and "disk I/O error" in (outcome.error or "")
    assert provider.calls == 1  # "second" never started: its write-ahead could not be trusted
    with Session(engine) as s:
        run = s.exec(select(Run)).one()
        assert run.status == "failed" and "RunRecorder" in (run.error or "")
        # the LLM call of "first" was not lost with the failed write: the ledger booked it
        assert [c.step_name for c in s.exec(select(LLMCall))] == ["first"]


async def test_a_dropped_table_fails_the_run_loudly(db_url: str, tmp_path: Path) -> None:
    engine = get_engine(db_url)

    def drop_calls_table(event: Any) -> None:
        if isinstance(event, StepStarted) and event.step == "first":
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP TABLE llm_call")

    provider = CountingProvider()
    outcome = await _run(engine, provider, tmp_path, observers=[drop_calls_table])
    assert outcome.status == "failed"
    # the ledger's booking of the first call fails: the step, then the run, fail loudly
    assert "OperationalError" in (outcome.error or "")
    assert provider.calls == 1
    with Session(engine) as s:
        run = s.exec(select(Run)).one()
        assert run.status != "succeeded"  # nothing claims success (the sweep will end it)


async def test_a_failed_heartbeat_fails_the_run(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = get_engine(db_url)

    def touch(self: RunRecorder) -> None:
        raise OperationalError("UPDATE run", {}, Exception("database is locked"))

    monkeypatch.setattr(RunRecorder, "_touch", touch)
    provider = CountingProvider(delay_s=0.1)
    outcome = await _run(engine, provider, tmp_path, heartbeat_s=0.01)
    assert outcome.status == "failed" and "database is locked" in (outcome.error or "")
    assert provider.calls < 3
    with Session(engine) as s:
        assert s.exec(select(Run)).one().status == "failed"


# --- the event loop stays free while a write waits for SQLite's lock --------------------------


async def test_recorder_writes_do_not_block_the_event_loop(db_url: str, tmp_path: Path) -> None:
    engine = get_engine(db_url)
    db_path = db_url.split("///", 1)[1]
    locked, release, released = threading.Event(), threading.Event(), threading.Event()

    def hold_write_lock() -> None:
        conn = sqlite3.connect(db_path, timeout=10)
        try:
            conn.execute("BEGIN IMMEDIATE")
            locked.set()
            # Held until the ticker proves the loop is free (or 3 s: the writer's busy timeout
            # is 5 s, so even a blocked loop gets its write through afterwards).
            release.wait(timeout=3.0)
            conn.rollback()
        finally:
            conn.close()
            released.set()

    ticks_while_locked = 0
    stop = False

    async def ticker() -> None:
        nonlocal ticks_while_locked
        while not stop:
            await asyncio.sleep(0.01)
            if locked.is_set() and not released.is_set():
                ticks_while_locked += 1
                if ticks_while_locked >= 30:
                    release.set()

    holder = threading.Thread(target=hold_write_lock)
    holder.start()
    while not locked.is_set():
        await asyncio.sleep(0.001)
    ticking = asyncio.create_task(ticker())
    running = asyncio.create_task(_run(engine, CountingProvider(), tmp_path, heartbeat_s=0))
    while not released.is_set():
        await asyncio.sleep(0.005)
    was_waiting = not running.done()
    outcome = await running
    stop = True
    await ticking
    holder.join()
    assert was_waiting  # the recorder really was stuck behind the lock
    assert ticks_while_locked >= 30  # ...while the loop went on ticking
    assert outcome.status == "succeeded"  # and the write went through once the lock was free


# --- resume: loop iterations and nested steps are units -------------------------------------

LOOP_PIPELINE = """
workflow:
  name: loop_resume
  steps:
    - name: init
      type: set_variable
      variables: {count: 0}
    - name: each
      type: for_loop
      iterator: x
      data_source: "{{inputs.xs}}"
      steps:
        - name: bump
          type: set_variable
          variables: {count: "{{state.count + 1}}"}
        - name: ask
          type: claude
          prompt: [{type: static, content: "item {{loop.x}} count {{state.count}}"}]
    - name: after
      type: claude
      prompt: [{type: static, content: "done {{state.count}}"}]
"""

NESTED_PIPELINE = """
workflow:
  name: nested_resume
  steps:
    - name: before
      type: claude
      prompt: [{type: static, content: "simple test"}]
    - name: child
      type: pipeline
      pipeline:
        name: inner
        steps:
          - name: one
            type: claude
            prompt: [{type: static, content: "inner one"}]
          - name: two
            type: claude
            prompt:
              - type: static
                content: "inner two after:"
              - type: previous_response
                step: one
    - name: after
      type: claude
      prompt: [{type: static, content: "the end"}]
"""


async def _run_text(engine: Any, text: str, provider: Any, tmp_path: Path, **kw: Any) -> Any:
    return await run_recorded(
        load_text(text),
        pipeline_yaml=text,
        engine=engine,
        provider_for=provider,
        workspace=tmp_path / "ws",
        output_dir=tmp_path / "out",
        heartbeat_s=0,
        **kw,
    )


async def test_resume_of_a_loop_repeats_only_the_failed_iteration(
    db_url: str, tmp_path: Path
) -> None:
    engine = get_engine(db_url)
    failing = CountingProvider(fail=lambda r: r.prompt.startswith("item c"))
    first = await _run_text(
        engine, LOOP_PIPELINE, failing, tmp_path, inputs={"xs": ["a", "b", "c"]}
    )
    assert first.status == "failed" and "each" in (first.error or "")
    assert [r.prompt for r in failing.requests] == [
        "item a count 1",
        "item b count 2",
        "item c count 3",
    ]

    counting = CountingProvider()
    resumed = await resume_run(first.run_id, engine=engine, provider_for=counting, heartbeat_s=0)
    assert resumed.status == "succeeded", resumed.error
    # iterations 1 and 2 are not billed again; the state they built is the same as before
    assert [r.prompt for r in counting.requests] == ["item c count 3", "done 3"]
    loop = resumed.steps["each"]
    assert [it["item"] for it in loop["iterations"]] == ["a", "b", "c"]
    assert loop["iterations"][0]["results"]["ask"]["text"].startswith("Mock response for")
    with Session(engine) as s:
        rows = {r.name: r.status for r in s.exec(select(StepRun))}
        assert rows["each[0].ask"] == rows["each[2].ask"] == rows["each"] == "succeeded"
        names = [c.step_name for c in s.exec(select(LLMCall).order_by(LLMCall.id))]
        assert names == ["each[0].ask", "each[1].ask", "each[2].ask", "each[2].ask", "after"]


async def test_resume_of_a_nested_pipeline_keeps_its_finished_steps(
    db_url: str, tmp_path: Path
) -> None:
    engine = get_engine(db_url)
    failing = CountingProvider(fail=lambda r: r.prompt.startswith("inner two"))
    first = await _run_text(engine, NESTED_PIPELINE, failing, tmp_path, inputs={})
    assert first.status == "failed" and failing.calls == 3

    counting = CountingProvider()
    resumed = await resume_run(first.run_id, engine=engine, provider_for=counting, heartbeat_s=0)
    assert resumed.status == "succeeded", resumed.error
    prompts = [r.prompt for r in counting.requests]
    assert "inner one" not in prompts and "simple test" not in prompts
    # the retried inner step gets the first step's stored answer, exactly as the first time
    assert prompts == [failing.requests[2].prompt, "the end"]
    assert resumed.steps["child"]["one"]["text"] == "Mock response for: inner one..."
    with Session(engine) as s:
        calls = [c.step_name for c in s.exec(select(LLMCall).order_by(LLMCall.id))]
        assert calls == ["before", "child>one", "child>two", "child>two", "after"]


WHILE_PIPELINE = """
workflow:
  name: while_resume
  steps:
    - name: init
      type: set_variable
      variables: {i: 0}
    - name: rounds
      type: while_loop
      condition: "state.i < 3"
      max_iterations: 10
      steps:
        - name: inc
          type: set_variable
          variables: {i: "{{state.i + 1}}"}
        - name: ask
          type: claude
          prompt: [{type: static, content: "round {{state.i}}"}]
"""


async def test_resume_of_a_while_loop_repeats_only_the_failed_iteration(
    db_url: str, tmp_path: Path
) -> None:
    engine = get_engine(db_url)
    failing = CountingProvider(fail=lambda r: r.prompt == "round 3")
    first = await _run_text(engine, WHILE_PIPELINE, failing, tmp_path, inputs={})
    assert first.status == "failed" and failing.calls == 3

    counting = CountingProvider()
    resumed = await resume_run(first.run_id, engine=engine, provider_for=counting, heartbeat_s=0)
    assert resumed.status == "succeeded", resumed.error
    assert [r.prompt for r in counting.requests] == ["round 3"]
    assert resumed.steps["rounds"]["iterations"] == 3
    assert resumed.steps["rounds"]["condition_met"] is True


async def test_the_run_view_and_trace_list_nested_steps_under_their_step(
    db_url: str, tmp_path: Path
) -> None:
    """Loop iterations and a sub-pipeline's steps come right after the step that ran them,
    in the order they ran (their rows have no position: they were listed first)."""
    from elexirion_app.services.runs import runs

    engine = get_engine(db_url)
    uid = _user(engine)
    looped = await _run_text(
        engine, LOOP_PIPELINE, CountingProvider(), tmp_path, inputs={"xs": ["a", "b"]},
        user_id=uid,
    )  # fmt: skip
    nested = await _run_text(engine, NESTED_PIPELINE, CountingProvider(), tmp_path, user_id=uid)
    with Session(engine) as s:
        names = [st.name for st in runs.get_run(s, uid, looped.run_id).steps]
        traced = [i.label for i in runs.trace(s, uid, nested.run_id).items if i.kind == "step"]
    assert names[:2] == ["init", "each"] and names[-1] == "after"
    assert names[2:-1] == ["each[0].bump", "each[0].ask", "each[1].bump", "each[1].ask"]
    assert traced[:2] == ["before", "child"] and traced[-1] == "after"
    assert sorted(traced[2:-1]) == ["child>one", "child>two"]
    assert traced.index("child>one") < traced.index("child>two")
