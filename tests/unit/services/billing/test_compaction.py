"""Shard compaction keeps every sum the dashboards read (issue 10), on SQLite and PostgreSQL:
closed periods' shards end in shard 0, open periods are left alone, late writes are folded
by the next round, and the rollups still equal a GROUP BY over the raw ledger rows."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from elexirion_app.db.engine import create_all, make_engine
from elexirion_app.db.models import AppUser, LLMCall
from elexirion_app.services.billing import compaction, ledger
from elexirion_app.services.billing.buckets import LAT_COLUMNS, TTFT_COLUMNS, bucket_of
from elexirion_app.services.billing.compaction import Sharded
from tests.support.scratch_pg import scratch_database

CALL = LLMCall.__table__  # type: ignore[attr-defined]
NOW = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)
USERS = list(range(1, 13))  # every shard, several users in some


@pytest.fixture(scope="module")
def pg_database() -> Iterator[Engine]:
    with scratch_database("elx_compact_test") as engine:
        create_all(engine)
        yield engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
        create_all(eng)
    else:
        eng = request.getfixturevalue("pg_database")
    with eng.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(delete(table))
        conn.execute(insert(AppUser.__table__), [{"id": i, "email": f"u{i}@x.io"} for i in USERS])  # type: ignore[attr-defined]
    ledger.forget_known_options()  # the option rows were deleted under this process
    yield eng
    if request.param == "sqlite":
        eng.dispose()


def _attempt(rng: random.Random, at: datetime) -> ledger.Attempt:
    offline = rng.random() < 0.2
    return ledger.Attempt(
        caller=rng.choice(["chat", "router", "step", "api"]),
        provider=rng.choice(["claude", "gemini"]),
        model=rng.choice(["claude-sonnet-4-5", "gemini-2.5-flash", "offline-demo"]),
        status=rng.choice(["ok", "ok", "error"]),
        user_id=rng.choice([None, *USERS]),
        pipeline=rng.choice(["", "code_analysis", "refactor"]),
        input_tokens=rng.randrange(10**6),
        output_tokens=rng.randrange(10**5),
        cache_read_tokens=rng.randrange(10**4),
        thinking_tokens=rng.randrange(10**3),
        cost_usd=Decimal(rng.randrange(5 * 10**8)) / 10**8,
        latency_ms=rng.uniform(0, 30000),
        ttft_ms=rng.choice([None, rng.uniform(0, 5000)]),
        offline=offline,
        live_estimate_usd=Decimal(rng.randrange(10**8)) / 10**8 if offline else None,
        created_at=at,
    )


def _write(engine: Engine, rng: random.Random, moments: list[datetime]) -> list[dict[str, Any]]:
    """Attempts at ``moments`` (batches through ``ledger.record_many``) and a finished run at
    every other one; returns the runs as booked."""
    attempts = [_attempt(rng, at) for at in moments]
    for i in range(0, len(attempts), 7):
        ledger.record_many(attempts[i : i + 7], engine=engine)
    runs = []
    with engine.begin() as conn:
        for at in moments[::2]:
            run = {
                "user_id": rng.choice([None, *USERS]),
                "pipeline": rng.choice(["", "code_analysis"]),
                "status": rng.choice(["succeeded", "failed"]),
                "cost_usd": Decimal(rng.randrange(3 * 10**8)) / 10**8,
                "duration_ms": rng.uniform(0, 10**6),
                "finished_at": at,
            }
            ledger.record_run(conn, **run)
            runs.append(run)
    return runs


def _moments(rng: random.Random, n: int) -> list[datetime]:
    """Over the last three days, the current hour included (never after ``NOW``)."""
    hour = NOW.replace(minute=0, second=0, microsecond=0)
    current = [hour + (NOW - hour) * rng.random() for _ in range(n // 10)]
    return current + [NOW - timedelta(minutes=rng.uniform(0, 3 * 24 * 60)) for _ in range(n)]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sums(engine: Engine, spec: Sharded) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The table summed ``GROUP BY`` (time, key without the shard): what the reads see."""
    t = spec.table
    group = [t.c[c] for c in (spec.time, *spec.dims)]
    stmt = select(*group, *(func.sum(t.c[c]) for c in spec.counters)).group_by(*group)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return {(_utc(r[0]), *r[1 : len(group)]): tuple(r[len(group) :]) for r in rows}


def _close(a: Any, b: Any, exact: bool) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if exact and isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b  # PostgreSQL's numeric: exact
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))  # SQLite keeps REALs


