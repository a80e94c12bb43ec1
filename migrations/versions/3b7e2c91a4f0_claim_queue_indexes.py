"""claim queue indexes

Revision ID: 3b7e2c91a4f0
Revises: d8280272a96d
Create Date: 2026-11-21 17:40:00

"Start next" reads two queues: the reviewer's own pending tasks and the shared pool. A
partial index for each keeps a claim an ordered index scan with 100,000 tasks waiting,
instead of a sort of the whole table under every claimer's lock.
"""
from alembic import op
import sqlalchemy as sa

revision = '3b7e2c91a4f0'
down_revision = 'd8280272a96d'
branch_labels = None
depends_on = None

OWN = "status = 'pending'"
POOL = "status = 'pending' AND reviewer_id IS NULL"


def upgrade():
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index('ix_assignments_own_pending',
                              ['reviewer_id', 'created_at', 'window_start_s'], unique=False,
                              postgresql_where=sa.text(OWN), sqlite_where=sa.text(OWN))
        batch_op.create_index('ix_assignments_pool_pending',
                              ['created_at', 'window_start_s'], unique=False,
                              postgresql_where=sa.text(POOL), sqlite_where=sa.text(POOL))


def downgrade():
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_index('ix_assignments_pool_pending')
        batch_op.drop_index('ix_assignments_own_pending')
