"""Submitting a review task and a second reviewer's decision.

Both run on the task's locked row (see drafts.lock_task) and re-check its state first, so a
double click, a second tab or a retry after a slow answer is told "already submitted" and
writes nothing. What follows a finished review is queued through the outbox in the same
commit (ra_app/core/flow.py): the answer never waits on the pipeline, and a broker that is down
only delays it.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..core import metrics, scoring, tallies
from ..core.clock import db_now
from ..core.flow import advance
from ..core.models import (
    Assignment,
    AssignmentStatus,
    Decision,
    Origin,
    ReviewDecision,
    Sample,
    TaskType,
    TranscriptRevision,
    TranslationRevision,
    User,
)
from ..core.revisions import (
    latest_revisions,
    merge_window,
    next_version,
    rows_of,
    window_rows,
    write_revisions,
    write_translation_revision,
)
from ..core.states import ProcessingState, can_transition
from ..core.tasks import OPEN, TEXT_TASKS, reviewed_text
from ..extensions import db
from . import gold, payloads, staging
from .drafts import record_listening, require_editable
from .errors import Invalid, NotEditable, NotHeard, Stale
from .page import audio_span, machine_rows, revision_rows, window_of
from .rows import comparable, keep_newer_translations, translated_rows, validate_rows
from .segments import submit_segments


def lock_sample(sample_id) -> Sample:
    """Submits of one sample's windows take turns (a row lock; SQLite: core/sqlite_locks.py)."""
    return db.session.scalar(sa.select(Sample).where(Sample.id == sample_id).with_for_update())


def rows_sent(body: payloads.Submit) -> list[dict] | None:
    return [s.model_dump() for s in body.sentences] if body.sentences is not None else None


def segments_sent(body: payloads.Submit) -> list[dict] | None:
    return [s.model_dump() for s in body.segments] if body.segments is not None else None


def submit(task: Assignment, user: User, payload: dict) -> dict:
    """The reviewer's work becomes the sample's (a gold task's is scored and kept aside).
    A gold task answers exactly like any other."""
    body = payloads.parse(payloads.Submit, payload)
    require_editable(task, user, body.draft_version)
    if task.review_of_id is not None:
        raise Invalid("This is a second review: approve it or reject it.")
    sample = lock_sample(task.sample_id)
    if task.is_gold:
        result = submit_gold(task, body)
        close(task, user, Decision.SUBMIT)
        tallies.submitted(task, None)
    elif task.task_type is TaskType.AUDIO_SEGMENTATION:
        result = submit_segments(task, sample, segments_sent(body))
        close(task, user, Decision.SUBMIT)
        tallies.submitted(task, None)
    else:
        written = submit_text(task, sample, user, body)
        close(task, user, Decision.SUBMIT, **written.pop("decision"))
        tallies.submitted(task, written if "transcript_version" in written else None)
        result = written
    if staging.needs_second_review(task, user):
        staging.send_to_second_review(task)
    finish_sample_if_done(sample, task.task_type)
    heard_from, heard_to = audio_span(task)
    metrics.on_commit(
        metrics.REVIEWED_AUDIO_SECONDS, heard_to - heard_from, task_type=task.task_type.value
    )
    db.session.commit()
    return {"submitted": True, **result}


def close(task: Assignment, user: User, decision: Decision, **record) -> ReviewDecision:
    """The task is done: no lease, no draft, and its decision on record."""
    task.status = AssignmentStatus.SUBMITTED
    task.submitted_at = db_now()
    task.lease_expires_at = None
    task.progress = 1.0
    task.draft = None
    entry = ReviewDecision(assignment_id=task.id, reviewer_id=user.id, decision=decision, **record)
    db.session.add(entry)
    return entry


