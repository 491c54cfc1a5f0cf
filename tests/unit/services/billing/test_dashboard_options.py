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
