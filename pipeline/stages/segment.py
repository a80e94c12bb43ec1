"""The segment stage: cut a reviewed (or aligned) sample into 10–30 s training segments
at natural pauses (how: pipeline/cuts.py), store them, and open their segmentation review.

Idempotent (a segmented sample is left alone) and all-or-nothing. Segments are rows; their
clips are cut sample-exact from the master when exported (pipeline/stages/export.py), the
one place a clip is made.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from ra_app.core.clock import db_now
from ra_app.core.models import (
    Assignment,
    JobRun,
    JobStatus,
    Sample,
    Segment,
    TaskType,
    WordAlignment,
)
from ra_app.core.revisions import latest_transcript, latest_translation, rows_of
from ra_app.core.states import ProcessingState, transition
from ra_app.core.tasks import OPEN, create_tasks
from ra_app.core.wav import read_pcm
from ra_app.extensions import db

from ..cuts import PlannedSegment, Unit, plan_segments
from ..errors import PermanentError, TransientError
from ..master import open_master
from ..vad import Vad
from .common import get_sample, outcome

S = ProcessingState

WAITING = (S.REVIEWED, S.ALIGNED)
DONE = (S.SEGMENTED, S.SEGMENTS_REVIEWED, S.DENOISED, S.EXPORTED)


def word_timings(transcript_revision_id) -> dict[int, list[dict]]:
    rows = db.session.execute(
        sa.select(
            WordAlignment.sentence_index,
            WordAlignment.word,
            WordAlignment.start_s,
            WordAlignment.end_s,
        )
        .where(WordAlignment.transcript_revision_id == transcript_revision_id)
        .order_by(WordAlignment.sentence_index, WordAlignment.word_index)
    ).all()
    words: dict[int, list[dict]] = {}
    for index, word, start, end in rows:
        words.setdefault(index, []).append({"word": word, "start": start, "end": end})
    return words


def units_of(rows: list[dict], words: dict[int, list[dict]]) -> list[Unit]:
    units = []
    for index, row in enumerate(rows):
        timed = words.get(index) or []
        start, end = (timed[0]["start"], timed[-1]["end"]) if timed else (row["start"], row["end"])
        units.append(Unit(index, float(start), float(end), row["text"], row["translation"], timed))
    return units


def alignment_running(sample_id) -> bool:
    return bool(
        db.session.scalar(
            sa.select(sa.func.count()).where(
                JobRun.stage == "align",
                JobRun.subject == str(sample_id),
                JobRun.status == JobStatus.RUNNING,
                JobRun.lease_expires_at > db_now(),
            )
        )
    )


def plan_for(sample: Sample) -> tuple[list[PlannedSegment], dict]:
    """The segments the stage would make for `sample`, and what they were made from."""
    transcript = latest_transcript(sample.id)
    if transcript is None or not transcript.sentences:
        raise PermanentError(f"sample {sample.id} has no transcript to segment", code="no_text")
    translation = latest_translation(sample.id)
    rows = rows_of(transcript, translation)
    words = word_timings(transcript.id)
    aligned = bool(words)
    with open_master(sample) as info:
        vad = Vad.from_pcm(read_pcm(info), info.sample_rate)
    config = current_app.config
    planned = plan_segments(
        units_of(rows, words),
        vad,
        info.duration_s,
        config["SEGMENT_MIN_SECONDS"],
        config["SEGMENT_MAX_SECONDS"],
        aligned,
    )
    made_from = {
        "transcript": transcript,
        "translation": translation,
        "aligned": aligned,
    }
    return planned, made_from


def summary(planned: list[PlannedSegment], aligned: bool) -> str:
    flagged = sum(s.too_long for s in planned)
    basis = "word timings" if aligned else "sentence times"
    return f"{len(planned)} segments from {basis}" + (
        f", {flagged} flagged too long" if flagged else ""
    )


def run(sample_id, *, dry_run: bool = False) -> dict:
    """Segment one sample: idempotent (a segmented sample is left alone), all-or-nothing."""
    sample = get_sample(sample_id)
    state = sample.processing_state
    if state in DONE:
        return outcome("already_segmented", sample.id, f"already {state.value}")
    if state not in WAITING:
        return outcome("skipped", sample.id, f"is {state.value}; segmentation follows review")
    if state is S.REVIEWED and not dry_run and alignment_running(sample.id):
        raise TransientError(
            "alignment of this sample is still running", "segmentation waits for its word times"
        )
    planned, made_from = plan_for(sample)
    if not planned:
        raise PermanentError(f"sample {sample.id} has no timed sentences", code="no_text")
    message = summary(planned, made_from["aligned"])
    if dry_run:
        return outcome("would_segment", sample.id, message, segments=len(planned))

    try:
        save_segments(sample, planned, made_from)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return outcome(
        "segmented",
        sample.id,
        message,
        segments=len(planned),
        too_long=sum(s.too_long for s in planned),
        aligned=made_from["aligned"],
    )


def save_segments(sample: Sample, planned: list[PlannedSegment], made_from: dict):
    """Replace the sample's segments, move it on, and open the segment review."""
    db.session.execute(sa.delete(Segment).where(Segment.sample_id == sample.id))
    transcript, translation = made_from["transcript"], made_from["translation"]
    db.session.add_all(
        Segment(
            sample_id=sample.id,
            position=seg.position,
            start_s=seg.start,
            end_s=seg.end,
            text=seg.text,
            translation=seg.translation,
            transcript_revision_id=transcript.id,
            translation_revision_id=translation.id if translation else None,
            too_long=seg.too_long,
        )
        for seg in planned
    )
    transition(sample, S.SEGMENTED)
    already_open = db.session.scalar(
        sa.select(sa.func.count()).where(
            Assignment.sample_id == sample.id,
            Assignment.task_type == TaskType.AUDIO_SEGMENTATION,
            Assignment.status.in_(OPEN),
        )
    )
    if not already_open:
        create_tasks(sample, TaskType.AUDIO_SEGMENTATION, reviewer=None)
