"""output exception rules and notebook re-runs

Adds ``output_files.exception_rules`` (the rules a file's exception request asks controllers to
waive, as a JSON list; the reason stays in ``exception_request``) and ``output_reruns``: a
controller's re-run of a request's notebooks in a fresh sandbox, with the comparison of the
regenerated files against the submitted ones.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 00:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('output_files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('exception_rules', sa.Text(), nullable=False,
                                      server_default='[]'))

    op.create_table('output_reruns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.String(length=40), nullable=False),
    sa.Column('review_round', sa.Integer(), nullable=False),
    sa.Column('run_by', sa.String(length=100), nullable=False),
    sa.Column('run_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('result', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['output_requests.id'], name=op.f('fk_output_reruns_request_id_output_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_output_reruns'))
    )
    with op.batch_alter_table('output_reruns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_output_reruns_request_id'), ['request_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('output_reruns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_output_reruns_request_id'))
    op.drop_table('output_reruns')
    with op.batch_alter_table('output_files', schema=None) as batch_op:
        batch_op.drop_column('exception_rules')