def submit_gold(task: Assignment, body: payloads.Submit) -> dict:
    """Scored against the known answer; the sample's revisions stay as they are."""
    if task.task_type is TaskType.TRANSLATION_REVIEW:
        base = revision_rows(task.base_transcript_revision_id, task.base_translation_revision_id)
        rows = translated_rows(window_rows(base, window_of(task)), rows_sent(body))
    else:
        rows = validate_rows(task, rows_sent(body))
    task.answer = {"sentences": rows}
    task.score = gold.score(task, rows)
    # Answered as a real submit would be, version and all: gold stays hidden.
    if task.task_type is TaskType.TRANSLATION_REVIEW:
        version = {"translation_version": next_version(TranslationRevision, task.sample_id)}
    else:
        version = {"transcript_version": next_version(TranscriptRevision, task.sample_id)}
    return {**edit_rate(task, rows), **version}


def edit_rate(task: Assignment, rows: list[dict]) -> dict:
    """The task's window of the machine draft against what was sent (None without one)."""
    machine = machine_rows(task)
    scores = scoring.score_revision(machine, rows) if machine else {}
    return {"wer": scores.get("wer"), "cer": scores.get("cer")}


def decide(task: Assignment, user: User, payload: dict) -> dict:
    """A second reviewer's decision on the task under review."""
    body = payloads.parse(payloads.Decide, payload)
    require_editable(task, user, body.draft_version)
    if task.review_of_id is None:
        raise Invalid("Only a second review is approved or rejected; submit this task.")
    try:
        decision = Decision(body.decision)
    except ValueError:
        decision = None
    if decision not in staging.DECISIONS:
        raise Invalid("Choose approve, approve with minor changes, with major changes, or reject.")
    comment = (body.comment or "").strip() or None
    record_listening(task, body.listened, db_now())
    sample = lock_sample(task.sample_id)
    original = db.session.scalar(
        sa.select(Assignment).where(Assignment.id == task.review_of_id).with_for_update()
    )
    if original.status is not AssignmentStatus.SUBMITTED:
        raise NotEditable(
            f"The work under review is {original.status.value.replace('_', ' ')} now; "
            "this review can no longer decide it."
        )
    record: dict = {}
    if decision is Decision.REJECT:
        if not comment:
            raise Invalid("Say what the author should fix: a rejection needs a comment.")
        staging.reject(original)
    else:
        heard, required = task.listened_fraction or 0.0, staging.listen_required()
        if heard < required:
            raise NotHeard(
                f"Play the whole task before approving: you have heard {heard:.0%} of it.",
                listened=heard,
                required=required,
            )
        record = approve_changes(task, original, sample, user, body, decision)
        original.status = AssignmentStatus.APPROVED
    close(task, user, decision, comment=comment, author_id=original.reviewer_id, **record)
    tallies.decided(task, original, user.id, decision, record)
    finish_sample_if_done(sample, task.task_type)
    db.session.commit()
    return {"decision": decision.value, **{k: v for k, v in record.items() if k in AGREEMENT}}


AGREEMENT = ("wer", "cer", "boundary_diff_s")


def approve_changes(task, original, sample, user, body: payloads.Decide, decision) -> dict:
    """Write the second reviewer's changes, if any, and measure how far they moved the
    author's work: the agreement kept with the decision."""
    window = window_of(task)
    if task.task_type is TaskType.AUDIO_SEGMENTATION:
        author = (original.answer or {}).get("segments") or []
        sent = segments_sent(body)
        if decision in staging.WITH_CHANGES and sent:
            submit_segments(task, sample, sent)  # validates; the answer is the new cut
            final = task.answer["segments"]
        else:
            if sent and segments_differ(author, sent):
                raise Invalid(CHANGED)
            final = author
        return {"boundary_diff_s": staging.boundary_shift(author, final)}
    author_rows = window_rows(
        revision_rows(task.base_transcript_revision_id, task.base_translation_revision_id), window
    )
    if task.task_type is TaskType.TRANSLATION_REVIEW:
        edited = translated_rows(author_rows, rows_sent(body))
    else:
        edited = validate_rows(task, rows_sent(body))
    changed = comparable(edited) != comparable(author_rows)
    if changed and decision not in staging.WITH_CHANGES:
        raise Invalid(CHANGED)
    record = {}
    if changed:
        record = submit_text(task, sample, user, body)["decision"]
    ours = reviewed_text(author_rows, task.task_type)
    final = reviewed_text(edited, task.task_type)
    return {**record, "wer": scoring.wer(final, ours), "cer": scoring.cer(final, ours)}


