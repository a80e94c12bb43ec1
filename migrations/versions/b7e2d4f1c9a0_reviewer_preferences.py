"""reviewer preferences: key bindings, what follows a submit, the rewind on resume

Revision ID: b7e2d4f1c9a0
Revises: 9c4e1f7a2b3d
Create Date: 2026-11-29 23:40:00

- users.preferences: a JSON document with only the settings a reviewer changed (see
  ra_app/review/preferences.py); every existing account starts with the defaults.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'b7e2d4f1c9a0'
down_revision = '9c4e1f7a2b3d'
branch_labels = None
depends_on = None

JSON = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql')


def upgrade():
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('preferences', JSON, nullable=False,
                                   server_default=sa.text("'{}'")))


def downgrade():
    with op.batch_alter_table('users') as batch:
        batch.drop_column('preferences')
