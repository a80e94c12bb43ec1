"""Agreement and quality, per reviewer and per batch: edit rate against the machine draft,
agreement with second reviewers (WER/CER, segment boundary shift), decisions received, and
scores on hidden gold tasks. Every figure is one aggregate query over indexed columns."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import aliased, selectinload

from ..core import scoring
from ..core.models import (
    Assignment,
    Decision,
    ReviewDecision,
    TranscriptRevision,
    User,
)
from ..core.tasks import DONE, reviewed_text
from ..extensions import db


@dataclass
class Quality:
    tasks_done: int = 0
    edit_wer: float | None = None  # the machine draft against this reviewer's text
    edit_cer: float | None = None
    reviewed: int = 0  # of their tasks, how many a second reviewer decided
    decisions: dict = field(default_factory=dict)  # decision -> count, on their work
    agreement_wer: float | None = None  # their text against the approved text
    agreement_cer: float | None = None
    boundary_diff_s: float | None = None
    second_reviews: int = 0  # decisions they made on others' work
    gold_tasks: int = 0
    gold_score: float | None = None


class _Mean:
    """A mean built from per-group sums, so the overall figure needs no second query."""

    def __init__(self):
        self.total, self.count = 0.0, 0

    def add(self, total, count):
        self.total += total or 0.0
        self.count += count or 0

    @property
    def value(self):
        return self.total / self.count if self.count else None


def report(batch_id: int | None = None) -> tuple[Quality, list[tuple[User, Quality]]]:
    """The batch's (or everyone's) quality, overall and per reviewer."""
    per: dict[int, Quality] = {}
    overall = Quality()
    means: dict[tuple[int | None, str], _Mean] = {}

    def add(uid, name, total, count):
        for key in (uid, None):
            means.setdefault((key, name), _Mean()).add(total, count)

    def of(uid):
        return overall if uid is None else per.setdefault(uid, Quality())

    work = Assignment.review_of_id.is_(None) & Assignment.is_gold.is_(False)
    done = sa.select(Assignment.reviewer_id, sa.func.count()).where(
        work, Assignment.status.in_(DONE)
    )
    for uid, count in _run(done.group_by(Assignment.reviewer_id), Assignment, batch_id):
        of(uid).tasks_done = count
        overall.tasks_done += count

    edits = (
        sa.select(
            TranscriptRevision.author_id,
            sa.func.sum(TranscriptRevision.wer),
            sa.func.sum(TranscriptRevision.cer),
            sa.func.count(TranscriptRevision.wer),
        )
        .join(Assignment, Assignment.id == TranscriptRevision.assignment_id)
        .where(work)
        .group_by(TranscriptRevision.author_id)
    )
    for uid, wer, cer, count in _run(edits, Assignment, batch_id):
        add(uid, "edit_wer", wer, count)
        add(uid, "edit_cer", cer, count)

    review = aliased(Assignment)
    original = aliased(Assignment)
    received = (
        sa.select(
            original.reviewer_id,
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
        .group_by(original.reviewer_id, ReviewDecision.decision)
    )
    for uid, decision, count, wer, cer, n_text, shift, n_shift in _run(received, review, batch_id):
        for target in (of(uid), overall):
            target.reviewed += count
            target.decisions[decision.value] = target.decisions.get(decision.value, 0) + count
        if decision is not Decision.REJECT:  # agreement is about the work that was approved
            add(uid, "agreement_wer", wer, n_text)
            add(uid, "agreement_cer", cer, n_text)
            add(uid, "boundary_diff_s", shift, n_shift)

    made = (
        sa.select(ReviewDecision.reviewer_id, sa.func.count())
        .join(review, review.id == ReviewDecision.assignment_id)
        .where(review.review_of_id.is_not(None))
        .group_by(ReviewDecision.reviewer_id)
    )
    for uid, count in _run(made, review, batch_id):
        of(uid).second_reviews = count
        overall.second_reviews += count

    gold = (
        sa.select(Assignment.reviewer_id, sa.func.count(), sa.func.sum(Assignment.score))
        .where(Assignment.is_gold.is_(True), Assignment.score.is_not(None))
        .group_by(Assignment.reviewer_id)
    )
    for uid, count, score in _run(gold, Assignment, batch_id):
        of(uid).gold_tasks = count
        overall.gold_tasks += count
        add(uid, "gold_score", score, count)

    for (uid, name), mean in means.items():
        setattr(of(uid), name, mean.value)
    users = {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(list(per))))}
    rows = sorted(((users[uid], q) for uid, q in per.items()), key=lambda p: p[0].email)
    return overall, rows


def _run(query, model, batch_id):
    if batch_id is not None:
        query = query.where(model.batch_id == batch_id)
    return db.session.execute(query).all()


def gold_agreement(batch_id: int | None = None) -> list[dict]:
    """For each gold answer: how many answered it, their mean score, and the mean WER
    between every two reviewers' answers (how much they agree with each other)."""
    query = sa.select(Assignment).where(Assignment.is_gold.is_(True), Assignment.score.is_not(None))
    if batch_id is not None:
        query = query.where(Assignment.batch_id == batch_id)
    tasks = db.session.execute(
        query.with_only_columns(
            Assignment.gold_revision_id, Assignment.task_type, Assignment.score, Assignment.answer
        ).order_by(Assignment.gold_revision_id)
    ).all()
    revisions = {
        r.id: r
        for r in db.session.scalars(
            sa.select(TranscriptRevision)
            .where(TranscriptRevision.id.in_({t.gold_revision_id for t in tasks}))
            .options(selectinload(TranscriptRevision.sample))
        )
    }
    result = []
    for gold_id, group in itertools.groupby(tasks, key=lambda t: t.gold_revision_id):
        answers = list(group)
        texts = [reviewed_text((t.answer or {}).get("sentences", []), t.task_type) for t in answers]
        pairs = [scoring.wer(a, b) for a, b in itertools.combinations(texts, 2)]
        result.append(
            {
                "revision": revisions[gold_id],
                "answers": len(answers),
                "mean_score": sum(t.score or 0 for t in answers) / len(answers),
                "pairwise_wer": sum(pairs) / len(pairs) if pairs else None,
            }
        )
    return result