def _assert_same(engine: Engine, spec: Sharded, got: dict[Any, Any], want: dict[Any, Any]) -> None:
    exact = engine.dialect.name == "postgresql"
    assert set(got) == set(want), spec.name
    for key, values in want.items():
        for column, have, wanted in zip(spec.counters, got[key], values, strict=True):
            assert _close(have, wanted, exact), (spec.name, key, column, have, wanted)


def _rows(engine: Engine, spec: Sharded, *, closed: bool, shards: bool = False) -> list[Any]:
    t = spec.table
    cutoff = spec.closed_before(NOW)
    where = t.c[spec.time] < cutoff if closed else t.c[spec.time] >= cutoff
    stmt = select(t).where(where).order_by(t.c.id)
    if shards:
        stmt = stmt.where(t.c.shard != 0)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(stmt).all()]


def _usage(r: Any) -> dict[str, Any]:
    """The counters one ``llm_call`` row adds to a usage rollup."""
    g: dict[str, Any] = {"calls": 1, "errors": int(r.status == "error"), "cost_usd": r.cost_usd}
    for c in ("input", "output", "cache_read", "cache_write", "cache_write_1h", "thinking"):
        g[f"{c}_tokens"] = getattr(r, f"{c}_tokens")
    g["latency_ms_sum"] = r.latency_ms
    g[LAT_COLUMNS[bucket_of(r.latency_ms)]] = 1
    if r.ttft_ms is not None:
        g["ttft_count"], g["ttft_ms_sum"] = 1, r.ttft_ms
        g[TTFT_COLUMNS[bucket_of(r.ttft_ms)]] = 1
    if r.offline:
        g["offline_calls"], g["live_estimate_usd"] = 1, r.live_estimate_usd or 0
    return g


def _raw(engine: Engine, spec: Sharded, runs: list[dict[str, Any]]) -> dict[Any, tuple[Any, ...]]:
    """The same sums as a GROUP BY over the raw rows (``llm_call``, or the runs booked)."""
    period = compaction.PERIOD_START[spec.time]
    acc: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    if "runs" in spec.counters:
        for run in runs:
            g = acc[(period(run["finished_at"]), *(run[d] for d in spec.dims))]
            g["runs"] += 1
            g["cost_usd"] += run["cost_usd"]
            g["duration_ms_sum"] += run["duration_ms"]
    else:
        with engine.connect() as conn:
            for r in conn.execute(select(CALL)).all():
                g = acc[(period(_utc(r.created_at)), *(getattr(r, d) for d in spec.dims))]
                for column, value in _usage(r).items():
                    g[column] += value
    return {k: tuple(g[c] for c in spec.counters) for k, g in acc.items()}


def test_compaction_keeps_every_sum_and_folds_closed_periods_only(engine: Engine) -> None:
    rng = random.Random(20261202)
    runs = _write(engine, rng, _moments(rng, 300))
    before = {s.name: _sums(engine, s) for s in compaction.TABLES}
    open_rows = {s.name: _rows(engine, s, closed=False) for s in compaction.TABLES}
    to_fold = {s.name: len(_rows(engine, s, closed=True, shards=True)) for s in compaction.TABLES}
    assert all(to_fold.values()) and all(open_rows.values())  # every table has work and open rows

    assert compaction.compact(engine, now=NOW) == to_fold
    for spec in compaction.TABLES:
        _assert_same(engine, spec, _sums(engine, spec), before[spec.name])
        assert _rows(engine, spec, closed=True, shards=True) == [], spec.name
        assert _rows(engine, spec, closed=False) == open_rows[spec.name], spec.name
    assert compaction.compact(engine, now=NOW) == dict.fromkeys(to_fold, 0)

    # Late writes into compacted closed periods (and some more now): new shard rows, folded by
    # the next round; the rollups still equal the raw rows grouped.
    late = [NOW - timedelta(days=1, minutes=m) for m in range(0, 600, 13)]
    late += [NOW - timedelta(hours=1, minutes=m) for m in range(0, 30, 3)] + [NOW]
    runs += _write(engine, rng, late)
    folded = compaction.compact(engine, now=NOW)
    assert all(folded.values()), folded
    for spec in compaction.TABLES:
        assert _rows(engine, spec, closed=True, shards=True) == [], spec.name
        _assert_same(engine, spec, _sums(engine, spec), _raw(engine, spec, runs))


