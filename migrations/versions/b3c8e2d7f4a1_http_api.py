"""http api: keys and the recordings sent through it

Revision ID: b3c8e2d7f4a1
Revises: a7d3e9f1b2c4
Create Date: 2026-11-30 09:30:00

- `api_keys`: keys of other systems on /api/v1 (hashed), their scopes and webhook secret.
- `api_submissions`: each recording sent, its idempotency id, the ingest it became and what
  its webhook has been told.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'b3c8e2d7f4a1'
down_revision = 'a7d3e9f1b2c4'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def postgres():
    return op.get_bind().dialect.name == 'postgresql'


def stamped(table):
    if postgres():
        op.execute(f'CREATE TRIGGER {table}_stamp_updated_at BEFORE INSERT OR UPDATE ON {table} '
                   'FOR EACH ROW EXECUTE FUNCTION stamp_updated_at()')


def upgrade():
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', JSON, nullable=False),
    sa.Column('webhook_secret', sa.String(length=64), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('prefix')
    )
    with op.batch_alter_table('api_keys') as batch:
        batch.create_index('ix_api_keys_updated_at', ['updated_at'])
    stamped('api_keys')
    op.create_table('api_submissions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('reference', sa.Text(), nullable=False),
    sa.Column('subject', sa.String(length=512), nullable=False),
    sa.Column('sample_id', sa.Uuid(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('webhook_url', sa.Text(), nullable=True),
    sa.Column('notified', sa.String(length=32), nullable=True),
    sa.Column('webhook_attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('webhook_next_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('webhook_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], ),
    sa.ForeignKeyConstraint(['sample_id'], ['samples.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('api_key_id', 'external_id')
    )
    with op.batch_alter_table('api_submissions') as batch:
        batch.create_index('ix_api_submissions_api_key_id', ['api_key_id'])
        batch.create_index('ix_api_submissions_subject', ['subject'])
        batch.create_index('ix_api_submissions_sample_id', ['sample_id'])
        batch.create_index('ix_api_submissions_updated_at', ['updated_at'])
    stamped('api_submissions')


def downgrade():
    op.drop_table('api_submissions')
    op.drop_table('api_keys')
