"""Agreement and quality, per reviewer and per batch: edit rate against the machine draft,
agreement with second reviewers (WER/CER, segment boundary shift), decisions received, and
scores on hidden gold tasks, from the running tallies kept as work is decided
(core/tallies.py)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from ..core import scoring, tallies
from ..core.models import Assignment, ReviewTally, TranscriptRevision, User
from ..core.tasks import reviewed_text
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


def mean(total: float, count: int) -> float | None:
    return total / count if count else None


def report(batch_id: int | None = None) -> tuple[Quality, list[tuple[User, Quality]]]:
    """The batch's (or everyone's) quality, overall and per reviewer: sums of the running
    tallies (core/tallies.py), a few hundred rows whatever the history."""
    query = sa.select(ReviewTally)
    if batch_id is not None:
        query = query.where(ReviewTally.batch_id == batch_id)
    sums: dict[int | None, dict[str, float]] = {}
    for tally in db.session.scalars(query):
        for uid in (tally.reviewer_id, None):
            into = sums.setdefault(uid, dict.fromkeys(tallies.FIELDS, 0))
            for name in tallies.FIELDS:
                into[name] += getattr(tally, name)
    per = {uid: quality_of(figures) for uid, figures in sums.items() if uid is not None}
    overall = quality_of(sums.get(None) or dict.fromkeys(tallies.FIELDS, 0))
    users = {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(list(per))))}
    rows = sorted(((users[uid], q) for uid, q in per.items()), key=lambda p: p[0].email)
    return overall, rows


def quality_of(t: dict[str, float]) -> Quality:
    decisions = {d.value: int(t[name]) for d, name in tallies.DECIDED.items() if t[name]}
    return Quality(
        tasks_done=int(t["tasks_done"]),
        edit_wer=mean(t["edit_wer_sum"], t["edit_n"]),
        edit_cer=mean(t["edit_cer_sum"], t["edit_n"]),
        reviewed=sum(decisions.values()),
        decisions=decisions,
        agreement_wer=mean(t["agree_wer_sum"], t["agree_n"]),
        agreement_cer=mean(t["agree_cer_sum"], t["agree_n"]),
        boundary_diff_s=mean(t["shift_sum"], t["shift_n"]),
        second_reviews=int(t["second_reviews"]),
        gold_tasks=int(t["gold_n"]),
        gold_score=mean(t["gold_score_sum"], t["gold_n"]),
    )


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
