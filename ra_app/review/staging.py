"""Staged review: which submitted tasks a second reviewer checks, how much of the audio that
reviewer has heard, and their decision (approve, approve with minor or major changes,
reject with a comment back to the author)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import current_app

from ..core.models import (
    Assignment,
    AssignmentStatus,
    Batch,
    Decision,
    ReviewDecision,
    User,
    utcnow,
)
from ..core.revisions import latest_revisions
from ..core.tasks import DONE, OPEN
from ..extensions import db

DECISIONS = (Decision.APPROVE, Decision.APPROVE_MINOR, Decision.APPROVE_MAJOR, Decision.REJECT)
WITH_CHANGES = (Decision.APPROVE_MINOR, Decision.APPROVE_MAJOR)
# Playback reports arrive every few hundred milliseconds; gaps this short are not "unheard".
LISTEN_GAP_S = 0.5


def picked_for_review(task_id: uuid.UUID, share: float) -> bool:
    """A stable draw from the task id, so the same task always gets the same answer and a
    batch's share is met on average."""
    return int(task_id.hex[:8], 16) / 0x1_0000_0000 < share


def needs_second_review(task: Assignment, author: User) -> bool:
    if task.is_gold or task.review_of_id is not None:
        return False
    if author.in_training or was_reviewed(task):
        return True  # every task of a trainee, and a rejected task when it comes back
    batch = db.session.get(Batch, task.batch_id) if task.batch_id else None
    return bool(batch and picked_for_review(task.id, batch.review_share))


def was_reviewed(task: Assignment) -> bool:
    return db.session.scalar(sa.select(sa.exists().where(Assignment.review_of_id == task.id)))


def send_to_second_review(task: Assignment) -> Assignment | None:
    """A pending task over the same window, in the batch's pool, for anyone but the author;
    it starts from the revisions the author just wrote. One open review per task."""
    open_review = db.session.scalar(
        sa.select(Assignment.id).where(
            Assignment.review_of_id == task.id,
            Assignment.status.in_(OPEN),
        )
    )
    if open_review is not None:
        return None
    transcript, translation = latest_revisions(task.sample_id)
    review = Assignment(
        batch_id=task.batch_id,
        sample_id=task.sample_id,
        task_type=task.task_type,
        window_start_s=task.window_start_s,
        window_end_s=task.window_end_s,
        reviewer_id=None,
        status=AssignmentStatus.PENDING,
        review_of_id=task.id,
        base_transcript_revision_id=transcript.id if transcript else None,
        base_translation_revision_id=translation.id if translation else None,
    )
    db.session.add(review)
    return review


# --- listening -----------------------------------------------------------------------------


def coverage(intervals, start: float, end: float) -> float:
    """The share of [start, end) covered by the played `intervals` (recording seconds)."""
    length = end - start
    if length <= 0:
        return 1.0
    spans = []
    for pair in intervals if isinstance(intervals, list) else []:
        try:
            a, b = (float(pair[0]), float(pair[1]))
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        a, b = max(a, start), min(b, end)
        if b > a:
            spans.append((a, b))
    merged: list[list[float]] = []
    for a, b in sorted(spans):
        if merged and a - merged[-1][1] <= LISTEN_GAP_S:  # a gap between two reports
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    # Playback reports start a little after the first sample and end before the last one.
    if merged and merged[0][0] - start <= LISTEN_GAP_S:
        merged[0][0] = start
    if merged and end - merged[-1][1] <= LISTEN_GAP_S:
        merged[-1][1] = end
    covered = sum(b - a for a, b in merged)
    return max(0.0, min(1.0, covered / length))


def record_listening(
    task: Assignment, intervals, span: tuple[float, float], allowed_s: float | None = None
) -> float:
    """Keep the most the reviewer has heard of the task (at most `allowed_s` seconds of
    it); it never goes down."""
    if intervals:
        heard = coverage(intervals, *span)
        length = span[1] - span[0]
        if allowed_s is not None and length > 0:
            heard = min(heard, allowed_s / length)
        task.listened_fraction = max(task.listened_fraction or 0.0, round(heard, 4))
    return task.listened_fraction or 0.0


def listen_required() -> float:
    return current_app.config["REVIEW_LISTEN_REQUIRED"]


# --- what the pages show ---------------------------------------------------------------------


def latest_return(task: Assignment) -> ReviewDecision | None:
    """The rejection that sent this task back to its author, if it is still open."""
    if task.status in DONE:
        return None
    decision = db.session.scalar(
        sa.select(ReviewDecision)
        .join(Assignment, Assignment.id == ReviewDecision.assignment_id)
        .where(Assignment.review_of_id == task.id)
        .order_by(ReviewDecision.created_at.desc())
        .limit(1)
    )
    return decision if decision and decision.decision is Decision.REJECT else None


def review_info(task: Assignment) -> dict | None:
    """For a second review: whose work it checks and what approval needs."""
    if task.review_of_id is None:
        return None
    original = db.session.get(Assignment, task.review_of_id)
    author = db.session.get(User, original.reviewer_id) if original.reviewer_id else None
    return {
        "author": author.email if author else None,
        "listened": task.listened_fraction or 0.0,
        "required": listen_required(),
        "decisions": [d.value for d in DECISIONS],
    }


def return_info(task: Assignment) -> dict | None:
    decision = latest_return(task)
    if decision is None:
        return None
    reviewer = db.session.get(User, decision.reviewer_id)
    return {
        "by": reviewer.email if reviewer else None,
        "comment": decision.comment or "",
        "at": decision.created_at.isoformat() if decision.created_at else None,
    }


def reject(original: Assignment) -> None:
    """Back to its author, who continues from what they submitted."""
    transcript, translation = latest_revisions(original.sample_id)
    original.status = AssignmentStatus.REJECTED
    original.base_transcript_revision_id = transcript.id if transcript else None
    original.base_translation_revision_id = translation.id if translation else None
    original.lease_expires_at = None
    original.progress = 0.0
    original.draft = None
    original.draft_saved_at = None
    original.updated_at = utcnow()


def boundary_shift(author: list, reviewer: list) -> float | None:
    """Mean distance from each boundary to the nearest boundary of the other side, both
    ways: 0 when the reviewer kept every cut, seconds of disagreement otherwise."""
    ours = sorted({round(float(t), 3) for seg in author for t in seg})
    theirs = sorted({round(float(t), 3) for seg in reviewer for t in seg})
    if not ours or not theirs:
        return 0.0 if ours == theirs else None
    one = [min(abs(a - b) for b in theirs) for a in ours]
    two = [min(abs(b - a) for a in ours) for b in theirs]
    return round((sum(one) + sum(two)) / (len(one) + len(two)), 3)
