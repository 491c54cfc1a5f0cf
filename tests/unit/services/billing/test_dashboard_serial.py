"""On PostgreSQL: the wide usage statements are planned without parallel workers (one
``SET LOCAL`` per dashboard transaction), the small run statements do not send it; the
period labels of the series (day, week, month) in UTC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session

from elexirion_app.db.engine import create_all
from elexirion_app.db.models import AppUser
from elexirion_app.services.billing import dashboard_runs, dashboard_sql, ledger
from elexirion_app.services.billing.dashboard_sql import Scope
from elexirion_app.services.billing.ledger import Attempt
from tests.support.scratch_pg import scratch_database

UNTIL = datetime(2026, 11, 16, 6, tzinfo=UTC)
SCOPE = Scope(UNTIL - timedelta(days=3), UNTIL, "day", None)
SUN = datetime(2026, 11, 15, 23, 30, tzinfo=UTC)
MON = datetime(2026, 11, 16, 12, tzinfo=UTC)


@pytest.fixture
def pg() -> Iterator[Engine]:
    with scratch_database("elx_serial_test") as engine:
        create_all(engine)
        yield engine


def _workers(session: Session) -> str:
    show = "SHOW max_parallel_workers_per_gather"
    return str(session.connection().exec_driver_sql(show).scalar())


def test_usage_statements_plan_serially_run_statements_leave_the_setting(pg: Engine) -> None:
    with Session(pg) as session:
        default = _workers(session)
        session.commit()
        assert default != "0"  # the server's setting, so the checks below can fail
        dashboard_runs.run_totals(session, SCOPE)
        dashboard_runs.run_series(session, SCOPE)
        assert _workers(session) == default
        dashboard_sql.by_model(session, SCOPE)
        assert _workers(session) == "0"
        dashboard_sql.totals(session, SCOPE)  # once per transaction: still 0, not sent twice
        assert _workers(session) == "0"
        session.commit()
        assert _workers(session) == default  # SET LOCAL: this transaction only
        dashboard_sql.series(session, SCOPE)
        assert _workers(session) == "0"


def test_period_labels_on_postgresql(pg: Engine) -> None:
    """The period expression (its constants as SQL text) labels days, weeks (their Monday)
    and months in UTC, for usage and runs, the edge hours included."""
    with pg.begin() as conn:
        conn.execute(insert(AppUser.__table__), [{"id": 1, "email": "u1@x.io"}])  # type: ignore[attr-defined]
        for finished in (SUN, MON + timedelta(hours=30)):
            ledger.record_run(
                conn, user_id=1, pipeline="p", status="succeeded", cost_usd=Decimal("1"),
                duration_ms=10.0, finished_at=finished,
            )  # fmt: skip
    # Sunday 2026-11-15 23:30 (an edge hour of the range), Monday 16, Tuesday 17, Dec 1.
    times = (SUN, MON, MON + timedelta(hours=30), datetime(2026, 12, 1, 2, tzinfo=UTC))
    ledger.record_many(
        [Attempt("chat", "mock", "m", user_id=1, created_at=t) for t in times], engine=pg
    )
    since, until = SUN - timedelta(hours=2), datetime(2026, 12, 1, 5, tzinfo=UTC)
    got = {}
    with Session(pg) as session:
        for grouping in ("day", "week", "month"):
            s = Scope(since, until, grouping, 1)
            got[grouping] = [(k, m.calls) for k, m in dashboard_sql.series(session, s)]
            runs = dashboard_runs.run_series(session, s)
            got[f"runs {grouping}"] = [(k, r.runs) for k, r in runs.items()]
    assert got == {
        "day": [("2026-11-15", 1), ("2026-11-16", 1), ("2026-11-17", 1), ("2026-12-01", 1)],
        "week": [("2026-11-09", 1), ("2026-11-16", 2), ("2026-11-30", 1)],
        "month": [("2026-11", 3), ("2026-12", 1)],
        "runs day": [("2026-11-15", 1), ("2026-11-17", 1)],
        "runs week": [("2026-11-09", 1), ("2026-11-16", 1)],
        "runs month": [("2026-11", 2)],
    }
