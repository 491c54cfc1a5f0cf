"""The filter options are exactly those of the hours in range (the edge hours read by the
hour, not the whole day), per user and for everyone, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from elexirion_app.db.engine import create_all, make_engine, session_scope
from elexirion_app.db.models import AppUser
from elexirion_app.services.billing import ledger
from elexirion_app.services.billing.dashboard_options import options
from elexirion_app.services.billing.dashboard_sql import Scope
from elexirion_app.services.billing.ledger import Attempt
from tests.support.scratch_pg import scratch_database

DAY = datetime(2026, 11, 16, tzinfo=UTC)


def _at(hours: int) -> datetime:
    return DAY + timedelta(hours=hours)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "postgresql":
        with scratch_database("elx_options_test") as pg:
            create_all(pg)
            yield pg
        return
    eng = make_engine(f"sqlite:///{tmp_path / 'o.db'}")
    create_all(eng)
    yield eng
    eng.dispose()


def test_options_are_those_of_the_hours_in_range(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(AppUser.__table__), [{"id": i, "email": f"u{i}@x.io"} for i in (1, 2)])  # type: ignore[attr-defined]
    calls = [
        # before the range (same day as its start): never an option
        Attempt("chat", "anthropic", "early-model", user_id=1, created_at=_at(3)),
        # in range: the start's partial day, a whole day, the end's partial day
        Attempt("step", "gemini", "g", user_id=1, pipeline="p1", created_at=_at(14)),
        Attempt("api", "openai", "o", user_id=2, created_at=_at(29)),
        Attempt("router", "mock", "m", user_id=1, created_at=_at(49)),
        # after the range, same day as its end
        Attempt("dspy", "mistral", "late-model", user_id=1, created_at=_at(57)),
    ]  # fmt: skip
    ledger.record_many(calls, engine=engine)
    since, until = DAY + timedelta(hours=12), DAY + timedelta(days=2, hours=6)
    with session_scope(engine) as s:
        mine = options(s, Scope(since, until, "day", 1))
        everyone = options(s, Scope(since, until, "day", None))
        nobody = options(s, Scope(since, until, "day", 3))
    assert mine == {
        "model": ["g", "m"],
        "provider": ["gemini", "mock"],
        "pipeline": ["p1"],
        "caller": ["router", "step"],
    }
    assert everyone == {
        "model": ["g", "m", "o"],
        "provider": ["gemini", "mock", "openai"],
        "pipeline": ["p1"],
        "caller": ["api", "router", "step"],
    }
    assert nobody == {"model": [], "provider": [], "pipeline": [], "caller": []}


def _option_count(engine: Engine) -> int:
    from sqlalchemy import func, select

    with engine.connect() as conn:
        return sum(
            int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table, _grain in ledger.OPTIONS
        )


def test_known_option_keys_skip_the_insert_only_after_a_commit(engine: Engine) -> None:
    """A key committed once is not inserted again (the rows are there); a key written in a
    transaction that rolled back is not taken as known, so its options still land."""
    from sqlalchemy import delete

    with engine.begin() as conn:
        conn.execute(insert(AppUser.__table__), [{"id": 1, "email": "u1@x.io"}])  # type: ignore[attr-defined]
    first = Attempt("step", "gemini", "g", user_id=1, pipeline="p1", created_at=_at(14))

    # Rolled back: nothing committed, nothing known.
    with engine.connect() as conn, conn.begin() as txn:
        assert ledger.write(conn, [first])  # it inserted the options ...
        txn.rollback()  # ... which are gone with the transaction
    assert _option_count(engine) == 0
    ledger.record(first, engine=engine)
    with_options = _option_count(engine)
    assert with_options == 2 * 2 * 4  # day + hour, the user + everyone, 4 kinds

    # Known now: the same key books its call and rollups but does not insert options again
    # (emptied behind the writer's back to see it: the app never deletes them).
    with engine.begin() as conn:
        for table, _grain in ledger.OPTIONS:
            conn.execute(delete(table))
    ledger.record(first, engine=engine)
    assert _option_count(engine) == 0

    # Another key of the same hour (another model): all its options are inserted again
    # (the known keys are whole usage_rollup keys, not single options).
    ledger.record(Attempt("step", "gemini", "g2", user_id=1, pipeline="p1", created_at=_at(14)),
                  engine=engine)  # fmt: skip
    assert _option_count(engine) == with_options


def test_known_option_keys_are_per_engine(engine: Engine, tmp_path: Path) -> None:
    """A key known on one database is not taken as known on another."""
    call = Attempt("chat", "anthropic", "m", created_at=_at(3))
    ledger.record(call, engine=engine)
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    create_all(other)
    try:
        ledger.record(call, engine=other)
        assert _option_count(other) == _option_count(engine) > 0
    finally:
        other.dispose()
