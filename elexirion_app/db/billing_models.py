"""The ledger's rollup tables and the budgets (issue 10; schema agreed in notes/ledger_schema.md).

Every rollup is maintained by ``services/billing/ledger`` in the same transaction as the ledger
rows it sums (dialect UPSERT, every counter ``col = col + excluded``); dashboards read them with
indexed queries, never the raw rows. Histogram columns ``lat_b*`` and ``ttft_b*`` count calls
per bucket of ``services/billing/buckets.BOUNDS_MS`` (mergeable: p50/p95 of summed buckets).

Usage rollups (the same counters, different grain and keys; ``user_id`` 0 = no user):

- ``usage_rollup``        hour x user x model x provider x pipeline x caller (the API's hourly
                          ranges; the partial days at the edges of a user's / pipeline's range)
- ``usage_day``           day  x user x model x provider x pipeline x caller (one user's
                          views by model, filtered, and their filter options)
- ``usage_day_user`` / ``usage_hour_user``  user x day / hour (one user's totals and series)
- ``usage_day_user_model`` / ``usage_hour_user_model``  user x day / hour x model x provider
                          (one user's by model, and views filtered by model or provider)
- ``usage_day_all``       day  x model x provider x caller (everyone's views, no pipeline filter)
- ``usage_day_pipeline``  day  x pipeline x model x provider x caller (everyone, one pipeline)
- ``usage_hour_all``      hour x model x provider x caller (edges of everyone's ranges)
- ``usage_day_model`` / ``usage_hour_model``  day / hour x model x provider (everyone's by
                          model, and views filtered by model or provider)
- ``usage_day_total`` / ``usage_hour_total``  day / hour only (everyone, unfiltered)
- ``usage_option_day`` / ``usage_option_hour``  day / hour x user (and every user) x kind x
                          value: which models, providers, pipelines, callers occur (filters)

Runs: ``run_rollup`` (hour), ``run_day`` (day x user x pipeline x status), ``run_day_all``
(day x pipeline x status), ``run_day_user`` / ``run_hour_user`` (day / hour x user; failed runs
a counter),
``run_day_total`` / ``run_hour_total`` (day / hour x status), all by the hour/day a run finished;
``run_booking`` one row per run as last counted (a resumed run's earlier count is taken back,
never counted twice) and, indexed by (day it started, cost), the costliest runs of a range read
day by day.
Conversations: ``conversation_booking``, one row per conversation (its calls and cost, the day
it started), the costliest conversations read day by day like the runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Column, Index, Numeric, UniqueConstraint
from sqlmodel import Field, SQLModel

from elexirion_app.db.columns import money_column


def _now() -> datetime:
    return datetime.now(UTC)


def _big() -> Column:  # type: ignore[type-arg]
    return Column(BigInteger, nullable=False, default=0, server_default="0")


def _big_field() -> int:
    return Field(  # type: ignore[no-any-return]
        default=0, sa_type=BigInteger, nullable=False, sa_column_kwargs={"server_default": "0"}
    )


def _money_field(server_default: bool = False) -> Decimal:
    kwargs = {"server_default": "0"} if server_default else {}
    return Field(  # type: ignore[no-any-return]
        default=Decimal("0"), sa_type=Numeric(18, 8), nullable=False, sa_column_kwargs=kwargs
    )


class UsageCounters(SQLModel):
    """The counters every usage rollup keeps (no table of its own)."""

    calls: int = 0
    errors: int = 0
    cost_usd: Decimal = _money_field()
    input_tokens: int = _big_field()
    output_tokens: int = _big_field()
    cache_read_tokens: int = _big_field()
    cache_write_tokens: int = _big_field()
    cache_write_1h_tokens: int = _big_field()
    thinking_tokens: int = _big_field()
    latency_ms_sum: float = 0.0
    ttft_ms_sum: float = 0.0
    ttft_count: int = 0
    # Offline demo calls and what they would have cost live (labelled, never in cost_usd).
    offline_calls: int = _big_field()
    live_estimate_usd: Decimal = _money_field(server_default=True)
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
    cost_usd: Decimal = Field(default=Decimal("0"), sa_column=money_column(18))
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
    cost_usd: Decimal = Field(default=Decimal("0"), sa_column=money_column(18))
    duration_ms_sum: float = 0.0


class UsageDay(UsageCounters, table=True):
    """Daily, every dimension: one user's views (``user_id`` 0 = no user)."""

    __tablename__ = "usage_day"
    __table_args__ = (
        UniqueConstraint(
            "day", "user_id", "model", "provider", "pipeline", "caller", name="uq_usage_day_key"
        ),
        Index("ix_usage_day_user_day", "user_id", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    day: datetime
    user_id: int = 0
    model: str = Field(default="", max_length=100)
    provider: str = Field(default="", max_length=40)
    pipeline: str = Field(default="", max_length=200)
    caller: str = Field(default="", max_length=16)


class UsageDayAll(UsageCounters, table=True):
    """Daily, every user together, no pipeline: everyone's views."""

    __tablename__ = "usage_day_all"
    __table_args__ = (
        UniqueConstraint(
            "day", "shard", "model", "provider", "caller", name="uq_usage_day_all_key"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    day: datetime
    shard: int = 0  # user_id % SHARDS: concurrent writers of one model spread over rows
    model: str = Field(default="", max_length=100)
    provider: str = Field(default="", max_length=40)
    caller: str = Field(default="", max_length=16)


class UsageDayPipeline(UsageCounters, table=True):
    """Daily, every user together, by pipeline: everyone's views of one pipeline."""

    __tablename__ = "usage_day_pipeline"
    __table_args__ = (
        UniqueConstraint(
            "day",
            "shard",
            "pipeline",
            "model",
            "provider",
            "caller",
            name="uq_usage_day_pipeline_key",
        ),
        Index("ix_usage_day_pipeline_pipeline_day", "pipeline", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    day: datetime
    shard: int = 0  # user_id % SHARDS
    pipeline: str = Field(default="", max_length=200)
    model: str = Field(default="", max_length=100)
    provider: str = Field(default="", max_length=40)
    caller: str = Field(default="", max_length=16)


class UsageDayUser(UsageCounters, table=True):
    """Daily per user, no other dimension: one user's totals and time series."""

    __tablename__ = "usage_day_user"
    __table_args__ = (UniqueConstraint("user_id", "day", name="uq_usage_day_user_key"),)

    id: int | None = Field(default=None, primary_key=True)
    day: datetime
    user_id: int = 0


class UsageHourUser(UsageCounters, table=True):
    """Hourly per user: the edges of one user's ranges (totals and time series)."""

    __tablename__ = "usage_hour_user"
    __table_args__ = (UniqueConstraint("user_id", "hour", name="uq_usage_hour_user_key"),)

    id: int | None = Field(default=None, primary_key=True)
    hour: datetime
    user_id: int = 0


class UsageHourAll(UsageCounters, table=True):
    """Hourly, every user together, no pipeline: the partial days at the edges of a range."""

    __tablename__ = "usage_hour_all"
    __table_args__ = (
        UniqueConstraint(
            "hour", "shard", "model", "provider", "caller", name="uq_usage_hour_all_key"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    hour: datetime
    shard: int = 0  # user_id % SHARDS
    model: str = Field(default="", max_length=100)
    provider: str = Field(default="", max_length=40)
    caller: str = Field(default="", max_length=16)


class UsageDayTotal(UsageCounters, table=True):
    """Daily, every call of every user together: everyone's unfiltered totals and series
    (one row a day once its shards are folded by ``compaction``)."""

    __tablename__ = "usage_day_total"
    __table_args__ = (UniqueConstraint("day", "shard", name="uq_usage_day_total_key"),)

    id: int | None = Field(default=None, primary_key=True)
    day: datetime
    shard: int = 0  # user_id % SHARDS


class UsageHourTotal(UsageCounters, table=True):
    """The same per hour (the edges of everyone's unfiltered ranges)."""

    __tablename__ = "usage_hour_total"
    __table_args__ = (UniqueConstraint("hour", "shard", name="uq_usage_hour_total_key"),)

    id: int | None = Field(default=None, primary_key=True)
    hour: datetime
    shard: int = 0  # user_id % SHARDS


class UsageDayModel(UsageCounters, table=True):
    """Daily, every user together, by model and provider only: everyone's usage by model (and
    views filtered by model or provider), ~10x fewer rows than ``usage_day_all``'s per caller."""

    __tablename__ = "usage_day_model"
    __table_args__ = (
        UniqueConstraint("day", "shard", "model", "provider", name="uq_usage_day_model_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    day: datetime
    shard: int = 0  # user_id % SHARDS
    model: str = Field(default="", max_length=100)
    provider: str = Field(default="", max_length=40)


class UsageHourModel(UsageCounters, table=True):
    """The same per hour (the edges of everyone's ranges by model)."""

    __tablename__ = "usage_hour_model"
    __table_args__ = (
        UniqueConstraint("hour", "shard", "model", "provider", name="uq_usage_hour_model_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    hour: datetime
    shard: int = 0  # user_id % SHARDS
    model: str = Field(default="", max_length=100)
    provider: str = Field(default="", max_length=40)


class UsageDayUserModel(UsageCounters, table=True):
    """Daily per user by model and provider: one user's usage by model (and that user's views
    filtered by model or provider), a few rows a day where ``usage_day`` has one per model x
    pipeline x caller."""

    __tablename__ = "usage_day_user_model"
    __table_args__ = (
        UniqueConstraint("user_id", "day", "model", "provider", name="uq_usage_day_user_model_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    day: datetime
    user_id: int = 0
    model: str = Field(default="", max_length=100)
    provider: str = Field(default="", max_length=40)


class UsageHourUserModel(UsageCounters, table=True):
    """The same per hour (the edges of one user's ranges by model)."""

    __tablename__ = "usage_hour_user_model"
    __table_args__ = (
        UniqueConstraint(
            "user_id", "hour", "model", "provider", name="uq_usage_hour_user_model_key"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    hour: datetime
    user_id: int = 0
    model: str = Field(default="", max_length=100)
    provider: str = Field(default="", max_length=40)


EVERY_USER = -1  # usage_option_* rows of every user together (user_id 0 is "no user")


class UsageOptionDay(SQLModel, table=True):
    """The distinct non-empty ``kind`` (model | provider | pipeline | caller) = ``value`` of a
    day's calls, per user and for every user together (``user_id`` ``EVERY_USER``): the
    dashboard's filter options. Keys only: a row is inserted once (ON CONFLICT DO NOTHING),
    so writers of a value already there lock nothing."""

    __tablename__ = "usage_option_day"

    user_id: int = Field(primary_key=True)
    day: datetime = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=16)
    value: str = Field(primary_key=True, max_length=200)


class UsageOptionHour(SQLModel, table=True):
    """The same per hour: the options of the partial days at the edges of a range."""

    __tablename__ = "usage_option_hour"

    user_id: int = Field(primary_key=True)
    hour: datetime = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=16)
    value: str = Field(primary_key=True, max_length=200)


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
    amount_usd: Decimal = Field(default=Decimal("0"), sa_column=money_column(14))
    created_at: datetime = Field(default_factory=_now)
    settled_at: datetime | None = None


# The run rollups and the cost bookings live in their own module (same metadata); re-exported
# here so every rollup table is reachable as ``billing_models.<Name>``.
from elexirion_app.db.run_booking_models import OK_RUN_STATUSES as OK_RUN_STATUSES  # noqa: E402
from elexirion_app.db.run_booking_models import ConversationBooking as ConversationBooking  # noqa: E402
from elexirion_app.db.run_booking_models import RunBooking as RunBooking  # noqa: E402
from elexirion_app.db.run_booking_models import RunDay as RunDay  # noqa: E402
from elexirion_app.db.run_booking_models import RunDayAll as RunDayAll  # noqa: E402
from elexirion_app.db.run_booking_models import RunDayTotal as RunDayTotal  # noqa: E402
from elexirion_app.db.run_booking_models import RunDayUser as RunDayUser  # noqa: E402
from elexirion_app.db.run_booking_models import RunHourTotal as RunHourTotal  # noqa: E402
from elexirion_app.db.run_booking_models import RunHourUser as RunHourUser  # noqa: E402
