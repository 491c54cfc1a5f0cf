"""shard the rollups without a user column (usage_day_all, usage_day_pipeline, usage_hour_all,
run_day_all) by user_id % 8

Every concurrent writer of a model used to upsert the same row of these tables, so on
PostgreSQL the ledger's writers queued on its row lock (8 threads: 92 attempts/s instead of
146). A ``shard`` column (user_id % 8, part of the unique key) spreads them over 8 rows; the
dashboard's reads sum over shards. Existing rows keep shard 0: every sum stays the same.

Revision ID: 7d2e5c1a9b40
Revises: 365b49e23bfd
Create Date: 2026-12-02 14:45:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '7d2e5c1a9b40'
down_revision: Union[str, Sequence[str], None] = '365b49e23bfd'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# table -> (unique constraint, its columns before, after)
KEYS = {
    'usage_day_all': (
        'uq_usage_day_all_key',
        ['day', 'model', 'provider', 'caller'],
        ['day', 'shard', 'model', 'provider', 'caller'],
    ),
    'usage_day_pipeline': (
        'uq_usage_day_pipeline_key',
        ['day', 'pipeline', 'model', 'provider', 'caller'],
        ['day', 'shard', 'pipeline', 'model', 'provider', 'caller'],
    ),
    'usage_hour_all': (
        'uq_usage_hour_all_key',
        ['hour', 'model', 'provider', 'caller'],
        ['hour', 'shard', 'model', 'provider', 'caller'],
    ),
    'run_day_all': (
        'uq_run_day_all_key',
        ['day', 'pipeline', 'status'],
        ['day', 'shard', 'pipeline', 'status'],
    ),
}


def upgrade() -> None:
    for table, (name, _before, after) in KEYS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column('shard', sa.Integer(), server_default='0', nullable=False)
            )
            batch_op.drop_constraint(name, type_='unique')
            batch_op.create_unique_constraint(name, after)


def downgrade() -> None:
    # Shards merge back into one row per key before the old key returns.
    for table, (name, before, _after) in KEYS.items():
        bind = op.get_bind()
        counters = [
            c['name']
            for c in sa.inspect(bind).get_columns(table)
            if c['name'] not in {'id', 'shard', *before}
        ]
        sums = ', '.join(f'SUM({c}) AS {c}' for c in counters)
        keys = ', '.join(before)
        op.execute(f'CREATE TEMPORARY TABLE merged_{table} AS SELECT {keys}, {sums} '
                   f'FROM {table} GROUP BY {keys}')
        op.execute(f'DELETE FROM {table}')
        cols = ', '.join([*before, *counters])
        op.execute(f'INSERT INTO {table} ({cols}) SELECT {cols} FROM merged_{table}')
        op.execute(f'DROP TABLE merged_{table}')
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(name, type_='unique')
            batch_op.create_unique_constraint(name, before)
            batch_op.drop_column('shard')
