"""The dashboard's bounded top-N lists: the costliest runs and conversations of a range, and
the user list of an admin's filter.

CONTRACT:
- Every function takes a Session and a resolved ``dashboard_sql.Scope`` and returns plain
  values; synchronous (database): call through ``in_db_thread``.
- The costliest runs: runs *started* in the range, as last booked by ``ledger.record_run``
  (``run_booking``); the costliest conversations: conversations *started* in the range (their
  first call), by what all their calls cost (``conversation_booking``). Both are one LIMITed
  index range per day of the range (index on day, cost), merged: the rows read do not grow
  with the ledger, only with the days in the range.
- With a model / provider / caller filter, the conversations are ranked by the cost of their
  calls in the range that match it, summed from ``llm_call`` (a booking has no such keys).
- A pipeline filter leaves no conversation (chat has no pipeline).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from elexirion_app.db.billing_models import ConversationBooking, RunBooking
from elexirion_app.db.models import AppUser, Conversation, LLMCall, Run
from elexirion_app.services.billing.dashboard_sql import DAY, Scope, utc


@dataclass(frozen=True)
class TopRun:
    id: str
    pipeline: str
    status: str
    cost_usd: Decimal
    created_at: datetime
    user_id: int | None
    email: str


@dataclass(frozen=True)
class TopConversation:
    id: int
    title: str
    calls: int
    cost_usd: Decimal
    last_at: datetime
    user_id: int
    email: str


def _day_params(s: Scope) -> tuple[dict[str, Any], int]:
    """(``since``, ``until``, ``d0``.. the UTC midnight of every day the range touches, and
    the filters' values; the number of days)."""
    since, until = utc(s.since), utc(s.until)
    day = since.replace(hour=0, minute=0, second=0, microsecond=0)
    params: dict[str, Any] = {"since": since, "until": until}
    n = 0
    while day < until:
        params[f"d{n}"] = day
        day += DAY
        n += 1
    if s.user_id is not None:
        params["user_id"] = s.user_id
    if s.pipeline is not None:
        params["pipeline"] = s.pipeline
    return params, n


def _per_day(table: Any, at: str, cost: str, days: int, filters: tuple[str, ...], n: int) -> Any:
    """The top ``n`` rows of each day ``d<i>`` (``started_day``) with ``at`` in [since, until)
    and the ``filters`` columns equal to their parameters, as one UNION ALL subquery of
    (key, cost, at)."""
    t = table.__table__
    since = bindparam("since", type_=t.c[at].type)
    until = bindparam("until", type_=t.c[at].type)
    key = t.c[t.primary_key.columns.keys()[0]]
    parts = []
    for i in range(days):
        where = [
            t.c.started_day == bindparam(f"d{i}", type_=t.c.started_day.type),
            t.c[at] >= since,
            t.c[at] < until,
            *[t.c[f] == bindparam(f, type_=t.c[f].type) for f in filters],
        ]
        parts.append(
            sa_select(key.label("key"), t.c[cost].label("cost"), t.c[at].label("at"))
            .where(*where)
            .order_by(t.c[cost].desc(), t.c[at].desc())
            .limit(n)
            .subquery()
        )
    return union_all(*[sa_select(*q.c) for q in parts]).subquery()


@functools.lru_cache(maxsize=512)
def _top_runs_statement(days: int, by_user: bool, by_pipeline: bool, limit: int) -> Any:
    """Built once per shape, values bound at execution: building 30 subqueries costs ten
    times what running them does."""
    filters = (("user_id",) if by_user else ()) + (("pipeline",) if by_pipeline else ())
    merged = _per_day(RunBooking, "created_at", "cost_usd", days, filters, limit)
    # The top ``limit`` of the days' tops, then their runs: ``limit`` lookups of ``run`` by
    # id, not one per day's top (30 x limit; SQLite joined first, and at 1M ledger rows
    # those lookups made a member's costliest runs grow x2-3 with the ledger). A deleted run
    # has no booking (``ledger.unlink_runs``): the join drops none of the top.
    top = (
        sa_select(*merged.c)
        .order_by(merged.c.cost.desc(), merged.c.at.desc())
        .limit(limit)
        .subquery()
    )
    return (
        sa_select(
            col(Run.id),
            col(Run.pipeline_name),
            col(Run.status),
            col(Run.cost_usd),
            col(Run.created_at),
            col(Run.user_id),
            col(AppUser.email),
        )
        .select_from(top)
        .join(Run, col(Run.id) == top.c.key)
        .join(AppUser, col(AppUser.id) == col(Run.user_id), isouter=True)
        .order_by(top.c.cost.desc(), top.c.at.desc())
    )


def top_runs(session: Session, s: Scope, limit: int) -> list[TopRun]:
    """The costliest runs started in the range (user and pipeline filters apply)."""
    params, days = _day_params(s)
    if not days:
        return []
    query = _top_runs_statement(days, s.user_id is not None, s.pipeline is not None, limit)
    return [
        TopRun(
            id=str(r[0]),
            pipeline=str(r[1] or ""),
            status=str(r[2]),
            cost_usd=Decimal(str(r[3] or 0)),
            created_at=r[4],
            user_id=r[5],
            email=str(r[6] or ""),
        )
        for r in session.connection().execute(query, params).all()
    ]


@functools.lru_cache(maxsize=512)
def _top_conversations_statement(days: int, by_user: bool, limit: int) -> Any:
    b = ConversationBooking.__table__  # type: ignore[attr-defined]
    merged = _per_day(
        ConversationBooking, "first_at", "cost_usd", days, ("user_id",) if by_user else (), limit
    )
    return (
        sa_select(
            merged.c.key,
            col(Conversation.title),
            b.c.calls,
            b.c.cost_usd,
            b.c.last_at,
            col(Conversation.user_id),
            col(AppUser.email),
        )
        .select_from(merged)
        .join(b, b.c.conversation_id == merged.c.key)
        .join(Conversation, col(Conversation.id) == merged.c.key)
        .join(AppUser, col(AppUser.id) == col(Conversation.user_id), isouter=True)
        .order_by(merged.c.cost.desc(), merged.c.key.desc())
        .limit(limit)
    )


def _filtered_conversations(s: Scope, limit: int) -> Any:
    """Conversation sums of the range's calls matching a model / provider / caller filter."""
    c = LLMCall
    where = [
        col(c.created_at) >= utc(s.since),
        col(c.created_at) < utc(s.until),
        col(c.conversation_id).is_not(None),
    ]
    if s.user_id is not None:
        where.append(col(c.user_id) == s.user_id)
    for column, value in ((c.model, s.model), (c.provider, s.provider), (c.caller, s.caller)):
        if value is not None:
            where.append(col(column) == value)
    cost = func.sum(col(c.cost_usd))
    inner: Any = (
        sa_select(
            col(c.conversation_id).label("cid"),
            cost.label("cost"),
            func.count().label("calls"),
            func.max(col(c.created_at)).label("last_at"),
        )
        .where(*where)
        .group_by(col(c.conversation_id))
        .order_by(cost.desc(), col(c.conversation_id).desc())
        .limit(limit)
        .subquery()
    )
    return (
        sa_select(
            inner.c.cid,
            col(Conversation.title),
            inner.c.calls,
            inner.c.cost,
            inner.c.last_at,
            col(Conversation.user_id),
            col(AppUser.email),
        )
        .select_from(inner)
        .join(Conversation, col(Conversation.id) == inner.c.cid)
        .join(AppUser, col(AppUser.id) == col(Conversation.user_id), isouter=True)
        .order_by(inner.c.cost.desc(), inner.c.cid.desc())
    )


def top_conversations(session: Session, s: Scope, limit: int) -> list[TopConversation]:
    """The costliest conversations started in the range (user filter applies; see the
    module's contract for the model / provider / caller filters)."""
    if s.pipeline:
        return []
    if s.model is not None or s.provider is not None or s.caller is not None:
        rows = session.connection().execute(_filtered_conversations(s, limit)).all()
    else:
        params, days = _day_params(s)
        if not days:
            return []
        query = _top_conversations_statement(days, s.user_id is not None, limit)
        rows = session.connection().execute(query, params).all()
    out = []
    for r in rows:
        last = r[4]
        if isinstance(last, str):  # SQLite returns max() of a datetime column as text
            last = datetime.fromisoformat(last)
        out.append(
            TopConversation(
                id=int(r[0]),
                title=str(r[1] or ""),
                calls=int(r[2]),
                cost_usd=Decimal(str(r[3] or 0)),
                last_at=utc(last),
                user_id=int(r[5]),
                email=str(r[6] or ""),
            )
        )
    return out


def users(session: Session, limit: int = 500) -> list[tuple[int, str]]:
    """(id, email) of every account, for an admin's user filter."""
    rows = session.exec(select(AppUser.id, AppUser.email).order_by(col(AppUser.email)).limit(limit))
    return [(int(i), str(e)) for i, e in rows.all() if i is not None]
