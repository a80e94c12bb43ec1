"""Training data out: reviewed samples in the training layout, and frozen export snapshots.

Staging (the `export` stage, queue `io`): a sample whose review of one task type is finished
(the sample is past that review gate, and every task of that type was submitted or approved,
none open) is written to ``<root>/reviewed/{task_type}/{sample_id}/``::

    audio.wav          the 16 kHz master (a hard link where the file system allows)
    denoised.wav       the denoised rendition, when there is one
    transcript.json    the reviewed transcript revision: sentences, per-word language tags,
                       word timings when aligned
    translation.json   the translation revision that follows it, sentence by sentence
    metadata.json      sample, source, split, reviews, denoising, provenance
    segments.jsonl     one line per reviewed segment (paths relative to this folder)
    segments/<position>.wav   each segment, cut sample-exact from the master

Segments are included once they are reviewed (audio_segmentation done). Staging an
audio_segmentation export moves the sample to `exported`. The folder is made in a scratch
folder and renamed into place, so readers never see half of it; staging again replaces it.

Snapshot (`flask export`): every export gets an id and a folder ``<root>/exports/<id>/``
that never changes afterwards::

    data/{task_type}/{sample_id}/...   hard links to the staged files (copies across file
                                       systems): a later export replaces the staged folder by
                                       renaming, so the snapshot's files stay as they were
    manifest.jsonl, train.jsonl, dev.jsonl, test.jsonl   the segment manifest, whole and split
    samples.jsonl      one line per sample folder
    export.json        id, time, filters, counts
    SHA256SUMS         `sha256sum -c` format, every file above

A manifest line is a NeMo manifest entry (`audio_filepath`, `offset`, `duration`, `text`;
paths relative to the manifest, which NeMo resolves against the manifest's folder) with the
rest of what a speech-translation corpus needs: `translation`, `words` (text and language of
each word), `lang_tags`, `english_share`, `clip_filepath` (the cut segment, for Hugging Face
`datasets`' Audio feature: ``load_dataset("json", data_files=...)`` then
``cast_column("clip_filepath", Audio())`` after joining the snapshot folder), `source`,
revision ids, `split`.

The split (train/dev/test) follows the source: a deterministic hash of the source's kind and
external id, so every sample of one video lands in the same split, in every export and on
every machine (EXPORT_DEV_PERCENT, EXPORT_TEST_PERCENT).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from ra_app.core.files import sha256_file
from ra_app.core.models import (
    Assignment,
    AssignmentStatus,
    JobRun,
    JobStatus,
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
from ra_app.core.states import ProcessingState, transition
from ra_app.core.storage import LocalStorage
from ra_app.core.text import english_share, word_languages
from ra_app.core.wav import read_pcm, sample_index, write_wav
from ra_app.extensions import db

from ..jobs import ClaimTaken, stage_run
from ..master import open_master
from .common import get_sample, outcome

S = ProcessingState
STAGE = "export"
TEXT_DONE = (
    S.REVIEWED,
    S.ALIGNED,
    S.SEGMENTED,
    S.SEGMENTS_REVIEWED,
    S.DENOISED,
    S.EXPORTED,
)
SEGMENTS_DONE = (S.SEGMENTS_REVIEWED, S.DENOISED, S.EXPORTED)
STATES_FOR = {
    TaskType.TRANSCRIPT_CORRECTION: TEXT_DONE,
    TaskType.TRANSLATION_REVIEW: TEXT_DONE,
    TaskType.AUDIO_SEGMENTATION: SEGMENTS_DONE,
}
FINISHED = (AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED)
SPLITS = ("train", "dev", "test")


def export_root(output_dir: str | os.PathLike | None = None) -> Path:
    config = current_app.config
    return Path(output_dir or config.get("EXPORT_DIR") or config["DATA_ROOT"]).resolve()


def new_export_id() -> str:
    return f"{utcnow():%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def split_of(source: Source) -> str:
    """train, dev or test, from a hash of the source: stable across runs and databases."""
    digest = hashlib.sha256(f"{source.kind.value}:{source.external_id}".encode()).hexdigest()
    bucket = int(digest[:8], 16) % 10000 / 100  # 0.00 .. 99.99
    test = current_app.config["EXPORT_TEST_PERCENT"]
    dev = current_app.config["EXPORT_DEV_PERCENT"]
    if bucket < test:
        return "test"
    if bucket < test + dev:
        return "dev"
    return "train"


# ---------------------------------------------------------------------------- selection


def reviewed_samples(task_type: TaskType, sample_ids=None):
    """Samples whose review of `task_type` is finished, oldest first."""
    tasks = sa.select(Assignment.id).where(
        Assignment.sample_id == Sample.id, Assignment.task_type == task_type
    )
    query = (
        sa.select(Sample)
        .where(
            Sample.processing_state.in_(STATES_FOR[task_type]),
            tasks.where(Assignment.status.in_(FINISHED)).exists(),
            ~tasks.where(Assignment.status.not_in(FINISHED)).exists(),
        )
        .order_by(Sample.created_at, Sample.id)
    )
    if sample_ids is not None:
        query = query.where(Sample.id.in_(sample_ids))
    return db.session.scalars(query)


def is_reviewed(sample: Sample, task_type: TaskType) -> bool:
    return sample in set(reviewed_samples(task_type, [sample.id]))


def subject_of(task_type: TaskType, sample_id) -> str:
    return f"{task_type.value}:{sample_id}"


def last_export(task_type: TaskType, sample_id, in_snapshot: bool) -> dict | None:
    """The result of the newest finished export of this sample (in a snapshot, if asked)."""
    results = db.session.scalars(
        sa.select(JobRun.result)
        .where(
            JobRun.stage == STAGE,
            JobRun.subject == subject_of(task_type, sample_id),
            JobRun.status == JobStatus.SUCCEEDED,
        )
        .order_by(JobRun.id.desc())
    )
    for result in results:
        if not result or result.get("status") not in ("exported", "already_exported"):
            continue
        if in_snapshot and not (
            result.get("export_id")
            and (Path(result.get("root", "")) / "exports" / result["export_id"]).is_dir()
        ):
            continue  # staged only, or its snapshot never got made
        return result
    return None


# ------------------------------------------------------------------------------ content


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
            "sample_rate": None,  # filled in by the writer
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


# ----------------------------------------------------------------------------- writing


def link_or_copy(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """A hard link (instant, and frozen: our writers replace files, never rewrite them in
    place), or a copy where the two paths are on different file systems."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def write_json(path: Path, doc) -> None:
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def write_jsonl(path: Path, lines: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def stage_folder(c: Content, root: LocalStorage, split: str, fingerprint: str) -> str:
    """Write the sample's folder; returns its key under the export root."""
    config = current_app.config
    data = LocalStorage(config["DATA_ROOT"])
    sample = c.sample
    key = f"reviewed/{c.task_type.value}/{sample.id}"
    scratch = root.scratch_dir(f"export-{c.task_type.value}-{sample.id}")
    try:
        info = open_master(sample)
        master = info.path
        link_or_copy(master, scratch / "audio.wav")
        denoised = data.path(sample.denoised_path) if sample.denoised_path else None
        has_denoised = denoised is not None and denoised.is_file()
        if has_denoised:
            link_or_copy(denoised, scratch / "denoised.wav")
        if c.segments:
            (scratch / "segments").mkdir()
            pcm = read_pcm(info)
            for g in c.segments:
                first, last = clip_span(g, info.sample_rate, info.n_frames)
                write_wav(
                    scratch / "segments" / f"{g.position}.wav", pcm[first:last], info.sample_rate
                )
        write_json(scratch / "transcript.json", transcript_doc(c))
        write_json(scratch / "translation.json", translation_doc(c))
        meta = metadata_doc(c, split, fingerprint, has_denoised)
        meta["audio"]["sample_rate"] = info.sample_rate
        write_json(scratch / "metadata.json", meta)
        write_jsonl(scratch / "segments.jsonl", segment_lines(c, split, has_denoised, info))
        root.place_dir(scratch, key)
    finally:
        root.delete_tree(f"tmp/{scratch.name}")
    return key


def run(
    sample_id,
    *,
    task_type: TaskType | str = TaskType.AUDIO_SEGMENTATION,
    dry_run: bool = False,
    output_dir: str | os.PathLike | None = None,
    export_id: str | None = None,
) -> dict:
    """Stage one sample's reviewed `task_type` into the training layout (idempotent: an
    unchanged sample whose folder is in place is left alone)."""
    task_type = TaskType(task_type)
    sample = get_sample(sample_id)
    if not is_reviewed(sample, task_type):
        return outcome(
            "skipped",
            sample.id,
            f"is {sample.processing_state.value}; its {task_type.value} review is not finished",
        )
    c = content_of(sample, task_type)
    fingerprint = c.fingerprint()
    root = LocalStorage(export_root(output_dir))
    key = f"reviewed/{task_type.value}/{sample.id}"
    split = split_of(sample.source)
    facts = {
        "task_type": task_type.value,
        "fingerprint": fingerprint,
        "folder": key,
        "root": str(root.root),
        "split": split,
        "segments": len(c.segments),
        "export_id": export_id,
    }
    previous = last_export(task_type, sample.id, in_snapshot=False)
    unchanged = (
        previous is not None
        and previous.get("fingerprint") == fingerprint
        and previous.get("root") == str(root.root)
        and (root.path(key) / "metadata.json").is_file()
    )
    if dry_run:
        verb = "unchanged" if unchanged else f"{len(c.segments)} segments, split {split}"
        return outcome("would_export", sample.id, verb, **facts)
    if not unchanged:
        stage_folder(c, root, split, fingerprint)
    if task_type is TaskType.AUDIO_SEGMENTATION and sample.processing_state in (
        S.SEGMENTS_REVIEWED,
        S.DENOISED,
    ):
        transition(sample, S.EXPORTED)
    db.session.commit()
    status = "already_exported" if unchanged else "exported"
    return outcome(status, sample.id, f"{len(c.segments)} segments, split {split}", **facts)


# ---------------------------------------------------------------------------- snapshots


def write_checksums(folder: Path) -> None:
    lines = [
        f"{sha256_file(path)}  {path.relative_to(folder).as_posix()}\n"
        for path in sorted(p for p in folder.rglob("*") if p.is_file())
    ]
    (folder / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")


def verify_checksums(folder: Path) -> list[str]:
    """Files whose content no longer matches SHA256SUMS (empty when all is well)."""
    bad = []
    for line in (folder / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        path = folder / name
        if not path.is_file() or sha256_file(path) != digest:
            bad.append(name)
    return bad


def snapshot(staged: list[tuple[str, str]], root_dir: Path, export_id: str, filters: dict) -> Path:
    """Freeze the staged folders `(task_type, sample_id)` as `exports/<export_id>/`."""
    root = LocalStorage(root_dir)
    scratch = root.scratch_dir(f"snapshot-{export_id}")
    try:
        manifest, samples = [], []
        for task_type, sample_id in staged:
            rel = f"data/{task_type}/{sample_id}"
            src = root.path(f"reviewed/{task_type}/{sample_id}")
            shutil.copytree(src, scratch / rel, copy_function=link_or_copy)
            for line in read_jsonl(scratch / rel / "segments.jsonl"):
                for field in ("audio_filepath", "clip_filepath", "denoised_filepath"):
                    if line.get(field):
                        line[field] = f"{rel}/{line[field]}"
                manifest.append(line)
            meta = json.loads((scratch / rel / "metadata.json").read_text(encoding="utf-8"))
            samples.append(
                {
                    "sample_id": sample_id,
                    "task_type": task_type,
                    "folder": rel,
                    "split": meta["split"],
                    "source": meta["source"],
                    "duration_s": meta["sample"]["duration_s"],
                    "segments": meta["segments"],
                    "fingerprint": meta["fingerprint"],
                    "transcript_revision_id": meta["transcript_revision_id"],
                    "translation_revision_id": meta["translation_revision_id"],
                }
            )
        write_jsonl(scratch / "manifest.jsonl", manifest)
        for split in SPLITS:
            write_jsonl(scratch / f"{split}.jsonl", [m for m in manifest if m["split"] == split])
        write_jsonl(scratch / "samples.jsonl", samples)
        write_json(
            scratch / "export.json",
            {
                "export_id": export_id,
                "created_at": iso_utc(utcnow()),
                "filters": filters,
                "samples": len(samples),
                "segments": len(manifest),
                "segment_hours": round(sum(m["duration"] for m in manifest) / 3600, 4),
                "per_split": {
                    split: {
                        "samples": sum(s["split"] == split for s in samples),
                        "segments": sum(m["split"] == split for m in manifest),
                    }
                    for split in SPLITS
                },
                "manifest_format": "NeMo (audio_filepath, offset, duration, text) + extras",
            },
        )
        write_checksums(scratch)
        return root.place_dir(scratch, f"exports/{export_id}")
    finally:
        root.delete_tree(f"tmp/{scratch.name}")


@dataclass
class Candidate:
    task_type: TaskType
    sample: Sample


def candidates(
    task_types: list[TaskType], limit: int | None, include_exported: bool, sample_ids=None
) -> list[Candidate]:
    """What `flask export` takes: reviewed samples not yet in a snapshot in their current
    form (all reviewed samples with `include_exported`)."""
    chosen: list[Candidate] = []
    for task_type in task_types:
        for sample in reviewed_samples(task_type, sample_ids):
            if limit is not None and len(chosen) >= limit:
                return chosen
            if not include_exported:
                previous = last_export(task_type, sample.id, in_snapshot=True)
                if (
                    previous
                    and previous.get("fingerprint") == content_of(sample, task_type).fingerprint()
                ):
                    continue
            chosen.append(Candidate(task_type, sample))
    return chosen


def make_export(
    task_types: list[TaskType],
    *,
    limit: int | None = None,
    output_dir: str | os.PathLike | None = None,
    include_exported: bool = False,
    dry_run: bool = False,
    sample_ids=None,
) -> dict:
    """Stage the chosen samples (each under its export claim) and freeze them as one
    snapshot. Returns the snapshot's id and folder (None when nothing was exported) and
    one outcome per sample; one failing sample does not stop the others."""
    root_dir = export_root(output_dir)
    export_id = new_export_id()
    chosen = candidates(task_types, limit, include_exported, sample_ids)
    filters = {
        "task_types": [t.value for t in task_types],
        "limit": limit,
        "include_exported": include_exported,
        "sample_ids": [str(s) for s in sample_ids] if sample_ids is not None else None,
    }
    outcomes, staged = [], []
    for c in chosen:
        sample_id = c.sample.id
        if dry_run:
            outcomes.append(
                run(sample_id, task_type=c.task_type, dry_run=True, output_dir=root_dir)
            )
            continue
        try:
            with stage_run(STAGE, subject_of(c.task_type, sample_id), sample_id=sample_id) as job:
                job.result = run(
                    sample_id, task_type=c.task_type, output_dir=root_dir, export_id=export_id
                )
        except ClaimTaken as taken:
            outcomes.append(outcome("busy", sample_id, str(taken)))
            continue
        except Exception as error:  # recorded in job_runs by stage_run; the rest go on
            outcomes.append(outcome("failed", sample_id, f"{type(error).__name__}: {error}"))
            continue
        outcomes.append(job.result)
        if job.result["status"] in ("exported", "already_exported"):
            staged.append((c.task_type.value, str(sample_id)))
    folder = None
    if staged and not dry_run:
        folder = snapshot(staged, root_dir, export_id, filters)
    return {
        "export_id": export_id if folder else None,
        "folder": folder,
        "outcomes": outcomes,
        "samples": len(staged),
    }
