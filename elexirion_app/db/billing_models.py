"""The ledger's rollup tables and the budgets (issue 10; schema agreed in notes/ledger_schema.md).

``usage_rollup`` and ``run_rollup`` are maintained by ``services/billing/ledger`` in the same
transaction as the ledger rows they sum (dialect UPSERT, every counter ``col = col + excluded``);
dashboards read them with indexed queries, never the raw rows. Histogram columns ``lat_b*`` and
``ttft_b*`` count calls per bucket of ``services/billing/buckets.BOUNDS_MS``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Column, Index, Numeric, UniqueConstraint
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


def _big() -> Column:  # type: ignore[type-arg]
    return Column(BigInteger, nullable=False, default=0, server_default="0")


def _money(digits: int) -> Column:  # type: ignore[type-arg]
    return Column(Numeric(digits, 8), nullable=False)


class UsageRollup(SQLModel, table=True):
    """One row per (hour, user, model, provider, pipeline, caller); ``user_id`` 0 = no user."""

    __tablename__ = "usage_rollup"
    __table_args__ = (
        UniqueConstraint(
            "hour", "user_id", "model", "provider", "pipeline", "caller", name="uq_usage_rollup_key"
        ),
        Index("ix_usage_rollup_user_hour", "user_id", "hour"),
    )

    id: int | None = Field(default=None, primary_key=True)
    hour: datetime = Field(index=True)
    user_id: int = 0
    model: str = Field(default="", max_length=100)
    provider: str = Field(default="", max_length=40)
    pipeline: str = Field(default="", max_length=200)
    caller: str = Field(default="", max_length=16)
    calls: int = 0
    errors: int = 0
    cost_usd: Decimal = Field(default=Decimal("0"), sa_column=_money(18))
    input_tokens: int = Field(default=0, sa_column=_big())
    output_tokens: int = Field(default=0, sa_column=_big())
    cache_read_tokens: int = Field(default=0, sa_column=_big())
    cache_write_tokens: int = Field(default=0, sa_column=_big())
    cache_write_1h_tokens: int = Field(default=0, sa_column=_big())
    thinking_tokens: int = Field(default=0, sa_column=_big())
    latency_ms_sum: float = 0.0
    ttft_ms_sum: float = 0.0
    ttft_count: int = 0
    # Offline demo calls and what they would have cost live (labelled, never in cost_usd).
    offline_calls: int = Field(default=0, sa_column=_big())
    live_estimate_usd: Decimal = Field(
        default=Decimal("0"),
        sa_column=Column(Numeric(18, 8), nullable=False, default=0, server_default="0"),
    )
    lat_b0: int = 0
    lat_b1: int = 0
    lat_b2: int = 0
    lat_b3: int = 0
    lat_b4: int = 0
    lat_b5: int = 0
    lat_b6: int = 0
    lat_b7: int = 0
    lat_b8: int = 0
    lat_b9: int = 0
    lat_b10: int = 0
    lat_b11: int = 0
    lat_b12: int = 0
    lat_b13: int = 0
    lat_b14: int = 0
    lat_b15: int = 0
    lat_b16: int = 0
    lat_b17: int = 0
    lat_b18: int = 0
    lat_b19: int = 0
    ttft_b0: int = 0
    ttft_b1: int = 0
    ttft_b2: int = 0
    ttft_b3: int = 0
    ttft_b4: int = 0
    ttft_b5: int = 0
    ttft_b6: int = 0
    ttft_b7: int = 0
    ttft_b8: int = 0
    ttft_b9: int = 0
    ttft_b10: int = 0
    ttft_b11: int = 0
    ttft_b12: int = 0
    ttft_b13: int = 0
    ttft_b14: int = 0
    ttft_b15: int = 0
    ttft_b16: int = 0
    ttft_b17: int = 0
    ttft_b18: int = 0
    ttft_b19: int = 0


class RunRollup(SQLModel, table=True):
    """One row per (hour, user, pipeline, status), written when a run finishes."""

    __tablename__ = "run_rollup"
    __table_args__ = (
        UniqueConstraint("hour", "user_id", "pipeline", "status", name="uq_run_rollup_key"),
        Index("ix_run_rollup_user_hour", "user_id", "hour"),
    )

    id: int | None = Field(default=None, primary_key=True)
    hour: datetime = Field(index=True)
    user_id: int = 0
    pipeline: str = Field(default="", max_length=200)
    status: str = Field(default="", max_length=16)
    runs: int = 0
    cost_usd: Decimal = Field(default=Decimal("0"), sa_column=_money(18))
    duration_ms_sum: float = 0.0


class Budget(SQLModel, table=True):
    """A spend cap: a user's (``user_id``) or the global one (``user_id`` None, at most one)."""

    __tablename__ = "budget"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="app_user.id", unique=True)
    monthly_usd: Decimal | None = Field(default=None, sa_column=Column(Numeric(14, 4)))
    per_run_usd: Decimal | None = Field(default=None, sa_column=Column(Numeric(14, 4)))
    warn_ratio: float = 0.8
    updated_at: datetime = Field(default_factory=_now)
    updated_by: int | None = None


class BudgetReservation(SQLModel, table=True):
    """An estimate held against the caps while a call runs; settled (``settled_at``) after it.
    Unsettled reservations older than 15 minutes (a crashed worker) stop counting."""

    __tablename__ = "budget_reservation"
    __table_args__ = (Index("ix_budget_reservation_user_settled", "user_id", "settled_at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = 0
    run_id: str | None = Field(default=None, max_length=36, index=True)
    amount_usd: Decimal = Field(default=Decimal("0"), sa_column=_money(14))
    created_at: datetime = Field(default_factory=_now)
    settled_at: datetime | None = None
