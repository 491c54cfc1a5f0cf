"""usage day and hour by model (everyone's and each user's usage by model and provider)

``usage_day_model`` / ``usage_hour_model``: every user's calls per day / hour x model x
provider (sharded by user_id % 8 like the other tables without a user column; compaction folds
closed periods to shard 0). Everyone's by model read a row per model x provider x caller of
``usage_day_all`` / ``usage_hour_all`` (1,708 + 775 rows over 30 days at 1M ledger rows);
these have a row per model x provider. ``usage_day_user_model`` / ``usage_hour_user_model``:
the same per user (a user's by model read ``usage_day`` / ``usage_rollup``, a row per model x
pipeline x caller). Backfilled from usage_day_all / usage_hour_all (the same sums per shard)
and usage_day / usage_rollup (per user).

Revision ID: b6d2f8e4a1c7
Revises: a91c4e7d3b25
Create Date: 2026-12-06 22:20:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = 'b6d2f8e4a1c7'
down_revision: Union[str, Sequence[str], None] = 'a91c4e7d3b25'
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
    for table, grain, who, source in (
        ('usage_day_model', 'day', 'shard', 'usage_day_all'),
        ('usage_hour_model', 'hour', 'shard', 'usage_hour_all'),
        ('usage_day_user_model', 'day', 'user_id', 'usage_day'),
        ('usage_hour_user_model', 'hour', 'user_id', 'usage_rollup'),
    ):
        key = (grain, 'shard') if who == 'shard' else ('user_id', grain)
        op.create_table(
            table,
            *_counter_columns(),
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column(grain, sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
            sa.Column(who, sa.Integer(), nullable=False),
            sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
            sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint(*key, 'model', 'provider', name=f'uq_{table}_key'),
        )
        sums = ', '.join(f'SUM({c})' for c in COUNTERS)
        op.execute(
            f"INSERT INTO {table} ({grain}, {who}, model, provider, {', '.join(COUNTERS)}) "
            f"SELECT {grain}, {who}, model, provider, {sums} FROM {source} "
            f"GROUP BY {grain}, {who}, model, provider"
        )


def downgrade() -> None:
    for table in ('usage_hour_user_model', 'usage_day_user_model', 'usage_hour_model',
                  'usage_day_model'):
        op.drop_table(table)
