"""What a task's page shows: its rows (the draft's, the task's base, or what it submitted),
the segments of a segmentation task, and the analysis served once the page is ready."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from ..core import flags, scoring, text
from ..core.models import (
    Assignment,
    AssignmentStatus,
    Segment,
    TaskType,
    TranscriptRevision,
    TranslationRevision,
    User,
    WordAlignment,
    iso_utc,
)
from ..core.revisions import Window, machine_draft, rows_of, window_rows
from ..core.tasks import OPEN, TEXT_TASKS
from ..extensions import db
from . import preferences, staging


def window_of(task: Assignment) -> Window:
    return Window(task.window_start_s, task.window_end_s)


def audio_span(task: Assignment) -> tuple[float, float]:
    """The stretch of the recording the task's player plays."""
    end = task.window_end_s if task.window_end_s is not None else task.sample.duration_s
    return task.window_start_s, min(end, task.sample.duration_s)


def can_edit(task: Assignment, user: User) -> bool:
    return task.reviewer_id == user.id and task.status is AssignmentStatus.IN_PROGRESS


def revision_rows(transcript_id, translation_id) -> list[dict]:
    transcript = db.session.get(TranscriptRevision, transcript_id) if transcript_id else None
    translation = db.session.get(TranslationRevision, translation_id) if translation_id else None
    return rows_of(transcript, translation)


def machine_rows(task: Assignment) -> list[dict]:
    draft = machine_draft(task.sample_id)
    return window_rows(rows_of(draft, None), window_of(task)) if draft else []


def segment_rows(task: Assignment) -> list[dict]:
    segments = db.session.scalars(
        sa.select(Segment).where(Segment.sample_id == task.sample_id).order_by(Segment.position)
    )
    window = window_of(task)
    return [
        {
            "start": s.start_s,
            "end": s.end_s,
            "text": s.text,
            "translation": s.translation,
            "too_long": s.too_long,
        }
        for s in segments
        if window.holds({"start": s.start_s})
    ]


def analyse(task: Assignment, rows: list[dict]) -> dict:
    """Languages per word, English share, and the diff and WER/CER against the machine."""
    sentences = []
    for row in rows:
        overrides = row.get("lang_overrides") or {}
        sentences.append(
            {
                "words": text.word_languages(row["text"], overrides),
                "english_share": round(text.english_share(row["text"], overrides), 3),
                "switches": text.switch_points(row["text"], overrides),
            }
        )
    machine = machine_rows(task)
    analysis = {"sentences": sentences}
    if machine:
        machine_text = " ".join(r["text"] for r in machine)
        human_text = " ".join(r["text"] for r in rows)
        analysis["diff"] = scoring.word_diff(machine_text, human_text)
        analysis.update(scoring.score_revision(machine, rows))
    return analysis


def shown_rows(task: Assignment) -> list[dict]:
    """The rows the page opens with: the draft's, else the task's (see task_data)."""
    drafted = (task.draft or {}).get("sentences")
    return drafted if drafted is not None else task_rows(task)


def opening_analysis(task: Assignment) -> dict:
    """The analysis of the rows the page opens with. Served after the page is ready (an
    hour's scoring and word tags take longer than drawing the page)."""
    return analyse(task, shown_rows(task)) if task.task_type in TEXT_TASKS else {}


def submitted_revisions(task: Assignment) -> tuple:
    """The revisions this task's submit wrote (None for a task not submitted yet)."""

    def of(model):
        return db.session.scalar(
            sa.select(model.id)
            .where(model.assignment_id == task.id)
            .order_by(model.version.desc())
            .limit(1)
        )

    return of(TranscriptRevision), of(TranslationRevision)


def task_rows(task: Assignment) -> list[dict]:
    """The rows the reviewer started from, or for a submitted task the rows it submitted."""
    if task.answer and task.answer.get("sentences") is not None:
        return task.answer["sentences"]  # a gold task's submit
    transcript_id, translation_id = (None, None)
    if task.status not in OPEN:
        transcript_id, translation_id = submitted_revisions(task)
        if transcript_id is None and translation_id is not None:  # a translation-only review
            transcript_id = db.session.get(
                TranslationRevision, translation_id
            ).transcript_revision_id
    if transcript_id is None:
        transcript_id = task.base_transcript_revision_id
        translation_id = task.base_translation_revision_id
    return window_rows(revision_rows(transcript_id, translation_id), window_of(task))


def word_times(task: Assignment) -> list[dict]:
    """The aligned words of the task's base transcript, per sentence of its window:
    [{start, end, words: [[word, start, end], …]}] (empty when it was never aligned). The page
    splits and plays from words with them while a sentence's text is unchanged."""
    if task.base_transcript_revision_id is None:
        return []
    words = db.session.execute(
        sa.select(WordAlignment.sentence_index, WordAlignment.word, WordAlignment.start_s,
                  WordAlignment.end_s)
        .where(WordAlignment.transcript_revision_id == task.base_transcript_revision_id)
        .order_by(WordAlignment.sentence_index, WordAlignment.word_index)
    ).all()  # fmt: skip
    if not words:
        return []
    sentences = db.session.get(TranscriptRevision, task.base_transcript_revision_id).sentences
    by_sentence: dict[int, list] = {}
    for index, word, start, end in words:
        by_sentence.setdefault(index, []).append([word, round(start, 3), round(end, 3)])
    window = window_of(task)
    return [
        {"start": sentence["start"], "end": sentence["end"], "words": by_sentence[index]}
        for index, sentence in enumerate(sentences)
        if index in by_sentence and window.holds(sentence)
    ]


def task_data(task: Assignment, user: User, urls: dict) -> dict:
    """Everything the task page needs, as JSON, but the analysis (opening_analysis)."""
    rows = task_rows(task)
    draft = task.draft or {}
    start, end = audio_span(task)
    config = current_app.config
    segmentation = task.task_type is TaskType.AUDIO_SEGMENTATION
    return {
        "task": {
            "id": str(task.id),
            "type": task.task_type.value,
            "status": task.status.value,
            "window_start": task.window_start_s,
            "window_end": end,
            "editable": can_edit(task, user),
            "lease_expires_at": iso_utc(task.lease_expires_at),
        },
        "sample": {
            "id": str(task.sample_id),
            "title": task.sample.title,
            "duration": task.sample.duration_s,
        },
        "urls": urls,
        "audio_offset": start,
        "base": {
            "transcript_revision_id": str(task.base_transcript_revision_id or ""),
            "translation_revision_id": str(task.base_translation_revision_id or ""),
        },
        "sentences": rows,
        "draft": draft or None,
        "draft_saved_at": iso_utc(task.draft_saved_at),
        "draft_version": task.draft_version,
        # Only a segmentation task shows segments (their text would give away a gold answer).
        "segments": draft.get("segments", segment_rows(task)) if segmentation else [],
        "rules": {
            "segment_min": config["SEGMENT_MIN_SECONDS"],
            "segment_max": config["SEGMENT_MAX_SECONDS"],
            "segment_long_max": config["SEGMENT_LONG_MAX_SECONDS"],
        },
        "review": staging.review_info(task),
        "returned": staging.return_info(task),
        "listened": (draft.get("listened") or []),
        "settings": preferences.page_settings(user),
        "flag_words": flags.WORDS,
        "unusable_reasons": flags.UNUSABLE_REASONS,
        "word_times": word_times(task) if task.task_type in TEXT_TASKS else [],
    }
