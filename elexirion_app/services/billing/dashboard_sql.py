"""The dashboard's SQL: indexed aggregates over the rollup tables (``db/billing_models``) and
two bounded top-N lists, each returning aggregated rows only.

CONTRACT:
- Every function takes a Session and a resolved ``Scope`` (whose rows: ``user_id`` None is
  everyone — only ``dashboard.resolve_scope`` builds one for an admin) and returns plain values.
- A range is cut into whole UTC days, read from a daily rollup, and the hours at its two edges,
  read from an hourly one (``_pieces``): the figures are those of every hour starting in
  [since, until), as when only the hourly rollup was read. Each piece reads the narrowest
  table that has the scope's filters and grouping (``_pick``): one user's rows from the tables
  keyed by user, everyone's from the ones without a user column (a few rows per day).
- Totals and time series never read ``llm_call``; percentiles come from the summed histogram
  buckets (``buckets.percentile``), never from a scan of latencies.
- The costliest runs: one LIMITed index range of ``run_booking`` per day of the range, merged.
  The costliest conversations: ``conversation_day`` / ``conversation_hour`` sums, with the
  partial hours at the very edges (and a model / provider / caller filter) from ``llm_call``.
- Synchronous (database): call through ``in_db_thread``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, func, literal, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from elexirion_app.db.billing_models import (
    ConversationDay,
    ConversationHour,
    RunBooking,
    RunDay,
    RunDayAll,
    UsageDay,
    UsageDayAll,
    UsageDayPipeline,
    UsageDayUser,
    UsageHourAll,
    UsageHourUser,
)
from elexirion_app.db.models import AppUser, Conversation, LLMCall, Run, RunRollup, UsageRollup
from elexirion_app.services.billing import buckets

TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "thinking")
N_BUCKETS = len(buckets.BOUNDS_MS)
OK_STATUSES = ("succeeded",)


@dataclass(frozen=True)
class Scope:
    """Whose rows and which slice of them (validated by ``dashboard.parse_filters``)."""

    since: datetime
    until: datetime
    grouping: str  # day | week | month
    user_id: int | None  # None: every user (admins only)
    model: str | None = None
    provider: str | None = None
    pipeline: str | None = None
    caller: str | None = None


@dataclass(frozen=True)
class Measures:
    """Sums over a set of rollup rows."""

    calls: int
    errors: int
    cost_usd: Decimal
    live_estimate_usd: Decimal
    offline_calls: int
    tokens: dict[str, int]
    latency_avg_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None


@dataclass(frozen=True)
class RunMeasures:
    runs: int
    failed: int
    cost_usd: Decimal
    duration_avg_ms: float | None


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


def utc(value: datetime) -> datetime:
    """An aware UTC datetime (the tables' ``UTCDateTime`` columns refuse naive ones)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
_ALL_DIMS = frozenset({"user_id", "model", "provider", "pipeline", "caller"})
# (table, its dimensions), narrowest first: a piece reads the first that has what it needs.
_USAGE_TABLES: dict[str, list[tuple[Any, frozenset[str]]]] = {
    "day": [
        (UsageDayAll, frozenset({"model", "provider", "caller"})),
        (UsageDayPipeline, frozenset({"pipeline", "model", "provider", "caller"})),
        (UsageDayUser, frozenset({"user_id"})),
        (UsageDay, _ALL_DIMS),
    ],
    "hour": [
        (UsageHourAll, frozenset({"model", "provider", "caller"})),
        (UsageHourUser, frozenset({"user_id"})),
        (UsageRollup, _ALL_DIMS),
    ],
}
_RUN_TABLES: dict[str, list[tuple[Any, frozenset[str]]]] = {
    "day": [
        (RunDayAll, frozenset({"pipeline", "status"})),
        (RunDay, frozenset({"user_id", "pipeline", "status"})),
    ],
    "hour": [(RunRollup, frozenset({"user_id", "pipeline", "status"}))],
}


@dataclass(frozen=True)
class Piece:
    """A part of a range: rows of ``table`` whose ``time`` column is in [lo, hi)."""

    table: Any
    time: str  # "hour" | "day"
    lo: datetime
    hi: datetime

    @property
    def when(self) -> Any:
        return col(getattr(self.table, self.time))


def _ceil(moment: datetime, step: timedelta) -> datetime:
    """The first hour / UTC midnight at or after ``moment``."""
    m = utc(moment)
    floor = m.replace(minute=0, second=0, microsecond=0)
    if step == DAY:
        floor = floor.replace(hour=0)
    return m if m == floor else floor + step


def spans(since: datetime, until: datetime) -> tuple[list[tuple[datetime, datetime]], Any]:
    """The range's hour starts in [since, until) as (edge spans read by the hour, the span of
    whole days read by the day, or None). A day is whole when its 24 hours start in range."""
    lo, hi = utc(since), utc(until)
    first = _ceil(lo, DAY)
    last = _ceil(hi - 23 * HOUR, DAY)  # days d with d + 23 h < until
    if last <= first:
        return [(lo, hi)], None
    edges = [(a, b) for a, b in ((lo, first), (last, hi)) if a < b]
    return edges, (first, last)


def _pick(tables: dict[str, list[tuple[Any, frozenset[str]]]], grain: str, need: set[str]) -> Any:
    for table, dims in tables[grain]:
        if need <= dims:
            return table
    raise AssertionError(f"no {grain} rollup has {sorted(need)}")  # pragma: no cover


def _needs(s: Scope, *extra: str, runs: bool = False) -> set[str]:
    need = set(extra)
    if s.user_id is not None:
        need.add("user_id")
    filters = (("pipeline", s.pipeline),) if runs else (
        ("model", s.model), ("provider", s.provider), ("pipeline", s.pipeline), ("caller", s.caller)
    )  # fmt: skip
    need |= {name for name, value in filters if value is not None}
    return need


def _pieces(
    s: Scope, tables: dict[str, list[tuple[Any, frozenset[str]]]], need: set[str]
) -> list[Piece]:
    edges, days = spans(s.since, s.until)
    out = []
    if days is not None:
        out.append(Piece(_pick(tables, "day", need), "day", days[0], days[1]))
    hourly = _pick(tables, "hour", need)
    out.extend(Piece(hourly, "hour", lo, hi) for lo, hi in edges)
    return out


def _where(p: Piece, s: Scope, *, runs: bool = False) -> list[ColumnElement[bool]]:
    t = p.table
    out = [p.when >= p.lo, p.when < p.hi]
    if s.user_id is not None:
        out.append(col(t.user_id) == s.user_id)
    filters = (("pipeline", s.pipeline),) if runs else (
        ("model", s.model), ("provider", s.provider), ("pipeline", s.pipeline), ("caller", s.caller)
    )  # fmt: skip
    for name, value in filters:
        if value is not None:
            out.append(col(getattr(t, name)) == value)
    return out


def period(session: Session, hour: Any, grouping: str) -> Any:
    """The SQL label of the day / week (its Monday) / month holding ``hour``: 'YYYY-MM-DD',
    'YYYY-MM-DD', 'YYYY-MM'."""
    if session.get_bind().dialect.name == "sqlite":
        if grouping == "month":
            return func.strftime("%Y-%m", hour)
        if grouping == "week":
            return func.date(hour, "-6 days", "weekday 1")
        return func.date(hour)
    # PostgreSQL: timestamptz, truncated in UTC whatever the session's time zone.
    fmt = "YYYY-MM" if grouping == "month" else "YYYY-MM-DD"
    return func.to_char(func.date_trunc(grouping, func.timezone("UTC", hour)), fmt)


def _sum(column: Any) -> Any:
    return func.coalesce(func.sum(column), 0)


# Positions in a row of _usage_columns: which are money (Decimal), which float, the rest int.
_N_USAGE = 5 + len(TOKEN_KINDS) + 1 + 2 * N_BUCKETS
_MONEY_AT = (2, 3)
_FLOAT_AT = (5 + len(TOKEN_KINDS),)


@functools.cache
def _usage_columns(r: Any) -> tuple[Any, ...]:
    """The sums of a usage rollup's counters (built once per table: building them costs more
    than the query on a few hundred rows)."""
    return (
        _sum(col(r.calls)),
        _sum(col(r.errors)),
        _sum(col(r.cost_usd)),
        _sum(col(r.live_estimate_usd)),
        _sum(col(r.offline_calls)),
        *[_sum(getattr(r, f"{kind}_tokens")) for kind in TOKEN_KINDS],
        _sum(col(r.latency_ms_sum)),
        *[_sum(getattr(r, f"lat_b{i}")) for i in range(N_BUCKETS)],
        *[_sum(getattr(r, f"ttft_b{i}")) for i in range(N_BUCKETS)],
    )


def _typed(values: Sequence[Any], money: Sequence[int], floats: Sequence[int]) -> list[Any]:
    out: list[Any] = []
    for i, v in enumerate(values):
        if i in money:
            out.append(Decimal(str(v or 0)))
        elif i in floats:
            out.append(float(v or 0))
        else:
            out.append(int(v or 0))
    return out


def _add(acc: list[Any] | None, values: list[Any]) -> list[Any]:
    return values if acc is None else [a + b for a, b in zip(acc, values, strict=True)]


def _usage_values(row: Sequence[Any]) -> list[Any]:
    return _typed(row, _MONEY_AT, _FLOAT_AT)


def _pct(counts: list[int], q: float) -> float | None:
    return buckets.percentile(counts, q) if sum(counts) else None


def _measures(values: Any) -> Measures:
    v = list(values)
    calls, errors = int(v[0]), int(v[1])
    cost, live, offline = Decimal(str(v[2])), Decimal(str(v[3])), int(v[4])
    k = 5 + len(TOKEN_KINDS)
    tokens = {kind: int(x) for kind, x in zip(TOKEN_KINDS, v[5:k], strict=True)}
    latency_sum = float(v[k])
    lat = [int(x) for x in v[k + 1 : k + 1 + N_BUCKETS]]
    ttft = [int(x) for x in v[k + 1 + N_BUCKETS : k + 1 + 2 * N_BUCKETS]]
    return Measures(
        calls=calls,
        errors=errors,
        cost_usd=cost,
        live_estimate_usd=live,
        offline_calls=offline,
        tokens=tokens,
        latency_avg_ms=latency_sum / calls if calls else None,
        latency_p50_ms=_pct(lat, 0.5),
        latency_p95_ms=_pct(lat, 0.95),
        ttft_p50_ms=_pct(ttft, 0.5),
        ttft_p95_ms=_pct(ttft, 0.95),
    )


def _zero_usage() -> list[Any]:
    return _usage_values([0] * _N_USAGE)


def _all(session: Session, queries: Sequence[Any]) -> Sequence[Any]:
    """The rows of every piece's query, in one statement (UNION ALL)."""
    stmt: Any = queries[0] if len(queries) == 1 else union_all(*queries)
    return session.execute(stmt).all()


def totals(session: Session, s: Scope) -> Measures:
    acc = _zero_usage()
    queries = [
        sa_select(*_usage_columns(p.table)).where(*_where(p, s))
        for p in _pieces(s, _USAGE_TABLES, _needs(s))
    ]
    for row in _all(session, queries):
        acc = _add(acc, _usage_values(row))
    return _measures(acc)


def series(session: Session, s: Scope) -> list[tuple[str, Measures]]:
    """One row per day / week / month that has any call, in time order."""
    acc: dict[str, list[Any]] = {}
    queries: list[Any] = []
    for p in _pieces(s, _USAGE_TABLES, _needs(s)):
        key = period(session, p.when, s.grouping)
        queries.append(sa_select(key, *_usage_columns(p.table)).where(*_where(p, s)).group_by(key))
    for row in _all(session, queries):
        acc[str(row[0])] = _add(acc.get(str(row[0])), _usage_values(row[1:]))
    return [(k, _measures(acc[k])) for k in sorted(acc)]


def by_model(session: Session, s: Scope) -> list[tuple[str, str, Measures]]:
    """(model, provider, sums) per model, costliest first (then the busiest)."""
    acc: dict[tuple[str, str], list[Any]] = {}
    queries: list[Any] = []
    for p in _pieces(s, _USAGE_TABLES, _needs(s, "model", "provider")):
        r = p.table
        queries.append(
            sa_select(col(r.model), col(r.provider), *_usage_columns(r))
            .where(*_where(p, s))
            .group_by(col(r.model), col(r.provider))
        )
    for row in _all(session, queries):
        key = (str(row[0]), str(row[1]))
        acc[key] = _add(acc.get(key), _usage_values(row[2:]))
    order = sorted(acc, key=lambda k: (-acc[k][2], -acc[k][0], k[0], k[1]))
    return [(m, pr, _measures(acc[(m, pr)])) for m, pr in order]


@functools.cache
def _run_columns(r: Any) -> tuple[Any, ...]:
    return (
        _sum(col(r.runs)),
        _sum(case((col(r.status).in_(OK_STATUSES), 0), else_=col(r.runs))),
        _sum(col(r.cost_usd)),
        _sum(col(r.duration_ms_sum)),
    )


def _run_values(row: Sequence[Any]) -> list[Any]:
    return _typed(row, (2,), (3,))


def _run_measures(v: Any) -> RunMeasures:
    runs = int(v[0])
    return RunMeasures(
        runs=runs,
        failed=int(v[1]),
        cost_usd=Decimal(str(v[2])),
        duration_avg_ms=float(v[3]) / runs if runs else None,
    )


def run_totals(session: Session, s: Scope) -> RunMeasures:
    acc = _run_values([0, 0, 0, 0])
    queries = [
        sa_select(*_run_columns(p.table)).where(*_where(p, s, runs=True))
        for p in _pieces(s, _RUN_TABLES, _needs(s, runs=True))
    ]
    for row in _all(session, queries):
        acc = _add(acc, _run_values(row))
    return _run_measures(acc)


def run_series(session: Session, s: Scope) -> dict[str, RunMeasures]:
    acc: dict[str, list[Any]] = {}
    queries: list[Any] = []
    for p in _pieces(s, _RUN_TABLES, _needs(s, runs=True)):
        key = period(session, p.when, s.grouping)
        queries.append(
            sa_select(key, *_run_columns(p.table)).where(*_where(p, s, runs=True)).group_by(key)
        )
    for row in _all(session, queries):
        acc[str(row[0])] = _add(acc.get(str(row[0])), _run_values(row[1:]))
    return {k: _run_measures(acc[k]) for k in sorted(acc)}


OPTION_KINDS = ("model", "provider", "pipeline", "caller")


def options(session: Session, s: Scope) -> dict[str, list[str]]:
    """The models, providers, pipelines and callers present in the scope's range and users
    (the other filters left out, so a choice can be changed)."""
    base = Scope(s.since, s.until, s.grouping, s.user_id)
    queries: list[Any] = []
    for i, name in enumerate(OPTION_KINDS):
        for p in _pieces(base, _USAGE_TABLES, _needs(base, name)):
            column = col(getattr(p.table, name))
            queries.append(
                sa_select(literal(i).label("kind"), column.label("value"))
                .where(*_where(p, base))
                .group_by(column)
            )
    seen: list[set[str]] = [set() for _ in OPTION_KINDS]
    for kind, value in _all(session, queries):
        if value is not None:
            seen[int(kind)].add(str(value))
    return {name: [v for v in sorted(seen[i])[:200] if v] for i, name in enumerate(OPTION_KINDS)}


@functools.lru_cache(maxsize=512)
def _top_runs_statement(days: int, by_user: bool, by_pipeline: bool, limit: int) -> Any:
    """The costliest-runs statement of a shape, values bound at execution (``d0``.., ``since``,
    ``until``, ``user_id``, ``pipeline``): built once, as building 30 subqueries costs ten
    times what running them does."""
    b = RunBooking
    t = b.__table__  # type: ignore[attr-defined]
    since = bindparam("since", type_=t.c.created_at.type)
    until = bindparam("until", type_=t.c.created_at.type)
    per_day = []
    for i in range(days):
        where = [
            col(b.started_day) == bindparam(f"d{i}", type_=t.c.started_day.type),
            col(b.created_at) >= since,
            col(b.created_at) < until,
        ]
        if by_user:
            where.append(col(b.user_id) == bindparam("user_id", type_=t.c.user_id.type))
        if by_pipeline:
            where.append(col(b.pipeline) == bindparam("pipeline", type_=t.c.pipeline.type))
        per_day.append(
            sa_select(col(b.run_id).label("rid"), col(b.cost_usd).label("cost"),
                      col(b.created_at).label("at"))
            .where(*where)
            .order_by(col(b.cost_usd).desc(), col(b.created_at).desc())
            .limit(limit)
            .subquery()
        )  # fmt: skip
    merged: Any = union_all(*[sa_select(*q.c) for q in per_day]).subquery()
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
        .select_from(merged)
        .join(Run, col(Run.id) == merged.c.rid)
        .join(AppUser, col(AppUser.id) == col(Run.user_id), isouter=True)
        .order_by(merged.c.cost.desc(), merged.c.at.desc())
        .limit(limit)
    )


