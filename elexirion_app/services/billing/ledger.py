"""The ONE writer of the cost ledger (``llm_call``) and its rollups (issue 10).

One append-only ``llm_call`` row per provider attempt, from every caller (chat, router, genesis,
pipeline steps, DSPy jobs, the API), and in the SAME transaction every usage rollup row of
the attempt is upserted (``col = col + excluded.col``; the tables and their keys in
``db/billing_models``): hourly ``usage_rollup``, ``usage_hour_all``, ``usage_hour_user``,
daily ``usage_day``, ``usage_day_all``, ``usage_day_pipeline``, ``usage_day_user``,
``usage_day_user_model`` (and hourly ``usage_hour_user_model``),
``usage_day_model`` (and hourly ``usage_hour_model``), ``usage_day_total`` (and hourly
``usage_hour_total``), the filter options' keys
(``usage_option_day`` / ``_hour``, inserted when new), and for a
conversation's calls its ``conversation_booking`` row; when given, the call's budget
reservation is settled (the rows are aggregated by ``rollup_rows``). Nothing else inserts
into these tables; rows are never updated except to unlink them from deleted content
(``unlink_*``) and to fold closed periods' shards (``compaction``).

- ``record(attempt)`` / ``record_many(attempts)``: sync, one transaction each (``record_many``
  pre-aggregates per key: a batch of N rows costs one upsert per rollup key, one statement
  per table). On PostgreSQL its statements and its COMMIT go out together, in one round trip
  (``driver_sql.pipelined(commit=True)``): the rollup rows that concurrent calls of the same
  user and hour wait for are locked for the server's work only.
- ``write(conn, attempts)``: the same inside a caller's transaction (run records).
- ``record_async`` / ``record_many_async``: through the database pool, off the event loop.
- ``record_run(conn, ..., run_id=)``: a finished run counted in ``run_rollup``, ``run_day``,
  ``run_day_all``, ``run_day_user``, ``run_hour_user``, ``run_day_total`` and
  ``run_hour_total`` and booked in ``run_booking``; the
  same run finishing again (resumed) first takes its earlier count back, so it is counted
  once, as it last finished.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from elexirion_app.core.types import Usage
from elexirion_app.db import billing_models as bm
from elexirion_app.db import driver_sql
from elexirion_app.db.engine import get_engine, in_db_thread
from elexirion_app.db.models import (
    BudgetReservation,
    Conversation,
    LLMCall,
    Run,
    RunRollup,
    UsageRollup,
    utcnow,
)
from elexirion_app.services.billing import known_options
from elexirion_app.services.billing.known_options import forget_known_options
from elexirion_app.services.billing.rollup_rows import (
    CONVERSATION_COUNTERS,
    ROLLUP_COUNTERS,
    ROLLUP_KEY,
    ZERO,
    aware,
    conversation_rows,
    day_of,
    derived_rows,
    fine_rows,
    hour_of,
    option_rows,
)

__all__ = [
    "CALLERS",
    "Attempt",
    "day_of",
    "forget_known_options",
    "hour_of",
    "record",
    "record_many",
    "write",
]

log = logging.getLogger(__name__)
CALL = LLMCall.__table__  # type: ignore[attr-defined]
CONV = Conversation.__table__  # type: ignore[attr-defined]
RUN = Run.__table__  # type: ignore[attr-defined]
ROLLUP = UsageRollup.__table__  # type: ignore[attr-defined]
RUN_ROLLUP = RunRollup.__table__  # type: ignore[attr-defined]
RESERVATION = BudgetReservation.__table__  # type: ignore[attr-defined]
# A settled reservation stops holding budget (once: a settled one keeps its first time).
_SETTLE = update(RESERVATION).where(
    RESERVATION.c.id == bindparam("b_id"), RESERVATION.c.settled_at.is_(None)
)
USAGE_DAY = bm.UsageDay.__table__  # type: ignore[attr-defined]
USAGE_DAY_ALL = bm.UsageDayAll.__table__  # type: ignore[attr-defined]
USAGE_DAY_MODEL = bm.UsageDayModel.__table__  # type: ignore[attr-defined]
USAGE_HOUR_MODEL = bm.UsageHourModel.__table__  # type: ignore[attr-defined]
USAGE_DAY_PIPELINE = bm.UsageDayPipeline.__table__  # type: ignore[attr-defined]
USAGE_HOUR_ALL = bm.UsageHourAll.__table__  # type: ignore[attr-defined]
USAGE_DAY_USER = bm.UsageDayUser.__table__  # type: ignore[attr-defined]
USAGE_HOUR_USER = bm.UsageHourUser.__table__  # type: ignore[attr-defined]
USAGE_DAY_USER_MODEL = bm.UsageDayUserModel.__table__  # type: ignore[attr-defined]
USAGE_HOUR_USER_MODEL = bm.UsageHourUserModel.__table__  # type: ignore[attr-defined]
USAGE_DAY_TOTAL = bm.UsageDayTotal.__table__  # type: ignore[attr-defined]
USAGE_HOUR_TOTAL = bm.UsageHourTotal.__table__  # type: ignore[attr-defined]
RUN_DAY = bm.RunDay.__table__  # type: ignore[attr-defined]
RUN_DAY_ALL = bm.RunDayAll.__table__  # type: ignore[attr-defined]
RUN_BOOKING = bm.RunBooking.__table__  # type: ignore[attr-defined]
RUN_DAY_TOTAL = bm.RunDayTotal.__table__  # type: ignore[attr-defined]
RUN_DAY_USER = bm.RunDayUser.__table__  # type: ignore[attr-defined]
RUN_HOUR_USER = bm.RunHourUser.__table__  # type: ignore[attr-defined]
RUN_HOUR_TOTAL = bm.RunHourTotal.__table__  # type: ignore[attr-defined]
CONV_BOOKING = bm.ConversationBooking.__table__  # type: ignore[attr-defined]
OPTIONS = (
    (bm.UsageOptionDay.__table__, "day"),  # type: ignore[attr-defined]
    (bm.UsageOptionHour.__table__, "hour"),  # type: ignore[attr-defined]
)
CALLERS = ("chat", "router", "genesis", "step", "dspy", "api")
_RUN_KEY = ("hour", "user_id", "pipeline", "status")
# A finished run's booking, locked (FOR UPDATE on PostgreSQL) while it is replaced.
_BOOKING_OF_RUN = (
    select(RUN_BOOKING).where(RUN_BOOKING.c.run_id == bindparam("b_run")).with_for_update()
)
_UPDATE_BOOKING = update(RUN_BOOKING).where(RUN_BOOKING.c.run_id == bindparam("b_run"))
_CREATED_OF_RUN = select(RUN.c.created_at).where(RUN.c.id == bindparam("b_run"))


@dataclass(frozen=True)
class Attempt:
    """One provider attempt, as booked (every ``llm_call`` column)."""

    caller: str
    provider: str
    model: str
    status: str = "ok"  # "ok" | "error" | "stopped"
    error: str | None = None
    user_id: int | None = None
    run_id: str | None = None
    step_name: str | None = None
    conversation_id: int | None = None
    pipeline: str = ""
    attempt: int = 1
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    thinking_tokens: int = 0
    cost_usd: Decimal = ZERO
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    offline: bool = False
    live_estimate_usd: Decimal | None = None
    price_date: str = ""
    created_at: datetime = field(default_factory=utcnow)
    # Settled in the same transaction (the last attempt of a reserved call).
    reservation_id: int | None = None

    @staticmethod
    def tokens_of(usage: Usage) -> dict[str, int]:
        return {
            "input_tokens": usage.input,
            "output_tokens": usage.output,
            "cache_read_tokens": usage.cache_read,
            "cache_write_tokens": usage.cache_write,
            "cache_write_1h_tokens": usage.cache_write_1h,
            "thinking_tokens": usage.thinking,
        }

    @property
    def usage(self) -> Usage:
        return Usage(
            input=self.input_tokens,
            output=self.output_tokens,
            cache_read=self.cache_read_tokens,
            cache_write=self.cache_write_tokens,
            cache_write_1h=self.cache_write_1h_tokens,
            thinking=self.thinking_tokens,
        )

    def row(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "reservation_id"}
        if data["offline"]:
            data["cost_usd"] = ZERO  # the offline demo model is free, whatever a caller says
        data["caller"] = data["caller"][:16]
        data["provider"] = data["provider"][:40]
        data["model"] = data["model"][:100]
        data["pipeline"] = (data["pipeline"] or "")[:200]
        data["status"] = data["status"][:16]
        data["price_date"] = (data["price_date"] or "")[:20]
        if data["step_name"] is not None:
            data["step_name"] = data["step_name"][:200]
        data["created_at"] = aware(data["created_at"])
        return data


# The coarser usage rollups: (table, time column, its key columns after the time). Each is the
# sum of ``usage_rollup`` rows, so it is summed from the batch's ``usage_rollup`` aggregates.
# The tables without a user column would give every concurrent writer of a model the same row
# (PostgreSQL: 8 writers booked 92 attempts/s instead of 146 queueing on its row lock), so they
# are spread over ``SHARDS`` rows by ``shard`` = user_id % SHARDS; reads sum over the shards.
SHARDS = 8
_DERIVED: tuple[tuple[Any, str, tuple[str, ...]], ...] = (
    (USAGE_DAY, "day", ("user_id", "model", "provider", "pipeline", "caller")),
    (USAGE_DAY_ALL, "day", ("shard", "model", "provider", "caller")),
    (USAGE_DAY_PIPELINE, "day", ("shard", "pipeline", "model", "provider", "caller")),
    (USAGE_HOUR_ALL, "hour", ("shard", "model", "provider", "caller")),
    (USAGE_DAY_MODEL, "day", ("shard", "model", "provider")),
    (USAGE_HOUR_MODEL, "hour", ("shard", "model", "provider")),
    (USAGE_DAY_USER, "day", ("user_id",)),
    (USAGE_HOUR_USER, "hour", ("user_id",)),
    (USAGE_DAY_USER_MODEL, "day", ("user_id", "model", "provider")),
    (USAGE_HOUR_USER_MODEL, "hour", ("user_id", "model", "provider")),
    (USAGE_DAY_TOTAL, "day", ("shard",)),
    (USAGE_HOUR_TOTAL, "hour", ("shard",)),
)
_STATEMENTS: dict[tuple[str, str, str, str], Any] = {}


def _upsert(conn: Connection, table: Any, key: Sequence[str], counters: Sequence[str]) -> Any:
    """``INSERT .. ON CONFLICT (key) DO UPDATE SET c = c + excluded.c`` (built once per
    dialect and table: compiling a 60-column upsert costs more than running it)."""
    dialect = conn.dialect.name
    cache_key = (dialect, table.name, ",".join(key), ",".join(counters))
    cached = _STATEMENTS.get(cache_key)
    if cached is not None:
        return cached
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table)
        greatest: Any = func.greatest
        least: Any = func.least
    elif dialect == "sqlite":
        stmt = sqlite.insert(table)
        greatest, least = func.max, func.min
    else:  # pragma: no cover - we run on SQLite and PostgreSQL only
        raise NotImplementedError(f"no rollup upsert for the {dialect} dialect")
    set_: dict[str, Any] = {c: table.c[c] + stmt.excluded[c] for c in counters}
    if "last_at" in table.c:
        set_["last_at"] = greatest(table.c.last_at, stmt.excluded.last_at)
    for earliest in ("first_at", "started_day"):
        if earliest in table.c and earliest not in key:
            set_[earliest] = least(table.c[earliest], stmt.excluded[earliest])
    out = stmt.on_conflict_do_update(index_elements=list(key), set_=set_)
    _STATEMENTS[cache_key] = out
    return out


def _insert_new(conn: Connection, table: Any) -> Any:
    """``INSERT .. ON CONFLICT DO NOTHING``: key-only rows (the filter options)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def _book(
    conn: Connection, table: Any, key: Sequence[str], counters: Sequence[str], rows: Any
) -> None:
    """Upsert ``rows`` into a rollup ``table`` at the driver level (``driver_sql``: built and
    compiled once, not on every call; ~50 columns a statement, ~10 statements an attempt)."""
    driver_sql.run(conn, f"upsert {table.name}", partial(_upsert, conn, table, key, counters), rows)


