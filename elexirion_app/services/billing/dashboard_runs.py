"""The dashboard's run figures: totals and series of finished runs over the run rollups
(``run_day_total`` / ``run_hour_total`` for everyone unfiltered, ``run_day_all`` with a
pipeline filter, ``run_day_user`` / ``run_hour_user`` for one user unfiltered, ``run_day`` /
``run_rollup`` for one user and a pipeline), by the hour / day a run
finished, with the same day + edge-hour pieces and built-once statements as
``dashboard_sql``. Their statements read a few dozen to a few hundred rows of small tables
over index ranges (EXPLAIN at 1M ledger rows, 30 days: estimated cost 100-530, 0.1-0.2 ms;
every run table but ``run_rollup`` under ``min_parallel_table_scan_size``, and that one read
only for the edge hours): PostgreSQL does not give them a Gather (``parallel_setup_cost``
alone is 1000), so they run without the ``SET LOCAL`` that keeps the wide usage statements
serial (``execute(serial=False)``), one round trip less when they open a transaction.
Synchronous (database): call through ``in_db_thread``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import case, literal_column, or_
from sqlmodel import Session

from elexirion_app.db.billing_models import (
    OK_RUN_STATUSES,
    RunDay,
    RunDayAll,
    RunDayTotal,
    RunDayUser,
    RunHourTotal,
    RunHourUser,
)
from elexirion_app.db.models import RunRollup
from elexirion_app.services.billing.dashboard_sql import (
    ZERO_SQL,
    Part,
    Scope,
    add,
    converters,
    execute,
    filters_of,
    pieces,
    sum_of,
    typed,
)


@dataclass(frozen=True)
class RunMeasures:
    runs: int
    failed: int
    cost_usd: Decimal
    duration_avg_ms: float | None


_RUN_TABLES: dict[str, list[tuple[Any, frozenset[str]]]] = {
    "day": [
        (RunDayTotal, frozenset({"status"})),
        (RunDayAll, frozenset({"pipeline", "status"})),
        # "status": the failed runs, the only use of the status (``_failed``)
        (RunDayUser, frozenset({"user_id", "status"})),
        (RunDay, frozenset({"user_id", "pipeline", "status"})),
    ],
    "hour": [
        (RunHourTotal, frozenset({"status"})),
        (RunHourUser, frozenset({"user_id", "status"})),
        (RunRollup, frozenset({"user_id", "pipeline", "status"})),
    ],
}


def _failed(t: Any) -> Any:
    """The failed runs of ``t``'s rows: its ``failed`` counter (the per-user tables), or the
    runs of its rows whose status is not ok (the statuses as SQL text, constants, not bound
    parameters: see ``sum_of``)."""
    if "failed" in t.c:
        return t.c.failed
    ok = or_(*[t.c.status == literal_column(f"'{status}'") for status in OK_RUN_STATUSES])
    return case((ok, ZERO_SQL), else_=t.c.runs)


def _run_columns(t: Any) -> tuple[Any, ...]:
    return (
        sum_of(t.c.runs),
        sum_of(_failed(t)),
        sum_of(t.c.cost_usd),
        sum_of(t.c.duration_ms_sum),
    )


_RUN_TYPES = converters(4, (2,), (3,))


def _run_values(row: Sequence[Any]) -> list[Any]:
    return typed(row, _RUN_TYPES)


def _run_measures(v: Sequence[Any]) -> RunMeasures:
    """From typed sums (``_run_values``: int, int, Decimal, float)."""
    runs, failed, cost, duration = v
    return RunMeasures(runs, failed, cost, duration / runs if runs else None)


def _run_parts(s: Scope, kind: str) -> list[Part]:
    need = set(filters_of(s, runs=True)) | {"status"}
    return [(kind, _run_columns, p) for p in pieces(s, _RUN_TABLES, need)]


def _run_series_sums(session: Session, s: Scope) -> dict[str, list[Any]]:
    acc: dict[str, list[Any]] = {}
    filters = filters_of(s, runs=True)
    for row in execute(session, _run_parts(s, "period"), filters, s.grouping, serial=False):
        period = str(row[0])
        acc[period] = add(acc.get(period), _run_values(row[1:]))
    return acc


def run_totals(session: Session, s: Scope) -> RunMeasures:
    acc = _run_values([0, 0, 0, 0])
    parts, filters = _run_parts(s, "sum"), filters_of(s, runs=True)
    for row in execute(session, parts, filters, s.grouping, serial=False):
        acc = add(acc, _run_values(row))
    return _run_measures(acc)


def run_series(session: Session, s: Scope) -> dict[str, RunMeasures]:
    acc = _run_series_sums(session, s)
    return {k: _run_measures(acc[k]) for k in sorted(acc)}


def run_series_and_totals(session: Session, s: Scope) -> tuple[dict[str, RunMeasures], RunMeasures]:
    """``run_series`` and ``run_totals`` from one statement."""
    acc = _run_series_sums(session, s)
    total = _run_values([0, 0, 0, 0])
    for values in acc.values():
        total = add(total, values)
    return {k: _run_measures(acc[k]) for k in sorted(acc)}, _run_measures(total)
