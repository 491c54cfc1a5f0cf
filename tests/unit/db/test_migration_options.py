"""Migration f3c9a1d27b64 fills the filter-option tables from the rollups already there
(usage_day by day, usage_rollup by hour; per user and for every user, empty values left
out), on SQLite and PostgreSQL; its downgrade drops them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, text

from elexirion_app.db.engine import make_engine
from elexirion_app.services.billing import ledger
from elexirion_app.services.billing.rollup_rows import ROLLUP_COUNTERS
from tests.unit.db.test_migration_bookings import _alembic, _at
from tests.unit.db.test_migrations import pg_url  # noqa: F401 - the fixture

BEFORE, AFTER = "34616e948626", "f3c9a1d27b64"
HOUR = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
DAY = HOUR.replace(hour=0)


def _check(url: str) -> None:
    _alembic(url, "upgrade", BEFORE)
    engine = make_engine(url)
    zero = dict.fromkeys(ROLLUP_COUNTERS, 0) | {"calls": 1}
    keys = [
        {"user_id": 1, "model": "m", "provider": "p", "pipeline": "", "caller": "chat"},
        {"user_id": 2, "model": "m", "provider": "q", "pipeline": "review", "caller": "step"},
    ]
    with engine.begin() as conn:
        conn.execute(insert(ledger.ROLLUP), [zero | k | {"hour": HOUR} for k in keys])
        conn.execute(insert(ledger.USAGE_DAY), [zero | k | {"day": DAY} for k in keys[:1]])
    engine.dispose()
    _alembic(url, "upgrade", AFTER)
    engine = make_engine(url)
    with engine.connect() as conn:
        for table, grain, want in (
            (
                "usage_option_day",
                "day",
                {(1, "model", "m"), (1, "provider", "p"), (1, "caller", "chat")},
            ),
            (
                "usage_option_hour",
                "hour",
                {(1, "model", "m"), (1, "provider", "p"), (1, "caller", "chat"),
                 (2, "model", "m"), (2, "provider", "q"), (2, "pipeline", "review"),
                 (2, "caller", "step")},
            ),
        ):  # fmt: skip
            everyone = {(-1, kind, value) for _user, kind, value in want}
            rows = conn.execute(text(f"SELECT * FROM {table}")).mappings().all()
            assert {(r["user_id"], r["kind"], r["value"]) for r in rows} == want | everyone
            assert len(rows) == len(want | everyone), table
            moment = DAY if grain == "day" else HOUR
            assert {_at(r[grain]) for r in rows} == {_at(moment)}
    engine.dispose()
    _alembic(url, "downgrade", BEFORE)
    engine = make_engine(url)
    assert not {"usage_option_day", "usage_option_hour"} & set(inspect(engine).get_table_names())
    engine.dispose()


def test_fill_and_downgrade_on_sqlite(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'o.db'}")


@pytest.mark.postgres
def test_fill_and_downgrade_on_postgresql(pg_url: str) -> None:  # noqa: F811
    _check(pg_url)
