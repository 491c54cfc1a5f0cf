"""user email_verified_at: who proved the account's email (OIDC link rules)

An OIDC login links into an existing account by email only when that account's email was
proven: by an identity provider (an earlier OIDC sign-up or link) or vouched for by an operator
(``users create``). A self-registered password account has not proven it (anyone can register
someone else's address), so linking into it would hand the squatter's account to the real
owner's identity — or rather the real owner's sign-ins to the squatter. Backfill: accounts with
an OIDC identity, and accounts created by an operator (audit ``user_created``).

Revision ID: c41f0e2b9d13
Revises: 2d472fae45b9
Create Date: 2026-12-02 13:40:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'c41f0e2b9d13'
down_revision: Union[str, Sequence[str], None] = '2d472fae45b9'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_verified_at', sa.DateTime(), nullable=True))
    op.execute(
        """
        UPDATE app_user SET email_verified_at = created_at
        WHERE id IN (SELECT user_id FROM oidc_identity)
           OR id IN (SELECT subject_id FROM audit_event
                     WHERE action = 'user_created' AND subject_id IS NOT NULL)
        """
    )


def downgrade() -> None:
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.drop_column('email_verified_at')