def top_runs(session: Session, s: Scope, limit: int) -> list[TopRun]:
    """The costliest runs started in the range (user and pipeline filters apply): the top
    ``limit`` of each day the range touches (one LIMITed index range of ``run_booking`` each),
    merged."""
    since, until = utc(s.since), utc(s.until)
    day = since.replace(hour=0, minute=0, second=0, microsecond=0)
    params: dict[str, Any] = {"since": since, "until": until}
    n = 0
    while day < until:
        params[f"d{n}"] = day
        day += DAY
        n += 1
    if not n:
        return []
    if s.user_id is not None:
        params["user_id"] = s.user_id
    if s.pipeline is not None:
        params["pipeline"] = s.pipeline
    query = _top_runs_statement(n, s.user_id is not None, s.pipeline is not None, limit)
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
        for r in session.execute(query, params).all()
    ]


def _call_slice(s: Scope, lo: datetime, hi: datetime) -> Any:
    """Conversation sums straight from ``llm_call`` rows created in [lo, hi)."""
    c = LLMCall
    where = [
        col(c.created_at) >= lo,
        col(c.created_at) < hi,
        col(c.conversation_id).is_not(None),
    ]
    if s.user_id is not None:
        where.append(col(c.user_id) == s.user_id)
    for column, value in ((c.model, s.model), (c.provider, s.provider), (c.caller, s.caller)):
        if value is not None:
            where.append(col(column) == value)
    return (
        sa_select(
            col(c.conversation_id).label("cid"),
            func.sum(col(c.cost_usd)).label("cost"),
            func.count().label("calls"),
            func.max(col(c.created_at)).label("last_at"),
        )
        .where(*where)
        .group_by(col(c.conversation_id))
    )


