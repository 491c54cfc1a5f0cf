"""Run records beyond the recorder (``recorder.RunRecorder``): ``run_recorded`` (a run with
its recorder attached), the stale-run sweep and resume.

- ``sweep_stale(session, older_than_s)`` marks running runs without a recent heartbeat (and
  their running steps) ``interrupted``.
- ``load_resume`` / ``resume_run`` continue an interrupted or failed run: results of finished
  units (top-level steps, steps inside loop iterations and nested pipelines, by their path)
  are reused, so their provider calls are never repeated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from elexirion_app.core.errors import Conflict, ElexirionError, NotFound
from elexirion_app.core.threads import in_cpu_thread
from elexirion_app.db.engine import get_engine, in_db_thread
from elexirion_app.db.models import utcnow
from elexirion_app.providers.metered import call_context
from elexirion_app.services.runs.recorder import REUSABLE_STEP_STATUSES, RUN, STEP, RunRecorder

log = logging.getLogger(__name__)

RESUMABLE = ("interrupted", "failed")


def sweep_stale(session: Session, older_than_s: float) -> list[str]:
    """Mark ``running`` runs whose heartbeat is older than ``older_than_s`` as interrupted.

    Their ``running`` steps become ``interrupted`` too. Returns the run ids swept.
    """
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    last_seen = func.coalesce(RUN.c.heartbeat_at, RUN.c.started_at, RUN.c.created_at)
    ids = [
        row[0]
        for row in session.execute(
            select(RUN.c.id).where(RUN.c.status == "running", last_seen < cutoff)
        ).all()
    ]
    if ids:
        now = utcnow()
        session.execute(
            update(RUN)
            .where(RUN.c.id.in_(ids))
            .values(status="interrupted", error="interrupted: the worker stopped", finished_at=now)
        )
        session.execute(
            update(STEP)
            .where(STEP.c.run_id.in_(ids), STEP.c.status == "running")
            .values(status="interrupted", finished_at=now)
        )
        log.info("marked %d stale run(s) interrupted", len(ids))
    return ids


@dataclass(frozen=True)
class ResumeInfo:
    run_id: str
    status: str
    pipeline_name: str
    pipeline_yaml: str
    pipeline_path: str | None
    inputs: dict[str, Any]
    results: dict[str, Any]
    user_id: int | None
    workspace: str | None = None
    output_dir: str | None = None


def load_resume(session: Session, run_id: str) -> ResumeInfo:
    """What a resume needs; ``NotFound``/``Conflict`` when the run cannot be resumed."""
    run = session.execute(select(RUN).where(RUN.c.id == run_id)).first()
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    if run.status not in RESUMABLE:
        raise Conflict(
            f"run {run_id} is {run.status}; only interrupted or failed runs can be resumed"
        )
    if not run.pipeline_yaml:
        raise Conflict(f"run {run_id} has no stored pipeline to resume")
    # Every finished unit, nested ones too (their rows have position -1; name = their path).
    rows = session.execute(
        select(STEP.c.name, STEP.c.result, STEP.c.status)
        .where(STEP.c.run_id == run_id, STEP.c.status.in_(REUSABLE_STEP_STATUSES))
        .order_by(STEP.c.position, STEP.c.id)
    ).all()
    results = {r.name: r.result for r in rows}
    return ResumeInfo(
        run_id=run_id,
        status=run.status,
        pipeline_name=run.pipeline_name,
        pipeline_yaml=run.pipeline_yaml,
        pipeline_path=run.pipeline_path,
        inputs=dict(run.inputs or {}),
        results=results,
        user_id=run.user_id,
        workspace=run.workspace,
        output_dir=run.output_dir,
    )


async def run_recorded(
    doc: Any,
    *,
    pipeline_yaml: str,
    pipeline_path: str | None = None,
    engine: Engine | None = None,
    observers: Iterable[Any] = (),
    user_id: int | None = None,
    heartbeat_s: float = 5.0,
    pipeline_version: tuple[int, int] | None = None,
    audit_address: str | None = None,
    audit_target: str = "",
    watchers: Iterable[Any] = (),
    refusal: ElexirionError | None = None,
    **kwargs: Any,
) -> Any:
    """``run_pipeline`` with a ``RunRecorder`` attached (returns its ``RunOutcome``).

    ``watchers`` are observers that see each event before the recorder writes it (then the
    recorder, then ``observers``). ``refusal``: the caller already validated the document
    (``validate=False``) and found this error: the run is refused with it, as below.

    The document is validated first on the CPU pool (one of ``user_id``'s jobs), not on the
    event loop. If the run is refused before it starts (invalid pipeline, missing input), a
    run that was ``queued`` under ``run_id`` is marked failed with the reason, then the error
    is re-raised. With ``audit_address`` (a run started for a user) the start is audited.
    """
    from elexirion_app.pipelines.executor import run_pipeline
    from elexirion_app.pipelines.validate import ensure_valid

    workspace, output_dir = kwargs.get("workspace"), kwargs.get("output_dir")
    recorder = RunRecorder(
        engine=engine,
        pipeline_yaml=pipeline_yaml,
        pipeline_path=pipeline_path,
        user_id=user_id,
        heartbeat_s=heartbeat_s,
        workspace=str(Path(workspace).resolve()) if workspace is not None else None,
        output_dir=str(Path(output_dir).resolve()) if output_dir is not None else None,
        pipeline_id=pipeline_version[0] if pipeline_version else None,
        pipeline_version=pipeline_version[1] if pipeline_version else None,
        audit_address=audit_address,
        audit_target=audit_target,
    )
    validate = kwargs.pop("validate", True)
    try:
        if refusal is not None:
            raise refusal
        if validate:
            await in_cpu_thread(user_id, ensure_valid, doc)
        # Every provider call of the run is booked with its pipeline (steps add run and step).
        with call_context(
            pipeline=str(doc.workflow.get("name") or "")[:200],
            user_id=user_id,
            ledger=recorder._engine,
        ):
            return await run_pipeline(
                doc,
                observers=[*watchers, recorder, *observers],
                user_id=user_id,
                validate=False,
                **kwargs,
            )
    except ElexirionError as exc:
        if kwargs.get("run_id") and recorder._run_id is None:
            await in_db_thread(
                _mark_refused, recorder._engine, str(kwargs["run_id"]), exc.user_message
            )
        raise
    finally:
        recorder.close()


def _mark_refused(engine: Engine, run_id: str, reason: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(RUN)
            .where(RUN.c.id == run_id, RUN.c.status == "queued")
            .values(status="failed", error=reason, finished_at=utcnow())
        )


def _sweep_and_load(engine: Engine, run_id: str, stale_after_s: float) -> ResumeInfo:
    with Session(engine) as session:
        sweep_stale(session, stale_after_s)
        session.commit()
        return load_resume(session, run_id)


async def resume_run(
    run_id: str,
    *,
    engine: Engine | None = None,
    observers: Iterable[Any] = (),
    stale_after_s: float = 30.0,
    heartbeat_s: float = 5.0,
    default_workspace: Callable[[dict[str, Any]], Path | None] | None = None,
    **kwargs: Any,
) -> Any:
    """Continue an interrupted/failed run from its stored YAML and inputs.

    Steps that succeeded (or were skipped) keep their stored results and are not run again.
    Without a ``workspace``, ``default_workspace(workflow)`` picks one (None: the pipeline's).
    """
    from elexirion_app.pipelines.loader import load_text

    engine = engine or get_engine()
    info = await in_db_thread(_sweep_and_load, engine, run_id, stale_after_s)
    base_dir = Path(info.pipeline_path).resolve().parent if info.pipeline_path else None
    doc = await in_cpu_thread(
        info.user_id,
        load_text,
        info.pipeline_yaml,
        filename=info.pipeline_path or "<stored>",
        base_dir=base_dir,
    )
    if kwargs.get("workspace") is None and info.workspace:
        kwargs["workspace"] = info.workspace
    if kwargs.get("workspace") is None and default_workspace is not None:
        kwargs["workspace"] = default_workspace(doc.workflow)
    if kwargs.get("output_dir") is None and info.output_dir:
        kwargs["output_dir"] = info.output_dir
    return await run_recorded(
        doc,
        pipeline_yaml=info.pipeline_yaml,
        pipeline_path=info.pipeline_path,
        engine=engine,
        observers=observers,
        user_id=info.user_id,
        heartbeat_s=heartbeat_s,
        inputs=info.inputs,
        run_id=run_id,
        resume_results=info.results,
        **kwargs,
    )
