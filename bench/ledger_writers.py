"""Concurrent ledger writers: attempts booked per second by N threads, one attempt per
transaction (as the app books them), each thread a different user, on a scratch PostgreSQL
database (127.0.0.1:5432, created and dropped here) and a scratch SQLite file.

Compared in the same run: the rollups without a user column sharded by ``user_id % SHARDS``
(the app, ``ledger.SHARDS`` = 8) against one row per key (``SHARDS`` = 1: every writer of a
model upserts the same row of ``usage_day_all`` / ``usage_hour_all`` / ``usage_day_pipeline``,
as before the shard column). The figures alternate A/B rounds so machine load hits both.

    .venv/bin/python bench/ledger_writers.py [--threads 8] [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from elexirion_app.db.engine import create_all, make_engine  # noqa: E402
from elexirion_app.services.billing import ledger  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _users(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        for uid in range(1, n + 1):
            conn.execute(
                text(
                    "INSERT INTO app_user (id, email, password_hash, display_name, is_admin,"
                    " is_active, created_at) VALUES (:i, :e, '', '', false, true,"
                    " CURRENT_TIMESTAMP)"
                ),
                {"i": uid, "e": f"writer{uid}@example.com"},
            )


def _round(engine: Engine, threads: int, seconds: float) -> float:
    """Attempts per second booked by ``threads`` writers (user i writes as user i)."""
    stop = time.monotonic() + seconds
    counts = [0] * threads
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        attempt = ledger.Attempt(
            caller="step", provider="claude", model="claude-sonnet-4-5", user_id=i + 1,
            input_tokens=100, output_tokens=20, cost_usd=Decimal("0.0006"), latency_ms=12.0,
        )  # fmt: skip
        try:
            while time.monotonic() < stop:
                ledger.record(attempt, engine=engine)
                counts[i] += 1
        except BaseException as exc:  # reported below, never swallowed
            errors.append(exc)

    started = time.monotonic()
    pool = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return sum(counts) / (time.monotonic() - started)


def _measure(name: str, engine: Engine, args: argparse.Namespace) -> None:
    results: dict[int, list[float]] = {ledger.SHARDS: [], 1: []}
    app_shards = ledger.SHARDS
    try:
        for _ in range(args.rounds):
            for shards in (app_shards, 1):
                ledger.SHARDS = shards
                results[shards].append(_round(engine, args.threads, args.seconds))
    finally:
        ledger.SHARDS = app_shards
    load = os.getloadavg()[0]
    for shards, label in ((app_shards, f"sharded ({app_shards})"), (1, "one row per key")):
        rates = results[shards]
        print(
            f"{name:10} {label:18} {args.threads} writers: "
            f"{statistics.median(rates):7.1f} attempts/s median "
            f"(rounds: {', '.join(f'{r:.0f}' for r in rates)}; load {load:.1f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    if args.only != "sqlite":
        scratch = f"elx_bench_writers_{os.getpid()}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{scratch}"'))
        engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{scratch}")
        try:
            create_all(engine)
            _users(engine, args.threads)
            _measure("PostgreSQL", engine, args)
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
            admin.dispose()
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'writers.db'}")
            create_all(engine)
            _users(engine, args.threads)
            _measure("SQLite", engine, args)
            engine.dispose()


if __name__ == "__main__":
    main()
