"""label studio import: annotations brought in from Label Studio

Revision ID: a7d3e9f1b2c4
Revises: f2b8d6c4a1e7
Create Date: 2026-11-30 09:00:00

- revision_origin gains `label_studio`: a person's annotation made in Label Studio.
- transcript_revisions / translation_revisions gain `author_name`: the author as Label
  Studio named them, when they have no account here.
- `imported_items`: each annotation or prediction already imported, so a re-import of the
  same export changes nothing.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'a7d3e9f1b2c4'
down_revision = 'f2b8d6c4a1e7'
branch_labels = None
depends_on = None

REVISION_TABLES = ('transcript_revisions', 'translation_revisions')
OLD_ORIGINS = ('youtube_subtitles', 'sidecar_subtitles', 'gemini', 'gemini_repair', 'human',
               'whisperx', 'imported')


def postgres():
    return op.get_bind().dialect.name == 'postgresql'


def upgrade():
    if postgres():
        # ADD VALUE cannot be used in the transaction that adds it; nothing here uses it.
        op.execute("ALTER TYPE revision_origin ADD VALUE IF NOT EXISTS 'label_studio'")
    for table in REVISION_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('author_name', sa.String(length=255), nullable=True))
    op.create_table('imported_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tool', sa.String(length=32), nullable=False),
    sa.Column('sample_id', sa.Uuid(), nullable=False),
    sa.Column('item', sa.String(length=16), nullable=False),
    sa.Column('item_id', sa.String(length=64), nullable=False),
    sa.Column('item_version', sa.String(length=64), nullable=False),
    sa.Column('transcript_revision_id', sa.Uuid(), nullable=True),
    sa.Column('translation_revision_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['sample_id'], ['samples.id'], ),
    sa.ForeignKeyConstraint(['transcript_revision_id'], ['transcript_revisions.id'], ),
    sa.ForeignKeyConstraint(['translation_revision_id'], ['translation_revisions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tool', 'sample_id', 'item', 'item_id', 'item_version')
    )
    with op.batch_alter_table('imported_items') as batch:
        batch.create_index('ix_imported_items_sample_id', ['sample_id'])
        batch.create_index('ix_imported_items_updated_at', ['updated_at'])
    if postgres():
        op.execute('CREATE TRIGGER imported_items_stamp_updated_at BEFORE INSERT OR UPDATE '
                   'ON imported_items FOR EACH ROW EXECUTE FUNCTION stamp_updated_at()')


def downgrade():
    op.drop_table('imported_items')
    for table in REVISION_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('author_name')
    # Label Studio annotations stay as people's work: they become human revisions.
    for table in REVISION_TABLES:
        op.execute(f"UPDATE {table} SET origin = 'human' WHERE origin = 'label_studio'")
    if postgres():
        # Postgres cannot drop an enum value: rebuild the type without it.
        op.execute("ALTER TYPE revision_origin RENAME TO revision_origin_old")
        values = ", ".join(f"'{v}'" for v in OLD_ORIGINS)
        op.execute(f"CREATE TYPE revision_origin AS ENUM ({values})")
        for table in REVISION_TABLES:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN origin TYPE revision_origin "
                       f"USING origin::text::revision_origin")
        op.execute("DROP TYPE revision_origin_old")