def write(conn: Connection, attempts: Sequence[Attempt]) -> list[dict[str, Any]]:
    """Book ``attempts`` inside ``conn``'s transaction: rows, rollups, reservations settled.
    Returns the ``usage_rollup`` rows whose filter options it inserted (``known_options``:
    the caller marks them known once its transaction has committed)."""
    if not attempts:
        return []
    rows = [a.row() for a in attempts]
    fine = fine_rows(rows)
    fresh = known_options.unknown(conn.engine, fine)
    conversations = conversation_rows(rows)
    # ~11 statements; on PostgreSQL in one round trip (an attempt used to wait for each).
    with driver_sql.pipelined(conn):
        driver_sql.run(conn, "insert llm_call", partial(insert, CALL), rows)
        _book(conn, ROLLUP, ROLLUP_KEY, ROLLUP_COUNTERS, fine)
        for table, grain, dims in _DERIVED:
            derived = derived_rows(fine, grain, dims, SHARDS)
            _book(conn, table, (grain, *dims), ROLLUP_COUNTERS, derived)
        for table, grain in OPTIONS:
            rows_new = option_rows(fresh, grain, bm.EVERY_USER)
            driver_sql.run(
                conn, f"insert new {table.name}", partial(_insert_new, conn, table), rows_new
            )
        if conversations:
            _book(conn, CONV_BOOKING, ("conversation_id",), CONVERSATION_COUNTERS, conversations)
        settle = sorted({a.reservation_id for a in attempts if a.reservation_id is not None})
        now = utcnow()
        driver_sql.run(
            conn,
            "settle reservations",
            lambda: _SETTLE,
            [{"settled_at": now, "b_id": rid} for rid in settle],
        )
    return fresh


