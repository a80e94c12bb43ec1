"""second review agreement and gold answers

Revision ID: 75d930af7d23
Revises: 3b7e2c91a4f0
Create Date: 2026-11-21 18:26:53.389464

Staged review and quality: a second review's agreement with the author (WER/CER, segment
boundary shift) on review_decisions; a submit that is not a revision (gold task rows,
segment boundaries) on assignments.answer; the admin's gold answers on transcript
revisions. Indexes for finding a task's second reviews and a task's revisions.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '75d930af7d23'
down_revision = '3b7e2c91a4f0'
branch_labels = None
depends_on = None

REVIEW_PENDING = "status = 'pending' AND reviewer_id IS NULL AND review_of_id IS NOT NULL"


def upgrade():
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answer', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
        batch_op.create_index(batch_op.f('ix_assignments_review_of_id'), ['review_of_id'], unique=False)
        batch_op.create_index('ix_assignments_review_pending', ['created_at', 'window_start_s'],
                              unique=False, postgresql_where=sa.text(REVIEW_PENDING),
                              sqlite_where=sa.text(REVIEW_PENDING))

    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wer', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('cer', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('boundary_diff_s', sa.Float(), nullable=True))

    with op.batch_alter_table('transcript_revisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_gold', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch_op.create_index(batch_op.f('ix_transcript_revisions_assignment_id'), ['assignment_id'], unique=False)
        batch_op.create_index('ix_transcript_revisions_gold', ['sample_id'], unique=False,
                              postgresql_where=sa.text('is_gold'), sqlite_where=sa.text('is_gold'))

    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.create_index('ix_samples_created_at', ['created_at'], unique=False)

    with op.batch_alter_table('translation_revisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_translation_revisions_assignment_id'), ['assignment_id'], unique=False)



def downgrade():
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.drop_index('ix_samples_created_at')

    with op.batch_alter_table('translation_revisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_translation_revisions_assignment_id'))

    with op.batch_alter_table('transcript_revisions', schema=None) as batch_op:
        batch_op.drop_index('ix_transcript_revisions_gold')
        batch_op.drop_index(batch_op.f('ix_transcript_revisions_assignment_id'))
        batch_op.drop_column('is_gold')

    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.drop_column('boundary_diff_s')
        batch_op.drop_column('cer')
        batch_op.drop_column('wer')

    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_index('ix_assignments_review_pending')
        batch_op.drop_index(batch_op.f('ix_assignments_review_of_id'))
        batch_op.drop_column('answer')

