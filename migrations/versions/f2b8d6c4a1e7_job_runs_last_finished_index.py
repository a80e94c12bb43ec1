"""job runs: an index for when each stage last finished

Revision ID: f2b8d6c4a1e7
Revises: e4a9c7b1d2f3
Create Date: 2026-11-30 03:00:00

/readyz/queues, /metrics and `flask doctor` ask, per stage, when a run last finished; with
a million job runs that was a full scan on every scrape. On Postgres the index is built
CONCURRENTLY, so the release still serving keeps writing job runs meanwhile (the
upgrade rule in the README: a migration never blocks the running release).
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'f2b8d6c4a1e7'
down_revision = 'e4a9c7b1d2f3'
branch_labels = None
depends_on = None

NAME = 'ix_job_runs_stage_finished'


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.create_index(NAME, 'job_runs', ['stage', 'finished_at'],
                            postgresql_concurrently=True, if_not_exists=True)
    else:
        op.create_index(NAME, 'job_runs', ['stage', 'finished_at'])


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.drop_index(NAME, table_name='job_runs', postgresql_concurrently=True,
                          if_exists=True)
    else:
        op.drop_index(NAME, table_name='job_runs')
