"""Celery tasks: thin wrappers that claim, call a stage, and record the job run.

Tasks receive ids and plain JSON, never objects, and are named `pipeline.<stage>…` so that
`ra_app.core.queues.task_routes` sends each to its stage's queue.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from celery import shared_task
from flask import current_app

from ra_app.core import outbox
from ra_app.core.models import Sample, SourceKind
from ra_app.core.states import ProcessingState
from ra_app.core.storage import local_storage, s3_storage
from ra_app.extensions import db

from .claimed_runs import run_claimed
from .errors import PermanentError, TransientError
from .fetch import FetchError, fetch
from .jobs import ClaimTaken, stage_run, worker_name
from .stages import youtube
from .stages.ingest import Recording, duplicate, find_existing, ingest
from .stages.local_files import ingest_archive_members


@shared_task(bind=True, name="pipeline.selftest", soft_time_limit=120, time_limit=150)
def selftest(self, subject: str = "selftest", hold_s: float = 0.0):
    """Prove a worker can reach the database and take claims (`flask pipeline selftest`).

    `hold_s` keeps the claim for a while, which shows that a second task waits for it.
    """

    def body(run):
        time.sleep(min(hold_s, 60.0))
        return {"worker": worker_name(), "attempt": run.attempt}

    return run_claimed(self, "selftest", subject, body)


def ingest_body(recording: Recording):
    def body(run):
        outcome = ingest(recording)
        run.sample_id = uuid.UUID(outcome.sample_id) if outcome.sample_id else None
        if recording.transcribe and run.sample_id:
            transcribe_next(run.sample_id)
        return asdict(outcome)

    return body


def transcribe_next(sample_id: uuid.UUID) -> None:
    """Queue the machine transcript of a sample that has none yet. Committed after the
    sample: an ingest killed in between is redelivered, finds the sample and queues it then
    (the Gemini stage transcribes a sample once)."""
    sample = db.session.get(Sample, sample_id)
    if sample is not None and sample.processing_state is ProcessingState.INGESTED:
        outbox.enqueue("pipeline.gemini", args=[str(sample_id)], sample_id=sample_id)
        db.session.commit()


@shared_task(bind=True, name="pipeline.ingest.url", soft_time_limit=3600, time_limit=3700)
def ingest_url(self, url: str, transcribe: bool = False):
    """Download an audio or video file from an http(s) address and ingest it."""
    known = Recording(path="", kind=SourceKind.FILE, external_id=url, transcribe=transcribe)

    def body(run):
        existing = find_existing(known)
        if existing is not None:  # never download it twice
            return ingest_body(known)(run) if transcribe else asdict(duplicate(known, existing))
        folder = local_storage(current_app.config).scratch_dir(f"url-{uuid.uuid4().hex}")
        try:
            try:
                path = fetch(url, folder)
            except FetchError as error:
                raise (PermanentError if error.permanent else TransientError)(str(error)) from None
            recording = Recording(
                path=str(path),
                kind=SourceKind.FILE,
                external_id=url,
                title=Path(path).stem,
                url=url,
                transcribe=transcribe,
            )
            return ingest_body(recording)(run)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return run_claimed(self, "ingest", known.subject, body)


@shared_task(bind=True, name="pipeline.ingest.recording", soft_time_limit=1800, time_limit=1900)
def ingest_recording(self, recording: dict):
    """Ingest one local file (a YouTube download, an upload, an archive member)."""
    rec = Recording.from_json(recording)
    return run_claimed(self, "ingest", rec.subject, ingest_body(rec))


def youtube_download_dir() -> Path:
    return local_storage(current_app.config).path("downloads/youtube")


@shared_task(bind=True, name="pipeline.ingest.youtube", soft_time_limit=3600, time_limit=3700)
def ingest_youtube(
    self,
    ref: dict,
    cookies: str | None = None,
    require_transcript: bool = True,
    transcribe: bool = False,
):
    """Download one YouTube video (audio and subtitles) and ingest it."""
    video = youtube.VideoRef(**ref)

    def body(run):
        known = Recording(
            path="", kind=SourceKind.YOUTUBE, external_id=video.video_id, transcribe=transcribe
        )
        existing = find_existing(known)
        if existing is not None:  # never download a video twice
            return ingest_body(known)(run) if transcribe else asdict(duplicate(known, existing))
        try:
            recording = youtube.download(
                video,
                youtube_download_dir(),
                cookies=cookies,
                require_transcript=require_transcript,
            )
        except youtube.NoTranscript as skipped:
            return {"status": "skipped", "label": video.video_id, "message": str(skipped)}
        recording.transcribe = transcribe
        return ingest_body(recording)(run)

    return run_claimed(self, "ingest", f"{SourceKind.YOUTUBE}:{video.video_id}", body)


@shared_task(
    bind=True, name="pipeline.ingest.archive", soft_time_limit=3 * 3600 - 300, time_limit=3 * 3600
)
def ingest_archive(self, location: str):
    """Unpack a .tar (a local path, or a key in S3 storage) and ingest its members.

    The scratch folder is removed afterwards, also on failure."""

    def ingest_member(rec: Recording) -> dict:
        # Each member is its own task for the record: its failures are not the archive's
        # retries, and its success does not settle the archive's outbox row.
        member_task = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.request.id}:{rec.subject}"))
        try:
            with stage_run("ingest", rec.subject, task_id=member_task) as member_run:
                member_run.result = ingest_body(rec)(member_run)
                return member_run.result
        except ClaimTaken as taken:
            return {"status": "busy", "label": rec.external_id, "message": str(taken)}
        except Exception as error:
            return {
                "status": "failed",
                "label": rec.external_id,
                "message": str(error),
                "code": getattr(error, "code", None),
            }

    def body(run):
        storage = local_storage(current_app.config)
        scratch = storage.scratch_dir(f"archive-{uuid.uuid5(uuid.NAMESPACE_URL, location)}")
        try:
            tar_path = fetch_archive(location, scratch)
            members = ingest_archive_members(location, tar_path, scratch / "members", ingest_member)
        finally:
            storage.delete_tree(f"tmp/{scratch.name}")
        return {"members": members}

    return run_claimed(self, "ingest", f"archive:{location}"[:512], body)


def fetch_archive(location: str, scratch: Path) -> Path:
    local = Path(location)
    if local.is_file():
        return local
    s3 = s3_storage(current_app.config)
    if s3 is None:
        raise PermanentError(
            f"no such archive: {location} (and S3 storage is not configured)", code="missing"
        )
    if not s3.exists(location):
        raise PermanentError(
            f"no such archive in S3 bucket {s3.bucket}: {location}", code="missing"
        )
    return s3.download(location, scratch / "archive.tar")


@shared_task(bind=True, name="pipeline.gemini", soft_time_limit=2 * 3600, time_limit=2 * 3600 + 300)
def gemini(
    self,
    sample_id: str,
    model: str | None = None,
    replace_existing: bool = False,
    replaces: str | None = None,
):
    """Transcribe and translate one sample with Gemini (the llm queue)."""
    from .stages import gemini as stage  # google-genai only where the stage runs

    subject = uuid.UUID(sample_id)

    def body(run):
        return stage.run(subject, model=model, replace_existing=replace_existing, replaces=replaces)

    return run_claimed(self, stage.STAGE, str(subject), body, sample_id=subject)


@shared_task(name="pipeline.webhooks", soft_time_limit=900, time_limit=1000)
def deliver_webhooks():
    """Tell the API clients' webhooks what their recordings reached (pipeline/webhooks.py)."""
    from . import webhooks

    return {"told": webhooks.deliver_due()}


