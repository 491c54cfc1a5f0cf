"""The ONE writer of the cost ledger (``llm_call``) and its rollups (issue 10).

One append-only ``llm_call`` row per provider attempt, from every caller (chat, router, genesis,
pipeline steps, DSPy jobs, the API), and in the SAME transaction the ``usage_rollup`` row of
its (hour, user, model, provider, pipeline, caller) is upserted (``col = col + excluded.col``)
and, when given, the call's budget reservation settled. Nothing else inserts into these tables;
rows are never updated except to unlink them from deleted content (``unlink_*``).

- ``record(attempt)`` / ``record_many(attempts)``: sync, one transaction each (``record_many``
  pre-aggregates the rollup per key, so a batch of N rows costs one upsert per key).
- ``write(conn, attempts)``: the same inside a caller's transaction (run records).
- ``record_async`` / ``record_many_async``: through the database pool, off the event loop.
- ``record_run(conn, ...)``: the ``run_rollup`` upsert when a run finishes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from elexirion_app.core.types import Usage
from elexirion_app.db.engine import get_engine, in_db_thread
from elexirion_app.db.models import BudgetReservation, LLMCall, RunRollup, UsageRollup, utcnow
from elexirion_app.services.billing.buckets import LAT_COLUMNS, TTFT_COLUMNS, bucket_of

CALL = LLMCall.__table__  # type: ignore[attr-defined]
ROLLUP = UsageRollup.__table__  # type: ignore[attr-defined]
RUN_ROLLUP = RunRollup.__table__  # type: ignore[attr-defined]
RESERVATION = BudgetReservation.__table__  # type: ignore[attr-defined]
ZERO = Decimal("0")
CALLERS = ("chat", "router", "genesis", "step", "dspy", "api")
_TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "thinking_tokens",
)
_ROLLUP_KEY = ("hour", "user_id", "model", "provider", "pipeline", "caller")
_RUN_KEY = ("hour", "user_id", "pipeline", "status")
_ROLLUP_COUNTERS = (
    "calls",
    "errors",
    "cost_usd",
    *_TOKEN_COLUMNS,
    "latency_ms_sum",
    "ttft_ms_sum",
    "ttft_count",
    "offline_calls",
    "live_estimate_usd",
    *LAT_COLUMNS,
    *TTFT_COLUMNS,
)


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
        data["created_at"] = _aware(data["created_at"])
        return data


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def hour_of(moment: datetime) -> datetime:
    """The UTC hour a moment falls in (the rollups' time key)."""
    return _aware(moment).replace(minute=0, second=0, microsecond=0)


def _rollup_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows aggregated per rollup key (sorted: concurrent writers lock keys in one order)."""
    acc: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        key = (
            hour_of(r["created_at"]),
            int(r["user_id"] or 0),
            r["model"],
            r["provider"],
            r["pipeline"],
            r["caller"],
        )
        out = acc.get(key)
        if out is None:
            out = dict(zip(_ROLLUP_KEY, key, strict=True))
            out.update(dict.fromkeys(_ROLLUP_COUNTERS, 0))
            out["cost_usd"] = out["live_estimate_usd"] = ZERO
            out["latency_ms_sum"] = out["ttft_ms_sum"] = 0.0
            acc[key] = out
        out["calls"] += 1
        out["errors"] += 1 if r["status"] == "error" else 0
        out["cost_usd"] += Decimal(r["cost_usd"] or 0)
        if r["offline"]:
            out["offline_calls"] += 1
            out["live_estimate_usd"] += Decimal(r["live_estimate_usd"] or 0)
        for c in _TOKEN_COLUMNS:
            out[c] += int(r[c] or 0)
        latency = float(r["latency_ms"] or 0.0)
        out["latency_ms_sum"] += latency
        out[LAT_COLUMNS[bucket_of(latency)]] += 1
        if r["ttft_ms"] is not None:
            ttft = float(r["ttft_ms"])
            out["ttft_ms_sum"] += ttft
            out["ttft_count"] += 1
            out[TTFT_COLUMNS[bucket_of(ttft)]] += 1
    return [acc[k] for k in sorted(acc, key=lambda k: (k[0], k[1], k[2], k[3], k[4], k[5]))]


def _upsert(conn: Connection, table: Any, key: Sequence[str], counters: Sequence[str]) -> Any:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table)
    else:  # pragma: no cover - we run on SQLite and PostgreSQL only
        raise NotImplementedError(f"no rollup upsert for the {dialect} dialect")
    return stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={c: table.c[c] + stmt.excluded[c] for c in counters},
    )


def write(conn: Connection, attempts: Sequence[Attempt]) -> None:
    """Book ``attempts`` inside ``conn``'s transaction: rows, rollups, reservations settled."""
    if not attempts:
        return
    rows = [a.row() for a in attempts]
    conn.execute(insert(CALL), rows)
    conn.execute(_upsert(conn, ROLLUP, _ROLLUP_KEY, _ROLLUP_COUNTERS), _rollup_rows(rows))
    settle = sorted({a.reservation_id for a in attempts if a.reservation_id is not None})
    if settle:
        conn.execute(
            update(RESERVATION)
            .where(RESERVATION.c.id.in_(settle), RESERVATION.c.settled_at.is_(None))
            .values(settled_at=utcnow())
        )


def record(attempt: Attempt, *, engine: Engine | None = None) -> None:
    """Book one attempt in a transaction of its own."""
    with (engine or get_engine()).begin() as conn:
        write(conn, [attempt])


def record_many(attempts: Iterable[Attempt], *, engine: Engine | None = None) -> None:
    """Book a batch of attempts in one transaction."""
    batch = list(attempts)
    if batch:
        with (engine or get_engine()).begin() as conn:
            write(conn, batch)


async def record_async(attempt: Attempt) -> None:
    await in_db_thread(record, attempt)


async def record_many_async(attempts: Sequence[Attempt]) -> None:
    await in_db_thread(record_many, list(attempts))


def record_run(
    conn: Connection,
    *,
    user_id: int | None,
    pipeline: str,
    status: str,
    cost_usd: Decimal,
    duration_ms: float,
    finished_at: datetime,
) -> None:
    """Count one finished run in ``run_rollup`` (inside the run's final transaction)."""
    conn.execute(
        _upsert(conn, RUN_ROLLUP, _RUN_KEY, ("runs", "cost_usd", "duration_ms_sum")),
        {
            "hour": hour_of(finished_at),
            "user_id": int(user_id or 0),
            "pipeline": pipeline[:200],
            "status": status[:16],
            "runs": 1,
            "cost_usd": Decimal(cost_usd),
            "duration_ms_sum": float(max(duration_ms, 0.0)),
        },
    )


# --- unlinking (deleting content never deletes its cost rows) -------------------------------


def unlink_conversation(session: Session, conversation_id: int) -> None:
    """Rows of a conversation being deleted lose the link and stay (with their user)."""
    session.execute(
        update(CALL).where(CALL.c.conversation_id == conversation_id).values(conversation_id=None)
    )


def unlink_runs(session: Session, run_ids: Sequence[str]) -> None:
    """Rows of runs being deleted lose the link and stay (their pipeline name is kept)."""
    if run_ids:
        session.execute(update(CALL).where(CALL.c.run_id.in_(list(run_ids))).values(run_id=None))
