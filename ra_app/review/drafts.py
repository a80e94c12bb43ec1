"""Who may change a task right now, and the reviewer's drafts and activity.

Every change to a task (draft, touch, submit, decide) starts by locking its row
(`lock_task`), so two tabs, a double click or a retry take turns and each sees what the
other did: a second submit finds the task submitted, a stale autosave finds a newer draft.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from ..core.clock import as_utc, db_now
from ..core.models import Assignment, AssignmentStatus, Sample, User, iso_utc
from ..core.tasks import DONE, TEXT_TASKS, extend_lease, start
from ..extensions import db
from . import payloads, staging
from .errors import AlreadySubmitted, DraftConflict, Invalid, LeaseLost, NotEditable
from .page import analyse, audio_span


def lock_task(task_id) -> Assignment | None:
    """The task's row, locked until the transaction ends (on SQLite, the whole database:
    core/sqlite_locks.py), read fresh from the database.

    Its sample's row is locked first: a change that reaches the sample's other tasks (an
    unusable report withdraws them all) then never waits on a task whose request waits on
    the sample, so two requests on one recording take turns instead of deadlocking."""
    sample_id = db.session.scalar(sa.select(Assignment.sample_id).where(Assignment.id == task_id))
    if sample_id is None:
        return None
    db.session.execute(sa.select(Sample.id).where(Sample.id == sample_id).with_for_update())
    return db.session.scalar(
        sa.select(Assignment)
        .where(Assignment.id == task_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def lease_lost_message(task: Assignment) -> str:
    minutes = round(current_app.config["REVIEW_LEASE_SECONDS"] / 60)
    where = (
        "another reviewer has taken it"
        if task.reviewer_id is not None
        else "it went back to the pool: take it again from your queue to continue"
    )
    return (
        f"Your hold on this task ran out after {minutes} minutes without activity, and "
        f"{where}. Your work is kept in this browser; nothing more is saved to this task."
    )


def require_editable(task: Assignment, user: User, draft_version: int | None = None) -> None:
    """The user's own task, open for work; says why not otherwise. A task whose lease ran
    out while still assigned to them (nobody else took it) is theirs again. Given the draft
    the work builds on, that must still be the task's latest (require_latest_draft)."""
    if task.reviewer_id != user.id:
        if task.lease_lost_by_id == user.id:
            raise LeaseLost(lease_lost_message(task))
        raise NotEditable("This task is not yours.")
    if task.status in DONE:
        at = task.submitted_at.strftime("%H:%M UTC") if task.submitted_at else "earlier"
        raise AlreadySubmitted(
            f"This task was already {task.status.value} ({at}); nothing was sent twice."
        )
    if task.status is AssignmentStatus.PENDING and task.lease_lost_by_id == user.id:
        start(task, user)  # their lease lapsed, but the task waited for them
    if task.status is AssignmentStatus.WITHDRAWN:
        raise NotEditable(
            "This recording was reported unusable, so nobody works on it now (an admin can "
            "reverse that)."
        )
    if task.status is not AssignmentStatus.IN_PROGRESS:
        raise NotEditable(
            f"This task is {task.status.value.replace('_', ' ')}; it can no longer be edited. "
            "Take it again from your queue."
        )
    if draft_version is not None:
        require_latest_draft(task, draft_version)


def require_latest_draft(task: Assignment, version: int) -> None:
    """Work based on an older draft than the task's is refused: another tab or browser saved
    since, and saving or submitting over it would lose that work unseen."""
    if version != task.draft_version:
        raise DraftConflict(
            "This task was saved from another tab or browser"
            + (f" at {task.draft_saved_at:%H:%M} UTC" if task.draft_saved_at else "")
            + ". Reload the page to continue from that version; this tab's changes are kept "
            "in this browser until you do.",
            draft_version=task.draft_version,
            draft_saved_at=iso_utc(task.draft_saved_at),
        )


def save_draft(task: Assignment, user: User, payload: dict) -> dict:
    """Keep whatever the reviewer has typed (in the shapes a submit takes; times may still
    be blank) and extend the lease; not over a newer draft from another tab."""
    body = payloads.parse(payloads.Draft, payload)
    require_editable(task, user, body.draft_version or 0)
    draft = body.model_dump(
        include={"sentences", "segments", "progress", "listened"}, exclude_none=True
    )
    now = db_now()
    record_listening(task, body.listened, now)
    task.draft = draft
    task.draft_saved_at = now
    task.draft_version += 1
    if body.progress is not None:
        task.progress = body.progress
    extend_lease(task, now)
    db.session.commit()
    rows = draft.get("sentences", [])
    analysis = analyse(task, rows) if task.task_type in TEXT_TASKS else {}
    return {
        "saved_at": iso_utc(task.draft_saved_at),
        "draft_version": task.draft_version,
        "lease_expires_at": iso_utc(task.lease_expires_at),
        "listened": task.listened_fraction,
        "analysis": analysis,
    }


def touch(task: Assignment, user: User, payload: dict) -> dict:
    """Activity: extends the lease, and records how much of the audio has been played."""
    body = payloads.parse(payloads.Touch, payload)
    require_editable(task, user)
    now = db_now()
    extend_lease(task, now)
    record_listening(task, body.listened, now)
    db.session.commit()
    return {
        "lease_expires_at": iso_utc(task.lease_expires_at),
        "listened": task.listened_fraction,
    }


def record_listening(task: Assignment, spans, now) -> float:
    """What the player says was played, checked against what can have been: every stretch
    inside the recording, clamped to the task's window, and no more heard than the time
    since the task was claimed allows at the fastest playback speed."""
    if not spans:
        return task.listened_fraction or 0.0
    duration = task.sample.duration_s
    for i, (a, b) in enumerate(spans):
        if a > b or a < -staging.LISTEN_GAP_S or b > duration + staging.LISTEN_GAP_S:
            raise Invalid(
                f"listened[{i}]: {a:g}–{b:g} s is not a stretch of the recording "
                f"(0–{duration:.1f} s).",
                problems=[f"listened[{i}]: outside the recording"],
            )
    since = task.claimed_at or task.started_at
    allowed_s = None
    if since is not None:
        elapsed = max((as_utc(now) - as_utc(since)).total_seconds(), 0.0)
        rate = current_app.config["REVIEW_MAX_PLAYBACK_RATE"]
        allowed_s = elapsed * rate + 2 * staging.LISTEN_GAP_S
    return staging.record_listening(task, spans, audio_span(task), allowed_s)