def record(attempt: Attempt, *, engine: Engine | None = None) -> None:
    """Book one attempt in a transaction of its own."""
    record_many([attempt], engine=engine)


def record_many(attempts: Iterable[Attempt], *, engine: Engine | None = None) -> None:
    """Book a batch of attempts in one transaction.

    A conversation deleted while its reply was still being answered (the attempt's link now
    fails the foreign key) does not cost the ledger its rows: they are booked unlinked, as
    ``unlink_conversation`` leaves the conversation's earlier rows."""
    batch = list(attempts)
    if not batch:
        return
    eng = engine or get_engine()
    try:
        with eng.begin() as conn, driver_sql.pipelined(conn, commit=True):
            fresh = write(conn, batch)
        known_options.add(eng, fresh)
    except IntegrityError:
        linked = {a.conversation_id for a in batch if a.conversation_id is not None}
        if not linked:
            raise
        with eng.begin() as conn:
            alive = set(conn.execute(select(CONV.c.id).where(CONV.c.id.in_(linked))).scalars())
            if alive == linked:
                raise
            log.warning("booking attempts of deleted conversations unlinked: %s", linked - alive)
            fresh = write(conn, [a if a.conversation_id in alive
                                 else replace(a, conversation_id=None) for a in batch])  # fmt: skip
        known_options.add(eng, fresh)


