"""Samples with real audio and machine revisions, and review tasks on them."""

from __future__ import annotations

import uuid
from pathlib import Path

from pipeline.stages.ingest import Recording, ingest
from ra_app.core.models import Origin, Sample, Segment, SourceKind, TaskType, User
from ra_app.core.revisions import write_revisions
from ra_app.core.states import ProcessingState, transition
from ra_app.core.tasks import claim_next, create_tasks
from ra_app.extensions import db

from . import audio


def machine_rows(duration_s: float, every_s: float = 4.0) -> list[dict]:
    """A sentence every `every_s` seconds, each 3 s long, with a translation."""
    rows, start, i = [], 0.5, 0
    while start + 3.0 <= duration_s:
        rows.append(
            {
                "start": start,
                "end": start + 3.0,
                "text": f"câu số {i} có laptop",
                "translation": f"bản dịch {i}",
                "flags": [],
            }
        )
        start += every_s
        i += 1
    return rows


def make_review_sample(
    tmp_path: Path, duration_s: float = 20.0, rows=None, freq: int = 300, title: str = "bài nói"
) -> Sample:
    """Ingest a generated recording and give it a machine transcript and translation."""
    path = audio.tone(
        tmp_path / f"{title}-{freq}-{duration_s}.wav", seconds=duration_s, freq=freq, channels=1
    )
    outcome = ingest(
        Recording(path=str(path), kind=SourceKind.FILE, external_id=str(path), title=title)
    )
    sample = db.session.get(Sample, uuid.UUID(outcome.sample_id))
    write_revisions(
        sample,
        rows if rows is not None else machine_rows(duration_s),
        origin=Origin.IMPORTED,
        with_translation=True,
        model_name="test",
    )
    transition(sample, ProcessingState.TRANSCRIBED)
    db.session.commit()
    return sample


def segmented_sample(tmp_path: Path, duration_s: float, cuts: list[float]) -> Sample:
    """A recording whose text was reviewed, cut into segments at `cuts` (in an app context)."""
    sample = make_review_sample(tmp_path, duration_s=duration_s)
    for state in (ProcessingState.IN_REVIEW, ProcessingState.REVIEWED, ProcessingState.SEGMENTED):
        transition(sample, state)
    for position, (start, end) in enumerate(zip(cuts, cuts[1:], strict=False)):
        db.session.add(Segment(sample_id=sample.id, position=position, start_s=start, end_s=end))
    db.session.commit()
    return sample


def assign(sample: Sample, user_id: int, task_type=TaskType.TRANSCRIPT_CORRECTION, window_s=0):
    tasks = create_tasks(
        sample, task_type, reviewer=db.session.get(User, user_id), window_s=window_s
    )
    db.session.commit()
    return tasks


def claim(user_id: int, task_type=None):
    return claim_next(db.session.get(User, user_id), task_type)
