"""privacy budget: per-project, per-dataset DP budgets and their spends

Adds ``privacy_budgets`` (one total (epsilon, delta) per project and dataset, with the running
spent totals, CHECK constraints that forbid an overspend) and ``privacy_spends`` (one row per DP
query charged, recorded before the query runs). Amounts are integers: epsilon in 1e-9 units,
delta in 1e-18 units.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('privacy_budgets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('dataset_id', sa.String(length=100), nullable=False),
    sa.Column('total_epsilon_e9', sa.BigInteger(), nullable=False),
    sa.Column('total_delta_e18', sa.BigInteger(), nullable=False),
    sa.Column('spent_epsilon_e9', sa.BigInteger(), nullable=False),
    sa.Column('spent_delta_e18', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('set_by', sa.String(length=100), nullable=False),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.CheckConstraint('spent_delta_e18 <= total_delta_e18', name=op.f('ck_privacy_budgets_delta_within_total')),
    sa.CheckConstraint('spent_epsilon_e9 <= total_epsilon_e9', name=op.f('ck_privacy_budgets_epsilon_within_total')),
    sa.CheckConstraint('spent_epsilon_e9 >= 0 AND spent_delta_e18 >= 0', name=op.f('ck_privacy_budgets_spent_valid')),
    sa.CheckConstraint('total_epsilon_e9 > 0 AND total_delta_e18 >= 0', name=op.f('ck_privacy_budgets_totals_valid')),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_privacy_budgets_dataset_id_datasets')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_privacy_budgets_project_id_projects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_budgets')),
    sa.UniqueConstraint('project_id', 'dataset_id', name=op.f('uq_privacy_budgets_project_id'))
    )
    with op.batch_alter_table('privacy_budgets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_budgets_project_id'), ['project_id'], unique=False)

    op.create_table('privacy_spends',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('budget_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('dataset_id', sa.String(length=100), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('epsilon_e9', sa.BigInteger(), nullable=False),
    sa.Column('delta_e18', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('accounting', sa.Text(), nullable=False),
    sa.Column('audit_seq', sa.BigInteger(), nullable=True),
    sa.CheckConstraint('epsilon_e9 > 0 AND delta_e18 >= 0', name=op.f('ck_privacy_spends_amounts_valid')),
    sa.ForeignKeyConstraint(['budget_id'], ['privacy_budgets.id'], name=op.f('fk_privacy_spends_budget_id_privacy_budgets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_spends'))
    )
    with op.batch_alter_table('privacy_spends', schema=None) as batch_op:
        batch_op.create_index('ix_privacy_spends_budget_id_id', ['budget_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('privacy_spends', schema=None) as batch_op:
        batch_op.drop_index('ix_privacy_spends_budget_id_id')

    op.drop_table('privacy_spends')
    with op.batch_alter_table('privacy_budgets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_budgets_project_id'))

    op.drop_table('privacy_budgets')
