"""Transcript and translation revisions: the current text of a sample, new versions, and
merging a review window's edits into the whole recording.

Revisions are append-only. A translation revision follows the transcript revision it names
sentence by sentence (index for index); whoever writes a new transcript revision of a sample
that has translations writes the matching translation revision in the same transaction, so
the newest translation always follows the newest transcript.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from ..extensions import db
from .models import HUMAN_ORIGINS, Origin, Sample, TranscriptRevision, TranslationRevision

MACHINE_ORIGINS = tuple(o for o in Origin if o not in HUMAN_ORIGINS)


def latest(model, sample_id: uuid.UUID):
    return db.session.scalar(
        sa.select(model).where(model.sample_id == sample_id).order_by(model.version.desc()).limit(1)
    )


def latest_transcript(sample_id) -> TranscriptRevision | None:
    return latest(TranscriptRevision, sample_id)


def latest_translation(sample_id) -> TranslationRevision | None:
    """The newest translation, if it follows the newest transcript."""
    return latest_revisions(sample_id)[1]


def latest_revisions(sample_id) -> tuple[TranscriptRevision | None, TranslationRevision | None]:
    """The newest transcript, and the newest translation if it follows that transcript."""
    transcript = latest_transcript(sample_id)
    translation = latest(TranslationRevision, sample_id) if transcript else None
    if translation is not None and translation.transcript_revision_id != transcript.id:
        translation = None
    return transcript, translation


def machine_draft(sample_id) -> TranscriptRevision | None:
    """The newest machine transcript: what reviewers' corrections are measured against."""
    return db.session.scalar(
        sa.select(TranscriptRevision)
        .where(
            TranscriptRevision.sample_id == sample_id,
            TranscriptRevision.origin.in_(MACHINE_ORIGINS),
        )
        .order_by(TranscriptRevision.version.desc())
        .limit(1)
    )


def next_version(model, sample_id) -> int:
    current = db.session.scalar(
        sa.select(sa.func.max(model.version)).where(model.sample_id == sample_id)
    )
    return (current or 0) + 1


def rows_of(transcript: TranscriptRevision | None, translation: TranslationRevision | None):
    """Sentence rows with their translation and flags: what review forms edit."""
    if transcript is None:
        return []
    by_index = {t["index"]: t for t in (translation.sentences if translation else [])}
    rows = []
    for index, sentence in enumerate(transcript.sentences):
        translated = by_index.get(index, {})
        rows.append(
            {
                "start": sentence["start"],
                "end": sentence["end"],
                "text": sentence["text"],
                "lang_overrides": sentence.get("lang_overrides") or {},
                **({"label": sentence["label"]} if sentence.get("label") else {}),
                "translation": translated.get("translation", ""),
                "flags": list(translated.get("flags") or []),
            }
        )
    return rows


@dataclass(frozen=True)
class Window:
    start: float
    end: float | None  # None: to the end of the recording

    def holds(self, row: dict) -> bool:
        """A sentence belongs to the window its start falls in."""
        return row["start"] >= self.start and (self.end is None or row["start"] < self.end)

    def label(self) -> str:
        end = "end" if self.end is None else f"{self.end:g} s"
        return f"{self.start:g} s – {end}"


def window_rows(rows: list[dict], window: Window) -> list[dict]:
    return [row for row in rows if window.holds(row)]


def rows_inside(rows: list[dict], start: float, end: float) -> list[dict]:
    """The sentences a segment holds: those whose middle falls in [start, end)."""
    return [row for row in rows if start <= (row["start"] + row["end"]) / 2 < end]


def merge_window(rows: list[dict], window: Window, edited: list[dict]) -> list[dict]:
    """The whole recording's rows with the window's rows replaced by `edited`; the
    neighbours' sentences are left exactly as they are."""
    kept = [row for row in rows if not window.holds(row)]
    return sorted(kept + edited, key=lambda row: (row["start"], row["end"]))


def write_revisions(
    sample: Sample,
    rows: list[dict],
    *,
    origin: Origin,
    with_translation: bool,
    author_id: int | None = None,
    assignment_id=None,
    base_transcript: TranscriptRevision | None = None,
    base_translation: TranslationRevision | None = None,
    model_name: str | None = None,
    prompt_version: str | None = None,
    scores: dict | None = None,
) -> tuple[TranscriptRevision, TranslationRevision | None]:
    """Append a transcript revision (and its translation revision) made of `rows`."""
    scores = scores or {}
    transcript = TranscriptRevision(
        sample=sample,
        version=next_version(TranscriptRevision, sample.id),
        origin=origin,
        sentences=[
            {
                "start": row["start"],
                "end": row["end"],
                "text": row["text"],
                **({"lang_overrides": row["lang_overrides"]} if row.get("lang_overrides") else {}),
                # A language label given by hand in another tool (Label Studio's regions).
                **({"label": row["label"]} if row.get("label") else {}),
            }
            for row in rows
        ],
        author_id=author_id,
        assignment_id=assignment_id,
        base_revision_id=base_transcript.id if base_transcript else None,
        model_name=model_name,
        prompt_version=prompt_version,
        wer=scores.get("wer"),
        cer=scores.get("cer"),
    )
    db.session.add(transcript)
    translation = None
    if with_translation:
        translation = write_translation_revision(
            sample,
            transcript,
            rows,
            origin=origin,
            author_id=author_id,
            assignment_id=assignment_id,
            base=base_translation,
            model_name=model_name,
            prompt_version=prompt_version,
        )
    else:
        sample.translation_flag_count = 0
        sample.needs_translation_review = False
    return transcript, translation


def write_translation_revision(
    sample: Sample,
    transcript: TranscriptRevision,
    rows: list[dict],
    *,
    origin: Origin,
    author_id: int | None = None,
    assignment_id=None,
    base: TranslationRevision | None = None,
    model_name: str | None = None,
    prompt_version: str | None = None,
) -> TranslationRevision:
    """Append a translation revision following `transcript` index for index (alone, when only
    the translations changed), and keep the sample's flag columns in step with its flags."""
    translation = TranslationRevision(
        sample=sample,
        version=next_version(TranslationRevision, sample.id),
        origin=origin,
        sentences=[
            {
                "index": index,
                "translation": row.get("translation", ""),
                **({"flags": row["flags"]} if row.get("flags") else {}),
            }
            for index, row in enumerate(rows)
        ],
        transcript=transcript,
        author_id=author_id,
        assignment_id=assignment_id,
        base_revision_id=base.id if base else None,
        model_name=model_name,
        prompt_version=prompt_version,
    )
    db.session.add(translation)
    flags = sum(len(row.get("flags") or []) for row in rows)
    sample.translation_flag_count = flags
    sample.needs_translation_review = flags > 0
    return translation