@shared_task(bind=True, name="pipeline.gemini_repair", soft_time_limit=900, time_limit=1000)
def gemini_repair(self, sample_id: str, model: str | None = None):
    """Translate again the flagged sentences of one sample (the llm queue)."""
    from .stages import gemini_repair as stage

    subject = uuid.UUID(sample_id)

    def body(run):
        return stage.run(subject, model=model)

    return run_claimed(self, stage.STAGE, str(subject), body, sample_id=subject)


# --- Post-review stages ------------------------------------------------------------------
# align (queue gpu) -> segment (cpu) -> human segment review -> denoise (cpu, or gpu_denoise
# with DeepFilterNet) -> export (io); backup (io). Each task claims (stage, sample), runs its
# stage from pipeline/stages/, and records the job run; a stage that moves its sample on
# queues the next one in the same commit (ra_app/core/flow.py). GPU tasks hold a model per worker
# process: run GPU workers with one process and one message at a time,
#     celery -A celery_worker worker -Q gpu -c 1 --prefetch-multiplier 1   (gpu_denoise alike)
# The stage modules are imported inside the tasks so this module's import stays light.


def _stage_task(task, stage: str, sample_id: str, call):
    sid = uuid.UUID(str(sample_id))
    return run_claimed(task, stage, str(sid), lambda run: call(sid), sample_id=sid)


