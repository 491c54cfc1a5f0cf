"""run rollups per user without the pipeline (day / hour x user, failed runs as a counter)

One user's unfiltered run totals and series read ``run_day_user`` / ``run_hour_user`` (one
row per day or hour) instead of ``run_day`` / ``run_rollup``, whose rows per user also run
over every pipeline the user ran and every status. On PostgreSQL the key's index carries the counters
(INCLUDE), so those reads are index-only scans. Backfilled from ``run_day`` /
``run_rollup``.

Revision ID: a91c4e7d3b25
Revises: f3c9a1d27b64
Create Date: 2026-12-04 18:20:00.000000

"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = 'a91c4e7d3b25'
down_revision: Union[str, Sequence[str], None] = 'f3c9a1d27b64'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

UTC_DT = sqlmodel.sql.sqltypes.UTCDateTime
COUNTERS = ['runs', 'failed', 'cost_usd', 'duration_ms_sum']
# OK_RUN_STATUSES (db/run_booking_models) when this was written: every other status failed.
OK = "('succeeded')"


def _table(name: str, grain: str) -> None:
    op.create_table(
        name,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column(grain, UTC_DT(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('runs', sa.Integer(), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.Column('cost_usd', sa.Numeric(precision=18, scale=8), nullable=False),
        sa.Column('duration_ms_sum', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint(
            'user_id', grain, name=f'uq_{name}_key', postgresql_include=COUNTERS
        ),
    )


def upgrade() -> None:
    _table('run_day_user', 'day')
    _table('run_hour_user', 'hour')
    bind = op.get_bind()
    for table, grain, source in (
        ('run_day_user', 'day', 'run_day'),
        ('run_hour_user', 'hour', 'run_rollup'),
    ):
        bind.execute(sa.text(
            f"INSERT INTO {table} ({grain}, user_id, runs, failed, cost_usd, duration_ms_sum) "
            f"SELECT {grain}, user_id, SUM(runs), "
            f"SUM(CASE WHEN status IN {OK} THEN 0 ELSE runs END), COALESCE(SUM(cost_usd), 0), "
            f"COALESCE(SUM(duration_ms_sum), 0) FROM {source} GROUP BY {grain}, user_id"
        ))


def downgrade() -> None:
    op.drop_table('run_hour_user')
    op.drop_table('run_day_user')
