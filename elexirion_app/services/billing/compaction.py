"""Shard compaction of the everyone-rollups (issue 10): closed periods folded into shard 0.

The rollups without a user column carry ``shard`` = user_id % ``ledger.SHARDS`` in their
unique key, so concurrent PostgreSQL writers of one model do not queue on one row lock; the
dashboard sums over the shards. Writes go to the current hour and day, so once a period is
closed its shards are no longer hot: ``compact`` folds every row of a closed period with
shard != 0 into the shard-0 row of the same key (every counter added) and removes it. The
reads stay the same sums, over up to ``SHARDS`` times fewer rows.

- ``SHARDED``: the sharded tables (models), the one list to extend; each table's key, time
  column and counters are derived from its unique constraint (``describe``).
- ``compact(engine, *, now=None)``: one transaction per table; rows folded per table.
- ``compact_forever(every_s=None)``: the app's lifespan task (at start, then every
  ``ELEXIRION_COMPACT_EVERY_S`` seconds, on the database pool; errors logged, loop goes on).

A closed period: for a ``day`` table every ``day`` before today's UTC midnight, for an
``hour`` table every ``hour`` before the current UTC hour. A late write into a closed
period (an attempt booked just after midnight for 23:59) lands in its shard row again and is
folded by the next compaction; until then the reads sum it with the rest.

Why the PostgreSQL statement is correct with writers and other compactions running (READ
COMMITTED, one statement per table)::

    WITH moved AS (DELETE FROM t WHERE <closed> AND shard <> 0 RETURNING key..., counters...),
         folded AS (INSERT INTO t (key..., shard, counters...)
                    SELECT key..., 0, sum(c)... FROM moved GROUP BY key...
                    ON CONFLICT (unique key) DO UPDATE SET c = t.c + excluded.c RETURNING id)
    SELECT count(*) FROM moved

- What is deleted is exactly what is added: the INSERT reads the rows the DELETE returned,
  in the same statement and transaction; either both commit or neither does.
- A writer that upserted a shard row first holds its lock: the DELETE waits, then re-checks
  the row's newest version and deletes (and returns) that one, the writer's counts included.
- A late upsert into a shard row the DELETE holds waits for the DELETE's transaction; when it
  commits the row is gone, so ``ON CONFLICT`` finds no conflict and the writer inserts a new
  shard row, which the reads sum with the rest and the next compaction folds. (Rolled back:
  the writer updates the old row.) A new shard row the DELETE's snapshot did not see stays.
- The shard-0 row is updated with ``t.c + excluded.c`` on its newest committed version (ON
  CONFLICT locks it), so a writer adding to shard 0 at the same time is not lost.
- Two compactions at once (every worker runs one): the second's DELETE waits on the rows the
  first deleted and, once the first commits, skips them (they are gone); it folds only what
  the first did not see. So several workers each running the loop is safe.
- A deadlock needs a writer that locks two closed-period rows of one sharded table in the
  other order. The app books one attempt per transaction (``ledger.record``: one row per
  table); only a ``record_many`` batch across shards into a closed period, or a resumed
  run's ``record_run`` (its earlier row and its new one) finishing just after midnight, can
  do that, at the instant of a compaction. PostgreSQL then aborts one of the two whole:
  nothing is half folded or half booked. If it aborts the compaction, it is logged and
  retried next round; if it aborts the writer, that booking fails with the deadlock error
  (raised to its caller, not retried here).

SQLite has one writer at a time: the same fold as ``INSERT .. SELECT .. GROUP BY .. ON
CONFLICT`` then ``DELETE`` in one ``engine.begin()`` transaction. Its first statement writes,
so it takes SQLite's write lock before it reads (as ``BEGIN IMMEDIATE`` would; our engine
adds no BEGIN of its own): no other writer commits between the two statements.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Float, Integer, Numeric, UniqueConstraint, delete, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from elexirion_app.config import get_settings
from elexirion_app.db import billing_models as bm
from elexirion_app.db.engine import get_engine, in_db_thread
from elexirion_app.services.billing import ledger

log = logging.getLogger(__name__)

# The rollups sharded by ``shard`` = user_id % ledger.SHARDS (a ``shard`` column in their
# unique key). Add a table here and it is compacted: nothing else to list.
SHARDED: tuple[type[Any], ...] = (
    bm.UsageDayAll,
    bm.UsageDayPipeline,
    bm.UsageHourAll,
    bm.UsageDayModel,
    bm.UsageHourModel,
    bm.UsageDayTotal,
    bm.UsageHourTotal,
    bm.RunDayAll,
)

# The time column of a rollup's key -> the start of the period a moment falls in (the same
# functions the ledger writer keys its rows with).
PERIOD_START: dict[str, Callable[[datetime], datetime]] = {
    "day": ledger.day_of,
    "hour": ledger.hour_of,
}


@dataclass(frozen=True)
class Sharded:
    """A sharded rollup as compaction sees it (derived from its unique constraint)."""

    table: Any  # sqlalchemy Table
    key: tuple[str, ...]  # the unique key, in the constraint's order (time and shard in it)
    time: str  # "day" | "hour"
    dims: tuple[str, ...]  # the key without the time column and the shard
    counters: tuple[str, ...]  # every other column but the id: added when folded

    @property
    def name(self) -> str:
        return str(self.table.name)

    def closed_before(self, now: datetime) -> datetime:
        """Rows with a time before this are of a closed period."""
        return PERIOD_START[self.time](now)


def describe(model: type[Any]) -> Sharded:
    """``model``'s key, time column and counters, from its one unique constraint with
    ``shard`` in it; refuses a table compaction cannot fold by sums."""
    table = model.__table__
    keys = [
        tuple(c.name for c in con.columns)
        for con in table.constraints
        if isinstance(con, UniqueConstraint) and "shard" in con.columns
    ]
    if len(keys) != 1:
        raise TypeError(f"{table.name}: expected one unique constraint with a shard column")
    key = keys[0]
    times = [c for c in key if c in PERIOD_START]
    if len(times) != 1:
        raise TypeError(f"{table.name}: its key needs one time column of {sorted(PERIOD_START)}")
    counters = tuple(c.name for c in table.columns if not c.primary_key and c.name not in key)
    for name in counters:
        if not isinstance(table.c[name].type, Integer | Numeric | Float):
            raise TypeError(
                f"{table.name}.{name} is not a number: shards are folded by adding every "
                "column outside the key, so this table cannot be compacted as it is"
            )
    dims = tuple(c for c in key if c not in (times[0], "shard"))
    return Sharded(table=table, key=key, time=times[0], dims=dims, counters=counters)


TABLES: tuple[Sharded, ...] = tuple(describe(m) for m in SHARDED)


def _aware(now: datetime | None) -> datetime:
    moment = now or datetime.now(UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _fold_postgresql(conn: Connection, spec: Sharded, cutoff: datetime) -> int:
    t = spec.table
    group = (spec.time, *spec.dims)
    moved = (
        delete(t)
        .where(t.c[spec.time] < cutoff, t.c.shard != 0)
        .returning(*(t.c[c] for c in (*group, *spec.counters)))
        .cte("moved")
    )
    summed = select(
        *(moved.c[c] for c in group),
        literal(0).label("shard"),
        *(func.sum(moved.c[c]).label(c) for c in spec.counters),
    ).group_by(*(moved.c[c] for c in group))
    stmt = postgresql.insert(t).from_select([*group, "shard", *spec.counters], summed)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(spec.key),
        set_={c: t.c[c] + stmt.excluded[c] for c in spec.counters},
    )
    folded = stmt.returning(t.c.id).cte("folded")
    return int(conn.execute(select(func.count()).select_from(moved).add_cte(folded)).scalar_one())


def _fold_sqlite(conn: Connection, spec: Sharded, cutoff: datetime) -> int:
    t = spec.table
    group = (spec.time, *spec.dims)
    closed = (t.c[spec.time] < cutoff, t.c.shard != 0)
    summed = (
        select(
            *(t.c[c] for c in group),
            literal(0).label("shard"),
            *(func.sum(t.c[c]).label(c) for c in spec.counters),
        )
        .where(*closed)  # SQLite's upsert needs a WHERE in its SELECT (parsing ambiguity)
        .group_by(*(t.c[c] for c in group))
    )
    stmt = sqlite.insert(t).from_select([*group, "shard", *spec.counters], summed)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(spec.key),
        set_={c: t.c[c] + stmt.excluded[c] for c in spec.counters},
    )
    conn.execute(stmt)
    return int(conn.execute(delete(t).where(*closed)).rowcount)


def compact_table(engine: Engine, spec: Sharded, *, now: datetime | None = None) -> int:
    """Fold ``spec``'s closed-period shards into shard 0 in one transaction; rows folded."""
    cutoff = spec.closed_before(_aware(now))
    with engine.begin() as conn:
        dialect = conn.dialect.name
        if dialect == "postgresql":
            return _fold_postgresql(conn, spec, cutoff)
        if dialect == "sqlite":
            return _fold_sqlite(conn, spec, cutoff)
        raise NotImplementedError(f"no shard compaction for the {dialect} dialect")


def compact(engine: Engine, *, now: datetime | None = None) -> dict[str, int]:
    """Fold every sharded table's closed periods into shard 0 (one transaction per table).

    Returns the rows folded (deleted into a shard-0 row) per table name. Safe to run while
    writers book and other processes compact (see the module docstring)."""
    moment = _aware(now)
    return {spec.name: compact_table(engine, spec, now=moment) for spec in TABLES}


async def compact_forever(every_s: float | None = None) -> None:
    """Compact at once, then every ``every_s`` (default ``ELEXIRION_COMPACT_EVERY_S``)
    seconds, on the database pool; a failed round is logged and the next one runs. Ends by
    cancellation (the app shutting down); a round already running in its thread finishes or
    rolls back there."""
    every = get_settings().compact_every_s if every_s is None else every_s
    while True:
        try:
            counts = await in_db_thread(lambda: compact(get_engine()))
            log.info("ledger shard compaction: %s rows folded", counts)
        except Exception:
            log.exception("ledger shard compaction failed; next try in %s s", every)
        await asyncio.sleep(every)
