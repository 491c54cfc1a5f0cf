"""The run recorder's and ``jobs.snapshot``'s driver-level statements (``db/driver_sql``) store
and read exactly what the same statements through ``Connection.execute`` would, on SQLite and
PostgreSQL: a queued API run, a run started without a queued row (with a nested step and a step
left running when it fails), its resume, and the heartbeat, value for value (on SQLite storage
class for storage class); snapshot's states equal, its ownership check kept."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Connection, Engine

from elexirion_app.core.errors import NotFound
from elexirion_app.core.events import RunFinished, RunStarted, StepFinished, StepStarted
from elexirion_app.core.types import Usage
from elexirion_app.db import driver_sql
from elexirion_app.services.accounts import audit
from elexirion_app.services.billing import ledger
from elexirion_app.services.runs import jobs, recorder
from tests.support.scratch_pg import engine_pair, table_contents, unpipelined

START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
USER, OTHER = 1, 2
STEPS = ("fetch", "summarise", "review")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    with engine_pair(request.param, tmp_path, "elx_rec", (USER, OTHER)) as engines:
        yield engines


def _run_through_execute(conn: Connection, name: str, build: Any, rows: Any) -> int:
    """The reference: the same statement through ``Connection.execute``."""
    if not rows:
        return 0
    return int(conn.execute(build(), list(rows)).rowcount)


def _fetch_through_execute(conn: Connection, name: str, build: Any, row: Any) -> list[Any]:
    return [tuple(r) for r in conn.execute(build(), dict(row)).all()]


def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = itertools.count()

    def now() -> datetime:
        return START + timedelta(seconds=next(ticks))

    monkeypatch.setattr(recorder, "utcnow", now)
    monkeypatch.setattr(audit, "utcnow", now)


def _write(rec: recorder.RunRecorder, *writes: tuple[Callable[..., None], Any]) -> None:
    """One batch, as the event loop hands it to the writer thread."""
    items = [
        (fn, () if arg is None else (arg,), isinstance(arg, RunFinished)) for fn, arg in writes
    ]
    assert rec._write_batch(items) == [None] * len(items)


def _finished(run_id: str, step: str, status: str = "succeeded", **kw: Any) -> StepFinished:
    return StepFinished(
        run_id,
        step,
        status,
        result=kw.pop("result", {"text": "ok", "model": "offline"}),
        usage=Usage(input=12, output=34, cache_read=5),
        cost=Decimal("0.00012345"),
        latency_ms=12.345,
        **kw,
    )


def _book(engine: Engine, run_id: str) -> None:
    for step in ("fetch", "summarise"):
        ledger.record(
            ledger.Attempt(
                caller="step",
                provider="anthropic",
                model="claude-sonnet-4",
                user_id=USER,
                run_id=run_id,
                step_name=step,
                pipeline="bench",
                input_tokens=1200,
                output_tokens=300,
                cost_usd=Decimal("0.00123"),
                latency_ms=420.0,
                created_at=START,
            ),
            engine=engine,
        )


def _scenario(engine: Engine) -> None:
    # An API run: queued with its steps, then run (audited), its ledger rows summed.
    api = "run-api"
    recorder.queue_run(
        engine,
        run_id=api,
        pipeline_name="bench",
        pipeline_yaml="workflow: {name: bench}",
        pipeline_path="/p/bench.yaml",
        inputs={"topic": "x", "when": date(2026, 12, 1)},
        step_names=STEPS,
        user_id=USER,
    )
    rec = recorder.RunRecorder(
        engine=engine,
        user_id=USER,
        heartbeat_s=0,
        workspace="/ws",
        output_dir="/ws/out",
        pipeline_id=4,
        pipeline_version=2,
        audit_address="127.0.0.1",
        audit_target="bench",
    )
    _write(rec, (rec._run_started, RunStarted(api, "bench", {"topic": "x"}, STEPS)))
    _book(engine, api)
    _write(rec, (rec._step_started, StepStarted(api, "fetch", "llm", 0, model="claude")))
    _write(
        rec,
        (rec._step_finished, _finished(api, "fetch")),
        (rec._step_started, StepStarted(api, "summarise", "llm", 1)),
    )
    _write(
        rec,
        (rec._step_finished, _finished(api, "summarise", result={"at": START, "n": Decimal(1)})),
        (rec._step_started, StepStarted(api, "review", "code", 2, model=None)),
    )
    _write(rec, (rec._touch, None))
    _write(
        rec,
        (rec._step_finished, _finished(api, "review", "skipped", result=None)),
        (rec._run_finished, RunFinished(api, "succeeded")),
    )
    # A run with no queued row (the editor, the CLI): inserted with its steps; a nested step;
    # it fails with a step still running.
    cli = "run-cli"
    rec = recorder.RunRecorder(engine=engine, user_id=USER, heartbeat_s=0, pipeline_yaml="y")
    _write(rec, (rec._run_started, RunStarted(cli, "cli", {"a": [1, 2]}, STEPS)))
    _write(rec, (rec._step_started, StepStarted(cli, "fetch", "llm", 0, model="m")))
    _write(rec, (rec._step_started, StepStarted(cli, "fetch/inner", "llm", 0)))
    _write(
        rec,
        (rec._step_finished, _finished(cli, "fetch/inner", "failed", error="boom")),
        (rec._step_finished, _finished(cli, "fetch", "failed", error="boom")),
        (rec._step_started, StepStarted(cli, "summarise", "llm", 1)),
    )
    _write(rec, (rec._run_finished, RunFinished(cli, "failed", error="boom")))
    # Its resume: the failed steps queued again, a step the pipeline gained added; interrupted.
    rec = recorder.RunRecorder(engine=engine, user_id=USER, heartbeat_s=0, workspace="/ws2")
    _write(rec, (rec._run_started, RunStarted(cli, "cli", {}, (*STEPS, "extra"))))
    _write(rec, (rec._step_started, StepStarted(cli, "review", "llm", 2)))
    _write(rec, (rec._run_finished, RunFinished(cli, "interrupted", error="cancelled")))
    # A run without steps, finished at once.
    recorder.queue_run(engine, run_id="run-empty", pipeline_name="empty", user_id=OTHER)
    rec = recorder.RunRecorder(engine=engine, user_id=OTHER, heartbeat_s=0)
    _write(rec, (rec._run_started, RunStarted("run-empty", "empty")))
    _write(rec, (rec._run_finished, RunFinished("run-empty", "succeeded")))


def _snapshots(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    monkeypatch.setattr(jobs, "get_engine", lambda: engine)
    got: list[Any] = []
    for user, run_id in ((USER, "run-api"), (USER, "run-cli"), (OTHER, "run-empty")):
        got.append(jobs.snapshot(user, run_id))
    for user, run_id in ((OTHER, "run-api"), (USER, "run-empty"), (USER, "nope")):
        with pytest.raises(NotFound):
            jobs.snapshot(user, run_id)
    return got


def test_the_recorder_stores_and_snapshot_reads_what_execute_would(
    pair: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, reference = pair
    _clock(monkeypatch)
    _scenario(fast)
    got_states = _snapshots(fast, monkeypatch)
    with monkeypatch.context() as m:
        _clock(m)
        m.setattr(driver_sql, "run", _run_through_execute)
        m.setattr(driver_sql, "pipelined", unpipelined)
        m.setattr(driver_sql, "fetch", _fetch_through_execute)
        _scenario(reference)
        want_states = _snapshots(reference, m)
    got, want = table_contents(fast), table_contents(reference)
    assert len(got["run"]) == 3 and len(got["step_run"]) == 8 and got["audit_event"]
    assert got["run_booking"] and got["llm_call"]
    for name in set(want) - {"app_user"}:  # written by the setup
        assert got[name] == want[name], name
    assert got_states == want_states
    api, cli, empty = got_states
    assert api.status == "succeeded" and api.cost_usd == "0.002460"
    assert [(s.name, s.status) for s in api.steps] == [
        ("fetch", "succeeded"),
        ("summarise", "succeeded"),
        ("review", "skipped"),
    ]
    assert cli.status == "interrupted" and empty.steps == () and empty.status == "succeeded"
    assert ("review", "interrupted") in [(s.name, s.status) for s in cli.steps]


def test_which_batches_go_out_with_their_commit(pair: tuple[Engine, Engine]) -> None:
    rec = recorder.RunRecorder(engine=pair[0], user_id=USER, heartbeat_s=0)
    rec._step_ids = {"fetch": 1}

    def batch(*writes: tuple[Callable[..., None], Any]) -> bool:
        return rec._pipelinable([(fn, (arg,), False) for fn, arg in writes])

    known_start = (rec._step_started, StepStarted("r", "fetch", "llm", 0))
    known_end = (rec._step_finished, _finished("r", "fetch"))
    final = (rec._run_finished, RunFinished("r", "succeeded"))
    assert batch(known_start) and batch(known_end, final) and batch(final)
    nested = (rec._step_started, StepStarted("r", "fetch/inner", "llm", 0))
    assert not batch(known_end, nested)  # its first write reads the new row's id
    assert not batch((rec._run_started, RunStarted("r", "p")))  # reads its row count
    assert not batch(known_end, (rec._touch, None))