def _conversation_slice(table: Any, time: str, s: Scope, lo: datetime, hi: datetime) -> Any:
    when = col(getattr(table, time))
    where = [when >= lo, when < hi]
    if s.user_id is not None:
        where.append(col(table.user_id) == s.user_id)
    return sa_select(
        col(table.conversation_id).label("cid"),
        col(table.cost_usd).label("cost"),
        col(table.calls).label("calls"),
        col(table.last_at).label("last_at"),
    ).where(*where)


def _conversation_sources(s: Scope) -> list[Any]:
    since, until = utc(s.since), utc(s.until)
    if s.model is not None or s.provider is not None or s.caller is not None:
        return [_call_slice(s, since, until)]  # the per-conversation sums have no such keys
    first_hour = _ceil(since, HOUR)
    last_hour = until.replace(minute=0, second=0, microsecond=0)
    if last_hour <= first_hour:
        return [_call_slice(s, since, until)]
    out = [
        _call_slice(s, lo, hi) for lo, hi in ((since, first_hour), (last_hour, until)) if lo < hi
    ]
    first_day = _ceil(first_hour, DAY)
    last_day = last_hour.replace(hour=0)
    if last_day <= first_day:
        return [*out, _conversation_slice(ConversationHour, "hour", s, first_hour, last_hour)]
    out.append(_conversation_slice(ConversationDay, "day", s, first_day, last_day))
    for lo, hi in ((first_hour, first_day), (last_day, last_hour)):
        if lo < hi:
            out.append(_conversation_slice(ConversationHour, "hour", s, lo, hi))
    return out


