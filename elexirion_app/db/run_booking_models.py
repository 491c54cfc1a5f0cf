"""The run rollups and the cost bookings the dashboard reads (issue 10), maintained only by
``services/billing/ledger`` (``record_run``, ``write``, ``unlink_*``) and folded by
``services/billing/compaction``:

- ``run_rollup`` (hour, in ``billing_models``), ``run_day`` (day x user x pipeline x status),
  ``run_day_all`` (day x shard x pipeline x status), ``run_day_user`` / ``run_hour_user``
  (day / hour x user, the failed ones counted in a column), ``run_day_total`` /
  ``run_hour_total`` (day / hour x status): the runs that finished then;
- ``run_booking``: one row per run as last counted (a resumed run's earlier count is taken
  back), indexed by (day it started, cost) for the costliest runs of a range;
- ``conversation_booking``: one row per conversation (its calls, cost, first call's day),
  indexed the same way for the costliest conversations.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from elexirion_app.db.columns import money_column


class RunDay(SQLModel, table=True):
    """One row per (day, user, pipeline, status) of the runs that finished that day."""

    __tablename__ = "run_day"
    __table_args__ = (
        UniqueConstraint("day", "user_id", "pipeline", "status", name="uq_run_day_key"),
        Index("ix_run_day_user_day", "user_id", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    day: datetime
    user_id: int = 0
    pipeline: str = Field(default="", max_length=200)
    status: str = Field(default="", max_length=16)
    runs: int = 0
    cost_usd: Decimal = Field(default=Decimal("0"), sa_column=money_column(18))
    duration_ms_sum: float = 0.0


# A run that ended with one of these succeeded; any other finished status (failed,
# interrupted, cancelled) counts as failed on the dashboard and in ``failed`` below.
OK_RUN_STATUSES = ("succeeded",)

# The key (user, period) of run_day_user / run_hour_user carries the counters in its index
# leaf on PostgreSQL (INCLUDE): a user's unfiltered run totals and series are an index-only
# scan of one range, one row per day or hour, and the upserts keep a single index. No status
# column: what the dashboard shows of the statuses is how many runs failed (``failed``), so a
# row per status would only double the rows those reads go through.
_COUNTERS = ["runs", "failed", "cost_usd", "duration_ms_sum"]


class RunDayUser(SQLModel, table=True):
    """One row per (day, user): one user's unfiltered run totals and series (one row a day,
    however many pipelines the user ran)."""

    __tablename__ = "run_day_user"
    __table_args__ = (
        UniqueConstraint(
            "user_id", "day", name="uq_run_day_user_key", postgresql_include=_COUNTERS
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    day: datetime
    user_id: int = 0
    runs: int = 0
    failed: int = 0  # of ``runs``, those whose status is not in OK_RUN_STATUSES
    cost_usd: Decimal = Field(default=Decimal("0"), sa_column=money_column(18))
    duration_ms_sum: float = 0.0


class RunHourUser(SQLModel, table=True):
    """The same per hour (the edges of one user's ranges)."""

    __tablename__ = "run_hour_user"
    __table_args__ = (
        UniqueConstraint(
            "user_id", "hour", name="uq_run_hour_user_key", postgresql_include=_COUNTERS
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    hour: datetime
    user_id: int = 0
    runs: int = 0
    failed: int = 0
    cost_usd: Decimal = Field(default=Decimal("0"), sa_column=money_column(18))
    duration_ms_sum: float = 0.0


class RunDayAll(SQLModel, table=True):
    """One row per (day, pipeline, status): everyone's runs."""

    __tablename__ = "run_day_all"
    __table_args__ = (
        UniqueConstraint("day", "shard", "pipeline", "status", name="uq_run_day_all_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    day: datetime
    shard: int = 0  # user_id % SHARDS
    pipeline: str = Field(default="", max_length=200)
    status: str = Field(default="", max_length=16)
    runs: int = 0
    cost_usd: Decimal = Field(default=Decimal("0"), sa_column=money_column(18))
    duration_ms_sum: float = 0.0


class RunBooking(SQLModel, table=True):
    """A run as last counted in the run rollups (``ledger.record_run``): a resumed run's
    earlier count is taken back from them, and the costliest runs of a range are read from
    here, one LIMITed index range per day the runs started (``started_day``, UTC midnight)."""

    __tablename__ = "run_booking"
    __table_args__ = (
        Index("ix_run_booking_day_cost", "started_day", "cost_usd", "created_at"),
        Index("ix_run_booking_user_day_cost", "user_id", "started_day", "cost_usd", "created_at"),
        Index("ix_run_booking_pipeline_day_cost", "pipeline", "started_day", "cost_usd"),
    )

    run_id: str = Field(primary_key=True, max_length=36)
    started_day: datetime
    created_at: datetime
    finished_at: datetime
    user_id: int = 0
    pipeline: str = Field(default="", max_length=200)
    status: str = Field(default="", max_length=16)
    cost_usd: Decimal = Field(default=Decimal("0"), sa_column=money_column(18))
    duration_ms: float = 0.0


class RunDayTotal(SQLModel, table=True):
    """One row per (day, status): everyone's runs of every pipeline (the unfiltered admin
    view reads ~3 rows a day here, however many users and pipelines ran)."""

    __tablename__ = "run_day_total"
    __table_args__ = (UniqueConstraint("day", "status", name="uq_run_day_total_key"),)

    id: int | None = Field(default=None, primary_key=True)
    day: datetime
    status: str = Field(default="", max_length=16)
    runs: int = 0
    cost_usd: Decimal = Field(default=Decimal("0"), sa_column=money_column(18))
    duration_ms_sum: float = 0.0


class RunHourTotal(SQLModel, table=True):
    """The same per hour (the edges of everyone's ranges)."""

    __tablename__ = "run_hour_total"
    __table_args__ = (UniqueConstraint("hour", "status", name="uq_run_hour_total_key"),)

    id: int | None = Field(default=None, primary_key=True)
    hour: datetime
    status: str = Field(default="", max_length=16)
    runs: int = 0
    cost_usd: Decimal = Field(default=Decimal("0"), sa_column=money_column(18))
    duration_ms_sum: float = 0.0


class ConversationBooking(SQLModel, table=True):
    """What a conversation's calls cost, one row per conversation (the costliest
    conversations of a range: those started in it, read day by day from the index on
    (``started_day``, cost) like the costliest runs)."""

    __tablename__ = "conversation_booking"
    __table_args__ = (
        Index("ix_conversation_booking_day_cost", "started_day", "cost_usd"),
        Index("ix_conversation_booking_user_day_cost", "user_id", "started_day", "cost_usd"),
    )

    conversation_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    user_id: int = 0
    started_day: datetime  # UTC midnight of its first call
    first_at: datetime
    last_at: datetime
    calls: int = 0
    cost_usd: Decimal = Field(default=Decimal("0"), sa_column=money_column(18))
