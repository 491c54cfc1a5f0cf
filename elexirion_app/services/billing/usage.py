"""A user's usage over a time range: calls, tokens by type and cost, summed in SQL.

CONTRACT:
- Every figure is a SQL aggregate over ``llm_call`` rows of that user (never rows loaded into
  Python); ``group_by`` is one of ``GROUPS`` (``None``: totals only).
- ``since``/``until`` are UTC datetimes; ``until`` is exclusive; a range over ``MAX_DAYS`` or
  with ``since >= until`` is an InputError.
- Synchronous (database): call through ``in_db_thread``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import String, case, cast, func
from sqlmodel import Session, col, select

from elexirion_app.core.errors import InputError
from elexirion_app.db.models import LLMCall, Run

GROUPS = ("day", "model", "provider", "pipeline", "status")
MAX_DAYS = 400
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "thinking")


@dataclass(frozen=True)
class UsageRow:
    key: str
    calls: int
    errors: int
    cost_usd: Decimal
    tokens: dict[str, int]


@dataclass(frozen=True)
class Usage:
    since: datetime
    until: datetime
    calls: int
    errors: int
    cost_usd: Decimal
    tokens: dict[str, int]
    groups: list[UsageRow] = field(default_factory=list)


def _measures() -> list[Any]:
    return [
        func.count(col(LLMCall.id)),
        func.coalesce(func.sum(case((col(LLMCall.status) == "ok", 0), else_=1)), 0),
        func.coalesce(func.sum(col(LLMCall.cost_usd)), 0),
        func.coalesce(func.sum(col(LLMCall.input_tokens)), 0),
        func.coalesce(func.sum(col(LLMCall.output_tokens)), 0),
        func.coalesce(func.sum(col(LLMCall.cache_read_tokens)), 0),
        func.coalesce(func.sum(col(LLMCall.cache_write_tokens)), 0),
        func.coalesce(func.sum(col(LLMCall.thinking_tokens)), 0),
    ]


def _tokens(values: Any) -> dict[str, int]:
    return {kind: int(v or 0) for kind, v in zip(TOKEN_KINDS, values, strict=True)}


def check_range(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    until = until or now
    since = since or until - timedelta(days=30)
    if since >= until:
        raise InputError("'from' must be before 'to'")
    if until - since > timedelta(days=MAX_DAYS):
        raise InputError(f"a range is at most {MAX_DAYS} days")
    return since, until


def usage(
    session: Session,
    user_id: int,
    since: datetime,
    until: datetime,
    group_by: str | None = None,
) -> Usage:
    if group_by is not None and group_by not in GROUPS:
        raise InputError(f"group_by is one of {', '.join(GROUPS)}")
    where = (
        col(LLMCall.user_id) == user_id,
        col(LLMCall.created_at) >= since,
        col(LLMCall.created_at) < until,
    )
    total = session.exec(select(*_measures()).where(*where)).one()  # type: ignore[call-overload]
    groups: list[UsageRow] = []
    if group_by is not None:
        key: Any
        query: Any
        if group_by == "day":
            key = func.substr(cast(col(LLMCall.created_at), String), 1, 10)
            query = select(key, *_measures()).where(*where)
        elif group_by == "pipeline":
            key = func.coalesce(col(Run.pipeline_name), "")
            query = (
                select(key, *_measures())
                .select_from(LLMCall)
                .join(Run, col(Run.id) == col(LLMCall.run_id), isouter=True)
                .where(*where)
            )
        else:
            key = {"model": LLMCall.model, "provider": LLMCall.provider, "status": LLMCall.status}[
                group_by
            ]
            query = select(key, *_measures()).where(*where)
        for row in session.exec(query.group_by(key).order_by(key)).all():
            groups.append(
                UsageRow(
                    key=str(row[0] or ""),
                    calls=int(row[1]),
                    errors=int(row[2]),
                    cost_usd=Decimal(str(row[3])),
                    tokens=_tokens(row[4:]),
                )
            )
    return Usage(
        since=since,
        until=until,
        calls=int(total[0]),
        errors=int(total[1]),
        cost_usd=Decimal(str(total[2])),
        tokens=_tokens(total[3:]),
        groups=groups,
    )