def top_conversations(session: Session, s: Scope, limit: int) -> list[TopConversation]:
    """The costliest conversations by the cost of their calls in the range (user, model,
    provider and caller filters apply; a pipeline filter leaves none: chat has no pipeline)."""
    if s.pipeline:
        return []
    parts: Any = union_all(*_conversation_sources(s)).subquery()
    cost = func.sum(parts.c.cost)
    inner: Any = (
        sa_select(
            parts.c.cid.label("cid"),
            cost.label("cost"),
            func.sum(parts.c.calls).label("calls"),
            func.max(parts.c.last_at).label("last_at"),
        )
        .group_by(parts.c.cid)
        .order_by(cost.desc(), parts.c.cid.desc())
        .limit(limit)
        .subquery()
    )
    query: Any = (
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
    out = []
    for r in session.execute(query).all():
        last = r[4]
        if isinstance(last, str):  # SQLite returns max() of a datetime column as text
            last = datetime.fromisoformat(last)
        last = utc(last)
        out.append(
            TopConversation(
                id=int(r[0]),
                title=str(r[1] or ""),
                calls=int(r[2]),
                cost_usd=Decimal(str(r[3] or 0)),
                last_at=last,
                user_id=int(r[5]),
                email=str(r[6] or ""),
            )
        )
    return out


def users(session: Session, limit: int = 500) -> list[tuple[int, str]]:
    """(id, email) of every account, for an admin's user filter."""
    rows = session.exec(select(AppUser.id, AppUser.email).order_by(col(AppUser.email)).limit(limit))
    return [(int(i), str(e)) for i, e in rows.all() if i is not None]
