"""Migrations 8e4d36683789 (run totals, one cost row per conversation), 34616e948626 (usage
totals), a91c4e7d3b25 (a user's runs per day / hour) and b6d2f8e4a1c7 (usage by model)
backfill from the data already there, on SQLite and PostgreSQL; 8e4d36683789's downgrade
rebuilds the old conversation sums."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from elexirion_app.db.engine import make_engine
from elexirion_app.db.models import AppUser, Conversation, RunRollup
from elexirion_app.services.billing import ledger
from elexirion_app.services.billing.ledger import Attempt
from elexirion_app.services.billing.rollup_rows import ROLLUP_COUNTERS
from tests.unit.db.test_migrations import pg_url  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[3]
BEFORE, AFTER = "7d2e5c1a9b40", "8e4d36683789"
T0 = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)


def _alembic(url: str, *args: str) -> None:
    alembic = Path(sys.executable).parent / "alembic"
    env = {"DATABASE_URL": url, "PATH": str(Path(sys.executable).parent)}
    subprocess.run([str(alembic), *args], cwd=ROOT, env=env, check=True, timeout=120)


def _seed(url: str) -> None:
    engine = make_engine(url)
    users = AppUser.__table__  # type: ignore[attr-defined]
    convs = Conversation.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            insert(users),
            [
                {"id": i, "email": f"u{i}@x.io", "password_hash": "", "display_name": "",
                 "is_admin": False, "is_active": True, "created_at": T0}
                for i in (1, 2)
            ],
        )  # fmt: skip
        conn.execute(
            insert(convs),
            [{"id": i, "user_id": i, "title": f"c{i}", "created_at": T0, "updated_at": T0}
             for i in (1, 2)],
        )  # fmt: skip
        calls = [
            Attempt("chat", "anthropic", "m", user_id=1, conversation_id=1, created_at=T0,
                    cost_usd=Decimal("0.1")),
            Attempt("chat", "anthropic", "m", user_id=1, conversation_id=1,
                    created_at=T0 + timedelta(hours=3), cost_usd=Decimal("0.25")),
            Attempt("router", "anthropic", "m", user_id=1, conversation_id=1,
                    created_at=T0 - timedelta(hours=1), cost_usd=Decimal("0.01")),
            Attempt("chat", "gemini", "g", user_id=2, conversation_id=2, created_at=T0,
                    cost_usd=Decimal("0.5")),
            Attempt("step", "gemini", "g", user_id=2, created_at=T0, cost_usd=Decimal("9")),
        ]  # fmt: skip
        conn.execute(insert(ledger.CALL), [a.row() for a in calls])
        hour = T0.replace(minute=0)
        conn.execute(
            insert(RunRollup.__table__),  # type: ignore[attr-defined]
            [
                {"hour": hour, "user_id": 1, "pipeline": "a", "status": "succeeded", "runs": 2,
                 "cost_usd": Decimal("0.5"), "duration_ms_sum": 10.0},
                {"hour": hour, "user_id": 2, "pipeline": "b", "status": "succeeded", "runs": 1,
                 "cost_usd": Decimal("0.25"), "duration_ms_sum": 5.0},
                {"hour": hour, "user_id": 2, "pipeline": "b", "status": "failed", "runs": 1,
                 "cost_usd": Decimal("0"), "duration_ms_sum": 1.0},
            ],
        )  # fmt: skip
        day = hour.replace(hour=0)
        zero = dict.fromkeys(ROLLUP_COUNTERS, 0)
        for table, when in (
            (ledger.USAGE_DAY_ALL, {"day": day}),
            (ledger.USAGE_HOUR_ALL, {"hour": hour}),
        ):
            conn.execute(
                insert(table),
                [
                    when | zero | {"shard": 1, "model": "a", "provider": "p", "caller": "chat",
                                   "calls": 2, "cost_usd": Decimal("0.1"), "lat_b3": 2},
                    when | zero | {"shard": 1, "model": "b", "provider": "p", "caller": "step",
                                   "calls": 3, "cost_usd": Decimal("0.2"), "lat_b3": 1},
                    when | zero | {"shard": 2, "model": "a", "provider": "p", "caller": "chat",
                                   "calls": 1, "cost_usd": Decimal("0.05")},
                    when | zero | {"shard": 1, "model": "a", "provider": "p", "caller": "step",
                                   "calls": 4, "cost_usd": Decimal("0.4")},
                ],
            )  # fmt: skip
        for table, when in ((ledger.USAGE_DAY, {"day": day}), (ledger.ROLLUP, {"hour": hour})):
            conn.execute(
                insert(table),
                [
                    when | zero | {"user_id": 1, "model": "a", "provider": "p", "pipeline": "x",
                                   "caller": "chat", "calls": 2, "cost_usd": Decimal("0.1"),
                                   "lat_b3": 2},
                    when | zero | {"user_id": 1, "model": "a", "provider": "p", "pipeline": "y",
                                   "caller": "step", "calls": 3, "cost_usd": Decimal("0.3")},
                    when | zero | {"user_id": 2, "model": "b", "provider": "p", "pipeline": "x",
                                   "caller": "chat", "calls": 1, "cost_usd": Decimal("0.05")},
                ],
            )  # fmt: skip
        conn.execute(
            insert(ledger.RUN_DAY),
            [
                {"day": day, "user_id": 1, "pipeline": "a", "status": "succeeded", "runs": 2,
                 "cost_usd": Decimal("0.5"), "duration_ms_sum": 10.0},
                {"day": day, "user_id": 2, "pipeline": "b", "status": "succeeded", "runs": 1,
                 "cost_usd": Decimal("0.25"), "duration_ms_sum": 5.0},
            ],
        )  # fmt: skip
    engine.dispose()


def _at(value: object) -> str:
    """'YYYY-MM-DD HH:MM' in UTC of a datetime (PostgreSQL) or its stored text (SQLite)."""
    if isinstance(value, datetime):
        value = value.astimezone(UTC).replace(tzinfo=None)
    return str(value)[:16]


def _day(value: object) -> str:
    return _at(value)[:10]


def _check(url: str) -> None:
    _alembic(url, "upgrade", BEFORE)
    _seed(url)
    _alembic(url, "upgrade", AFTER)
    engine = make_engine(url)
    with engine.connect() as conn:
        booked = {
            r.conversation_id: r for r in conn.execute(text("SELECT * FROM conversation_booking"))
        }
        assert set(booked) == {1, 2}
        one = booked[1]
        assert (one.user_id, one.calls, Decimal(str(one.cost_usd))) == (1, 3, Decimal("0.36"))
        assert (_at(one.first_at), _at(one.last_at)) == ("2026-11-20 21:30", "2026-11-21 01:30")
        assert _day(one.started_day) == "2026-11-20"
        assert (booked[2].calls, Decimal(str(booked[2].cost_usd))) == (1, Decimal("0.5"))
        totals = {
            (_day(r.day), r.status): (r.runs, Decimal(str(r.cost_usd)))
            for r in conn.execute(text("SELECT * FROM run_day_total"))
        }
        assert totals == {("2026-11-20", "succeeded"): (3, Decimal("0.75"))}
        hours = {
            r.status: (r.runs, Decimal(str(r.cost_usd)), r.duration_ms_sum)
            for r in conn.execute(text("SELECT * FROM run_hour_total"))
        }
        assert hours == {"succeeded": (3, Decimal("0.75"), 15.0), "failed": (1, Decimal(0), 1.0)}
    engine.dispose()

    _alembic(url, "downgrade", BEFORE)
    engine = make_engine(url)
    with engine.connect() as conn:
        days = sorted(
            (r.conversation_id, _day(r.day), r.calls, Decimal(str(r.cost_usd)))
            for r in conn.execute(text("SELECT * FROM conversation_day"))
        )
        assert days == [
            (1, "2026-11-20", 2, Decimal("0.11")),
            (1, "2026-11-21", 1, Decimal("0.25")),
            (2, "2026-11-20", 1, Decimal("0.5")),
        ]
        hours_n = conn.execute(text("SELECT COUNT(*) FROM conversation_hour")).scalar()
        assert hours_n == 4
    engine.dispose()
    _alembic(url, "upgrade", "head")  # 34616e948626: the usage totals, from usage_*_all
    engine = make_engine(url)
    with engine.connect() as conn:
        for table in ("usage_day_total", "usage_hour_total"):
            got = {
                r.shard: (r.calls, round(Decimal(str(r.cost_usd)), 8), r.lat_b3)
                for r in conn.execute(text(f"SELECT * FROM {table}"))
            }
            assert got == {1: (9, Decimal("0.7"), 3), 2: (1, Decimal("0.05"), 0)}, table
        # b6d2f8e4a1c7: by model, the callers of a model folded together
        for table in ("usage_day_model", "usage_hour_model"):
            got = {
                (r.shard, r.model, r.provider): (
                    r.calls,
                    round(Decimal(str(r.cost_usd)), 8),
                    r.lat_b3,
                )
                for r in conn.execute(text(f"SELECT * FROM {table}"))
            }
            assert got == {
                (1, "a", "p"): (6, Decimal("0.5"), 2),
                (1, "b", "p"): (3, Decimal("0.2"), 1),
                (2, "a", "p"): (1, Decimal("0.05"), 0),
            }, table
        for table in ("usage_day_user_model", "usage_hour_user_model"):
            got = {
                (r.user_id, r.model, r.provider): (
                    r.calls, round(Decimal(str(r.cost_usd)), 8), r.lat_b3
                )
                for r in conn.execute(text(f"SELECT * FROM {table}"))
            }  # fmt: skip
            assert got == {
                (1, "a", "p"): (5, Decimal("0.4"), 2),
                (2, "b", "p"): (1, Decimal("0.05"), 0),
            }, table
        # a91c4e7d3b25: a user's runs per day / hour, the failed ones counted
        for table, want in (
            ("run_day_user", {1: (2, 0, Decimal("0.5"), 10.0), 2: (1, 0, Decimal("0.25"), 5.0)}),
            ("run_hour_user", {1: (2, 0, Decimal("0.5"), 10.0), 2: (2, 1, Decimal("0.25"), 6.0)}),
        ):
            runs = {
                r.user_id: (r.runs, r.failed, round(Decimal(str(r.cost_usd)), 8), r.duration_ms_sum)
                for r in conn.execute(text(f"SELECT * FROM {table}"))
            }
            assert runs == want, table
    engine.dispose()


def test_backfill_and_downgrade_on_sqlite(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'b.db'}")


@pytest.mark.postgres
def test_backfill_and_downgrade_on_postgresql(pg_url: str) -> None:  # noqa: F811
    _check(pg_url)
