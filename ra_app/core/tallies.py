"""Each reviewer's running figures per batch (review_tallies), kept as work is submitted and
decided, so the quality and batch pages read a few hundred rows, not every revision and
decision ever made.

What is counted, and where the count moves:
- tasks_done: first-pass tasks (not second reviews, not gold) submitted or approved; +1 on a
  submit, −1 when a second reviewer rejects it (it goes back to its author), +1 again on the
  resubmit.
- edit WER/CER: the machine draft against each transcript revision a first-pass submit
  writes (sums and a count, for means).
- approve / approve_minor / approve_major / reject and agreement (WER/CER, boundary shift):
  second reviewers' decisions on this reviewer's work (its author when decided:
  review_decisions.author_id); second_reviews: decisions they made.
- gold: hidden gold tasks answered, and the sum of their scores.

`rebuild()` recounts them all from the tasks, revisions and decisions (`flask quality
recount`; the tests check the running figures against it).
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from ..extensions import db
from .models import (
    Assignment,
    AssignmentStatus,
    Decision,
    ReviewDecision,
    ReviewTally,
    TranscriptRevision,
)

DONE = (AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED)
FIELDS = tuple(
    c.name for c in ReviewTally.__table__.columns if c.name not in ("batch_id", "reviewer_id")
)
DECIDED = {
    Decision.APPROVE: "approve",
    Decision.APPROVE_MINOR: "approve_minor",
    Decision.APPROVE_MAJOR: "approve_major",
    Decision.REJECT: "reject",
}

Changes = dict[tuple[int, int], dict[str, float]]


def add(changes: Changes) -> None:
    """Add `changes` ({(batch_id, reviewer_id): {field: amount}}) in the caller's transaction.
    Each is one atomic upsert; the rows are touched in key order, so two transactions that
    touch the same two rows never wait on each other crosswise."""
    table = ReviewTally.__table__
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    for (batch_id, reviewer_id), amounts in sorted(changes.items()):
        amounts = {k: v for k, v in amounts.items() if v}
        if not amounts or reviewer_id is None:
            continue
        statement = insert(table).values(batch_id=batch_id, reviewer_id=reviewer_id, **amounts)
        statement = statement.on_conflict_do_update(
            index_elements=["batch_id", "reviewer_id"],
            set_={k: table.c[k] + statement.excluded[k] for k in amounts},
        )
        db.session.execute(statement)


def key(task: Assignment, reviewer_id: int | None = None) -> tuple[int, int]:
    return task.batch_id or 0, reviewer_id if reviewer_id is not None else task.reviewer_id


def submitted(task: Assignment, scores: dict | None) -> None:
    """A first-pass or gold task was submitted; `scores` are its transcript revision's WER
    and CER against the machine draft (None when it wrote no transcript revision)."""
    if task.review_of_id is not None:
        return
    if task.is_gold:
        if task.score is not None:
            add({key(task): {"gold_n": 1, "gold_score_sum": task.score}})
        return
    amounts = {"tasks_done": 1}
    if scores and scores.get("wer") is not None:
        amounts |= {
            "edit_wer_sum": scores["wer"],
            "edit_cer_sum": scores.get("cer") or 0.0,
            "edit_n": 1,
        }
    add({key(task): amounts})


def decided(
    review: Assignment, original: Assignment, decider_id: int, decision: Decision, record: dict
) -> None:
    """A second reviewer decided on `original`'s work (a reject sends it back: not done)."""
    author = {DECIDED[decision]: 1}
    if decision is Decision.REJECT:
        author["tasks_done"] = -1
    else:
        if record.get("wer") is not None:
            author |= {
                "agree_wer_sum": record["wer"],
                "agree_cer_sum": record.get("cer") or 0.0,
                "agree_n": 1,
            }
        if record.get("boundary_diff_s") is not None:
            author |= {"shift_sum": record["boundary_diff_s"], "shift_n": 1}
    changes: Changes = defaultdict(dict)
    changes[key(review, original.reviewer_id)] = author
    mine = changes[key(review, decider_id)]
    mine["second_reviews"] = mine.get("second_reviews", 0) + 1
    add(dict(changes))


def rebuild() -> int:
    """Recount every tally from the tasks, revisions and decisions; returns the rows."""
    changes: Changes = defaultdict(lambda: defaultdict(float))
    batch = sa.func.coalesce(Assignment.batch_id, 0)
    work = Assignment.review_of_id.is_(None) & Assignment.is_gold.is_(False)
    for b, uid, n in db.session.execute(
        sa.select(batch, Assignment.reviewer_id, sa.func.count())
        .where(work, Assignment.status.in_(DONE))
        .group_by(batch, Assignment.reviewer_id)
    ):
        changes[(b, uid)]["tasks_done"] += n
    for b, uid, wer, cer, n in db.session.execute(
        sa.select(
            batch,
            TranscriptRevision.author_id,
            sa.func.sum(TranscriptRevision.wer),
            sa.func.sum(TranscriptRevision.cer),
            sa.func.count(TranscriptRevision.wer),
        )
        .join(Assignment, Assignment.id == TranscriptRevision.assignment_id)
        .where(work)
        .group_by(batch, TranscriptRevision.author_id)
    ):
        changes[(b, uid)] |= {"edit_wer_sum": wer or 0.0, "edit_cer_sum": cer or 0.0, "edit_n": n}
    review, original = aliased(Assignment), aliased(Assignment)
    review_batch = sa.func.coalesce(review.batch_id, 0)
    author = sa.func.coalesce(ReviewDecision.author_id, original.reviewer_id)
    for b, uid, decision, n, wer, cer, n_text, shift, n_shift in db.session.execute(
        sa.select(
            review_batch,
            author,
            ReviewDecision.decision,
            sa.func.count(),
            sa.func.sum(ReviewDecision.wer),
            sa.func.sum(ReviewDecision.cer),
            sa.func.count(ReviewDecision.wer),
            sa.func.sum(ReviewDecision.boundary_diff_s),
            sa.func.count(ReviewDecision.boundary_diff_s),
        )
        .join(review, review.id == ReviewDecision.assignment_id)
        .join(original, original.id == review.review_of_id)
        .group_by(review_batch, author, ReviewDecision.decision)
    ):
        if decision not in DECIDED:
            continue
        row = changes[(b, uid)]
        row[DECIDED[decision]] += n
        if decision is not Decision.REJECT:
            row["agree_wer_sum"] += wer or 0.0
            row["agree_cer_sum"] += cer or 0.0
            row["agree_n"] += n_text
            row["shift_sum"] += shift or 0.0
            row["shift_n"] += n_shift
    for b, uid, n in db.session.execute(
        sa.select(review_batch, ReviewDecision.reviewer_id, sa.func.count())
        .join(review, review.id == ReviewDecision.assignment_id)
        .where(review.review_of_id.is_not(None))
        .group_by(review_batch, ReviewDecision.reviewer_id)
    ):
        changes[(b, uid)]["second_reviews"] += n
    for b, uid, n, total in db.session.execute(
        sa.select(batch, Assignment.reviewer_id, sa.func.count(), sa.func.sum(Assignment.score))
        .where(Assignment.is_gold.is_(True), Assignment.score.is_not(None))
        .group_by(batch, Assignment.reviewer_id)
    ):
        changes[(b, uid)] |= {"gold_n": n, "gold_score_sum": total or 0.0}
    db.session.execute(sa.delete(ReviewTally))
    add({k: dict(v) for k, v in changes.items()})
    return len(changes)