def segments_differ(author: list, sent: list[dict]) -> bool:
    mine = [[round(s["start"], 3), round(s["end"], 3)] for s in sent]
    return sorted(mine) != sorted([[round(a, 3), round(b, 3)] for a, b in author])


CHANGED = (
    "You changed the work: choose “Approve with minor changes” or “with major changes”, "
    "or undo your edits to approve it as it is."
)


def submit_text(task: Assignment, sample: Sample, user: User, body: payloads.Submit) -> dict:
    """A new revision of the sample with the window's rows replaced by the task's; refused
    as stale when the window changed since the task started, unless forced. A task merges
    only what its type owns: a transcript correction keeps translations that a translation
    review submitted meanwhile for sentences it did not touch."""
    window = window_of(task)
    current_t, current_tr = latest_revisions(sample.id)
    current = window_rows(rows_of(current_t, current_tr), window)
    base = window_rows(
        revision_rows(task.base_transcript_revision_id, task.base_translation_revision_id), window
    )
    if not body.force and comparable(current) != comparable(base):
        who = (current_t.written_by if current_t else None) or "the pipeline"
        raise Stale(
            f"This part of the recording was changed by {who} (version {current_t.version}) "
            "after you started. Your draft is kept. Compare with the current text, then "
            "submit again to replace it with yours.",
            current=current,
            current_transcript_revision_id=str(current_t.id),
        )
    if task.task_type is TaskType.TRANSLATION_REVIEW:
        edited = translated_rows(current, rows_sent(body))
    else:
        edited = keep_newer_translations(validate_rows(task, rows_sent(body)), base, current)
    merged = merge_window(rows_of(current_t, current_tr), window, edited)
    scores = edit_rate(task, edited)
    if task.task_type is TaskType.TRANSLATION_REVIEW:
        # The transcript is as it was: only a translation revision, on the current transcript.
        translation = write_translation_revision(
            sample,
            current_t,
            merged,
            origin=Origin.HUMAN,
            author_id=user.id,
            assignment_id=task.id,
            base=current_tr,
        )
        db.session.flush()
        record = {"transcript_revision_id": None, "translation_revision_id": translation.id}
        return {**scores, "translation_version": translation.version, "decision": record}
    has_translation = current_tr is not None or any(r.get("translation") for r in merged)
    transcript, translation = write_revisions(
        sample,
        merged,
        origin=Origin.HUMAN,
        with_translation=has_translation,
        author_id=user.id,
        assignment_id=task.id,
        base_transcript=current_t,
        base_translation=current_tr,
        scores=scores,
    )
    db.session.flush()
    return {
        **scores,
        "transcript_version": transcript.version,
        "decision": {
            "transcript_revision_id": transcript.id,
            "translation_revision_id": translation.id if translation else None,
        },
    }


def finish_sample_if_done(sample: Sample, task_type: TaskType) -> bool:
    """When the last open task of a kind is closed, the sample moves on (True), and the
    stage that follows is queued in the same transaction."""
    kinds = TEXT_TASKS if task_type in TEXT_TASKS else (TaskType.AUDIO_SEGMENTATION,)
    still_open = db.session.scalar(
        sa.select(sa.func.count()).where(
            Assignment.sample_id == sample.id,
            Assignment.task_type.in_(kinds),
            Assignment.status.in_(OPEN),
            Assignment.is_gold.is_(False),
        )
    )
    if still_open:
        return False
    target = (
        ProcessingState.REVIEWED if task_type in TEXT_TASKS else ProcessingState.SEGMENTS_REVIEWED
    )
    if not can_transition(sample.processing_state, target):
        return False
    advance(sample, target)
    return True
