"""usage day and hour totals (everyone's unfiltered totals and series)

``usage_day_total`` / ``usage_hour_total``: every call of every user per day / hour (sharded by
user_id % 8 like the other tables without a user column; compaction folds closed periods to
one row). Everyone's unfiltered totals and series read ~30 + 46 rows instead of a row per
model x provider x caller, which grew with the ledger. Backfilled from usage_day_all /
usage_hour_all (the same sums per shard).

Revision ID: 34616e948626
Revises: 8e4d36683789
Create Date: 2026-12-02 17:45:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = '34616e948626'
down_revision: Union[str, Sequence[str], None] = '8e4d36683789'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BIG = ('input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens',
       'cache_write_1h_tokens', 'thinking_tokens')
BUCKETS = [f'lat_b{i}' for i in range(20)] + [f'ttft_b{i}' for i in range(20)]
COUNTERS = ['calls', 'errors', 'cost_usd', *BIG, 'latency_ms_sum', 'ttft_ms_sum', 'ttft_count',
            'offline_calls', 'live_estimate_usd', *BUCKETS]


def _counter_columns() -> list[sa.Column]:
    money = lambda name, **kw: sa.Column(name, sa.Numeric(precision=18, scale=8), nullable=False, **kw)  # noqa: E731,E501
    return [
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.Column('errors', sa.Integer(), nullable=False),
        money('cost_usd'),
        *[sa.Column(c, sa.BigInteger(), server_default='0', nullable=False) for c in BIG],
        sa.Column('latency_ms_sum', sa.Float(), nullable=False),
        sa.Column('ttft_ms_sum', sa.Float(), nullable=False),
        sa.Column('ttft_count', sa.Integer(), nullable=False),
        sa.Column('offline_calls', sa.BigInteger(), server_default='0', nullable=False),
        money('live_estimate_usd', server_default='0'),
        *[sa.Column(c, sa.Integer(), nullable=False) for c in BUCKETS],
    ]


def upgrade() -> None:
    for table, grain, source in (
        ('usage_day_total', 'day', 'usage_day_all'),
        ('usage_hour_total', 'hour', 'usage_hour_all'),
    ):
        op.create_table(
            table,
            *_counter_columns(),
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column(grain, sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
            sa.Column('shard', sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint(grain, 'shard', name=f'uq_{table}_key'),
        )
        sums = ', '.join(f'SUM({c})' for c in COUNTERS)
        op.execute(
            f"INSERT INTO {table} ({grain}, shard, {', '.join(COUNTERS)}) "
            f"SELECT {grain}, shard, {sums} FROM {source} GROUP BY {grain}, shard"
        )


def downgrade() -> None:
    op.drop_table('usage_hour_total')
    op.drop_table('usage_day_total')
