"""exactly once: outbox, worker sightings, draft versions, session epochs, revision stamps

Revision ID: 9c4e1f7a2b3d
Revises: 75d930af7d23
Create Date: 2026-11-29 20:24:18.381492

- `outbox`: tasks written in the same transaction as the change that calls for them, sent
  by the dispatcher; `workers`: which Celery worker consumes which queue, and when it was
  last seen.
- assignments: `draft_version` (a stale autosave from another tab is refused), `claimed_at`
  (what can have been heard is bounded by the time since), `lease_lost_by_id` (a reviewer
  whose lease ran out is told why).
- users: `session_epoch` (a password reset or role change ends open sessions); the per-
  account lock (`locked_until`) goes: sign-in is throttled per account-and-address and per
  address by Flask-Limiter.
- Revisions get `updated_at` (gold marks change them), taken from `created_at`.
- Postgres keeps `updated_at` itself: a trigger on every table sets it from the database
  clock on insert and update, unless a restore says it is writing stamps from a backup
  (`SET LOCAL app.restoring = 'on'`).
- JSON `null` in nullable JSON columns becomes SQL NULL (the models now write NULL).
- segments.audio_path goes: a segment's clip is cut from the master by the export only.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '9c4e1f7a2b3d'
down_revision = '75d930af7d23'
branch_labels = None
depends_on = None

JSON = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql')
STAMPED = ('users', 'sources', 'samples', 'transcript_revisions', 'translation_revisions',
           'word_alignments', 'segments', 'job_runs', 'batches', 'assignments',
           'review_decisions', 'lexicon_terms', 'outbox', 'workers')
NULLABLE_JSON = (('assignments', 'draft'), ('assignments', 'answer'),
                 ('samples', 'denoise_info'), ('job_runs', 'result'))
STAMP_FUNCTION = """
CREATE OR REPLACE FUNCTION stamp_updated_at() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('app.restoring', true), '') <> 'on' THEN
        NEW.updated_at := clock_timestamp();
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
"""


def upgrade():
    op.create_table('workers',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('queues', sa.String(length=255), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('task_name', sa.String(length=128), nullable=False),
    sa.Column('args', JSON, nullable=False),
    sa.Column('kwargs', JSON, nullable=False),
    sa.Column('task_id', sa.String(length=64), nullable=False),
    sa.Column('sample_id', sa.Uuid(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sends', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['sample_id'], ['samples.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('task_id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_sample', ['sample_id', 'created_at'], unique=False)
        batch_op.create_index('ix_outbox_unsent', ['id'], unique=False, postgresql_where=sa.text('sent_at IS NULL'), sqlite_where=sa.text('sent_at IS NULL'))
        batch_op.create_index(batch_op.f('ix_outbox_updated_at'), ['updated_at'], unique=False)

    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('draft_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('lease_lost_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_assignments_lease_lost_by', 'users', ['lease_lost_by_id'], ['id'])

    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_job_runs_task_id', ['task_id'], unique=False)

    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.drop_column('audio_path')

    for table in ('transcript_revisions', 'translation_revisions'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            # func.now(): CURRENT_TIMESTAMP on SQLite, which copies the table to add it
            batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False))
            batch_op.create_index(batch_op.f(f'ix_{table}_updated_at'), ['updated_at'], unique=False)
        op.execute(f'UPDATE {table} SET updated_at = created_at')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), server_default='0', nullable=False))
        batch_op.drop_column('locked_until')

    postgres = op.get_bind().dialect.name == 'postgresql'
    json_null = "'null'::jsonb" if postgres else "'null'"
    for table, column in NULLABLE_JSON:
        op.execute(f'UPDATE {table} SET {column} = NULL WHERE {column} = {json_null}')
    if postgres:
        op.execute(STAMP_FUNCTION)
        for table in STAMPED:
            op.execute(f'CREATE TRIGGER {table}_stamp_updated_at BEFORE INSERT OR UPDATE ON {table} '
                       'FOR EACH ROW EXECUTE FUNCTION stamp_updated_at()')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for table in STAMPED:
            op.execute(f'DROP TRIGGER IF EXISTS {table}_stamp_updated_at ON {table}')
        op.execute('DROP FUNCTION IF EXISTS stamp_updated_at()')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_column('session_epoch')

    for table in ('translation_revisions', 'transcript_revisions'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_updated_at'))
            batch_op.drop_column('updated_at')

    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audio_path', sa.String(length=1024), nullable=True))

    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_job_runs_task_id')

    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_constraint('fk_assignments_lease_lost_by', type_='foreignkey')
        batch_op.drop_column('lease_lost_by_id')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('draft_version')

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_updated_at'))
        batch_op.drop_index('ix_outbox_unsent', postgresql_where=sa.text('sent_at IS NULL'), sqlite_where=sa.text('sent_at IS NULL'))
        batch_op.drop_index('ix_outbox_sample')

    op.drop_table('outbox')
    op.drop_table('workers')
