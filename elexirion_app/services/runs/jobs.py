"""Pipeline runs started by a client that does not wait for them (the HTTP API).

CONTRACT:
- ``start`` resolves what to run for the user (a library pipeline by name — its saved current
  version —, a shipped one by key, or YAML text validated first), writes the run ``queued``
  with its step names (so ``GET /api/runs/{id}`` answers at once), then runs it as a task of
  this worker and returns the run id. Invalid YAML raises ``PipelineValidationError`` with every
  problem; an unknown name ``NotFound``; a user with ``MAX_ACTIVE`` runs going ``Conflict``
  (the slot is taken before the first await, so a burst of starts cannot pass it; a refused
  start gives it back). YAML is parsed and validated on the CPU pool as the user's job.
- ``cancel`` stops a run of this user that runs in this worker (the engine records it
  ``interrupted``/"cancelled"); a finished run is left as it is. A run of another user is
  ``NotFound``, exactly like one that does not exist.
- ``current`` is the run's state: this worker's live view while it runs here (``live``), else
  ``snapshot``, one read of the database. Following a run (``watch``) and telling other
  workers of its changes is ``services/runs/live.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select

from elexirion_app.core.errors import (
    Conflict,
    ElexirionError,
    InputError,
    NotFound,
    PipelineValidationError,
)
from elexirion_app.core.threads import in_cpu_thread
from elexirion_app.db import driver_sql
from elexirion_app.db.engine import (
    get_engine,
    in_db_thread,
    in_file_thread,
    reading,
    session_scope,
)
from elexirion_app.db.models import Run
from elexirion_app.pipelines.loader import PipelineDocument, load_text, read_text
from elexirion_app.services import workspace
from elexirion_app.services.runs import pipeline_runs
from elexirion_app.services.runs import pipeline_store as store
from elexirion_app.services.runs.live import JOBS, Job, LiveView, RunState, StepState, publish
from elexirion_app.services.runs.recorder import RUN, STEP, queue_run

log = logging.getLogger(__name__)

MAX_ACTIVE = int(os.environ.get("ELEXIRION_MAX_ACTIVE_RUNS_PER_USER") or "20")
MAX_INPUTS_CHARS = 200_000


@dataclass(frozen=True)
class _Resolved:
    """What runs, parsed once: ``doc`` is the document as the run sees it (its file, nested
    files relative to its folder); ``refusal`` is the run's own validation failing (the run
    is then queued and recorded as refused, as when the engine validated it itself)."""

    path: Path
    name: str
    yaml: str
    step_names: tuple[str, ...]
    version: tuple[int, int] | None
    doc: PipelineDocument
    refusal: ElexirionError | None
    sent: bool = False  # YAML sent by the client: written into the run's folder


def _step_names(doc: PipelineDocument) -> tuple[str, ...]:
    steps = doc.workflow.get("steps") or []
    return tuple(str(s.get("name", "")) for s in steps if isinstance(s, dict))


def _is_yaml(pipeline: str) -> bool:
    return "\n" in pipeline or pipeline.lstrip().startswith(("workflow:", "{"))


def _for_run(doc: PipelineDocument, path: Path) -> tuple[PipelineDocument, ElexirionError | None]:
    """``doc`` as ``load_file(path)`` would give it, validated as the run validates it."""
    from elexirion_app.pipelines.validate import ensure_valid

    real = path.resolve()
    ready = replace(doc, file=str(path), base_dir=real.parent, real_file=str(real))
    try:
        ensure_valid(ready)
    except PipelineValidationError as exc:
        return ready, exc
    return ready, None


def _checked_yaml(user_id: int, text: str, path: Path) -> _Resolved:
    """A pipeline sent as YAML: parsed once, validated as the editor does (every problem, or
    ``PipelineValidationError``), then made ready to run from ``path`` (CPU work)."""
    doc, problems = store.parsed_with_problems(text, store.user_dir(user_id))
    if doc is None or any(p.severity == "error" for p in problems):
        raise PipelineValidationError(problems)
    ready, refusal = _for_run(doc, path)
    name = str(doc.workflow.get("name", "pipeline"))
    return _Resolved(path, name, text, _step_names(doc), None, ready, refusal, sent=True)


def _parsed_file(path: Path, name: str, text: str, version: tuple[int, int] | None) -> _Resolved:
    """A library or shipped pipeline's text, parsed once as ``load_file(path)`` (CPU work)."""
    doc = load_text(text, str(path), base_dir=path.parent)
    ready, refusal = _for_run(doc, path)  # its base_dir and real_file: the resolved path's
    return _Resolved(path, name, text, _step_names(doc), version, ready, refusal)


def _run_yaml_path(user_id: int, run_id: str) -> Path:
    return pipeline_runs.output_path_for(user_id, run_id) / "pipeline.yaml"


