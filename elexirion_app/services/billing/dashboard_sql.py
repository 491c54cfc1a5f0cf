"""The dashboard's SQL: indexed aggregates over the rollup tables (``db/billing_models``),
each returning aggregated rows only (the top-N lists are in ``dashboard_top``).

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
- Statements are built once per shape (which tables, which filters, which grouping, which
  dialect) with every value bound at execution (``_statement``): building and hashing a
  52-column select cost more than running it on the few hundred rollup rows it reads. They are
  compiled once too and run on the driver's cursor (``db/driver_sql.fetch``): SQLAlchemy's
  per-execution work (cache key, parameter processing, result rows) was ~0.1 ms of a 0.3 ms
  run-totals statement on PostgreSQL, the server's part of which is ~0.1 ms (bench/README).
- Synchronous (database): call through ``in_db_thread``.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, literal_column, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session

from elexirion_app.db import driver_sql
from elexirion_app.db.billing_models import (
    UsageDay,
    UsageDayAll,
    UsageDayModel,
    UsageDayPipeline,
    UsageDayTotal,
    UsageDayUser,
    UsageDayUserModel,
    UsageHourAll,
    UsageHourModel,
    UsageHourTotal,
    UsageHourUser,
    UsageHourUserModel,
)
from elexirion_app.db.models import UsageRollup
from elexirion_app.services.billing import buckets

TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "thinking")
N_BUCKETS = len(buckets.BOUNDS_MS)


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


def utc(value: datetime) -> datetime:
    """An aware UTC datetime (the tables' ``UTCDateTime`` columns refuse naive ones)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
_ALL_DIMS = frozenset({"user_id", "model", "provider", "pipeline", "caller"})
_USAGE_FILTERS = ("model", "provider", "pipeline", "caller")
# (table, its dimensions), narrowest first: a piece reads the first that has what it needs.
_USAGE_TABLES: dict[str, list[tuple[Any, frozenset[str]]]] = {
    "day": [
        (UsageDayTotal, frozenset()),
        (UsageDayModel, frozenset({"model", "provider"})),
        (UsageDayAll, frozenset({"model", "provider", "caller"})),
        (UsageDayPipeline, frozenset({"pipeline", "model", "provider", "caller"})),
        (UsageDayUser, frozenset({"user_id"})),
        (UsageDayUserModel, frozenset({"user_id", "model", "provider"})),
        (UsageDay, _ALL_DIMS),
    ],
    "hour": [
        (UsageHourTotal, frozenset()),
        (UsageHourModel, frozenset({"model", "provider"})),
        (UsageHourAll, frozenset({"model", "provider", "caller"})),
        (UsageHourUser, frozenset({"user_id"})),
        (UsageHourUserModel, frozenset({"user_id", "model", "provider"})),
        (UsageRollup, _ALL_DIMS),
    ],
}


@dataclass(frozen=True)
class Piece:
    """A part of a range: rows of ``table`` whose ``time`` column is in [lo, hi)."""

    table: Any
    time: str  # "hour" | "day"
    lo: datetime
    hi: datetime


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


def filters_of(s: Scope, *, runs: bool = False) -> dict[str, Any]:
    """The scope's filters that are set: column name -> value."""
    out: dict[str, Any] = {} if s.user_id is None else {"user_id": s.user_id}
    for name in ("pipeline",) if runs else _USAGE_FILTERS:
        value = getattr(s, name)
        if value is not None:
            out[name] = value
    return out


def pieces(
    s: Scope, tables: dict[str, list[tuple[Any, frozenset[str]]]], need: set[str]
) -> list[Piece]:
    edges, days = spans(s.since, s.until)
    out = []
    if days is not None:
        out.append(Piece(_pick(tables, "day", need), "day", days[0], days[1]))
    hourly = _pick(tables, "hour", need)
    out.extend(Piece(hourly, "hour", lo, hi) for lo, hi in edges)
    return out


def _text(constant: str) -> Any:
    """A constant string as SQL text, not a bound parameter (see ``sum_of``): the period
    expression's 3 constants were 3 more parameters per part, sent on every execution and
    unknown to a generic plan. Only the fixed strings below, never user input."""
    return literal_column("'" + constant.replace("'", "''") + "'")


def _period(dialect: str, hour: Any, grouping: str) -> Any:
    if grouping not in ("day", "week", "month"):
        raise AssertionError(f"unknown grouping {grouping!r}")  # parse_filters refuses it
    if dialect == "sqlite":
        if grouping == "month":
            return func.strftime(_text("%Y-%m"), hour)
        if grouping == "week":
            return func.date(hour, _text("-6 days"), _text("weekday 1"))
        return func.date(hour)
    # PostgreSQL: timestamptz, truncated in UTC whatever the session's time zone.
    fmt = "YYYY-MM" if grouping == "month" else "YYYY-MM-DD"
    return func.to_char(
        func.date_trunc(_text(grouping), func.timezone(_text("UTC"), hour)), _text(fmt)
    )


def period(session: Session, hour: Any, grouping: str) -> Any:
    """The SQL label of the day / week (its Monday) / month holding ``hour``: 'YYYY-MM-DD',
    'YYYY-MM-DD', 'YYYY-MM'."""
    return _period(session.get_bind().dialect.name, hour, grouping)


ZERO_SQL: Any = literal_column("0")


def sum_of(column: Any) -> Any:
    """SUM, 0 for no rows. The 0 is SQL text, not a bound parameter: 52 of those per part made
    psycopg split and send ~160 parameters per statement (~1 ms on PostgreSQL)."""
    return func.coalesce(func.sum(column), ZERO_SQL)


# Positions in a row of _usage_columns: which are money (Decimal), which float, the rest int.
_N_USAGE = 5 + len(TOKEN_KINDS) + 1 + 2 * N_BUCKETS
_MONEY_AT = (2, 3)
_FLOAT_AT = (5 + len(TOKEN_KINDS),)


def _counts_and_tokens(t: Any) -> tuple[Any, ...]:
    """The sums every usage statement reads first: calls, errors, spend, the live estimate,
    offline calls, tokens by kind."""
    return (
        sum_of(t.c.calls),
        sum_of(t.c.errors),
        sum_of(t.c.cost_usd),
        sum_of(t.c.live_estimate_usd),
        sum_of(t.c.offline_calls),
        *[sum_of(t.c[f"{kind}_tokens"]) for kind in TOKEN_KINDS],
    )


def _buckets(t: Any, name: str) -> list[Any]:
    return [sum_of(t.c[f"{name}_b{i}"]) for i in range(N_BUCKETS)]


def _usage_columns(t: Any) -> tuple[Any, ...]:
    """The sums of a usage rollup's counters."""
    return (
        *_counts_and_tokens(t),
        sum_of(t.c.latency_ms_sum),
        *_buckets(t, "lat"),
        *_buckets(t, "ttft"),
    )


def _select(kind: str, columns: Any, t: Any, when: Any, grouping: str, dialect: str) -> Any:
    """One piece's SELECT (no WHERE): "sum" of ``columns(t)``, per "period" of the grouping,
    "by_model", or "distinct" (kind, value) pairs of an options table."""
    if kind == "sum":
        return sa_select(*columns(t))
    if kind == "period":
        key = _period(dialect, when, grouping)
        return sa_select(key, *columns(t)).group_by(key)
    if kind == "by_model":
        return sa_select(t.c.model, t.c.provider, *columns(t)).group_by(t.c.model, t.c.provider)
    if kind == "distinct":
        return sa_select(t.c.kind, t.c.value).group_by(t.c.kind, t.c.value)
    raise AssertionError(f"unknown statement part {kind!r}")  # pragma: no cover


def _statement(
    parts: tuple[tuple[str, Any, Any, str], ...],
    filters: tuple[str, ...],
    grouping: str,
    dialect: str,
) -> Any:
    """UNION ALL of one SELECT per part (query kind, its columns' builder, table, time
    column); part ``i`` reads
    rows with ``lo<i>`` <= time < ``hi<i>`` and every ``filters`` column equal to its
    parameter. Built and compiled once per shape (``execute``: ``driver_sql`` keeps it)."""
    selects = []
    for i, (kind, columns, table, time) in enumerate(parts):
        t = table.__table__
        when = t.c[time]
        where = [
            when >= bindparam(f"lo{i}", type_=when.type),
            when < bindparam(f"hi{i}", type_=when.type),
            *[t.c[f] == bindparam(f, type_=t.c[f].type) for f in filters],
        ]
        selects.append(_select(kind, columns, t, when, grouping, dialect).where(*where))
    return selects[0] if len(selects) == 1 else union_all(*selects)


Part = tuple[str, Any, Piece]  # (query kind, columns builder, piece)
_SERIAL = "dashboard_serial_txn"


def connection(session: Session) -> Any:
    """The session's connection, its transaction set to plan without parallel workers on
    PostgreSQL (``SET LOCAL``, once per transaction). Every dashboard statement is a UNION
    of a few hundred to a few thousand rollup rows; PostgreSQL's planner still gave the wide
    ones (by model, options) a Gather over a Parallel Append of the parts, and starting two
    workers cost 5-10 ms of a 1.6-7 ms statement (EXPLAIN ANALYZE at 1M ledger rows,
    bench/README "dashboard.py"). Other statements of the app keep the server's setting."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        txn = conn.get_transaction()
        marked = conn.info.get(_SERIAL)
        if txn is not None and (marked is None or marked() is not txn):
            conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
            conn.info[_SERIAL] = weakref.ref(txn)
    return conn


def execute(
    session: Session,
    parts: list[Part],
    filters: dict[str, Any],
    grouping: str,
    *,
    serial: bool = True,
) -> Sequence[Any]:
    """The rows of every part, in one statement; planned without parallel workers
    (``connection``) unless ``serial`` is False: for statements whose serial plan costs far
    less than the planner's ``parallel_setup_cost`` (1000), which never get a Gather, the
    ``SET LOCAL`` would only be one more round trip (~0.1 ms) when they open a transaction."""
    conn = connection(session) if serial else session.connection()
    shape = tuple((kind, columns, p.table, p.time) for kind, columns, p in parts)
    key = (shape, tuple(sorted(filters)), grouping, conn.dialect.name)
    params = {name: filters[name] for name in key[1]}
    for i, (_kind, _columns, p) in enumerate(parts):
        params[f"lo{i}"], params[f"hi{i}"] = p.lo, p.hi
    return driver_sql.fetch(conn, ("dashboard", *key), functools.partial(_statement, *key), params)


def _money(v: Any) -> Decimal:
    return v if isinstance(v, Decimal) else Decimal(str(v or 0))


def converters(n: int, money: Sequence[int], floats: Sequence[int]) -> tuple[Any, ...]:
    return tuple(_money if i in money else float if i in floats else int for i in range(n))


def typed(values: Sequence[Any], convert: Sequence[Any]) -> list[Any]:
    """Each value as its Python type (PostgreSQL sums BIGINT columns as NUMERIC, SQLite
    returns floats for money; the sums are never NULL: ``_sum`` coalesces)."""
    return [c(v) for c, v in zip(convert, values, strict=True)]


def add(acc: list[Any] | None, values: list[Any]) -> list[Any]:
    return values if acc is None else [a + b for a, b in zip(acc, values, strict=True)]


_USAGE_TYPES = converters(_N_USAGE, _MONEY_AT, _FLOAT_AT)


def _usage_values(row: Sequence[Any]) -> list[Any]:
    return typed(row, _USAGE_TYPES)


def _pcts(counts: list[int]) -> tuple[float | None, float | None]:
    """(p50, p95) of histogram bucket counts, None for no observations."""
    if not any(counts):
        return None, None
    return buckets.percentile(counts, 0.5), buckets.percentile(counts, 0.95)


_K = 5 + len(TOKEN_KINDS)


def _measures(v: list[Any]) -> Measures:
    """``Measures`` of summed counters already typed by ``_usage_values``."""
    calls = v[0]
    lat50, lat95 = _pcts(v[_K + 1 : _K + 1 + N_BUCKETS])
    ttft50, ttft95 = _pcts(v[_K + 1 + N_BUCKETS : _K + 1 + 2 * N_BUCKETS])
    return Measures(
        calls=calls,
        errors=v[1],
        cost_usd=v[2],
        live_estimate_usd=v[3],
        offline_calls=v[4],
        tokens=dict(zip(TOKEN_KINDS, v[5:_K], strict=True)),
        latency_avg_ms=v[_K] / calls if calls else None,
        latency_p50_ms=lat50,
        latency_p95_ms=lat95,
        ttft_p50_ms=ttft50,
        ttft_p95_ms=ttft95,
    )


def _zero_usage() -> list[Any]:
    return _usage_values([0] * _N_USAGE)


def _usage_parts(s: Scope, kind: str, *extra: str, columns: Any = None) -> list[Part]:
    need = set(filters_of(s)) | set(extra)
    return [(kind, columns or _usage_columns, p) for p in pieces(s, _USAGE_TABLES, need)]


def _series_sums(session: Session, s: Scope) -> dict[str, list[Any]]:
    acc: dict[str, list[Any]] = {}
    for row in execute(session, _usage_parts(s, "period"), filters_of(s), s.grouping):
        acc[str(row[0])] = add(acc.get(str(row[0])), _usage_values(row[1:]))
    return acc


def totals(session: Session, s: Scope) -> Measures:
    acc = _zero_usage()
    for row in execute(session, _usage_parts(s, "sum"), filters_of(s), s.grouping):
        acc = add(acc, _usage_values(row))
    return _measures(acc)


def series(session: Session, s: Scope) -> list[tuple[str, Measures]]:
    """One row per day / week / month that has any call, in time order."""
    acc = _series_sums(session, s)
    return [(k, _measures(acc[k])) for k in sorted(acc)]


def series_and_totals(session: Session, s: Scope) -> tuple[list[tuple[str, Measures]], Measures]:
    """``series`` and ``totals`` from one statement (the totals are the periods' sums)."""
    acc = _series_sums(session, s)
    total = _zero_usage()
    for values in acc.values():
        total = add(total, values)
    return [(k, _measures(acc[k])) for k in sorted(acc)], _measures(total)


# By model sums only what its table and CSV rows show: calls, errors, spend, the live
# estimate, tokens by kind and the latency buckets (p50 / p95); not the latency sum (no
# average shown) nor the 20 TTFT buckets: 31 sums per row instead of 52. At 1M ledger rows
# everyone's by model reads ~2,500 rollup rows, and the aggregate transitions were most of it.
_N_MODEL = 5 + len(TOKEN_KINDS) + N_BUCKETS
_MODEL_TYPES = converters(_N_MODEL, _MONEY_AT, ())


def _model_columns(t: Any) -> tuple[Any, ...]:
    """The sums a by-model row shows (see ``_N_MODEL``)."""
    return (*_counts_and_tokens(t), *_buckets(t, "lat"))


def _model_measures(v: list[Any]) -> Measures:
    """``Measures`` of a by-model row: no latency average, no TTFT (not summed)."""
    lat50, lat95 = _pcts(v[_K:])
    return Measures(
        calls=v[0],
        errors=v[1],
        cost_usd=v[2],
        live_estimate_usd=v[3],
        offline_calls=v[4],
        tokens=dict(zip(TOKEN_KINDS, v[5:_K], strict=True)),
        latency_avg_ms=None,
        latency_p50_ms=lat50,
        latency_p95_ms=lat95,
        ttft_p50_ms=None,
        ttft_p95_ms=None,
    )


def by_model(session: Session, s: Scope) -> list[tuple[str, str, Measures]]:
    """(model, provider, sums) per model, costliest first (then the busiest); latency
    p50 / p95 but no average and no TTFT (``_model_columns``)."""
    acc: dict[tuple[str, str], list[Any]] = {}
    parts = _usage_parts(s, "by_model", "model", "provider", columns=_model_columns)
    for row in execute(session, parts, filters_of(s), s.grouping):
        key = (str(row[0]), str(row[1]))
        acc[key] = add(acc.get(key), typed(row[2:], _MODEL_TYPES))
    order = sorted(acc, key=lambda k: (-acc[k][2], -acc[k][0], k[0], k[1]))
    return [(m, pr, _model_measures(acc[(m, pr)])) for m, pr in order]