async def record_async(attempt: Attempt) -> None:
    await in_db_thread(record, attempt)


async def record_many_async(attempts: Sequence[Attempt]) -> None:
    await in_db_thread(record_many, list(attempts))


_RUN_COUNTERS = ("runs", "cost_usd", "duration_ms_sum")
_USER_RUN_COUNTERS = ("runs", "failed", *_RUN_COUNTERS[1:])


def _count_run(conn: Connection, run: dict[str, Any], sign: int) -> None:
    """Add (``sign`` 1) or take back (-1) one run in the run rollups."""
    counters = {
        "runs": sign,
        "cost_usd": Decimal(run["cost_usd"]) * sign,
        "duration_ms_sum": float(run["duration_ms"]) * sign,
    }
    finished = run["finished_at"]
    user_id, pipeline, status = int(run["user_id"] or 0), run["pipeline"], run["status"]
    hour, day = hour_of(finished), day_of(finished)
    who = {"user_id": user_id, "pipeline": pipeline, "status": status} | counters
    _book(conn, RUN_ROLLUP, _RUN_KEY, _RUN_COUNTERS, [{"hour": hour} | who])
    _book(
        conn, RUN_DAY, ("day", "user_id", "pipeline", "status"), _RUN_COUNTERS, [{"day": day} | who]
    )
    shard = {"day": day, "shard": user_id % SHARDS, "pipeline": pipeline, "status": status}
    _book(
        conn, RUN_DAY_ALL, ("day", "shard", "pipeline", "status"), _RUN_COUNTERS, [shard | counters]
    )
    # Everyone's unfiltered view: one row per (hour | day, status). Unsharded: a run finishes
    # once (its attempts are the hot writes), so the rows' locks are held briefly and rarely.
    total = {"status": status} | counters
    _book(conn, RUN_DAY_TOTAL, ("day", "status"), _RUN_COUNTERS, [{"day": day} | total])
    _book(conn, RUN_HOUR_TOTAL, ("hour", "status"), _RUN_COUNTERS, [{"hour": hour} | total])
    # One user's unfiltered view: (day | hour, user), the failed runs as a counter.
    failed = 0 if status in bm.OK_RUN_STATUSES else sign
    mine = {"user_id": user_id, "failed": failed} | counters
    _book(conn, RUN_DAY_USER, ("user_id", "day"), _USER_RUN_COUNTERS, [{"day": day} | mine])
    _book(conn, RUN_HOUR_USER, ("user_id", "hour"), _USER_RUN_COUNTERS, [{"hour": hour} | mine])


