"""usage filter options (key-only day / hour x user x kind x value tables)

``usage_option_day`` / ``usage_option_hour``: the distinct non-empty model, provider,
pipeline and caller of each day / hour, per user and for every user together (user_id -1):
the dashboard's filter options read a few dozen rows a day instead of a DISTINCT per kind
over the counter rollups. Backfilled from usage_day / usage_rollup (which hold every call's
key per day / hour and user).

Revision ID: f3c9a1d27b64
Revises: 34616e948626
Create Date: 2026-12-03 09:10:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = 'f3c9a1d27b64'
down_revision: Union[str, Sequence[str], None] = '34616e948626'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

EVERY_USER = -1
KINDS = ('model', 'provider', 'pipeline', 'caller')


def upgrade() -> None:
    for table, grain, source in (
        ('usage_option_day', 'day', 'usage_day'),
        ('usage_option_hour', 'hour', 'usage_rollup'),
    ):
        op.create_table(
            table,
            sa.Column('user_id', sa.Integer(), nullable=False),
            sa.Column(grain, sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
            sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
            sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
            sa.PrimaryKeyConstraint('user_id', grain, 'kind', 'value'),
        )
        for kind in KINDS:
            for user in ('user_id', str(EVERY_USER)):
                op.execute(
                    f"INSERT INTO {table} (user_id, {grain}, kind, value) "
                    f"SELECT DISTINCT {user}, {grain}, '{kind}', {kind} FROM {source} "
                    f"WHERE {kind} <> ''"
                )


def downgrade() -> None:
    op.drop_table('usage_option_hour')
    op.drop_table('usage_option_day')
