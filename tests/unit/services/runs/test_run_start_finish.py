"""Starting and finishing a recorded run (attacker findings 3 and 8): validation off the event
loop, the start audited, and a Stop landing while the run finishes never leaves it running."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from elexirion_app.core.events import RunFinished, StepFinished
from elexirion_app.db.engine import get_engine
from elexirion_app.db.models import AppUser, AuditEvent, Run
from elexirion_app.pipelines import validate
from elexirion_app.pipelines.loader import load_text
from elexirion_app.services.runs.recorder import RunRecorder
from elexirion_app.services.runs.run_records import run_recorded
from tests.unit.pipelines.engine_fakes import CountingProvider

PIPELINE = """
workflow:
  name: recorded
  steps:
    - name: first
      type: claude
      prompt: [{type: static, content: "simple test"}]
    - name: last
      type: claude
      prompt: [{type: static, content: "simple test"}]
"""


def _user(engine: Any) -> int:
    with Session(engine) as s:
        user = AppUser(email="a@example.com")
        s.add(user)
        s.commit()
        assert user.id is not None
        return user.id


async def _run(engine: Any, tmp_path: Path, **kw: Any) -> Any:
    return await run_recorded(
        load_text(PIPELINE),
        pipeline_yaml=PIPELINE,
        engine=engine,
        provider_for=CountingProvider(),
        workspace=tmp_path / "ws",
        output_dir=tmp_path / "out",
        **kw,
    )


async def test_validation_runs_on_the_cpu_pool_not_the_event_loop(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where: list[str] = []
    real = validate.ensure_valid

    def spy(doc: Any) -> None:
        where.append(threading.current_thread().name)
        real(doc)

    monkeypatch.setattr(validate, "ensure_valid", spy)
    outcome = await _run(get_engine(db_url), tmp_path)
    assert outcome.status == "succeeded"
    assert len(where) == 1 and where[0].startswith("elx-cpu"), where


async def test_a_run_started_for_a_user_is_audited_with_its_id_and_version(
    db_url: str, tmp_path: Path
) -> None:
    engine = get_engine(db_url)
    user_id = _user(engine)
    outcome = await _run(
        engine,
        tmp_path,
        user_id=user_id,
        audit_address="10.1.2.3",
        audit_target="demo",
        run_id="r-audit",
    )
    assert outcome.status == "succeeded"
    await _run(engine, tmp_path, user_id=user_id, run_id="r-plain")  # no address: no event
    with Session(engine) as s:
        rows = s.exec(select(AuditEvent).where(AuditEvent.action == "pipeline_run")).all()
    assert [(r.actor_id, r.address, r.target, r.detail) for r in rows] == [
        (user_id, "10.1.2.3", "demo", {"run_id": "r-audit", "version": None})
    ]


async def test_a_stop_landing_while_the_run_finishes_still_writes_its_end(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last step's write is still on the writer thread when the run finishes; a Stop
    then cancels the task inside ``_finish`` (waiting for that write)."""
    engine = get_engine(db_url)
    gate, finishing = threading.Event(), asyncio.Event()
    slow_write = RunRecorder._step_finished
    observe = RunRecorder.__call__

    def held(self: RunRecorder, event: StepFinished) -> None:
        if event.step == "last":
            gate.wait(10)
        slow_write(self, event)

    async def watching(self: RunRecorder, event: Any) -> None:
        if isinstance(event, RunFinished):
            finishing.set()
        await observe(self, event)

    monkeypatch.setattr(RunRecorder, "_step_finished", held)
    monkeypatch.setattr(RunRecorder, "__call__", watching)
    task = asyncio.create_task(_run(engine, tmp_path, run_id="r-stop"))
    await asyncio.wait_for(finishing.wait(), 10)
    for _ in range(5):
        await asyncio.sleep(0)  # into _finish, waiting for the held write
    task.cancel()
    await asyncio.sleep(0.05)
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    with Session(engine) as s:
        run = s.get(Run, "r-stop")
        assert run is not None and run.status == "succeeded" and run.finished_at is not None


async def test_the_final_write_happens_once(db_url: str, tmp_path: Path) -> None:
    engine = get_engine(db_url)
    writes: list[str] = []
    recorder = RunRecorder(engine=engine)
    recorder._run_finished = lambda event: writes.append(event.status)  # type: ignore[method-assign]
    done = RunFinished(run_id="x", status="succeeded", error=None)
    await recorder(done)
    await recorder(done)
    assert writes == ["succeeded"]
