"""Audit: every revision of a sample with who made it, when, from which base and task; one
revision's text; any two side by side with their differences."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ..core import scoring
from ..core.models import (
    Assignment,
    ReviewDecision,
    Sample,
    Segment,
    Source,
    TaskType,
    TranscriptRevision,
    TranslationRevision,
)
from ..core.revisions import rows_of
from ..extensions import db

KINDS = {"transcript": TranscriptRevision, "translation": TranslationRevision}


@dataclass
class Entry:
    revision: TranscriptRevision | TranslationRevision
    base_version: int | None


def history(sample_id, kind: str) -> list[Entry]:
    """Newest first, each with the version it was based on."""
    model = KINDS[kind]
    revisions = list(
        db.session.scalars(
            sa.select(model)
            .where(model.sample_id == sample_id)
            .options(sa.orm.selectinload(model.author))
            .order_by(model.version.desc())
        )
    )
    versions = {r.id: r.version for r in revisions}
    return [Entry(r, versions.get(r.base_revision_id)) for r in revisions]


def revision_rows(kind: str, revision) -> list[dict]:
    """The rows a revision stands for: a transcript with no translation, or a translation
    beside the transcript it follows."""
    if kind == "transcript":
        return rows_of(revision, None)
    return rows_of(revision.transcript, revision)


def field_of(kind: str) -> str:
    return "text" if kind == "transcript" else "translation"


def compare(kind: str, older, newer) -> dict:
    """Side by side rows, and the word diff and WER/CER from `older` to `newer`."""
    field = field_of(kind)
    a_rows, b_rows = revision_rows(kind, older), revision_rows(kind, newer)
    a_text = " ".join(r[field] for r in a_rows)
    b_text = " ".join(r[field] for r in b_rows)
    return {
        "a_rows": a_rows,
        "b_rows": b_rows,
        "diff": scoring.word_diff(a_text, b_text),
        "wer": scoring.wer(b_text, a_text),
        "cer": scoring.cer(b_text, a_text),
        "changed_rows": sum(
            1
            for i in range(max(len(a_rows), len(b_rows)))
            if i >= len(a_rows)
            or i >= len(b_rows)
            or (a_rows[i][field], a_rows[i]["start"], a_rows[i]["end"])
            != (b_rows[i][field], b_rows[i]["start"], b_rows[i]["end"])
        ),
    }


def sample_tasks(sample_id) -> list[tuple[Assignment, list[ReviewDecision]]]:
    tasks = list(
        db.session.scalars(
            sa.select(Assignment)
            .where(Assignment.sample_id == sample_id)
            .options(sa.orm.selectinload(Assignment.reviewer))
            .order_by(Assignment.created_at, Assignment.window_start_s)
        )
    )
    decisions: dict = {}
    for decision in db.session.scalars(
        sa.select(ReviewDecision)
        .where(ReviewDecision.assignment_id.in_([t.id for t in tasks]))
        .order_by(ReviewDecision.created_at)
    ):
        decisions.setdefault(decision.assignment_id, []).append(decision)
    return [(t, decisions.get(t.id, [])) for t in tasks]


def find_samples(query: str, limit: int = 50) -> list[Sample]:
    """Samples by title or source channel (newest first); all of them when `query` is empty."""
    select = sa.select(Sample).order_by(Sample.created_at.desc()).limit(limit)
    query = query.strip()
    if query:
        pattern = f"%{query}%"
        select = select.join(Source, Source.id == Sample.source_id).where(
            sa.or_(Sample.title.ilike(pattern), Source.channel.ilike(pattern))
        )
    return list(db.session.scalars(select))


def segments_of(sample_id) -> list[Segment]:
    return list(
        db.session.scalars(
            sa.select(Segment).where(Segment.sample_id == sample_id).order_by(Segment.position)
        )
    )


def segmentation_reviews(sample: Sample) -> list[dict]:
    """Each finished segmentation review of the sample, oldest first, with its window's
    boundaries before and after it (reviews from before "before" was kept show only after)."""
    tasks = db.session.scalars(
        sa.select(Assignment)
        .where(
            Assignment.sample_id == sample.id,
            Assignment.task_type == TaskType.AUDIO_SEGMENTATION,
            Assignment.answer.is_not(None),
        )
        .order_by(Assignment.submitted_at)
    )
    return [
        {
            "task": task,
            "start": task.window_start_s,
            "end": task.window_end_s if task.window_end_s is not None else sample.duration_s,
            "before": (task.answer or {}).get("before"),
            "after": (task.answer or {}).get("segments") or [],
        }
        for task in tasks
    ]