def record_run(
    conn: Connection,
    *,
    user_id: int | None,
    pipeline: str,
    status: str,
    cost_usd: Decimal,
    duration_ms: float,
    finished_at: datetime,
    run_id: str | None = None,
    created_at: datetime | None = None,
) -> None:
    """Count one finished run in the run rollups (inside the run's final transaction; driver
    statements only, so the recorder may send it in a pipeline with that transaction's COMMIT).

    With ``run_id`` the run is booked in ``run_booking`` (the costliest-runs list) and a run
    finishing again (a resumed run) replaces its earlier count instead of adding a second one.
    ``created_at`` (when the run started, the costliest-runs range) is read from ``run`` when
    not given."""
    run = {
        "user_id": int(user_id or 0),
        "pipeline": pipeline[:200],
        "status": status[:16],
        "cost_usd": Decimal(cost_usd),
        "duration_ms": float(max(duration_ms, 0.0)),
        "finished_at": aware(finished_at),
    }
    if run_id is not None:
        found = driver_sql.fetch(conn, "ledger: run booking", lambda: _BOOKING_OF_RUN,
                                 {"b_run": run_id})  # fmt: skip
        prev = dict(zip(RUN_BOOKING.c.keys(), found[0], strict=True)) if found else None
        if prev is not None:
            _count_run(conn, prev | {"finished_at": aware(prev["finished_at"])}, -1)
        if created_at is None:
            got = driver_sql.fetch(conn, "ledger: run created", lambda: _CREATED_OF_RUN,
                                   {"b_run": run_id})  # fmt: skip
            created_at = got[0][0] if got else None
        started = aware(created_at or finished_at)
        booking = run | {"run_id": run_id, "created_at": started, "started_day": day_of(started)}
        if prev is None:
            driver_sql.run(conn, "ledger: insert run booking", lambda: insert(RUN_BOOKING),
                           [booking])  # fmt: skip
        else:
            driver_sql.run(conn, "ledger: update run booking", lambda: _UPDATE_BOOKING,
                           [booking | {"b_run": run_id}])  # fmt: skip
    _count_run(conn, run, 1)


# --- unlinking (deleting content never deletes its cost rows) -------------------------------


def unlink_conversation(session: Session, conversation_id: int) -> None:
    """Rows of a conversation being deleted lose the link and stay (with their user, in every
    usage rollup); its per-conversation sums go with it."""
    session.execute(
        update(CALL).where(CALL.c.conversation_id == conversation_id).values(conversation_id=None)
    )
    session.execute(delete(CONV_BOOKING).where(CONV_BOOKING.c.conversation_id == conversation_id))


def unlink_runs(session: Session, run_ids: Sequence[str]) -> None:
    """Rows of runs being deleted lose the link and stay (their pipeline name is kept); the
    runs stay counted in the run rollups and leave the costliest-runs list."""
    if run_ids:
        ids = list(run_ids)
        session.execute(update(CALL).where(CALL.c.run_id.in_(ids)).values(run_id=None))
        session.execute(delete(RUN_BOOKING).where(RUN_BOOKING.c.run_id.in_(ids)))
