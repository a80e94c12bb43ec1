"""review tallies: each reviewer's running figures per batch, for the quality and batch pages

Revision ID: e4a9c7b1d2f3
Revises: c3f5a8d2e1b4
Create Date: 2026-11-30 00:20:00

- `review_tallies`: per (batch, reviewer) sums and counts kept as work is submitted and
  decided (ra_app/core/tallies.py), filled here from the tasks, revisions and decisions
  there are.
- review_decisions.author_id: whose work a second review decided, kept with the decision
  (the task can change hands after a rejection); filled from the task's reviewer.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'e4a9c7b1d2f3'
down_revision = 'c3f5a8d2e1b4'
branch_labels = None
depends_on = None

COUNTS = ('tasks_done', 'edit_n', 'approve', 'approve_minor', 'approve_major', 'reject',
          'agree_n', 'shift_n', 'second_reviews', 'gold_n')
SUMS = ('edit_wer_sum', 'edit_cer_sum', 'agree_wer_sum', 'agree_cer_sum', 'shift_sum',
        'gold_score_sum')
WORK = "a.review_of_id IS NULL AND NOT a.is_gold"
DECIDED = ('approve', 'approve_minor', 'approve_major', 'reject')


def upsert(columns, select):
    """Add what `select` yields (batch_id, reviewer_id, *columns) to the tallies."""
    names = ', '.join(columns)
    added = ', '.join(f'{c} = review_tallies.{c} + excluded.{c}' for c in columns)
    op.execute(f'INSERT INTO review_tallies (batch_id, reviewer_id, {names}) {select} '
               f'ON CONFLICT (batch_id, reviewer_id) DO UPDATE SET {added}')


def upgrade():
    with op.batch_alter_table('review_decisions') as batch:
        batch.add_column(sa.Column('author_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_review_decisions_author_id_users', 'users',
                                 ['author_id'], ['id'])
    # Whose work each second review decided: the task's reviewer now (the best known).
    op.execute('UPDATE review_decisions SET author_id = (SELECT o.reviewer_id '
               'FROM assignments rv JOIN assignments o ON o.id = rv.review_of_id '
               'WHERE rv.id = review_decisions.assignment_id)')
    op.create_table('review_tallies',
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    *[sa.Column(c, sa.Integer(), server_default='0', nullable=False) for c in COUNTS],
    *[sa.Column(c, sa.Float(), server_default='0', nullable=False) for c in SUMS],
    sa.ForeignKeyConstraint(['reviewer_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('batch_id', 'reviewer_id')
    )
    # (Each SELECT has a WHERE: SQLite's upsert after a SELECT needs one.)
    upsert(['tasks_done'],
           f"SELECT coalesce(a.batch_id, 0), a.reviewer_id, count(*) FROM assignments a "
           f"WHERE {WORK} AND a.status IN ('submitted', 'approved') AND a.reviewer_id IS NOT NULL "
           f"GROUP BY coalesce(a.batch_id, 0), a.reviewer_id")
    upsert(['edit_wer_sum', 'edit_cer_sum', 'edit_n'],
           f"SELECT coalesce(a.batch_id, 0), r.author_id, coalesce(sum(r.wer), 0), "
           f"coalesce(sum(r.cer), 0), count(r.wer) FROM transcript_revisions r "
           f"JOIN assignments a ON a.id = r.assignment_id "
           f"WHERE {WORK} AND r.author_id IS NOT NULL "
           f"GROUP BY coalesce(a.batch_id, 0), r.author_id")
    for decision in DECIDED:
        agreement = ([] if decision == 'reject' else
                     ['agree_wer_sum', 'agree_cer_sum', 'agree_n', 'shift_sum', 'shift_n'])
        figures = ('' if decision == 'reject' else
                   ', coalesce(sum(d.wer), 0), coalesce(sum(d.cer), 0), count(d.wer), '
                   'coalesce(sum(d.boundary_diff_s), 0), count(d.boundary_diff_s)')
        upsert([decision, *agreement],
               f"SELECT coalesce(rv.batch_id, 0), d.author_id, count(*){figures} "
               f"FROM review_decisions d JOIN assignments rv ON rv.id = d.assignment_id "
               f"WHERE d.decision = '{decision}' AND d.author_id IS NOT NULL "
               f"GROUP BY coalesce(rv.batch_id, 0), d.author_id")
    upsert(['second_reviews'],
           "SELECT coalesce(rv.batch_id, 0), d.reviewer_id, count(*) FROM review_decisions d "
           "JOIN assignments rv ON rv.id = d.assignment_id WHERE rv.review_of_id IS NOT NULL "
           "GROUP BY coalesce(rv.batch_id, 0), d.reviewer_id")
    upsert(['gold_n', 'gold_score_sum'],
           "SELECT coalesce(a.batch_id, 0), a.reviewer_id, count(*), coalesce(sum(a.score), 0) "
           "FROM assignments a WHERE a.is_gold AND a.score IS NOT NULL "
           "AND a.reviewer_id IS NOT NULL GROUP BY coalesce(a.batch_id, 0), a.reviewer_id")


def downgrade():
    op.drop_table('review_tallies')
    with op.batch_alter_table('review_decisions') as batch:
        batch.drop_constraint('fk_review_decisions_author_id_users', type_='foreignkey')
        batch.drop_column('author_id')
