"""On PostgreSQL the wide usage statements are planned without parallel workers (one
``SET LOCAL`` per dashboard transaction); the small run statements do not send it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from elexirion_app.db.engine import create_all
from elexirion_app.services.billing import dashboard_runs, dashboard_sql
from elexirion_app.services.billing.dashboard_sql import Scope
from tests.support.scratch_pg import scratch_database

UNTIL = datetime(2026, 11, 16, 6, tzinfo=UTC)
SCOPE = Scope(UNTIL - timedelta(days=3), UNTIL, "day", None)


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
