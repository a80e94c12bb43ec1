"""Training data out: reviewed samples in the training layout (snapshots of them:
pipeline/snapshot.py; what the files hold: pipeline/export_docs.py).

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

The split (train/dev/test) follows the source: a deterministic hash of the source's kind and
external id, so every sample of one video lands in the same split, in every export and on
every machine (EXPORT_DEV_PERCENT, EXPORT_TEST_PERCENT).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from ra_app.core.files import link_or_copy
from ra_app.core.media_store import (
    drop_work_dir,
    has_object,
    label,
    local_file,
    media_storage,
    publish_dir,
    work_dir,
)
from ra_app.core.models import (
    Assignment,
    JobRun,
    JobStatus,
    Sample,
    Source,
    TaskType,
)
from ra_app.core.states import ProcessingState, transition
from ra_app.core.storage import LocalStorage
from ra_app.core.tasks import DONE
from ra_app.core.wav import read_pcm, write_wav
from ra_app.extensions import db

from ..export_docs import (
    SEGMENTS_DONE,
    Content,
    clip_span,
    content_of,
    metadata_doc,
    segment_lines,
    transcript_doc,
    translation_doc,
    write_json,
    write_jsonl,
)
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
STATES_FOR = {
    TaskType.TRANSCRIPT_CORRECTION: TEXT_DONE,
    TaskType.TRANSLATION_REVIEW: TEXT_DONE,
    TaskType.AUDIO_SEGMENTATION: SEGMENTS_DONE,
}
SPLITS = ("train", "dev", "test")


def export_store(output_dir: str | os.PathLike | None = None):
    """Where `reviewed/` and `exports/` go: a folder given or EXPORT_DIR, else the media
    storage (DATA_ROOT, or the bucket with S3)."""
    folder = output_dir or current_app.config.get("EXPORT_DIR")
    return LocalStorage(Path(folder).resolve()) if folder else media_storage()


def store_at(root: str):
    """The export store a job result names by its label (None: no longer reachable here)."""
    if root.startswith("s3://"):
        store = media_storage()
        return store if label(store) == root else None
    return LocalStorage(root)


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
            tasks.where(Assignment.status.in_(DONE)).exists(),
            ~tasks.where(Assignment.status.not_in(DONE)).exists(),
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
        if in_snapshot and not (result.get("export_id") and in_a_snapshot(result)):
            continue  # staged only, or its snapshot never got made
        return result
    return None


def in_a_snapshot(result: dict) -> bool:
    store = store_at(result.get("root", ""))
    return store is not None and store.exists(f"exports/{result['export_id']}/export.json")


def stage_folder(c: Content, root, split: str, fingerprint: str) -> str:
    """Write the sample's folder; returns its key under the export root."""
    sample = c.sample
    key = f"reviewed/{c.task_type.value}/{sample.id}"
    name = f"export-{c.task_type.value}-{sample.id}"
    scratch = work_dir(name, root)
    try:
        with open_master(sample) as info:
            link_or_copy(info.path, scratch / "audio.wav")
            has_denoised = has_object(sample.denoised_path)
            if has_denoised:
                with local_file(sample.denoised_path) as denoised:
                    link_or_copy(denoised, scratch / "denoised.wav")
            if c.segments:
                (scratch / "segments").mkdir()
                pcm = read_pcm(info)
                for g in c.segments:
                    first, last = clip_span(g, info.sample_rate, info.n_frames)
                    write_wav(
                        scratch / "segments" / f"{g.position}.wav",
                        pcm[first:last],
                        info.sample_rate,
                    )
            lines = segment_lines(c, split, has_denoised, info)
        write_json(scratch / "transcript.json", transcript_doc(c))
        write_json(scratch / "translation.json", translation_doc(c))
        write_json(scratch / "metadata.json", metadata_doc(c, split, fingerprint, has_denoised))
        write_jsonl(scratch / "segments.jsonl", lines)
        publish_dir(root, scratch, key, last="metadata.json")
    finally:
        drop_work_dir(name, root)
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
    root = export_store(output_dir)
    key = f"reviewed/{task_type.value}/{sample.id}"
    split = split_of(sample.source)
    facts = {
        "task_type": task_type.value,
        "fingerprint": fingerprint,
        "folder": key,
        "root": label(root),
        "split": split,
        "segments": len(c.segments),
        "export_id": export_id,
    }
    previous = last_export(task_type, sample.id, in_snapshot=False)
    unchanged = (
        previous is not None
        and previous.get("fingerprint") == fingerprint
        and previous.get("root") == label(root)
        and root.exists(f"{key}/metadata.json")
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
