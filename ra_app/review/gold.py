"""Hidden gold tasks: samples whose correct transcript an admin picked, handed to reviewers
as ordinary tasks that start from the machine draft, and scored against the known answer.
A gold task's submit never becomes a revision of the sample."""

from __future__ import annotations

import random

import sqlalchemy as sa

from ..core import scoring
from ..core.models import (
    Assignment,
    AssignmentStatus,
    Batch,
    Sample,
    TaskType,
    TranscriptRevision,
    TranslationRevision,
    User,
    utcnow,
)
from ..core.revisions import machine_draft, rows_of
from ..core.tasks import reviewed_text
from ..extensions import db

GOLD_TYPES = (TaskType.TRANSCRIPT_CORRECTION, TaskType.TRANSLATION_REVIEW)


class GoldError(ValueError):
    pass


def gold_answers() -> list[TranscriptRevision]:
    return list(
        db.session.scalars(
            sa.select(TranscriptRevision)
            .join(Sample, Sample.id == TranscriptRevision.sample_id)
            # Plain `is_gold`, the partial index's own predicate ("IS true" would not use it).
            .where(TranscriptRevision.is_gold)
            .options(sa.orm.selectinload(TranscriptRevision.sample))
            .order_by(Sample.title)
        )
    )


def set_gold(revision: TranscriptRevision, gold: bool) -> None:
    """One gold answer per sample: marking a revision unmarks the sample's others."""
    if gold:
        db.session.execute(
            sa.update(TranscriptRevision)
            .where(
                TranscriptRevision.sample_id == revision.sample_id,
                TranscriptRevision.id != revision.id,
                TranscriptRevision.is_gold.is_(True),  # touch only what changes
            )
            .values(is_gold=False)
        )
    revision.is_gold = gold
    db.session.commit()


def translation_of(transcript: TranscriptRevision | None) -> TranslationRevision | None:
    """The newest translation that follows this transcript sentence by sentence."""
    if transcript is None:
        return None
    return db.session.scalar(
        sa.select(TranslationRevision)
        .where(TranslationRevision.transcript_revision_id == transcript.id)
        .order_by(TranslationRevision.version.desc())
        .limit(1)
    )


def add_gold_tasks(batch: Batch, revision: TranscriptRevision) -> int:
    """One hidden task on the gold sample for each reviewer of the batch who has none yet,
    placed at a random point of their queue."""
    if batch.task_type not in GOLD_TYPES:
        raise GoldError("gold answers are transcripts: they fit transcript and translation batches")
    if not revision.is_gold:
        raise GoldError("that revision is not marked as a gold answer")
    draft = machine_draft(revision.sample_id)
    if draft is None:
        raise GoldError("the gold sample has no machine draft to start from")
    draft_translation = translation_of(draft)
    if batch.task_type is TaskType.TRANSLATION_REVIEW and draft_translation is None:
        raise GoldError("the gold sample has no machine translation to review")
    member_ids = [int(uid) for uid in (batch.weights or {})]
    has_one = set(
        db.session.scalars(
            sa.select(Assignment.reviewer_id).where(
                Assignment.batch_id == batch.id, Assignment.gold_revision_id == revision.id
            )
        )
    )
    added = 0
    for user in db.session.scalars(sa.select(User).where(User.id.in_(member_ids))):
        if user.id in has_one:
            continue
        db.session.add(
            Assignment(
                batch_id=batch.id,
                sample_id=revision.sample_id,
                task_type=batch.task_type,
                reviewer_id=user.id,
                status=AssignmentStatus.PENDING,
                is_gold=True,
                gold_revision_id=revision.id,
                base_transcript_revision_id=draft.id,
                base_translation_revision_id=draft_translation.id if draft_translation else None,
                created_at=queue_position(batch, user),
            )
        )
        added += 1
    db.session.commit()
    return added


def queue_position(batch: Batch, user: User):
    """The creation time of a random task waiting in the reviewer's queue (the queue is
    ordered by it), so the gold task sits among real ones instead of at the end."""
    waiting = db.session.scalars(
        sa.select(Assignment.created_at).where(
            Assignment.batch_id == batch.id,
            Assignment.reviewer_id == user.id,
            Assignment.status == AssignmentStatus.PENDING,
        )
    ).all()
    return random.choice(waiting) if waiting else utcnow()  # noqa: S311 (not security)


def score(task: Assignment, rows: list[dict]) -> float:
    """1 − WER against the gold answer (of the transcript, or of the translations for a
    translation review), floored at 0: 1.0 is a perfect answer."""
    gold = db.session.get(TranscriptRevision, task.gold_revision_id)
    expected = rows_of(gold, translation_of(gold))
    reference = reviewed_text(expected, task.task_type)
    hypothesis = reviewed_text(rows, task.task_type)
    return round(max(0.0, 1.0 - scoring.wer(reference, hypothesis)), 4)
