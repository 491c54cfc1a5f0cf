"""CPU and wall time to book one provider attempt (``ledger.record``: the ``llm_call`` row and
its ten rollup upserts in one transaction, as the app books every attempt), on SQLite and on
PostgreSQL (127.0.0.1:5432, a scratch database created and dropped here), in one run.

Compared in the same run, rounds alternated: the driver-level statements the ledger uses
(``db/driver_sql``: compiled once, positional, psycopg's RawCursor) against the same statements
through ``Connection.execute`` (SQLAlchemy's per-call cache key, compiled-cache lookup and
parameter processing; psycopg's placeholder parsing of every statement over 4,096 characters).

    .venv/bin/python bench/ledger_write.py [--attempts 2000] [--rounds 3] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from sqlalchemy.engine import Connection, Engine  # noqa: E402

from elexirion_app.db import driver_sql  # noqa: E402
from elexirion_app.db.engine import create_all, make_engine  # noqa: E402
from elexirion_app.services.billing import ledger  # noqa: E402


def _attempt(i: int) -> ledger.Attempt:
    return ledger.Attempt(
        caller="step",
        provider="anthropic",
        model=("claude-sonnet-4", "claude-haiku-4")[i % 2],
        pipeline="code_analysis",
        step_name="ask",
        input_tokens=1200,
        output_tokens=300,
        cache_read_tokens=100,
        cost_usd=Decimal("0.00123"),
        latency_ms=420.0,
        ttft_ms=35.0,
        price_date="2026-11-01",
    )


def _through_execute(conn: Connection, name: str, build: Any, rows: Any) -> None:
    if rows:
        conn.execute(build(), list(rows))


@contextmanager
def _engine(kind: str) -> Iterator[Engine]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            eng = make_engine(f"sqlite:///{tmp}/ledger.db")
            create_all(eng)
            yield eng
            eng.dispose()
        return
    from tests.support.scratch_pg import scratch_database

    with scratch_database("elx_bench_ledger") as eng:
        create_all(eng)
        yield eng


def _round(engine: Engine, n: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(n):
        ledger.record(_attempt(i), engine=engine)
    return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attempts", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=("sqlite", "postgresql"))
    args = ap.parse_args()
    direct, pipelined = driver_sql.run, driver_sql.pipelined

    def unpipelined(conn: Connection, *, commit: bool = False) -> Any:
        return contextlib.nullcontext()

    def commit_apart(conn: Connection, *, commit: bool = False) -> Any:
        return pipelined(conn)  # the statements in one round trip, the COMMIT in another

    variants = {  # label: (run, pipelined)
        "driver": (direct, pipelined),
        "driver, COMMIT apart": (direct, commit_apart),
        "driver, a round trip each": (direct, unpipelined),
        "execute": (_through_execute, unpipelined),
    }
    for kind in ("sqlite", "postgresql"):
        if args.only and kind != args.only:
            continue
        results: dict[str, list[tuple[float, float]]] = {label: [] for label in variants}
        with _engine(kind) as engine:
            for run, pipe in variants.values():
                driver_sql.run, driver_sql.pipelined = run, pipe  # type: ignore[assignment]
                _round(engine, 200)  # warm up: statements built, pool filled
            for _ in range(args.rounds):
                for label, (run, pipe) in variants.items():
                    driver_sql.run, driver_sql.pipelined = run, pipe  # type: ignore[assignment]
                    results[label].append(_round(engine, args.attempts))
            driver_sql.run, driver_sql.pipelined = direct, pipelined  # type: ignore[assignment]
        print(
            f"== {kind} — load average {os.getloadavg()[0]:.1f}, "
            f"{args.attempts} attempts × {args.rounds} rounds"
        )
        for label, rows in results.items():
            cpu = statistics.median(r[0] for r in rows)
            wall = statistics.median(r[1] for r in rows)
            print(
                f"{label:<26} per attempt: CPU {cpu:7.0f} µs   wall {wall:7.0f} µs"
                "   (median of rounds)"
            )
        ratio = statistics.median(r[0] for r in results["execute"]) / statistics.median(
            r[0] for r in results["driver"]
        )
        print(f"execute ÷ driver CPU: {ratio:.2f}×")


if __name__ == "__main__":
    main()
