"""A user's usage over a time range: calls, tokens by type and cost, summed in SQL.

CONTRACT:
- Every figure is a SQL aggregate over the ledger's ``usage_rollup`` rows of that user
  (maintained with each ``llm_call`` row; never rows loaded into Python), so it equals the sum
  of the user's ledger rows. The rollups are hourly: ``since`` counts from the start of its
  hour, ``until`` (exclusive) up to the hour it falls in. ``group_by`` is one of ``GROUPS``
  (``None``: totals only); ``status`` (ok / error / stopped) is the one grouping the rollups
  do not keep: it is a GROUP BY over the user's ``llm_call`` rows in the range (indexed).
- ``since``/``until`` are UTC datetimes; a range over ``MAX_DAYS`` or with
  ``since >= until`` is an InputError.
- Synchronous (database): call through ``in_db_thread``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import String, case, cast, func, select
from sqlmodel import Session

from elexirion_app.core.errors import InputError
from elexirion_app.core.types import TOKEN_KINDS as CORE_TOKEN_KINDS
from elexirion_app.db.models import LLMCall, UsageRollup
from elexirion_app.services.billing.ledger import hour_of

GROUPS = ("day", "model", "provider", "pipeline", "caller", "status")
MAX_DAYS = 400
TOKEN_KINDS = CORE_TOKEN_KINDS
ROLLUP = UsageRollup.__table__  # type: ignore[attr-defined]
CALL = LLMCall.__table__  # type: ignore[attr-defined]


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


def _measures(table: Any) -> list[Any]:
    if table is ROLLUP:
        counts: list[Any] = [func.coalesce(func.sum(table.c.calls), 0)]
        counts.append(func.coalesce(func.sum(table.c.errors), 0))
    else:
        counts = [func.count(table.c.id)]
        counts.append(func.coalesce(func.sum(case((table.c.status == "error", 1), else_=0)), 0))
    return [
        *counts,
        func.coalesce(func.sum(table.c.cost_usd), 0),
        *(func.coalesce(func.sum(table.c[f"{k}_tokens"]), 0) for k in TOKEN_KINDS),
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
        ROLLUP.c.user_id == user_id,
        ROLLUP.c.hour >= hour_of(since),
        ROLLUP.c.hour < until,
    )
    total = session.execute(select(*_measures(ROLLUP)).where(*where)).one()
    groups: list[UsageRow] = []
    if group_by is not None:
        key: Any
        if group_by == "status":
            key = CALL.c.status
            query = select(key, *_measures(CALL)).where(
                CALL.c.user_id == user_id, CALL.c.created_at >= since, CALL.c.created_at < until
            )
        elif group_by == "day":
            key = func.substr(cast(ROLLUP.c.hour, String), 1, 10)
            query = select(key, *_measures(ROLLUP)).where(*where)
        else:
            key = ROLLUP.c[group_by]
            query = select(key, *_measures(ROLLUP)).where(*where)
        for row in session.execute(query.group_by(key).order_by(key)).all():
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
