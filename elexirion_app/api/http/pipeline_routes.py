"""Pipelines: the caller's library and the shipped ones, one with its versions, validation."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path

from elexirion_app.api.http.deps import Caller, caller
from elexirion_app.api.http.responses import errors
from elexirion_app.api.http.schemas import (
    PipelineDetailOut,
    PipelineOut,
    ProblemOut,
    ValidateRequest,
    ValidateResponse,
    VersionOut,
)
from elexirion_app.core.errors import NotFound, Problem
from elexirion_app.core.threads import in_cpu_thread
from elexirion_app.db.engine import in_db_thread, session_scope
from elexirion_app.services.runs import pipeline_store as store

router = APIRouter(prefix="/api", tags=["pipelines"])


def _library(user_id: int) -> list[store.PipelineSummary]:
    with session_scope() as session:
        return store.list_library(session, user_id)


@router.get(
    "/pipelines",
    response_model=list[PipelineOut],
    summary="Your pipelines (newest first), then the shipped ones",
    responses=errors(),
)
async def list_pipelines(who: Caller = Depends(caller)) -> list[PipelineOut]:
    rows = await in_db_thread(_library, who.id)
    return [
        PipelineOut(
            name=r.name,
            title=r.title,
            description=r.description,
            steps=r.steps,
            errors=r.errors,
            current_version=r.current_version,
            updated_at=r.updated_at,
            shipped=r.shipped,
        )
        for r in rows
    ]


def _open(user_id: int, name: str) -> store.PipelineDetail:
    with session_scope() as session:
        try:
            return store.open_pipeline(session, user_id, name)
        except NotFound:
            pass
    try:
        return store.open_shipped(name)
    except NotFound:
        raise NotFound(f"No pipeline named {name[:100]!r}.") from None


@router.get(
    "/pipelines/{name:path}",
    response_model=PipelineDetailOut,
    summary="A pipeline's YAML (the saved current version) and its versions",
    responses=errors(404),
)
async def get_pipeline(
    name: str = Path(min_length=1, max_length=200), who: Caller = Depends(caller)
) -> PipelineDetailOut:
    detail = await in_db_thread(_open, who.id, name)
    return PipelineDetailOut(
        name=detail.name,
        title=detail.title,
        shipped=detail.shipped,
        yaml=detail.saved_yaml,
        current_version=detail.current_version,
        versions=[
            VersionOut(
                number=v.number,
                label=v.label,
                message=v.message,
                errors=v.errors,
                created_at=v.created_at,
            )
            for v in detail.versions
        ],
    )


def _problems(user_id: int, text: str) -> list[Problem]:
    return store.problems_of(text, store.user_dir(user_id))


@router.post(
    "/pipelines/validate",
    response_model=ValidateResponse,
    summary="Every problem of a pipeline's YAML, with line, field path and a fix hint",
    responses=errors(400),
)
async def validate(body: ValidateRequest, who: Caller = Depends(caller)) -> ValidateResponse:
    # CPU work (up to ~1 s for 1 MB): the CPU pool, as one of the caller's capped jobs.
    problems = await in_cpu_thread(who.id, _problems, who.id, body.yaml)
    errors_ = sum(1 for p in problems if p.severity == "error")
    return ValidateResponse(
        valid=errors_ == 0,
        errors=errors_,
        warnings=len(problems) - errors_,
        problems=[
            ProblemOut(
                severity=p.severity, line=p.line, path=p.path, message=p.message, hint=p.hint
            )
            for p in problems
        ],
    )
