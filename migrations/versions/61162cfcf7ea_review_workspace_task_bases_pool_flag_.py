"""review workspace: task bases, pool flag, progress, revision provenance

Revision ID: 61162cfcf7ea
Revises: 7a2fc6026fb7
Create Date: 2026-11-21 16:27:00

Review tasks remember the revisions they started from (a submit whose window changed since
is stale), whether they came from the shared pool, and how far the reviewer got; human
revisions point at the task they were submitted from; a new revision origin `imported`
(machine output brought in from files, such as the demo batch).
"""
from alembic import op
import sqlalchemy as sa

revision = '61162cfcf7ea'
down_revision = '7a2fc6026fb7'
branch_labels = None
depends_on = None

OLD_ORIGINS = ('youtube_subtitles', 'sidecar_subtitles', 'gemini', 'gemini_repair', 'human',
               'whisperx')
REVISION_TABLES = ('transcript_revisions', 'translation_revisions')


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TYPE revision_origin ADD VALUE IF NOT EXISTS 'imported'")
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('from_pool', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('base_transcript_revision_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('base_translation_revision_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('progress', sa.Float(), server_default='0', nullable=False))
        batch_op.create_foreign_key('fk_assignments_base_transcript_revision',
                                    'transcript_revisions', ['base_transcript_revision_id'], ['id'])
        batch_op.create_foreign_key('fk_assignments_base_translation_revision',
                                    'translation_revisions', ['base_translation_revision_id'], ['id'])
    for table in REVISION_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('assignment_id', sa.Uuid(), nullable=True))
            batch_op.create_foreign_key(f'fk_{table}_assignment', 'assignments',
                                        ['assignment_id'], ['id'])


def downgrade():
    for table in REVISION_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f'fk_{table}_assignment', type_='foreignkey')
            batch_op.drop_column('assignment_id')
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_constraint('fk_assignments_base_translation_revision', type_='foreignkey')
        batch_op.drop_constraint('fk_assignments_base_transcript_revision', type_='foreignkey')
        batch_op.drop_column('progress')
        batch_op.drop_column('base_translation_revision_id')
        batch_op.drop_column('base_transcript_revision_id')
        batch_op.drop_column('from_pool')
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # Postgres cannot drop an enum value: rebuild the type without it. Imported
        # revisions become sidecar subtitles, the nearest older origin.
        for table in REVISION_TABLES:
            op.execute(f"UPDATE {table} SET origin = 'sidecar_subtitles' WHERE origin = 'imported'")
        op.execute("ALTER TYPE revision_origin RENAME TO revision_origin_old")
        values = ", ".join(f"'{v}'" for v in OLD_ORIGINS)
        op.execute(f"CREATE TYPE revision_origin AS ENUM ({values})")
        for table in REVISION_TABLES:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN origin TYPE revision_origin "
                       f"USING origin::text::revision_origin")
        op.execute("DROP TYPE revision_origin_old")