@shared_task(bind=True, name="pipeline.align", soft_time_limit=3600, time_limit=3700)
def align_sample(self, sample_id: str):
    """WhisperX word timings for a reviewed sample (queue gpu; needs concurrency 1). On a
    worker without WhisperX it fails transiently and is retried, so a GPU worker gets it."""
    from .stages import align

    return _stage_task(self, "align", sample_id, align.run)


@shared_task(bind=True, name="pipeline.segment", soft_time_limit=900, time_limit=960)
def segment_sample(self, sample_id: str):
    """Cut a reviewed (or aligned) sample into 10–30 s segments (queue cpu)."""
    from .stages import segment

    return _stage_task(self, "segment", sample_id, segment.run)


@shared_task(bind=True, name="pipeline.denoise", soft_time_limit=1800, time_limit=1900)
def denoise_sample(self, sample_id: str):
    """CPU spectral gating into samples/<id>/denoised.wav (queue cpu)."""
    from .stages import denoise

    return _stage_task(
        self, "denoise", sample_id, lambda sid: denoise.run(sid, method="spectral_gating")
    )


@shared_task(bind=True, name="pipeline.denoise_gpu", soft_time_limit=1800, time_limit=1900)
def denoise_sample_gpu(self, sample_id: str):
    """DeepFilterNet into samples/<id>/denoised.wav (queue gpu_denoise; concurrency 1 and
    requirements-gpu-denoise.txt; elsewhere it fails transiently and is retried)."""
    from .stages import denoise

    return _stage_task(
        self, "denoise", sample_id, lambda sid: denoise.run(sid, method="deepfilternet")
    )


@shared_task(bind=True, name="pipeline.export", soft_time_limit=1800, time_limit=1900)
def export_sample(self, sample_id: str, task_type: str = "audio_segmentation"):
    """Stage a sample's reviewed segments into reviewed/<task_type>/<id>/ (queue io)."""
    from .stages import export

    sid = uuid.UUID(str(sample_id))
    return run_claimed(
        self,
        export.STAGE,
        export.subject_of(export.TaskType(task_type), sid),
        lambda run: export.run(sid, task_type=task_type),
        sample_id=sid,
    )


@shared_task(bind=True, name="pipeline.backup", soft_time_limit=3 * 3600 - 300, time_limit=3 * 3600)
def backup_database(self, full: bool = False):
    """A database backup into BACKUP_DIR (queue io); incremental unless `full`."""
    from .backup import backup

    def body(run):
        manifest = backup(full=full)
        rows = sum(t["rows"] for t in manifest["tables"].values())
        return {
            "status": "backed_up",
            "label": manifest["backup_id"],
            "message": f"{manifest['kind']} backup, {rows} rows",
        }

    return run_claimed(self, "backup", "database", body)


def _fresh_models(**_):
    """A forked worker process starts with no model of its parent's: CUDA state does not
    survive a fork, so each process loads its own on its first task (and keeps it)."""
    from . import denoisers
    from .stages import align

    align.forget_models()
    denoisers.forget_models()


def _connect_worker_signals() -> None:
    from celery.signals import worker_process_init

    from . import workers

    worker_process_init.connect(_fresh_models, weak=False)
    workers.connect_signals()


_connect_worker_signals()
