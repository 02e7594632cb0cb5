"""indexes for the applications register's sort and status filter

The register lists applications newest first (``ORDER BY created_at DESC, id DESC`` with
``LIMIT``/``OFFSET``), optionally for one status. Without an index each page sorted the whole
``projects`` table; ``(created_at, id)`` and ``(status, created_at, id)`` let both backends
walk the index backwards, reading only the page's entries (and, for the page's ids, only the
index: it covers the sort key and the primary key).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 00:45:00.000000
"""

from __future__ import annotations

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.create_index('ix_projects_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_projects_status_created_at_id',
                              ['status', 'created_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_index('ix_projects_status_created_at_id')
        batch_op.drop_index('ix_projects_created_at_id')
