"""run totals (day / hour x status) and one cost row per conversation

Everyone's unfiltered run totals and series read ``run_day_total`` / ``run_hour_total``
(a few rows per day or hour) instead of rows per user and pipeline, which grew with the
ledger's density. The costliest conversations are read like the costliest runs, from
``conversation_booking`` (one row per conversation, indexed by the day it started and its
cost), replacing the per-day and per-hour sums (``conversation_day`` / ``conversation_hour``),
whose rows per range grew with the number of active conversations. All backfilled here: the
run totals from ``run_day`` / ``run_rollup``, the bookings from ``llm_call``. The downgrade
rebuilds the old conversation sums from ``llm_call``.

Revision ID: 8e4d36683789
Revises: 7d2e5c1a9b40
Create Date: 2026-12-02 16:45:24.338747

"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = '8e4d36683789'
down_revision: Union[str, Sequence[str], None] = '7d2e5c1a9b40'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

UTC_DT = sqlmodel.sql.sqltypes.UTCDateTime


def _trunc(pg: bool, column: str, grain: str) -> str:
    if pg:
        return f"date_trunc('{grain}', {column}, 'UTC')"
    fmt = "%Y-%m-%d 00:00:00.000000" if grain == "day" else "%Y-%m-%d %H:00:00.000000"
    return f"strftime('{fmt}', {column})"


def _run_total(name: str, grain: str) -> None:
    op.create_table(
        name,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column(grain, UTC_DT(), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('runs', sa.Integer(), nullable=False),
        sa.Column('cost_usd', sa.Numeric(precision=18, scale=8), nullable=False),
        sa.Column('duration_ms_sum', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint(grain, 'status', name=f'uq_{name}_key'),
    )


def _conversation_sums(name: str, grain: str) -> None:
    op.create_table(
        name,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column(grain, UTC_DT(), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.Column('cost_usd', sa.Numeric(precision=18, scale=8), nullable=False),
        sa.Column('last_at', UTC_DT(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint(grain, 'conversation_id', name=f'uq_{name}_key'),
    )
    with op.batch_alter_table(name, schema=None) as batch_op:
        batch_op.create_index(f'ix_{name}_user_{grain}', ['user_id', grain], unique=False)


def upgrade() -> None:
    op.create_table(
        'conversation_booking',
        sa.Column('conversation_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('started_day', UTC_DT(), nullable=False),
        sa.Column('first_at', UTC_DT(), nullable=False),
        sa.Column('last_at', UTC_DT(), nullable=False),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.Column('cost_usd', sa.Numeric(precision=18, scale=8), nullable=False),
        sa.PrimaryKeyConstraint('conversation_id'),
    )
    with op.batch_alter_table('conversation_booking', schema=None) as batch_op:
        batch_op.create_index(
            'ix_conversation_booking_day_cost', ['started_day', 'cost_usd'], unique=False
        )
        batch_op.create_index(
            'ix_conversation_booking_user_day_cost',
            ['user_id', 'started_day', 'cost_usd'],
            unique=False,
        )
    _run_total('run_day_total', 'day')
    _run_total('run_hour_total', 'hour')

    bind = op.get_bind()
    pg = bind.dialect.name == 'postgresql'
    ex = lambda sql: bind.execute(sa.text(sql))  # noqa: E731
    for table, grain, source in (
        ('run_day_total', 'day', 'run_day'),
        ('run_hour_total', 'hour', 'run_rollup'),
    ):
        ex(
            f"INSERT INTO {table} ({grain}, status, runs, cost_usd, duration_ms_sum) "
            f"SELECT {grain}, status, SUM(runs), COALESCE(SUM(cost_usd), 0), "
            f"COALESCE(SUM(duration_ms_sum), 0) FROM {source} GROUP BY {grain}, status"
        )
    ex(
        "INSERT INTO conversation_booking (conversation_id, user_id, started_day, first_at, "
        "last_at, calls, cost_usd) "
        f"SELECT conversation_id, MAX(COALESCE(user_id, 0)), "
        f"{_trunc(pg, 'MIN(created_at)', 'day')}, MIN(created_at), MAX(created_at), COUNT(*), "
        "COALESCE(SUM(cost_usd), 0) FROM llm_call WHERE conversation_id IS NOT NULL "
        "GROUP BY conversation_id"
    )

    for name, grain in (('conversation_hour', 'hour'), ('conversation_day', 'day')):
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{name}_user_{grain}')
        op.drop_table(name)


def downgrade() -> None:
    _conversation_sums('conversation_day', 'day')
    _conversation_sums('conversation_hour', 'hour')
    bind = op.get_bind()
    pg = bind.dialect.name == 'postgresql'
    for table, grain in (('conversation_hour', 'hour'), ('conversation_day', 'day')):
        when = _trunc(pg, 'created_at', grain)
        bind.execute(sa.text(
            f"INSERT INTO {table} ({grain}, conversation_id, user_id, calls, cost_usd, last_at) "
            f"SELECT {when}, conversation_id, MAX(COALESCE(user_id, 0)), COUNT(*), "
            f"COALESCE(SUM(cost_usd), 0), MAX(created_at) FROM llm_call "
            f"WHERE conversation_id IS NOT NULL GROUP BY {when}, conversation_id"
        ))
    op.drop_table('run_hour_total')
    op.drop_table('run_day_total')
    with op.batch_alter_table('conversation_booking', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_booking_user_day_cost')
        batch_op.drop_index('ix_conversation_booking_day_cost')
    op.drop_table('conversation_booking')