def _library_text(user_id: int, pipeline: str) -> tuple[Path, str, tuple[int, int]] | None:
    """The saved current version of the user's pipeline of that name (None: no such one)."""
    with session_scope() as session:
        try:
            path, doc_id, number = store.runnable(session, user_id, pipeline)
        except NotFound:
            return None
        return path, read_text(path), (doc_id, number)


def _shipped_text(pipeline: str) -> tuple[Path, str]:
    shipped = store.shipped_pipelines().get(pipeline)
    if shipped is None:
        raise NotFound(f"No pipeline named {pipeline[:100]!r} in your library or the shipped ones.")
    return shipped, read_text(shipped)


async def _resolve(user_id: int, pipeline: str, run_id: str) -> _Resolved:
    """What ``pipeline`` names for this user. YAML parsing and validation are CPU work: they
    run on the CPU pool as the user's jobs (capped per user), never on the database threads
    every request's key check waits on. The text is parsed once for the API, the queued row
    and the run."""
    if _is_yaml(pipeline):
        return await in_cpu_thread(
            user_id, _checked_yaml, user_id, pipeline, _run_yaml_path(user_id, run_id)
        )
    found = await in_db_thread(_library_text, user_id, pipeline)
    if found is not None:
        path, text, version = found
        return await in_cpu_thread(user_id, _parsed_file, path, pipeline, text, version)
    path, text = await in_file_thread(_shipped_text, pipeline)
    return await in_cpu_thread(user_id, _parsed_file, path, pipeline, text, None)


def _place(user_id: int, run_id: str, resolved: _Resolved) -> tuple[Path, Path]:
    """File work of a start in one hop: the run's folder (with the YAML sent, if any) and
    the user's workspace."""
    output_dir = pipeline_runs.output_dir_for(user_id, run_id)
    if resolved.sent:
        resolved.path.write_text(resolved.yaml, encoding="utf-8")
    return output_dir, workspace.current_workspace(user_id)


def _check_inputs(inputs: Any) -> dict[str, Any]:
    if inputs is None:
        return {}
    if not isinstance(inputs, dict) or not all(isinstance(k, str) for k in inputs):
        raise InputError("inputs must be an object of name → value")
    if len(repr(inputs)) > MAX_INPUTS_CHARS:
        raise InputError(f"inputs are at most {MAX_INPUTS_CHARS:,} characters")
    return dict(inputs)


# The runs of each user that hold a slot: from the start (before they are resolved and
# queued) until their task is done. ``JOBS`` also keeps finished jobs for a minute, so
# counting there scanned thousands of entries per start under load.
_ACTIVE: dict[int, set[str]] = {}


def _take_slot(user_id: int, run_id: str) -> None:
    _ACTIVE.setdefault(user_id, set()).add(run_id)


def _free_slot(user_id: int, run_id: str) -> None:
    held = _ACTIVE.get(user_id)
    if held is not None:
        held.discard(run_id)
        if not held:
            del _ACTIVE[user_id]


def active_count(user_id: int) -> int:
    return len(_ACTIVE.get(user_id, ()))


async def start(user_id: int, pipeline: str, inputs: Any = None) -> str:
    """Queue and start a run of ``pipeline`` for ``user_id``; returns its id at once."""
    if not isinstance(pipeline, str) or not pipeline.strip():
        raise InputError("name a pipeline, or send its YAML")
    values = _check_inputs(inputs)
    # Check and take the slot with no await in between (one event loop: atomic here).
    if active_count(user_id) >= MAX_ACTIVE:
        raise Conflict(f"You have {MAX_ACTIVE} runs going: wait for one to finish.")
    run_id = str(uuid.uuid4())
    job = JOBS[run_id] = Job(user_id)
    _take_slot(user_id, run_id)
    try:
        resolved = await _resolve(user_id, pipeline.strip("\ufeff"), run_id)
        output_dir, folder = await in_file_thread(_place, user_id, run_id, resolved)
        await in_db_thread(
            queue_run,
            get_engine(),
            run_id=run_id,
            pipeline_name=resolved.name,
            pipeline_yaml=resolved.yaml,
            pipeline_path=str(resolved.path),
            inputs=values,
            step_names=resolved.step_names,
            user_id=user_id,
        )
    except BaseException:
        JOBS.pop(run_id, None)  # refused (or the client left): the slot is free again
        _free_slot(user_id, run_id)
        raise
    prepared = pipeline_runs.Prepared(
        resolved.doc, resolved.yaml, folder, output_dir, resolved.refusal
    )

    live = LiveView(run_id, job, resolved.step_names)

    async def go() -> None:
        try:
            await pipeline_runs.run_for_user(
                user_id,
                resolved.path,
                values,
                run_id=run_id,
                pipeline_version=resolved.version,
                prepared=prepared,
                watchers=[live],
            )
        except ElexirionError as exc:  # refused before it started: recorded as failed
            log.info("run %s refused: %s", run_id, exc.user_message)
        except asyncio.CancelledError:
            await asyncio.shield(in_db_thread(_mark_cancelled, run_id))
            raise
        except Exception:
            log.exception("run %s crashed", run_id)
            await in_db_thread(_mark_failed, run_id, "internal error")
        finally:
            job.done = True
            job.changed.set()
            await live.drained()  # then the final signal: read the database
            await asyncio.shield(publish(run_id))
            _forget_later(run_id)

    job.task = asyncio.create_task(go(), name=f"run-{run_id}")
    # Done however it ends (a task cancelled before it ran never runs go's finally).
    job.task.add_done_callback(lambda _task: _free_slot(user_id, run_id))
    # (no log line here: the engine's run_started line carries the run, its user, pipeline)
    return run_id


