"""What the drills count once the day is over: every figure is read from the database and
the exported files (inside an app context), none from what the drill itself believes."""

from __future__ import annotations

import json
from hashlib import sha256

import sqlalchemy as sa

from ra_app.core.models import (
    Assignment,
    JobRun,
    JobStatus,
    OutboxMessage,
    ReviewDecision,
    Sample,
    Segment,
    TranscriptRevision,
    TranslationRevision,
)
from ra_app.core.states import ProcessingState as S
from ra_app.core.tasks import DONE, OPEN
from ra_app.extensions import db


def extra_rows(column) -> int:
    """Rows beyond the first per value of `column` (NULLs not counted)."""
    counts = db.session.execute(
        sa.select(sa.func.count()).where(column.is_not(None)).group_by(column)
    ).scalars()
    return sum(n - 1 for n in counts)


def duplicate_segments() -> int:
    """Segments that repeat or overlap another of their sample."""
    bad = 0
    for sample_id in db.session.scalars(sa.select(Sample.id)):
        spans = db.session.execute(
            sa.select(Segment.start_s, Segment.end_s)
            .where(Segment.sample_id == sample_id)
            .order_by(Segment.start_s)
        ).all()
        pairs = zip(spans, spans[1:], strict=False)
        bad += sum(after.start_s < before.end_s - 1e-3 for before, after in pairs)
    return bad


def exported_more_than_once() -> int:
    """Samples whose export stage wrote their folder more than once."""
    results = db.session.execute(
        sa.select(JobRun.sample_id, JobRun.result).where(
            JobRun.stage == "export", JobRun.status == JobStatus.SUCCEEDED
        )
    ).all()
    written: dict = {}
    for sample_id, result in results:
        if (result or {}).get("status") == "exported":
            written[sample_id] = written.get(sample_id, 0) + 1
    return sum(n > 1 for n in written.values())


def read_object(store, key: str) -> bytes:
    return store.read_range(key, 0, store.size(key))


def audio_mismatches(store) -> int:
    """Exported samples whose audio is not their master, or whose segment lines are not
    their segments (`store`: where the media and `reviewed/` are, a folder or a bucket)."""
    bad = 0
    for sample in db.session.scalars(
        sa.select(Sample).where(Sample.processing_state == S.EXPORTED)
    ):
        folder = f"reviewed/audio_segmentation/{sample.id}"
        if (
            not store.exists(f"{folder}/audio.wav")
            or sha256(read_object(store, f"{folder}/audio.wav")).digest()
            != sha256(read_object(store, sample.master_path)).digest()
        ):
            bad += 1
            continue
        lines = [json.loads(x) for x in read_object(store, f"{folder}/segments.jsonl").splitlines()]
        rows = db.session.scalar(sa.select(sa.func.count()).where(Segment.sample_id == sample.id))
        if len(lines) != rows or len({x["segment_id"] for x in lines}) != rows:
            bad += 1
    return bad


def counts(store, tally) -> dict:
    db.session.remove()
    not_submitted = set(
        str(t)
        for t in db.session.scalars(
            sa.select(Assignment.id).where(
                Assignment.id.in_(list(tally.submitted)), Assignment.status.not_in(DONE)
            )
        )
    )
    never_done = db.session.scalar(sa.select(sa.func.count()).where(Assignment.status.in_(OPEN)))
    return {
        "samples_exported": db.session.scalar(
            sa.select(sa.func.count()).where(Sample.processing_state == S.EXPORTED)
        ),
        "samples_exported_more_than_once": exported_more_than_once(),
        "duplicate_revisions": extra_rows(TranscriptRevision.assignment_id)
        + extra_rows(TranslationRevision.assignment_id),
        "duplicate_segments": duplicate_segments(),
        "duplicate_decisions": extra_rows(ReviewDecision.assignment_id),
        "job_runs_left_running": db.session.scalar(
            sa.select(sa.func.count()).where(JobRun.status == JobStatus.RUNNING)
        ),
        "submits_lost": len(not_submitted) + never_done,
        "exported_audio_mismatches": audio_mismatches(store),
        "tasks_submitted": len(tally.submitted),
        "outbox_messages": db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)),
        "outbox_messages_sent_again": db.session.scalar(
            sa.select(sa.func.count()).where(OutboxMessage.sends > 1)
        ),
        "job_runs": dict(
            db.session.execute(
                sa.select(JobRun.status, sa.func.count()).group_by(JobRun.status)
            ).all()
        ),
        "reviewer_errors": tally.errors[:20],
    }
