"""Review tasks: creating them over windows of a recording, claiming the next one with a
lease, and returning expired ones to the pool."""

from __future__ import annotations

import math
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from ..extensions import db
from . import metrics
from .clock import db_now
from .models import (
    Assignment,
    AssignmentStatus,
    Batch,
    BatchStatus,
    Report,
    ReportKind,
    Sample,
    TaskType,
    User,
)
from .revisions import latest_revisions
from .states import ProcessingState, can_transition, transition

TEXT_TASKS = (TaskType.TRANSCRIPT_CORRECTION, TaskType.TRANSLATION_REVIEW)
# A task someone still has to work on (waiting, claimed, or sent back to its author), and
# one whose work is in: the two sides of every "is the review finished?".
OPEN = (AssignmentStatus.PENDING, AssignmentStatus.IN_PROGRESS, AssignmentStatus.REJECTED)
DONE = (AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED)


def reviewed_text(rows: list[dict], task_type: TaskType) -> str:
    """The text a task of this type works on, joined: the translations for a translation
    review, else the transcript. What gold scores and agreement are measured on."""
    field = "translation" if task_type is TaskType.TRANSLATION_REVIEW else "text"
    return " ".join(row.get(field) or "" for row in rows)


def windows_of(duration_s: float, window_s: float) -> list[tuple[float, float | None]]:
    """[start, end) windows covering the recording; the last one runs to the end, and a
    recording barely longer than one window stays one task."""
    if window_s <= 0 or duration_s <= window_s * 1.2:
        return [(0.0, None)]
    count = math.ceil(duration_s / window_s - 0.2)
    return [(k * window_s, (k + 1) * window_s if k < count - 1 else None) for k in range(count)]


def create_tasks(
    sample: Sample,
    task_type: TaskType,
    *,
    reviewer: User | None = None,
    batch_id: int | None = None,
    window_s: float | None = None,
) -> list[Assignment]:
    """One task per window; `reviewer=None` puts them in the shared pool."""
    if window_s is None:
        window_s = current_app.config["REVIEW_WINDOW_SECONDS"]
    transcript, translation = latest_revisions(sample.id)
    tasks = [
        Assignment(
            sample=sample,
            task_type=task_type,
            batch_id=batch_id,
            reviewer_id=reviewer.id if reviewer else None,
            window_start_s=start,
            window_end_s=end,
            status=AssignmentStatus.PENDING,
            base_transcript_revision_id=transcript.id if transcript else None,
            base_translation_revision_id=translation.id if translation else None,
        )
        for start, end in windows_of(sample.duration_s, window_s)
    ]
    db.session.add_all(tasks)
    if task_type in TEXT_TASKS and can_transition(
        sample.processing_state, ProcessingState.IN_REVIEW
    ):
        transition(sample, ProcessingState.IN_REVIEW)
    return tasks


def lease_deadline(now=None):
    return (now or db_now()) + timedelta(seconds=current_app.config["REVIEW_LEASE_SECONDS"])


# Where a task goes when its reviewer lets go of it: a task taken from the pool back to the
# pool, an assigned one to its reviewer's pending list.
HOLDER_AFTER_RELEASE = sa.case((Assignment.from_pool, None), else_=Assignment.reviewer_id)


