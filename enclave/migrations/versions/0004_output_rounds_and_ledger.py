"""output review rounds and the release ledger

Adds review rounds to output requests (``review_round`` on requests, files and votes; files
replaced or removed by an amendment keep their row with ``retired_round``; a vote's comment has
a ``visibility``, private to controllers or shared with the researcher; a file has an
``exception_request``), so that a returned request can be amended and resubmitted with the
earlier votes kept as history. Adds ``release_ledger``: each released table's cells and
population, which the differencing check compares new requests with.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 23:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('output_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_round', sa.Integer(), nullable=False,
                                      server_default='1'))

    with op.batch_alter_table('output_files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('exception_request', sa.Text(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('review_round', sa.Integer(), nullable=False,
                                      server_default='1'))
        batch_op.add_column(sa.Column('retired_round', sa.Integer(), nullable=True))
        batch_op.drop_constraint('uq_output_files_request_id', type_='unique')
        batch_op.create_unique_constraint('uq_output_files_request_id',
                                          ['request_id', 'name', 'review_round'])

    with op.batch_alter_table('output_reviews', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_round', sa.Integer(), nullable=False,
                                      server_default='1'))
        batch_op.add_column(sa.Column('visibility', sa.String(length=10), nullable=False,
                                      server_default='private'))
        batch_op.drop_constraint('uq_output_reviews_file_id', type_='unique')
        batch_op.create_unique_constraint('uq_output_reviews_file_id',
                                          ['file_id', 'reviewer', 'review_round'])

    op.create_table('release_ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('request_id', sa.String(length=40), nullable=False),
    sa.Column('file_name', sa.String(length=200), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('population', sa.Text(), nullable=False),
    sa.Column('cells', sa.Text(), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['output_requests.id'], name=op.f('fk_release_ledger_request_id_output_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_release_ledger')),
    sa.UniqueConstraint('request_id', 'file_name', name=op.f('uq_release_ledger_request_id'))
    )
    with op.batch_alter_table('release_ledger', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_release_ledger_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_release_ledger_request_id'), ['request_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('release_ledger', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_release_ledger_request_id'))
        batch_op.drop_index(batch_op.f('ix_release_ledger_project_id'))
    op.drop_table('release_ledger')

    with op.batch_alter_table('output_reviews', schema=None) as batch_op:
        batch_op.drop_constraint('uq_output_reviews_file_id', type_='unique')
        batch_op.create_unique_constraint('uq_output_reviews_file_id', ['file_id', 'reviewer'])
        batch_op.drop_column('visibility')
        batch_op.drop_column('review_round')

    with op.batch_alter_table('output_files', schema=None) as batch_op:
        batch_op.drop_constraint('uq_output_files_request_id', type_='unique')
        batch_op.create_unique_constraint('uq_output_files_request_id', ['request_id', 'name'])
        batch_op.drop_column('retired_round')
        batch_op.drop_column('review_round')
        batch_op.drop_column('exception_request')

    with op.batch_alter_table('output_requests', schema=None) as batch_op:
        batch_op.drop_column('review_round')
