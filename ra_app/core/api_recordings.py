"""What the HTTP API says of a recording sent through it, for its GET and its webhook alike.

A submission becomes a sample through the ordinary ingest: the ingest's claim subject
(`kind:external id`) finds its job runs, so the sample is known once an ingest of it
succeeded (a duplicate included: the same audio sent twice is one sample), and its error
once one failed for good. The state is then the sample's processing state; the text is its
current transcript and translation, and the segments appear once people reviewed them.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..extensions import db
from .models import (
    ApiSubmission,
    FailureClass,
    JobRun,
    JobStatus,
    Sample,
    Segment,
    iso_utc,
)
from .revisions import latest_revisions, rows_of
from .states import ProcessingState

QUEUED, FAILED = "queued", "failed"
SEGMENTS_SHOWN = frozenset(
    {ProcessingState.SEGMENTS_REVIEWED, ProcessingState.DENOISED, ProcessingState.EXPORTED}
)
# The webhook's events, in the order a recording reaches them.
EVENTS = {
    ProcessingState.TRANSCRIBED: "transcribed",
    ProcessingState.IN_REVIEW: "transcribed",
    ProcessingState.REVIEWED: "reviewed",
    ProcessingState.ALIGNED: "reviewed",
    ProcessingState.SEGMENTED: "reviewed",
    ProcessingState.SEGMENTS_REVIEWED: "segments_reviewed",
    ProcessingState.DENOISED: "segments_reviewed",
    ProcessingState.EXPORTED: "segments_reviewed",
}


def refresh(submission: ApiSubmission) -> None:
    """Learn the sample (or the failure) from the ingest's job runs, once."""
    if submission.sample_id is not None or submission.error is not None:
        return
    run = db.session.scalar(
        sa.select(JobRun)
        .where(JobRun.stage == "ingest", JobRun.subject == submission.subject)
        .where(JobRun.status.in_((JobStatus.SUCCEEDED, JobStatus.FAILED)))
        .order_by(JobRun.id.desc())
        .limit(1)
    )
    if run is None:
        return
    if run.status is JobStatus.SUCCEEDED and run.sample_id is not None:
        submission.sample_id = run.sample_id
    elif run.status is JobStatus.SUCCEEDED and (run.result or {}).get("status") == "skipped":
        submission.error = (run.result or {}).get("message") or "skipped"
    elif run.status is JobStatus.FAILED and run.failure_class is FailureClass.PERMANENT:
        submission.error = run.error or "it could not be ingested"


def state_of(submission: ApiSubmission, sample: Sample | None) -> str:
    if submission.error is not None:
        return FAILED
    return sample.processing_state.value if sample is not None else QUEUED


def event_of(submission: ApiSubmission, sample: Sample | None) -> str | None:
    """The latest webhook event the recording has reached (None: nothing to tell yet)."""
    if submission.error is not None:
        return FAILED
    return EVENTS.get(sample.processing_state) if sample is not None else None


def describe(submission: ApiSubmission) -> dict:
    """The recording as the API shows it."""
    sample = db.session.get(Sample, submission.sample_id) if submission.sample_id else None
    body = {
        "id": str(submission.id),
        "external_id": submission.external_id,
        "kind": submission.kind,
        "reference": submission.reference,
        "state": state_of(submission, sample),
        "error": submission.error,
        "created_at": iso_utc(submission.created_at),
        "sample_id": str(sample.id) if sample else None,
        "title": sample.title if sample else None,
        "duration_s": sample.duration_s if sample else None,
        "transcript": None,
        "translation": None,
        "segments": None,
    }
    if sample is None:
        return body
    transcript, translation = latest_revisions(sample.id)
    rows = rows_of(transcript, translation)
    if transcript is not None:
        body["transcript"] = {
            "version": transcript.version,
            "origin": transcript.origin.value,
            "sentences": [{"start": r["start"], "end": r["end"], "text": r["text"]} for r in rows],
        }
    if translation is not None:
        body["translation"] = {
            "version": translation.version,
            "origin": translation.origin.value,
            "sentences": [
                {"start": r["start"], "end": r["end"], "text": r["translation"]} for r in rows
            ],
        }
    if sample.processing_state in SEGMENTS_SHOWN:
        segments = db.session.scalars(
            sa.select(Segment).where(Segment.sample_id == sample.id).order_by(Segment.position)
        )
        body["segments"] = [
            {"start": s.start_s, "end": s.end_s, "text": s.text, "translation": s.translation}
            for s in segments
        ]
    return body