def release_expired_leases() -> int:
    """Tasks whose reviewer went quiet return to the pool (or to their assigned reviewer's
    pending list); drafts stay with the task, so nothing typed is lost, and the reviewer's
    next save is told what happened (`lease_lost_by_id`)."""
    expired = sa.select(Assignment.id).where(
        Assignment.status == AssignmentStatus.IN_PROGRESS,
        Assignment.lease_expires_at < db_now(),
    )
    if db.engine.dialect.name == "postgresql":
        # A task a request holds right now (a save, a report withdrawing a recording's
        # tasks) is left for the next release: never two multi-row updates waiting on
        # each other's rows.
        expired = expired.with_for_update(skip_locked=True)
    result = db.session.execute(
        sa.update(Assignment)
        .where(Assignment.id.in_(expired))
        .values(
            status=AssignmentStatus.PENDING,
            lease_expires_at=None,
            lease_lost_by_id=Assignment.reviewer_id,
            reviewer_id=HOLDER_AFTER_RELEASE,
            # What one reviewer heard does not let the next one approve.
            listened_fraction=sa.case(
                (Assignment.from_pool, 0.0), else_=Assignment.listened_fraction
            ),
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        metrics.on_commit(metrics.TASK_LEASE_EXPIRIES, result.rowcount)
    return result.rowcount


def pools_open_to(user_id: int) -> list[int]:
    """Active batches whose shared pool this reviewer may pull from: they are a member, and
    hold fewer open tasks there than the batch's cap."""
    member_of = [
        batch
        for batch in db.session.scalars(sa.select(Batch).where(Batch.status == BatchStatus.ACTIVE))
        if str(user_id) in (batch.weights or {})
    ]
    if not member_of:
        return []
    held = dict(
        db.session.execute(
            sa.select(Assignment.batch_id, sa.func.count())
            .where(
                Assignment.reviewer_id == user_id,
                Assignment.status.in_(OPEN),
                Assignment.batch_id.in_([b.id for b in member_of]),
            )
            .group_by(Assignment.batch_id)
        ).all()
    )
    return [
        b.id
        for b in member_of
        if b.max_pending_per_reviewer is None or held.get(b.id, 0) < b.max_pending_per_reviewer
    ]


def skipped_by(user_id: int):
    """A clause on Assignment: this reviewer gave the task back (review/reports.py) and the
    report stands, so "Start next" does not hand it to them again."""
    return sa.exists().where(
        Report.assignment_id == Assignment.id,
        Report.reporter_id == user_id,
        Report.kind == ReportKind.SKIP,
        Report.reversed_at.is_(None),
    )


def _sources(user: User) -> dict[str, sa.Select]:
    """The places a next task comes from, in the order they are served: second reviews
    waiting for someone other than their author (they hold a sample back), the reviewer's
    own pending tasks, then the shared pools open to them. Each is one indexed scan (see the
    partial indexes on assignments) instead of one query with an OR that sorts the whole
    table. The queue page counts the same queries, so it shows what "Start next" gives."""
    active = sa.select(Batch.id).where(Batch.status == BatchStatus.ACTIVE)
    paused = list(db.session.scalars(sa.select(Batch.id).where(Batch.status != BatchStatus.ACTIVE)))
    pools = pools_open_to(user.id)
    pending = Assignment.status == AssignmentStatus.PENDING
    sources = {
        "own": sa.select(Assignment.id).where(pending, Assignment.reviewer_id == user.id),
        "pool": sa.select(Assignment.id).where(
            pending,
            Assignment.reviewer_id.is_(None),
            Assignment.review_of_id.is_(None),
            sa.or_(Assignment.batch_id.is_(None), Assignment.batch_id.in_(pools)),
            ~skipped_by(user.id),
        ),
    }
    if not user.in_training:
        # Admins check any active batch; reviewers the batches they work in.
        sources = {
            "second_review": second_reviews_for(user).where(
                sa.or_(
                    Assignment.batch_id.is_(None),
                    Assignment.batch_id.in_(active if user.is_admin else pools),
                ),
                ~skipped_by(user.id),
            ),
            **sources,
        }
    if paused:
        not_paused = sa.or_(Assignment.batch_id.is_(None), Assignment.batch_id.not_in(paused))
        sources = {name: query.where(not_paused) for name, query in sources.items()}
    return sources


def _queues(user: User, task_type: TaskType | None) -> list:
    """The sources as "the first task of each", in order."""
    ordered = []
    for query in _sources(user).values():
        if task_type is not None:
            query = query.where(Assignment.task_type == task_type)
        ordered.append(query.order_by(Assignment.created_at, Assignment.window_start_s).limit(1))
    return ordered


def waiting_for(user: User) -> dict[TaskType, dict[str, int]]:
    """How many tasks "Start next" could give this reviewer, by task type and by source
    (second_review, own, pool); types with none are left out."""
    counts: dict[TaskType, dict[str, int]] = {}
    for name, query in _sources(user).items():
        ids = query.subquery()
        rows = db.session.execute(
            sa.select(Assignment.task_type, sa.func.count())
            .where(Assignment.id.in_(sa.select(ids.c.id)))
            .group_by(Assignment.task_type)
        )
        for task_type, count in rows:
            counts.setdefault(task_type, {})[name] = count
    return {t: counts[t] for t in TaskType if t in counts}


def second_reviews_for(user: User):
    """Pending second reviews anyone but their author may take."""
    author = sa.orm.aliased(Assignment)
    return sa.select(Assignment.id).where(
        Assignment.status == AssignmentStatus.PENDING,
        Assignment.reviewer_id.is_(None),
        Assignment.review_of_id.is_not(None),
        ~sa.exists().where(author.id == Assignment.review_of_id, author.reviewer_id == user.id),
    )


def claim_review(user: User, batch_id: int) -> Assignment | None:
    """An admin takes the batch's oldest waiting second review."""
    release_expired_leases()
    query = second_reviews_for(user).where(Assignment.batch_id == batch_id)
    task = _take(query.order_by(Assignment.created_at, Assignment.window_start_s).limit(1), user)
    db.session.commit()
    return task


def current_task(user_id: int, task_type: TaskType | None = None) -> Assignment | None:
    """A task the reviewer already holds (claimed, or sent back to them)."""
    query = sa.select(Assignment).where(
        Assignment.reviewer_id == user_id,
        Assignment.status.in_((AssignmentStatus.IN_PROGRESS, AssignmentStatus.REJECTED)),
    )
    if task_type is not None:
        query = query.where(Assignment.task_type == task_type)
    return db.session.scalar(query.order_by(Assignment.updated_at).limit(1))


def claim_next(user: User, task_type: TaskType | None = None) -> Assignment | None:
    """Give the reviewer the next task under a lease; two reviewers never get the same one.

    Postgres takes the row with `FOR UPDATE SKIP LOCKED`, so concurrent claimers pass each
    other instead of waiting. SQLite has no row locks: one conditional UPDATE claims the row
    atomically, and a claimer that lost the race tries the next candidate.
    """
    release_expired_leases()
    held = current_task(user.id, task_type)
    if held is not None:
        if held.status is not AssignmentStatus.IN_PROGRESS:
            start(held, user)  # sent back to them: a new stretch of work
        else:
            held.lease_expires_at = lease_deadline()
        db.session.commit()
        return held
    for queue in _queues(user, task_type):
        task = _take(queue, user)
        if task is not None:
            return task
    db.session.commit()
    return None


def _take(queue, user: User) -> Assignment | None:
    """Claim the first task of `queue` for `user`, or None if the queue is empty."""
    if db.engine.dialect.name == "postgresql":
        task_id = db.session.scalar(queue.with_for_update(skip_locked=True))
        if task_id is None:
            return None
        task = db.session.get(Assignment, task_id)
        start(task, user)
        db.session.commit()
        return task
    for _ in range(20):
        task_id = db.session.scalar(queue)
        if task_id is None:
            return None
        won = db.session.execute(
            sa.update(Assignment)
            .where(Assignment.id == task_id, Assignment.status == AssignmentStatus.PENDING)
            .values(status=AssignmentStatus.IN_PROGRESS)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won:
            task = db.session.get(Assignment, task_id)
            db.session.refresh(task)
            start(task, user)
            db.session.commit()
            return task
        db.session.rollback()
    return None


def start(task: Assignment, user: User) -> None:
    if task.reviewer_id is None:
        task.from_pool = True
        task.reviewer_id = user.id
    if task.lease_lost_by_id == user.id:
        task.lease_lost_by_id = None  # theirs again
    now = db_now()
    task.status = AssignmentStatus.IN_PROGRESS
    task.lease_expires_at = lease_deadline(now)
    task.started_at = task.started_at or now
    task.claimed_at = now
    metrics.on_commit(metrics.TASK_CLAIMS, task_type=task.task_type.value)


def reopen_returned(task: Assignment, user: User) -> None:
    """A task sent back by a second reviewer opens for its author to work on again."""
    if task.status is AssignmentStatus.REJECTED and task.reviewer_id == user.id:
        start(task, user)
        db.session.commit()


def extend_lease(task: Assignment, now=None) -> None:
    task.lease_expires_at = lease_deadline(now)
