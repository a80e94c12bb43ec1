"""Skip and report: a reviewer gives a task back with a reason, or reports its audio
unusable (no speech, music, the wrong language, too noisy); admins see the reports and can
reverse them.

- A skip puts the task back in the pool, draft and all (nothing typed is lost); the
  reviewer who skipped it is not handed it again (core/tasks.py) while the report stands.
- An unusable report discards the sample and withdraws every open task on it, so it leaves
  every queue and every export; the report keeps the state it was in for a reversal.

Both run on the locked task row (drafts.lock_task) and re-check it, so a double click or a
second tab reports once; an unusable report also locks the sample, so two reviewers of one
recording's windows take turns (the second finds its task withdrawn).
"""

from __future__ import annotations

import sqlalchemy as sa

from ..core.clock import db_now
from ..core.flags import UNUSABLE_REASONS
from ..core.models import (
    Assignment,
    AssignmentStatus,
    Report,
    ReportKind,
    Sample,
    User,
)
from ..core.states import ProcessingState, transition
from ..core.tasks import HOLDER_AFTER_RELEASE, OPEN
from ..extensions import db
from . import payloads
from .drafts import record_listening, require_editable
from .errors import Invalid


class AlreadyReversed(ValueError):
    pass


def report(task: Assignment, user: User, payload: dict) -> dict:
    body = payloads.parse(payloads.Report, payload)
    require_editable(task, user, body.draft_version)
    kind = ReportKind(body.kind)
    reason = body.reason.strip()
    if kind is ReportKind.UNUSABLE and reason not in UNUSABLE_REASONS:
        raise Invalid("Choose why the audio is unusable: " + ", ".join(UNUSABLE_REASONS.values()))
    if not reason:
        raise Invalid("Say why you give this task back.")
    record_listening(task, body.listened, db_now())
    entry = Report(
        kind=kind,
        assignment_id=task.id,
        sample_id=task.sample_id,
        reporter_id=user.id,
        reason=reason,
        comment=(body.comment or "").strip() or None,
    )
    if task.is_gold:
        # A hidden gold task (review/gold.py) is withdrawn alone, whatever the report says:
        # it must not reach another reviewer twice nor take the real recording along, and
        # its reviewer must not learn that it is gold.
        task.status = AssignmentStatus.WITHDRAWN
        task.lease_expires_at = None
        withdrawn = 1
    elif kind is ReportKind.SKIP:
        give_back(task)
    else:
        sample = db.session.scalar(
            sa.select(Sample).where(Sample.id == task.sample_id).with_for_update()
        )
        entry.previous_state = sample.processing_state.value
        transition(sample, ProcessingState.DISCARDED)
        withdrawn = withdraw_open_tasks(sample.id)
    db.session.add(entry)
    db.session.commit()
    if kind is ReportKind.SKIP:
        return {"reported": "skip", "message": "Given back: someone else will take it."}
    return {
        "reported": "unusable",
        "withdrawn": withdrawn,
        "message": f"Reported unusable ({UNUSABLE_REASONS[reason].lower()}): the recording "
        "has left the queues and the exports until an admin says otherwise.",
    }


GIVEN_BACK = "You gave this task back; nothing was sent twice."


def given_back_by(task: Assignment, user: User) -> bool:
    return bool(
        db.session.scalar(
            sa.select(sa.func.count()).where(
                Report.assignment_id == task.id,
                Report.reporter_id == user.id,
                Report.kind == ReportKind.SKIP,
                Report.reversed_at.is_(None),
            )
        )
    )


def give_back(task: Assignment) -> None:
    """Back in the shared pool (of its batch, if it has one), as nobody's task."""
    task.status = AssignmentStatus.PENDING
    task.reviewer_id = None
    task.from_pool = True
    task.lease_expires_at = None
    task.listened_fraction = 0.0  # what this reviewer heard does not let the next approve


def withdraw_open_tasks(sample_id) -> int:
    return db.session.execute(
        sa.update(Assignment)
        .where(Assignment.sample_id == sample_id, Assignment.status.in_(OPEN))
        .values(status=AssignmentStatus.WITHDRAWN, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount


def reverse(report_id: int, admin: User) -> Report:
    """An admin takes a report back: a skipped task may go to its reviewer again; a
    discarded sample returns to where it was, with its withdrawn tasks pending again."""
    entry = db.session.scalar(sa.select(Report).where(Report.id == report_id).with_for_update())
    if entry is None:
        raise LookupError(report_id)
    if entry.reversed_at is not None:
        raise AlreadyReversed("This report was already reversed.")
    gold = db.session.get(Assignment, entry.assignment_id)
    if gold.is_gold and gold.status is AssignmentStatus.WITHDRAWN:
        gold.status = AssignmentStatus.PENDING
    elif entry.kind is ReportKind.UNUSABLE:
        sample = db.session.scalar(
            sa.select(Sample).where(Sample.id == entry.sample_id).with_for_update()
        )
        if sample.processing_state is ProcessingState.DISCARDED:
            transition(sample, ProcessingState(entry.previous_state))
            db.session.execute(
                sa.update(Assignment)
                .where(
                    Assignment.sample_id == sample.id,
                    Assignment.status == AssignmentStatus.WITHDRAWN,
                )
                .values(
                    status=AssignmentStatus.PENDING,
                    reviewer_id=HOLDER_AFTER_RELEASE,
                )
                .execution_options(synchronize_session=False)
            )
    entry.reversed_at = db_now()
    entry.reversed_by_id = admin.id
    db.session.commit()
    return entry
