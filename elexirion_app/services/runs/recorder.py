"""The run recorder: an observer that writes a run and its steps ahead, in order, on a
small pool of writer threads, with a heartbeat (``run_records`` has sweep and resume).

- ``RunRecorder`` observes the engine's event stream. ``Run``: queued → running →
  succeeded/failed/interrupted; ``StepRun``: one row per top-level step, queued at start, then
  running → succeeded/failed/skipped (nested steps get rows when they start). ``LLMCall``
  rows (one per provider attempt) are booked by the ledger as each attempt ends
  (``services/billing/ledger`` through the metered provider), before the step finishes; the
  run's final write sums them into ``Run.cost_usd``/``tokens`` and counts the run in
  ``run_rollup``. A heartbeat task refreshes ``Run.heartbeat_at`` while it runs.
  Writes use SQLAlchemy Core; the ones every run makes (queue, start, each step's two writes,
  the finish) are statements built once and sent at the driver level (``db/driver_sql``:
  compiled once, the same values stored as through ``Connection.execute``).
- Writes never run on the event loop: they go to the recorders' own small thread pool
  (``ELEXIRION_RECORD_THREADS``, default 2; not the database pool every request's key check
  waits on, so a SQLite lock wait stalls runs, not the worker). A recorder hands the pool one
  batch at a time, so a run's writes keep their order; what queues up meanwhile (or in the
  same turn of the event loop) is the next batch, written in one transaction. Runs share the
  threads: SQLite takes one writer at a time anyway, and fewer writers contend for its lock.
  Writes stay write-ahead: a step's ``running`` write is awaited before its provider call;
  its final write is queued at once (not awaited) and, the queue being FIFO, is in the
  database before the next step's ``running`` write completes and before the run is
  reported finished.
- A failed write is never swallowed: it raises, which fails the run (``ObserverError`` names
  the recorder). A failed heartbeat write fails the run at its next event.
- ``queue_run`` writes a run and its steps as ``queued`` before a worker picks it up (the API).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, insert, literal_column, select, update
from sqlalchemy.engine import Connection, Engine

from elexirion_app.core.events import (
    LLMCallFinished,
    RunEvent,
    RunFinished,
    RunStarted,
    StepDelta,
    StepFinished,
    StepStarted,
)
from elexirion_app.core.threads import WorkPool
from elexirion_app.core.types import TOKEN_KINDS
from elexirion_app.db import driver_sql
from elexirion_app.db.engine import get_engine
from elexirion_app.db.models import LLMCall, Run, StepRun, utcnow
from elexirion_app.services.billing import ledger, meter

meter.install()  # run steps' provider calls are metered (budgets + ledger)

log = logging.getLogger(__name__)

RECORD_POOL = WorkPool("elx-record", "ELEXIRION_RECORD_THREADS", 2)
RUN = Run.__table__  # type: ignore[attr-defined]
STEP = StepRun.__table__  # type: ignore[attr-defined]
CALL = LLMCall.__table__  # type: ignore[attr-defined]
REUSABLE_STEP_STATUSES = ("succeeded", "skipped")
# Built once, run at the driver level (``driver_sql``: compiled once per dialect and set of
# parameter keys; the SET columns and inserted columns come from the keys).
_INSERT_RUN = insert(RUN)
_INSERT_STEP = insert(STEP)
_UPDATE_RUN = update(RUN).where(RUN.c.id == bindparam("b_id"))
_UPDATE_STEP = update(STEP).where(STEP.c.id == bindparam("b_id"))
_STEPS_OF_RUN = select(STEP.c.id, STEP.c.name, STEP.c.status).where(
    STEP.c.run_id == bindparam("b_run")
)
# A run's totals: the sum of its ledger rows.
_RUN_TOTALS = select(
    func.coalesce(func.sum(CALL.c.cost_usd), literal_column("0")),
    *(func.coalesce(func.sum(CALL.c[f"{k}_tokens"]), literal_column("0")) for k in TOKEN_KINDS),
).where(CALL.c.run_id == bindparam("b_run"))
# The run's final write; what the ledger's run rollups need comes back with it.
_FINISH_RUN = _UPDATE_RUN.returning(
    RUN.c.user_id, RUN.c.pipeline_name, RUN.c.started_at, RUN.c.created_at
)
# Steps still running when a run ends otherwise than "succeeded".
_END_RUNNING_STEPS = update(STEP).where(
    STEP.c.run_id == bindparam("b_run"), STEP.c.status == bindparam("b_running")
)


def _json_safe(value: Any) -> Any:
    """Results are JSON columns: make sure everything in them serialises."""
    import json

    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))


def queue_run(
    engine: Engine,
    *,
    run_id: str,
    pipeline_name: str,
    pipeline_yaml: str = "",
    pipeline_path: str | None = None,
    inputs: Mapping[str, Any] | None = None,
    step_names: Iterable[str] = (),
    user_id: int | None = None,
) -> None:
    """Write a run and its steps as ``queued`` (before a worker picks it up)."""
    now = utcnow()
    row = {
        "id": run_id,
        "user_id": user_id,
        "pipeline_name": pipeline_name[:200],
        "pipeline_path": pipeline_path,
        "pipeline_yaml": pipeline_yaml,
        "inputs": _json_safe(dict(inputs or {})),
        "status": "queued",
        "cost_usd": Decimal("0"),
        "tokens": {},
        "created_at": now,
    }
    with engine.begin() as conn:
        driver_sql.run(conn, "recorder: insert run", lambda: _INSERT_RUN, [row])
        _insert_steps(conn, run_id, list(step_names), start=0)


def _insert_steps(conn: Connection, run_id: str, names: list[str], start: int) -> None:
    if not names:
        return
    driver_sql.run(
        conn,
        "recorder: insert steps",
        lambda: _INSERT_STEP,
        [
            {
                "run_id": run_id,
                "name": name[:200],
                "step_type": "",
                "position": start + i,
                "status": "queued",
                "cost_usd": Decimal("0"),
                "tokens": {},
                "latency_ms": 0.0,
            }
            for i, name in enumerate(names)
        ],
    )


# A write waiting for the writer thread: fn(*args), its waiter, whether it is the final one.
_Queued = tuple[Callable[..., None], tuple[Any, ...], "asyncio.Future[None]", bool]


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


@dataclass
class RunRecorder:
    """Observer persisting one run. Pass it in ``run_pipeline(observers=[...])``."""

    engine: Engine | None = None
    pipeline_yaml: str = ""
    pipeline_path: str | None = None
    user_id: int | None = None
    heartbeat_s: float = 5.0
    workspace: str | None = None
    output_dir: str | None = None
    # The library pipeline and version that runs (recorded on the run row).
    pipeline_id: int | None = None
    pipeline_version: int | None = None
    # A run started for a user (not a resume): a "pipeline_run" audit event from this address
    # is written in the transaction that marks the run running; ``audit_target`` names it.
    audit_address: str | None = None
    audit_target: str = ""
    _run_id: str | None = None
    _step_ids: dict[str, int] = field(default_factory=dict)
    _heartbeat: asyncio.Task[None] | None = None
    _in_flight: list[asyncio.Future[None]] = field(default_factory=list)
    # Writes waiting for the writer thread; whether a batch is being written / about to be.
    _queue: list[_Queued] = field(default_factory=list)
    _flushing: bool = False
    _kick_soon: bool = False
    _conn: Connection | None = None  # the writer's transaction while it writes a batch
    # The first failed write (set on the writer thread); raised once into the run.
    _failure: Exception | None = None
    _failure_raised: bool = False
    _finished: bool = False

    def __post_init__(self) -> None:
        self.engine = self.engine or get_engine()

    @property
    def _engine(self) -> Engine:
        assert self.engine is not None
        return self.engine

    async def __call__(self, event: RunEvent) -> None:
        if isinstance(event, StepDelta):
            return  # the most frequent event: nothing to record
        try:
            if isinstance(event, RunFinished):
                await self._finish(event)
                return
            self._raise_failure()
            if isinstance(event, StepStarted):
                # Awaited: the step is ``running`` in the database before its provider call
                # (and, the writer being FIFO, the step before it is finished there too).
                await self._write(self._step_started, event)
            elif isinstance(event, LLMCallFinished):
                return  # already booked by the ledger (services/billing/meter)
            elif isinstance(event, StepFinished):
                # Not awaited: written at once on the writer thread, in order, before the
                # next step's ``running`` write completes; a failure fails the run there.
                self._write_soon(self._step_finished, event)
            elif isinstance(event, RunStarted):
                self._run_id = event.run_id
                await self._write(self._run_started, event)
                self._start_heartbeat()
        except Exception as exc:
            if exc is self._failure:
                self._failure_raised = True
            raise

    async def _finish(self, event: RunFinished) -> None:
        """The run's final write, whatever happens to the task awaiting it: a Stop (or any
        cancellation) landing while a run finishes must not leave it ``running``. The work
        goes on in a task of its own; a cancellation is passed on once it is done."""
        if self._finished:  # idempotent: one final write per run
            return
        self._finished = True
        final = asyncio.ensure_future(self._finish_now(event))
        cancelled = False
        while not final.done():
            try:
                await asyncio.wait([final])
            except asyncio.CancelledError:
                cancelled = True
        if cancelled and final.exception() is None:
            raise asyncio.CancelledError
        final.result()  # its failure, if any, is the run's

    async def _finish_now(self, event: RunFinished) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()
        try:
            # Queued behind the writes not waited for (FIFO), usually in their transaction;
            # attempted even after a failed write: the run must not stay "running".
            await self._submit(self._run_finished, (event,), final=True)
        finally:
            if heartbeat is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
            await asyncio.gather(*self._in_flight, return_exceptions=True)  # failures: _failure
            self._in_flight.clear()
            self.close()
        failure = None if self._failure_raised else self._failure
        if failure is not None:
            raise failure

    # --- the writer thread -------------------------------------------------------------

    def _submit(
        self, fn: Callable[..., None], args: tuple[Any, ...], *, final: bool = False
    ) -> asyncio.Future[None]:
        """Queue one write ``fn(*args)`` (it writes on ``self._tx()``) for this recorder's
        writer thread. Writes keep their order; those queued while the writer is busy, or in
        the same turn of the event loop (a step's final write and the next step's ``running``
        one), are written together in one transaction."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.append((fn, args, future, final))
        if not self._flushing and not self._kick_soon:
            self._kick_soon = True
            loop.call_soon(self._kick)
        return future

    def _kick(self) -> None:
        """On the event loop: hand what is queued to the writer thread as one batch."""
        self._kick_soon = False
        if self._flushing or not self._queue:
            return
        batch, self._queue = self._queue, []
        self._flushing = True
        items = [(fn, args, final) for fn, args, _future, final in batch]
        done = asyncio.get_running_loop().run_in_executor(
            RECORD_POOL.executor(), self._write_batch, items
        )
        done.add_done_callback(functools.partial(self._batch_done, batch))

    def _batch_done(
        self, batch: list[_Queued], done: asyncio.Future[list[Exception | None]]
    ) -> None:
        """On the event loop: each write's outcome to its waiter, then the next batch."""
        self._flushing = False
        outcomes: list[BaseException | None]
        if done.cancelled():
            outcomes = [asyncio.CancelledError()] * len(batch)
        elif done.exception() is not None:
            outcomes = [done.exception()] * len(batch)
        else:
            outcomes = list(done.result())
        for (_fn, _args, future, _final), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # its waiter was cancelled (the write happened all the same)
                continue
            if outcome is None:
                future.set_result(None)
            else:
                future.set_exception(outcome)
        if self._queue:
            self._kick()

    def _write_batch(
        self, items: list[tuple[Callable[..., None], tuple[Any, ...], bool]]
    ) -> list[Exception | None]:
        """On the writer thread: the batch in one transaction. If it fails, its writes are
        tried again one transaction each, in order (what would have been written alone is
        written: a step's result is kept when the next step's write fails); after a failed
        write only the final one is still tried."""
        if self._failure is None:
            step_ids = dict(self._step_ids)
            commit_with_it = self._pipelinable(items)
            try:
                with self._engine.begin() as conn:
                    self._conn = conn
                    with (
                        driver_sql.pipelined(conn, commit=True)
                        if commit_with_it
                        else contextlib.nullcontext()
                    ):
                        for fn, args, _final in items:
                            fn(*args)
                return [None] * len(items)
            except Exception as exc:
                self._step_ids = step_ids  # ids of rows the rollback removed are forgotten
                if len(items) == 1:
                    self._failure = exc
                    return [exc]
                log.warning(
                    "run %s: a batch of %d record writes failed (%s: %s); writing them one by one",
                    self._run_id,
                    len(items),
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                )
            finally:
                self._conn = None
        outcomes: list[Exception | None] = []
        for fn, args, final in items:
            if self._failure is not None and not final:
                outcomes.append(self._failure)
                continue
            try:
                with self._engine.begin() as conn:
                    self._conn = conn
                    fn(*args)
                outcomes.append(None)
            except Exception as exc:
                if self._failure is None:
                    self._failure = exc
                outcomes.append(exc)
            finally:
                self._conn = None
        return outcomes

    def _pipelinable(self, items: list[tuple[Callable[..., None], tuple[Any, ...], bool]]) -> bool:
        """Whether a batch may go out in a pipeline with its COMMIT (``driver_sql.pipelined``):
        every write in it is a driver statement whose row count it does not read — a known
        step's start or finish, the run's final write — so a batch costs one round trip (and
        one for each read the final write makes) instead of one per statement plus BEGIN and
        COMMIT, and the run rollups' shared rows are locked for the server's work only. A run's
        start (it reads whether its row was updated) and a nested step's first write (an ORM
        insert that reads its new id) are written as before."""
        for fn, args, _final in items:
            func = getattr(fn, "__func__", None)
            if func is RunRecorder._run_finished:
                continue
            step_write = func in (RunRecorder._step_started, RunRecorder._step_finished)
            if not (step_write and args[0].step in self._step_ids):
                return False
        return True

    def _tx(self) -> Connection:
        """The transaction of the batch being written (writer thread only)."""
        assert self._conn is not None, "a record write outside the writer's transaction"
        return self._conn

    async def _write(self, fn: Callable[..., None], *args: Any) -> None:
        """One write on the writer thread, waited for."""
        await self._submit(fn, args)

    def _write_soon(self, fn: Callable[..., None], *args: Any) -> None:
        """One write on the writer thread, not waited for (its failure is kept in _failure)."""
        future = self._submit(fn, args)
        self._in_flight.append(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._in_flight.remove(future)
        if not future.cancelled():
            future.exception()  # retrieved: the failure is raised through _failure instead

    def close(self) -> None:
        """Nothing to let go any more (the writer threads are shared); kept for callers."""

    def _raise_failure(self) -> None:
        if self._failure is not None and not self._failure_raised:
            self._failure_raised = True
            raise self._failure

    # --- run (these run on the writer thread) -------------------------------------------

    def _run_started(self, event: RunStarted) -> None:
        conn = self._tx()
        now = utcnow()
        self._run_id = event.run_id
        # A run queued ahead (the API) or resumed is updated; a new one inserted.
        started = {
            "status": "running",
            "error": None,
            **{
                k: v
                for k, v in (
                    ("workspace", self.workspace),
                    ("output_dir", self.output_dir),
                    ("pipeline_id", self.pipeline_id),
                    ("pipeline_version", self.pipeline_version),
                )
                if v is not None
            },
            "started_at": now,
            "heartbeat_at": now,
            "finished_at": None,
            "b_id": event.run_id,
        }
        updated = driver_sql.run(conn, "recorder: run started", lambda: _UPDATE_RUN, [started])
        if updated == 0:
            row = {
                "id": event.run_id,
                "user_id": self.user_id,
                "pipeline_name": event.pipeline[:200],
                "pipeline_path": self.pipeline_path,
                "pipeline_yaml": self.pipeline_yaml,
                "workspace": self.workspace,
                "output_dir": self.output_dir,
                "pipeline_id": self.pipeline_id,
                "pipeline_version": self.pipeline_version,
                "inputs": _json_safe(event.inputs),
                "status": "running",
                "cost_usd": Decimal("0"),
                "tokens": {},
                "created_at": now,
                "started_at": now,
                "heartbeat_at": now,
            }
            driver_sql.run(conn, "recorder: insert run", lambda: _INSERT_RUN, [row])
        # (id, name, status) of each step row
        rows = driver_sql.fetch(
            conn, "recorder: steps of run", lambda: _STEPS_OF_RUN, {"b_run": event.run_id}
        )
        known = {r[1]: r for r in rows}
        self._step_ids = {r[1]: r[0] for r in rows}
        redo = [r[0] for r in rows if r[2] not in (*REUSABLE_STEP_STATUSES, "queued")]
        if redo:
            conn.execute(
                update(STEP)
                .where(STEP.c.id.in_(redo))
                .values(status="queued", error=None, started_at=None, finished_at=None)
            )
        missing = [n for n in event.step_names if n not in known]
        _insert_steps(conn, event.run_id, missing, start=len(rows))
        if self.audit_address is not None and self.user_id is not None:
            self._audit_started(conn, event.run_id)
        if missing:
            added = set(missing)  # the rows just inserted (their names were not known)
            for r in driver_sql.fetch(
                conn, "recorder: steps of run", lambda: _STEPS_OF_RUN, {"b_run": event.run_id}
            ):
                if r[1] in added:
                    self._step_ids[r[1]] = r[0]

    def _run_finished(self, event: RunFinished) -> None:
        conn = self._tx()
        failure = None if self._failure_raised else self._failure
        if failure is not None and event.status == "succeeded":
            detail = str(failure).strip().splitlines()[0] if str(failure).strip() else ""
            event = replace(
                event,
                status="failed",
                error=f"run recording failed: {type(failure).__name__}: {detail}"[:500],
            )
        now = utcnow()
        (totals,) = driver_sql.fetch(
            conn, "recorder: run totals", lambda: _RUN_TOTALS, {"b_run": event.run_id}
        )
        tokens = {k: int(totals[i + 1]) for i, k in enumerate(TOKEN_KINDS)}
        final = {
            "status": event.status,
            "error": event.error,
            "finished_at": now,
            "heartbeat_at": now,
            "cost_usd": Decimal(str(totals[0])),
            "tokens": tokens,
            "b_id": event.run_id,
        }
        # (user_id, pipeline_name, started_at, created_at) of the run row, if there is one
        returned = driver_sql.fetch(conn, "recorder: run finished", lambda: _FINISH_RUN, final)
        if returned:
            user_id, pipeline_name, started_at, created_at = returned[0]
            started = started_at or now
            started = started if started.tzinfo else started.replace(tzinfo=now.tzinfo)
            ledger.record_run(
                conn,
                user_id=user_id,
                pipeline=pipeline_name or "",
                status=event.status,
                cost_usd=Decimal(str(totals[0])),
                duration_ms=(now - started).total_seconds() * 1000,
                finished_at=now,
                run_id=event.run_id,
                created_at=created_at,  # what the ledger would read from the row
            )
        if event.status != "succeeded":
            ended = {
                "status": "interrupted" if event.status == "interrupted" else "failed",
                "finished_at": now,
                "b_run": event.run_id,
                "b_running": "running",
            }
            driver_sql.run(conn, "recorder: end steps", lambda: _END_RUNNING_STEPS, [ended])

    def _audit_started(self, conn: Connection, run_id: str) -> None:
        from elexirion_app.services.accounts import audit

        audit.record_on(  # in this transaction: committed with it
            conn,
            "pipeline_run",
            actor_id=self.user_id,
            address=self.audit_address or "",
            target=self.audit_target,
            detail={"run_id": run_id, "version": self.pipeline_version},
        )

    # --- steps ---------------------------------------------------------------------------

    def _step_started(self, event: StepStarted) -> None:
        conn = self._tx()
        values = {
            "status": "running",
            "step_type": event.step_type[:40],
            "model": (event.model or None),
            "started_at": utcnow(),
            "error": None,
        }
        self._put_step(conn, event, values, cost_usd=Decimal("0"), tokens={}, latency_ms=0.0)

    def _step_finished(self, event: StepFinished) -> None:
        conn = self._tx()
        now = utcnow()
        values = {
            "status": event.status,
            "result": _json_safe(event.result),
            "error": event.error,
            "cost_usd": event.cost,
            "tokens": event.usage.to_dict(),
            "latency_ms": float(event.latency_ms),
            "finished_at": now,
        }
        answered_by = event.result.get("model") if isinstance(event.result, dict) else None
        if isinstance(answered_by, str) and answered_by:
            values["model"] = answered_by[:100]  # who answered (e.g. the offline model)
        self._put_step(conn, event, values)

    def _put_step(
        self,
        conn: Connection,
        event: StepStarted | StepFinished,
        values: dict[str, Any],
        **new_only: Any,
    ) -> None:
        """Update the step's row with ``values``; a step the run did not list at its start
        (a nested one) gets a row of its own (with ``new_only`` too). Top-level steps were all
        written at RunStarted."""
        step_id = self._step_ids.get(event.step)
        if step_id is None:
            result = conn.execute(
                insert(STEP).values(
                    run_id=event.run_id, name=event.step[:200], position=-1, **new_only, **values
                )
            )
            self._step_ids[event.step] = _new_id(result)
        else:
            row = {"b_id": step_id, **values}
            driver_sql.run(conn, "recorder: update step", lambda: _UPDATE_STEP, [row])

    # --- heartbeat -----------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        if self.heartbeat_s > 0 and self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self._write(self._touch)
            except Exception:
                # Not swallowed: the writer keeps it in _failure and the run's next event
                # raises it (which fails the run).
                log.error("heartbeat of run %s failed", self._run_id, exc_info=True)
                return

    def _touch(self) -> None:
        conn = self._tx()
        conn.execute(
            update(RUN)
            .where(RUN.c.id == self._run_id, RUN.c.status == "running")
            .values(heartbeat_at=utcnow())
        )


# --- sweep and resume ------------------------------------------------------------------------