async def current(user_id: int, run_id: str) -> RunState:
    """The run's state now: this worker's live view while it runs one of ``user_id``'s runs
    here, else (another worker's run, a finished one) read from the database."""
    job = JOBS.get(run_id)
    if job is not None and job.user_id == user_id and job.live is not None and not job.done:
        return job.live
    return await in_db_thread(snapshot, user_id, run_id)


def _forget_later(run_id: str, after_s: float = 60.0) -> None:
    """Keep a finished job a little (streams still waiting on it wake up), then drop it."""
    with contextlib.suppress(RuntimeError):
        asyncio.get_running_loop().call_later(after_s, JOBS.pop, run_id, None)


def _mark(run_id: str, status: str, error: str) -> None:
    from elexirion_app.db.models import utcnow

    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is not None and run.status in ("queued", "running"):
            run.status, run.error, run.finished_at = status, error, utcnow()
            session.add(run)


def _mark_cancelled(run_id: str) -> None:
    _mark(run_id, "interrupted", "cancelled")


def _mark_failed(run_id: str, error: str) -> None:
    _mark(run_id, "failed", error)


def _owned_status(user_id: int, run_id: str) -> str:
    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is None or run.user_id != user_id:
            raise NotFound("This run does not exist.")
        return run.status


async def cancel(user_id: int, run_id: Any) -> str:
    """Cancel the user's run (when it runs here); returns the run's status afterwards."""
    if not isinstance(run_id, str) or not run_id or len(run_id) > 64:
        raise NotFound("This run does not exist.")
    status = await in_db_thread(_owned_status, user_id, run_id)
    job = JOBS.get(run_id)
    if status not in ("queued", "running"):
        return status
    if job is None or job.task is None or job.user_id != user_id:
        raise Conflict("This run is not running in this worker; it cannot be cancelled here.")
    job.task.cancel()
    await asyncio.wait({job.task}, timeout=10)  # its own outcome is logged by the task
    return await in_db_thread(_owned_status, user_id, run_id)


# A run and its steps in one read (a run without steps: one row, its step columns NULL).
_SNAPSHOT = (
    select(
        RUN.c.user_id,
        RUN.c.status,
        RUN.c.error,
        RUN.c.cost_usd,
        RUN.c.tokens,
        STEP.c.name,
        STEP.c.status,
        STEP.c.model,
        STEP.c.tokens,
        STEP.c.cost_usd,
        STEP.c.latency_ms,
        STEP.c.error,
    )
    .select_from(RUN.outerjoin(STEP, STEP.c.run_id == RUN.c.id))
    .where(RUN.c.id == bindparam("b_run"))
    .order_by(STEP.c.position, STEP.c.id)
)


def snapshot(user_id: int, run_id: Any) -> RunState:
    """A run's status and its steps' (one indexed read of the columns shown, run joined to its
    steps, built once and sent at the driver level: ``db/driver_sql``; no results, no call
    rows, no ORM objects)."""
    if not isinstance(run_id, str) or not run_id or len(run_id) > 64:
        raise NotFound("This run does not exist.")
    with reading(get_engine()) as conn:
        rows = driver_sql.fetch(conn, "jobs: snapshot", lambda: _SNAPSHOT, {"b_run": run_id})
    if not rows or rows[0][0] != user_id:
        raise NotFound("This run does not exist.")
    _uid, status, error, cost_usd, tokens = rows[0][:5]
    return RunState(
        status,
        error or "",
        f"{cost_usd or 0:.6f}",
        dict(tokens or {}),
        tuple(
            StepState(
                str(r[5]),
                str(r[6]),
                str(r[7] or ""),
                dict(r[8] or {}),
                f"{r[9] or 0:.6f}",
                round(float(r[10] or 0.0), 1),
                str(r[11] or ""),
            )
            for r in rows
            if r[5] is not None  # step_run.name is NOT NULL: None is the outer join's no step
        ),
    )