@pytest.mark.postgres
def test_compaction_under_concurrent_writers_and_compactions_on_postgresql(
    pg_database: Engine,
) -> None:
    engine = pg_database
    with engine.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            if table.name != "app_user":
                conn.execute(delete(table))
    ledger.forget_known_options()
    done = threading.Event()
    errors: list[BaseException] = []

    def writer(seed: int) -> None:  # late single attempts into closed periods, as the app books
        rng = random.Random(seed)
        try:
            for _ in range(60):
                at = NOW - timedelta(minutes=rng.uniform(60, 2 * 24 * 60))
                ledger.record(_attempt(rng, at), engine=engine)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def compactor() -> None:
        try:
            while not done.is_set():
                compaction.compact(engine, now=NOW)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
    compactors = [threading.Thread(target=compactor) for _ in range(2)]
    for t in (*writers, *compactors):
        t.start()
    for t in writers:
        t.join()
    done.set()
    for t in compactors:
        t.join()
    assert errors == []
    compaction.compact(engine, now=NOW)
    for spec in compaction.TABLES:
        if "calls" in spec.counters:
            assert _rows(engine, spec, closed=True, shards=True) == [], spec.name
            _assert_same(engine, spec, _sums(engine, spec), _raw(engine, spec, []))


def test_every_table_sharded_in_its_key_is_compacted() -> None:
    sharded = {
        t.name
        for t in SQLModel.metadata.tables.values()
        for c in t.constraints
        if isinstance(c, UniqueConstraint) and "shard" in c.columns
    }
    assert {s.name for s in compaction.TABLES} == sharded


def test_a_table_that_cannot_be_folded_by_sums_is_refused() -> None:
    meta = MetaData()

    class Model:
        __table__ = Table(
            "t", meta, Column("id", Integer, primary_key=True), Column("day", DateTime),
            Column("shard", Integer), Column("calls", Integer), Column("last_at", DateTime),
            UniqueConstraint("day", "shard"),
        )  # fmt: skip

    with pytest.raises(TypeError, match="last_at"):
        compaction.describe(Model)
    Model.__table__ = Table(
        "u", meta, Column("id", Integer, primary_key=True), Column("day", DateTime)
    )
    with pytest.raises(TypeError, match="shard"):
        compaction.describe(Model)


def _seed_closed_day(url: str) -> dict[str, int]:
    """One attempt and one run of every user two days ago: 7 shard rows (1..7) per table to
    fold, whatever time it is now."""
    engine = make_engine(url)
    at = datetime.now(UTC) - timedelta(days=2)
    with engine.begin() as conn:
        conn.execute(insert(AppUser.__table__), [{"id": i, "email": f"u{i}@x.io"} for i in USERS])  # type: ignore[attr-defined]
        ledger.write(conn, [ledger.Attempt(caller="chat", provider="claude", model="m",
                                           user_id=i, created_at=at) for i in USERS])  # fmt: skip
        for i in USERS:
            ledger.record_run(conn, user_id=i, pipeline="p", status="succeeded",
                              cost_usd=Decimal("0.1"), duration_ms=5.0, finished_at=at)  # fmt: skip
    engine.dispose()
    return {s.name: ledger.SHARDS - 1 for s in compaction.TABLES}


def test_cli_ledger_compact_prints_the_rows_folded(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from elexirion_app import cli

    want = _seed_closed_day(db_url)
    assert cli.main(["ledger", "compact"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{name}: {n} rows folded" for name, n in want.items()]
    assert cli.main(["ledger", "compact", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"folded": dict.fromkeys(want, 0)}


def test_cli_ledger_compact_reports_a_database_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from elexirion_app import cli, config

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")  # no tables
    config.get_settings.cache_clear()
    try:
        assert cli.main(["ledger", "compact"]) == 1
    finally:
        config.get_settings.cache_clear()
    captured = capsys.readouterr()
    assert captured.out == "" and "error: the database" in captured.err
    assert "no such table" in captured.err and "Traceback" not in captured.err


async def test_the_lifespan_loop_compacts_goes_on_after_an_error_and_stops_when_cancelled(
    db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from elexirion_app import config

    want = _seed_closed_day(db_url)
    monkeypatch.setenv("ELEXIRION_COMPACT_EVERY_S", "0.01")
    config.get_settings.cache_clear()
    real, results = compaction.compact, []

    def flaky(engine: Engine, **kwargs: Any) -> dict[str, int]:
        if len(results) >= 3:  # enough rounds: no database work after the test
            return {}
        if not results:
            results.append(None)
            raise RuntimeError("database went away")
        results.append(real(engine, **kwargs))
        return results[-1]

    monkeypatch.setattr(compaction, "compact", flaky)
    caplog.set_level(logging.INFO, logger=compaction.__name__)
    task = asyncio.create_task(compaction.compact_forever())

    async def rounds(n: int) -> None:
        while len(results) < n:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(rounds(3), timeout=60)  # a hang guard, not a timing assertion
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert results[1:3] == [want, dict.fromkeys(want, 0)]  # the error did not end the loop
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failed[0].exc_info is not None and "database went away" in str(failed[0].exc_info[1])
    assert any(str(want) in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
