"""What a sample's export holds: its transcript, translation, metadata and segment
manifest lines, and how they are written.

A manifest line is a NeMo manifest entry (`audio_filepath`, `offset`, `duration`, `text`;
paths relative to the manifest, which NeMo resolves against the manifest's folder) with the
rest of what a speech-translation corpus needs: `translation`, `words` (text and language of
each word), `lang_tags`, `english_share`, `clip_filepath` (the cut segment, for Hugging Face
`datasets`' Audio feature: ``load_dataset("json", data_files=...)`` then
``cast_column("clip_filepath", Audio())`` after joining the snapshot folder), `source`,
revision ids, `split`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ra_app.core.audio import SAMPLE_RATE
from ra_app.core.models import (
    Assignment,
    ReviewDecision,
    Sample,
    Segment,
    Source,
    TaskType,
    TranscriptRevision,
    TranslationRevision,
    WordAlignment,
    iso_utc,
    utcnow,
)
from ra_app.core.revisions import latest_transcript, latest_translation
from ra_app.core.states import ProcessingState
from ra_app.core.text import english_share, word_languages
from ra_app.core.wav import sample_index
from ra_app.extensions import db

SEGMENTS_DONE = (
    ProcessingState.SEGMENTS_REVIEWED,
    ProcessingState.DENOISED,
    ProcessingState.EXPORTED,
)


@dataclass
class Content:
    """What one sample's export is made of."""

    sample: Sample
    task_type: TaskType
    transcript: TranscriptRevision
    translation: TranslationRevision | None
    segments: list[Segment]
    words: dict[int, list[WordAlignment]]

    def fingerprint(self) -> str:
        """Changes whenever anything the export contains changes."""
        s = self.sample
        data = {
            "checksum": s.checksum_sha256,
            "task_type": self.task_type.value,
            "transcript": str(self.transcript.id),
            "translation": str(self.translation.id) if self.translation else None,
            "segments": [
                [str(g.id), g.start_s, g.end_s, g.text, g.translation, g.too_long]
                for g in self.segments
            ],
            "denoised": [s.denoised_path, (s.denoise_info or {}).get("loudness")],
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def content_of(sample: Sample, task_type: TaskType) -> Content:
    """The sample's export for one task type. Segments belong to the audio_segmentation
    export only, so a snapshot with both lists each clip once."""
    transcript = latest_transcript(sample.id)
    if transcript is None:
        raise ValueError(f"sample {sample.id} has no transcript")
    segments = []
    if task_type is TaskType.AUDIO_SEGMENTATION and sample.processing_state in SEGMENTS_DONE:
        segments = list(
            db.session.scalars(
                sa.select(Segment).where(Segment.sample_id == sample.id).order_by(Segment.position)
            )
        )
    words: dict[int, list[WordAlignment]] = {}
    for w in db.session.scalars(
        sa.select(WordAlignment)
        .where(WordAlignment.transcript_revision_id == transcript.id)
        .order_by(WordAlignment.sentence_index, WordAlignment.word_index)
    ):
        words.setdefault(w.sentence_index, []).append(w)
    return Content(sample, task_type, transcript, latest_translation(sample.id), segments, words)


def revision_info(revision) -> dict:
    return {
        "id": str(revision.id),
        "version": revision.version,
        "origin": revision.origin.value,
        "author_id": revision.author_id,
        "assignment_id": str(revision.assignment_id) if revision.assignment_id else None,
        "base_revision_id": str(revision.base_revision_id) if revision.base_revision_id else None,
        "model_name": revision.model_name,
        "prompt_version": revision.prompt_version,
        "created_at": iso_utc(revision.created_at),
    }


def transcript_doc(c: Content) -> dict:
    sentences = []
    for index, s in enumerate(c.transcript.sentences):
        overrides = s.get("lang_overrides") or {}
        entry = {
            "index": index,
            "start": s["start"],
            "end": s["end"],
            "text": s["text"],
            "lang_overrides": overrides,
            "words": word_languages(s["text"], overrides),
            "english_share": round(english_share(s["text"], overrides), 3),
        }
        if index in c.words:
            entry["alignment"] = [
                {
                    "word": w.word,
                    "start": w.start_s,
                    "end": w.end_s,
                    "score": w.score,
                    "language": w.language,
                    "interpolated": w.interpolated,
                }
                for w in c.words[index]
            ]
        sentences.append(entry)
    return {
        "sample_id": str(c.sample.id),
        "revision": revision_info(c.transcript),
        "sentences": sentences,
    }


def translation_doc(c: Content) -> dict:
    t = c.translation
    return {
        "sample_id": str(c.sample.id),
        "revision": (
            {**revision_info(t), "transcript_revision_id": str(t.transcript_revision_id)}
            if t
            else None
        ),
        "sentences": [
            {
                "index": s["index"],
                "translation": s.get("translation", ""),
                "flags": s.get("flags") or [],
            }
            for s in (t.sentences if t else [])
        ],
    }


def source_doc(source: Source) -> dict:
    return {
        "id": str(source.id),
        "kind": source.kind.value,
        "external_id": source.external_id,
        "url": source.url,
        "title": source.title,
        "channel": source.channel,
    }


def metadata_doc(c: Content, split: str, fingerprint: str, has_denoised: bool) -> dict:
    s = c.sample
    tasks = db.session.scalars(
        sa.select(Assignment)
        .where(Assignment.sample_id == s.id, Assignment.task_type == c.task_type)
        .order_by(Assignment.window_start_s, Assignment.created_at)
    ).all()
    decisions = db.session.scalars(
        sa.select(ReviewDecision)
        .where(ReviewDecision.assignment_id.in_([t.id for t in tasks]))
        .order_by(ReviewDecision.created_at)
    ).all()
    return {
        "sample": {
            "id": str(s.id),
            "title": s.title,
            "language": s.language,
            "duration_s": s.duration_s,
            "checksum_sha256": s.checksum_sha256,
            "processing_state": s.processing_state.value,
            "created_at": iso_utc(s.created_at),
        },
        "source": source_doc(s.source),
        "task_type": c.task_type.value,
        "split": split,
        "fingerprint": fingerprint,
        "transcript_revision_id": str(c.transcript.id),
        "translation_revision_id": str(c.translation.id) if c.translation else None,
        "aligned": bool(c.words),
        "reviews": [
            {
                "assignment_id": str(t.id),
                "status": t.status.value,
                "reviewer_id": t.reviewer_id,
                "window": [t.window_start_s, t.window_end_s],
                "is_gold": t.is_gold,
                "score": t.score,
                "submitted_at": iso_utc(t.submitted_at),
            }
            for t in tasks
        ],
        "decisions": [
            {
                "assignment_id": str(d.assignment_id),
                "decision": d.decision.value,
                "reviewer_id": d.reviewer_id,
                "comment": d.comment,
                "created_at": iso_utc(d.created_at),
            }
            for d in decisions
        ],
        "audio": {
            "file": "audio.wav",
            "sample_rate": SAMPLE_RATE,  # every master is checked to be (pipeline/master.py)
            "denoised_file": "denoised.wav" if has_denoised else None,
            "denoise_info": s.denoise_info if has_denoised else None,
        },
        "segments": len(c.segments),
        "exported_at": iso_utc(utcnow()),
    }


def clip_span(g: Segment, sample_rate: int, n_frames: int) -> tuple[int, int]:
    """The samples of the master a segment's clip holds: what is cut, and what the manifest
    says (never past the end of the recording)."""
    start = min(sample_index(g.start_s, sample_rate), n_frames)
    return start, max(start, min(sample_index(g.end_s, sample_rate), n_frames))


def segment_lines(c: Content, split: str, has_denoised: bool, info) -> list[dict]:
    """The manifest lines of the sample's segments, paths relative to the sample folder."""
    sentences = c.transcript.sentences
    lines = []
    for g in c.segments:
        first, last = clip_span(g, info.sample_rate, info.n_frames)
        overrides = {}
        for s in sentences:
            if s["end"] > g.start_s and s["start"] < g.end_s:
                overrides.update(s.get("lang_overrides") or {})
        words = word_languages(g.text, overrides)
        tags = [w["lang"] for w in words]
        share = english_share(g.text, overrides)
        lines.append(
            {
                "audio_filepath": "audio.wav",
                "offset": round(first / info.sample_rate, 3),
                "duration": round((last - first) / info.sample_rate, 3),
                "text": g.text,
                "translation": g.translation,
                "lang": "en" if share > 0.5 else "vi",
                "lang_tags": tags,
                "words": [{"text": w["text"], "lang": w["lang"]} for w in words],
                "english_share": round(share, 3),
                "clip_filepath": f"segments/{g.position}.wav",
                "denoised_filepath": "denoised.wav" if has_denoised else None,
                "too_long": g.too_long,
                "split": split,
                "sample_id": str(c.sample.id),
                "segment_id": str(g.id),
                "position": g.position,
                "task_type": c.task_type.value,
                "source": source_doc(c.sample.source),
                "transcript_revision_id": str(g.transcript_revision_id or c.transcript.id),
                "translation_revision_id": (
                    str(g.translation_revision_id)
                    if g.translation_revision_id
                    else (str(c.translation.id) if c.translation else None)
                ),
            }
        )
    return lines


def write_json(path: Path, doc) -> None:
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def write_jsonl(path: Path, lines: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
