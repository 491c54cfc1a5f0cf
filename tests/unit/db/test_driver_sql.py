"""Driver-level statements (``db/driver_sql``) store exactly what ``Connection.execute`` would,
on SQLite and PostgreSQL: the ledger's rows and every rollup, value for value (and on SQLite
storage class for storage class), errors raised as SQLAlchemy's, defaults refused."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from elexirion_app.db import driver_sql
from elexirion_app.db.models import Conversation, LLMCall
from elexirion_app.services.billing import ledger
from tests.support.scratch_pg import engine_pair, table_contents, unpipelined

USERS = (1, 2, 3)
START = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    with engine_pair(request.param, tmp_path, "elx_driver", USERS) as engines:
        for eng in engines:
            with eng.begin() as conn:
                conn.execute(insert(Conversation.__table__), [{"id": 7, "user_id": 1}])  # type: ignore[attr-defined]
        yield engines


def _attempts(rng: random.Random, n: int) -> list[ledger.Attempt]:
    out = []
    for _ in range(n):
        offline = rng.random() < 0.3
        out.append(
            ledger.Attempt(
                caller=rng.choice(["chat", "step", "api"]),
                provider=rng.choice(["anthropic", "gemini", "offline"]),
                model=rng.choice(["claude-sonnet-4", "gemini-2.5-pro"]),
                status=rng.choice(["ok", "ok", "error", "stopped"]),
                error=None if rng.random() < 0.8 else "429 from the provider",
                user_id=rng.choice([*USERS, None]),
                conversation_id=7 if rng.random() < 0.3 else None,
                pipeline=rng.choice(["", "code_analysis"]),
                step_name=rng.choice([None, "ask"]),
                input_tokens=rng.randrange(5000),
                output_tokens=rng.randrange(900),
                cache_read_tokens=rng.randrange(50),
                cache_write_tokens=rng.randrange(50),
                cache_write_1h_tokens=rng.randrange(50),
                thinking_tokens=rng.randrange(70),
                cost_usd=Decimal(rng.randrange(10**6)) / Decimal(10**8),
                latency_ms=rng.random() * 4000,
                ttft_ms=None if rng.random() < 0.3 else rng.random() * 900,
                offline=offline,
                live_estimate_usd=Decimal("0.00012345") if offline else None,
                price_date="2026-11-01",
                created_at=START + timedelta(minutes=rng.randrange(4 * 60)),
            )
        )
    return out


def _through_execute(conn: Connection, name: str, build: Any, rows: Any) -> None:
    """The reference: the same statement through ``Connection.execute``."""
    if rows:
        conn.execute(build(), list(rows))


def _book(engine: Engine, attempts: list[ledger.Attempt]) -> None:
    for i in range(0, len(attempts), 7):  # batches and single rows
        ledger.record_many(attempts[i : i + 7], engine=engine)
    ledger.record(attempts[0], engine=engine)
    with engine.begin() as conn:
        for n, uid in enumerate(USERS):
            ledger.record_run(
                conn,
                user_id=uid,
                pipeline="code_analysis",
                status="succeeded",
                cost_usd=Decimal("0.00314159"),
                duration_ms=1234.5 + n,
                finished_at=START + timedelta(hours=n),
            )


def test_the_ledger_stores_what_execute_stores(
    pair: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, reference = pair
    attempts = _attempts(random.Random(20261202), 60)
    _book(fast, attempts)
    with monkeypatch.context() as m:
        m.setattr(driver_sql, "run", _through_execute)
        m.setattr(driver_sql, "pipelined", unpipelined)
        _book(reference, attempts)
    got, want = table_contents(fast), table_contents(reference)
    assert got["llm_call"] and got["usage_hour_all"] and got["run_day_total"]
    assert got["conversation_booking"]
    for name in set(want) - {"app_user", "conversation"}:  # written by the setup, not the ledger
        assert got[name] == want[name], name


def test_a_driver_error_is_raised_as_sqlalchemys_and_rolls_back(
    pair: tuple[Engine, Engine],
) -> None:
    engine = pair[0]
    bad = ledger.Attempt(caller="chat", provider="anthropic", model="m", conversation_id=999)
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        ledger.write(conn, [bad])
    if engine.dialect.name == "postgresql":  # pipelined: no other statement blamed for it
        assert caught.value.statement == driver_sql.PIPELINED
    else:
        assert "llm_call" in str(caught.value.statement)
    with engine.connect() as conn:
        assert conn.execute(select(LLMCall.__table__)).all() == []  # type: ignore[attr-defined]
    ledger.record(bad, engine=engine)  # the writer books it unlinked instead
    with engine.connect() as conn:
        rows = conn.execute(select(LLMCall.__table__)).all()  # type: ignore[attr-defined]
    assert [(r.conversation_id, r.caller) for r in rows] == [(None, "chat")]


def test_a_statement_missing_a_value_is_refused_when_built(pair: tuple[Engine, Engine]) -> None:
    table = LLMCall.__table__  # type: ignore[attr-defined]
    with pair[0].connect() as conn, pytest.raises(ValueError, match="needs values"):
        driver_sql.DriverStatement(conn.dialect, insert(table).values(model="m"), ["caller"])


def _calls(engine: Engine) -> int:
    with engine.connect() as look:  # another pooled connection: sees what is committed
        return len(look.execute(select(LLMCall.__table__)).all())  # type: ignore[attr-defined]


def test_a_pipelined_commit_goes_out_with_the_statements(pair: tuple[Engine, Engine]) -> None:
    engine = pair[0]
    ok = ledger.Attempt(caller="chat", provider="anthropic", model="m", user_id=1)
    with engine.begin() as conn:
        with driver_sql.pipelined(conn, commit=True):
            ledger.write(conn, [ok])  # its own pipelined block joins this one
        # PostgreSQL: committed at the block's exit, before the begin() block ends
        assert _calls(engine) == (1 if engine.dialect.name == "postgresql" else 0)
    assert _calls(engine) == 1
    if engine.dialect.name == "postgresql":
        with (
            engine.connect() as conn,
            driver_sql.pipelined(conn),
            pytest.raises(RuntimeError, match="inside another"),
            driver_sql.pipelined(conn, commit=True),
        ):
            pass


def test_a_failed_statement_skips_the_pipelined_commit(pair: tuple[Engine, Engine]) -> None:
    engine = pair[0]
    ok = ledger.Attempt(caller="chat", provider="anthropic", model="m", user_id=1)
    bad = ledger.Attempt(caller="chat", provider="anthropic", model="m", conversation_id=999)
    with (
        pytest.raises(IntegrityError),
        engine.begin() as conn,
        driver_sql.pipelined(conn, commit=True),
    ):
        ledger.write(conn, [ok])
        ledger.write(conn, [bad])
    assert _calls(engine) == 0  # neither: the transaction was rolled back
    ledger.record(ok, engine=engine)  # the pool's connection is usable again
    assert _calls(engine) == 1
