"""The product's reviewed work in Label Studio's import format, for teams that keep both
tools for a while: `<out>/tasks.json` and the audio under `<out>/audio/`.

One task per sample that people have reviewed (here or in Label Studio), not discarded:
- `data`: `audio` (the master WAV, as `--audio-url-prefix` + `<sample id>.wav`; the default
  prefix is Label Studio's local-files URL, so a Label Studio started with
  LOCAL_FILES_DOCUMENT_ROOT=<out> plays it), `title` and `sample_id`;
- one annotation, the current transcript and its translation: a region per sentence with the
  language label (the one given by hand, else the sentences' words' languages: vi, en or
  mixed), the transcription and the translation text areas, `completed_by` the author's
  e-mail (Label Studio matches it to its members);
- the newest machine draft as a prediction, so Label Studio can show what was corrected.

The control names are the ones `Names` reads (default lang / transcription / translation):
the project's labeling config must use them, as the team's does.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import sqlalchemy as sa

from ra_app.core.media_store import local_file
from ra_app.core.models import HUMAN_ORIGINS, Sample, TranscriptRevision
from ra_app.core.revisions import latest_revisions, machine_draft, rows_of
from ra_app.core.states import ProcessingState
from ra_app.core.text import word_languages
from ra_app.extensions import db

from .exports import DEFAULT_NAMES, Names

LOCAL_FILES_PREFIX = "/data/local-files/?d=audio/"


def reviewed_samples() -> list[Sample]:
    human = sa.exists().where(
        TranscriptRevision.sample_id == Sample.id, TranscriptRevision.origin.in_(HUMAN_ORIGINS)
    )
    return db.session.scalars(
        sa.select(Sample)
        .where(human, Sample.processing_state != ProcessingState.DISCARDED)
        .order_by(Sample.created_at, Sample.id)
    ).all()


def export_labelstudio(
    out: Path, audio_url_prefix: str = LOCAL_FILES_PREFIX, names: Names = DEFAULT_NAMES
):
    """Write the tasks and their audio; returns (tasks written, audio files copied)."""
    (out / "audio").mkdir(parents=True, exist_ok=True)
    tasks, copied = [], 0
    for sample in reviewed_samples():
        name = f"{sample.id}.wav"
        target = out / "audio" / name
        if not target.exists():
            with local_file(sample.master_path) as master:
                shutil.copyfile(master, target.with_suffix(".part"))
            target.with_suffix(".part").replace(target)
            copied += 1
        tasks.append(task_of(sample, audio_url_prefix + name, names))
    partial = out / "tasks.json.part"
    partial.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    partial.replace(out / "tasks.json")
    return len(tasks), copied


def task_of(sample: Sample, audio: str, names: Names) -> dict:
    transcript, translation = latest_revisions(sample.id)
    duration = round(sample.duration_s, 3)
    annotation = {
        "id": str(transcript.id),
        "result": results(transcript, rows_of(transcript, translation), duration, names),
        "was_cancelled": False,
        "ground_truth": False,
        "created_at": transcript.created_at.isoformat(),
        "updated_at": transcript.created_at.isoformat(),
    }
    if transcript.author is not None:
        annotation["completed_by"] = {"email": transcript.author.email}
    task = {
        "data": {"audio": audio, "title": sample.title, "sample_id": str(sample.id)},
        "annotations": [annotation],
        "predictions": [],
        "meta": {"review_factory": {"version": transcript.version, "by": transcript.written_by}},
    }
    draft = machine_draft(sample.id)
    if draft is not None:
        task["predictions"].append(
            {
                "id": str(draft.id),
                "model_version": draft.model_name or draft.origin.value,
                "result": results(draft, rows_of(draft, None), duration, names),
                "updated_at": draft.created_at.isoformat(),
            }
        )
    return task


def results(revision, rows: list[dict], duration: float, names: Names) -> list:
    """Label Studio's result items of `rows`: a labels item and one item per text area for
    each region, the region's id the same on every export of the revision."""
    items = []
    for index, row in enumerate(rows):
        region = hashlib.sha256(f"{revision.id}:{index}".encode()).hexdigest()[:10]
        span = {"start": row["start"], "end": row["end"], "channel": 0}
        common = {"id": region, "to_name": "audio", "original_length": duration}
        items.append(
            {
                **common,
                "type": "labels",
                "from_name": names.label,
                "value": {**span, "labels": [row.get("label") or label_of(row["text"])]},
            }
        )
        texts = [(names.transcription, row["text"])]
        if row["translation"]:
            texts.append((names.translation, row["translation"]))
        for control, text in texts:
            items.append(
                {
                    **common,
                    "type": "textarea",
                    "from_name": control,
                    "value": {**span, "text": [text]},
                }
            )
    return items


def label_of(text: str) -> str:
    languages = {w["lang"] for w in word_languages(text)}
    return languages.pop() if len(languages) == 1 else "mixed"
