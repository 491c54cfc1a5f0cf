"""The dashboard's SQL: aggregates over ``usage_rollup`` / ``run_rollup`` and two LIMITed top-N
lists (``run`` and ``llm_call``), each one statement returning aggregated rows only.

CONTRACT:
- Every function takes a Session and a resolved ``Scope`` (whose rows: ``user_id`` None is
  everyone — only ``dashboard.resolve_scope`` builds one for an admin) and returns plain values.
- Totals and time series never read ``llm_call``; percentiles come from the summed histogram
  buckets (``buckets.percentile``), never from a scan of latencies.
- Synchronous (database): call through ``in_db_thread``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

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


def _usage_where(s: Scope) -> list[ColumnElement[bool]]:
    r = UsageRollup
    out = [col(r.hour) >= utc(s.since), col(r.hour) < utc(s.until)]
    if s.user_id is not None:
        out.append(col(r.user_id) == s.user_id)
    for column, value in (
        (r.model, s.model),
        (r.provider, s.provider),
        (r.pipeline, s.pipeline),
        (r.caller, s.caller),
    ):
        if value is not None:
            out.append(col(column) == value)
    return out


def _run_where(s: Scope) -> list[ColumnElement[bool]]:
    r = RunRollup
    out = [col(r.hour) >= utc(s.since), col(r.hour) < utc(s.until)]
    if s.user_id is not None:
        out.append(col(r.user_id) == s.user_id)
    if s.pipeline is not None:
        out.append(col(r.pipeline) == s.pipeline)
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


def _usage_columns() -> list[Any]:
    r = UsageRollup
    cols: list[Any] = [
        _sum(col(r.calls)),
        _sum(col(r.errors)),
        _sum(col(r.cost_usd)),
        _sum(col(r.live_estimate_usd)),
        _sum(col(r.offline_calls)),
        *[_sum(getattr(r, f"{kind}_tokens")) for kind in TOKEN_KINDS],
        _sum(col(r.latency_ms_sum)),
        *[_sum(getattr(r, f"lat_b{i}")) for i in range(N_BUCKETS)],
        *[_sum(getattr(r, f"ttft_b{i}")) for i in range(N_BUCKETS)],
    ]
    return cols


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


def totals(session: Session, s: Scope) -> Measures:
    row = session.exec(select(*_usage_columns()).where(*_usage_where(s))).one()  # type: ignore[call-overload]
    return _measures(row)


def series(session: Session, s: Scope) -> list[tuple[str, Measures]]:
    """One row per day / week / month that has any call, in time order."""
    key = period(session, col(UsageRollup.hour), s.grouping)
    query: Any = select(key, *_usage_columns()).where(*_usage_where(s))
    rows = session.exec(query.group_by(key).order_by(key)).all()
    return [(str(row[0]), _measures(row[1:])) for row in rows]


def by_model(session: Session, s: Scope) -> list[tuple[str, str, Measures]]:
    """(model, provider, sums) per model, costliest first (then the busiest)."""
    r = UsageRollup
    query: Any = select(col(r.model), col(r.provider), *_usage_columns()).where(*_usage_where(s))
    rows = session.exec(
        query.group_by(col(r.model), col(r.provider)).order_by(
            _sum(col(r.cost_usd)).desc(), _sum(col(r.calls)).desc(), col(r.model)
        )
    ).all()
    return [(str(row[0]), str(row[1]), _measures(row[2:])) for row in rows]


def _run_columns() -> list[Any]:
    r = RunRollup
    return [
        _sum(col(r.runs)),
        _sum(case((col(r.status).in_(OK_STATUSES), 0), else_=col(r.runs))),
        _sum(col(r.cost_usd)),
        _sum(col(r.duration_ms_sum)),
    ]


def _run_measures(v: Any) -> RunMeasures:
    runs = int(v[0])
    return RunMeasures(
        runs=runs,
        failed=int(v[1]),
        cost_usd=Decimal(str(v[2])),
        duration_avg_ms=float(v[3]) / runs if runs else None,
    )


def run_totals(session: Session, s: Scope) -> RunMeasures:
    row = session.exec(select(*_run_columns()).where(*_run_where(s))).one()  # type: ignore[call-overload]
    return _run_measures(row)


def run_series(session: Session, s: Scope) -> dict[str, RunMeasures]:
    key = period(session, col(RunRollup.hour), s.grouping)
    query: Any = select(key, *_run_columns()).where(*_run_where(s))
    rows = session.exec(query.group_by(key).order_by(key)).all()
    return {str(row[0]): _run_measures(row[1:]) for row in rows}


def options(session: Session, s: Scope) -> dict[str, list[str]]:
    """The models, providers, pipelines and callers present in the scope's range and users
    (the other filters left out, so a choice can be changed)."""
    base = Scope(s.since, s.until, s.grouping, s.user_id)
    out: dict[str, list[str]] = {}
    for name in ("model", "provider", "pipeline", "caller"):
        column = col(getattr(UsageRollup, name))
        rows = session.exec(
            select(column).where(*_usage_where(base)).group_by(column).order_by(column).limit(200)
        ).all()
        out[name] = [str(v) for v in rows if v]
    return out


def top_runs(session: Session, s: Scope, limit: int) -> list[TopRun]:
    """The costliest runs started in the range (user and pipeline filters apply)."""
    where = [col(Run.created_at) >= utc(s.since), col(Run.created_at) < utc(s.until)]
    if s.user_id is not None:
        where.append(col(Run.user_id) == s.user_id)
    if s.pipeline is not None:
        where.append(col(Run.pipeline_name) == s.pipeline)
    query: Any = (
        sa_select(
            col(Run.id),
            col(Run.pipeline_name),
            col(Run.status),
            col(Run.cost_usd),
            col(Run.created_at),
            col(Run.user_id),
            col(AppUser.email),
        )
        .select_from(Run)
        .join(AppUser, col(AppUser.id) == col(Run.user_id), isouter=True)
        .where(*where)
        .order_by(col(Run.cost_usd).desc(), col(Run.created_at).desc())
        .limit(limit)
    )
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
        for r in session.execute(query).all()
    ]


def top_conversations(session: Session, s: Scope, limit: int) -> list[TopConversation]:
    """The costliest conversations by the cost of their calls in the range (user, model,
    provider and caller filters apply; a pipeline filter leaves none: chat has no pipeline)."""
    if s.pipeline:
        return []
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
        select(
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
