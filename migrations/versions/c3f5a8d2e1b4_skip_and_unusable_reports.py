"""skip and unusable reports: reviewers give tasks back or report unusable audio

Revision ID: c3f5a8d2e1b4
Revises: b7e2d4f1c9a0
Create Date: 2026-11-30 00:00:00

- `reports`: a reviewer's skip (the task goes back to the pool) or unusable-audio report
  (the sample is discarded and its open tasks withdrawn), until an admin reverses it.
- assignment_status gains `withdrawn`: the task of a sample reported unusable.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'c3f5a8d2e1b4'
down_revision = 'b7e2d4f1c9a0'
branch_labels = None
depends_on = None

STATUSES = ('pending', 'in_progress', 'submitted', 'approved', 'rejected')
# The claim queues' partial indexes (3b7e2c91a4f0, 75d930af7d23) compare the status.
PARTIAL = {
    'ix_assignments_own_pending': (['reviewer_id', 'created_at', 'window_start_s'],
                                   "status = 'pending'"),
    'ix_assignments_pool_pending': (['created_at', 'window_start_s'],
                                    "status = 'pending' AND reviewer_id IS NULL"),
    'ix_assignments_review_pending': (['created_at', 'window_start_s'],
                                      "status = 'pending' AND reviewer_id IS NULL "
                                      "AND review_of_id IS NOT NULL"),
}


def postgres():
    return op.get_bind().dialect.name == 'postgresql'


def upgrade():
    if postgres():
        # ADD VALUE cannot be used in the transaction that adds it; nothing here uses it.
        op.execute("ALTER TYPE assignment_status ADD VALUE IF NOT EXISTS 'withdrawn'")
    kind = sa.Enum('skip', 'unusable', name='report_kind')
    op.create_table('reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', kind, nullable=False),
    sa.Column('assignment_id', sa.Uuid(), nullable=False),
    sa.Column('sample_id', sa.Uuid(), nullable=False),
    sa.Column('reporter_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('previous_state', sa.String(length=32), nullable=True),
    sa.Column('reversed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reversed_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], ),
    sa.ForeignKeyConstraint(['reporter_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['reversed_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['sample_id'], ['samples.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reports') as batch:
        batch.create_index('ix_reports_assignment_id', ['assignment_id'])
        batch.create_index('ix_reports_sample_id', ['sample_id'])
        batch.create_index('ix_reports_reporter_id', ['reporter_id'])
        batch.create_index('ix_reports_updated_at', ['updated_at'])
    if postgres():
        op.execute('CREATE TRIGGER reports_stamp_updated_at BEFORE INSERT OR UPDATE ON reports '
                   'FOR EACH ROW EXECUTE FUNCTION stamp_updated_at()')


def downgrade():
    op.drop_table('reports')
    if postgres():
        op.execute('DROP TYPE IF EXISTS report_kind')
        # Postgres cannot drop an enum value: withdrawn tasks become pending again, and the
        # type is made anew without it.
        op.execute("UPDATE assignments SET status = 'pending' WHERE status = 'withdrawn'")
        for name in PARTIAL:  # made anew with the type
            op.drop_index(name, table_name='assignments')
        op.execute('ALTER TYPE assignment_status RENAME TO assignment_status_old')
        postgresql.ENUM(*STATUSES, name='assignment_status').create(op.get_bind())
        op.execute('ALTER TABLE assignments ALTER COLUMN status TYPE assignment_status '
                   'USING status::text::assignment_status')
        op.execute('DROP TYPE assignment_status_old')
        for name, (columns, where) in PARTIAL.items():
            op.create_index(name, 'assignments', columns, postgresql_where=sa.text(where))
    else:
        op.execute("UPDATE assignments SET status = 'pending' WHERE status = 'withdrawn'")
