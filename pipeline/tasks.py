"""Celery tasks: thin wrappers that claim, call a stage, and record the job run.

Tasks receive ids and plain JSON, never objects, and are named `pipeline.<stage>…` so that
`pipeline.queues.task_routes` sends each to its stage's queue.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from pathlib import Path

from celery import shared_task
from celery.utils.log import get_task_logger
from flask import current_app

from ra_app.models import SourceKind

from .errors import PermanentError, is_permanent
from .jobs import ClaimTaken, stage_run, worker_name
from .stages import youtube
from .stages.ingest import Recording, duplicate, find_existing, ingest
from .stages.local_files import ingest_archive_members
from .storage import local_storage, s3_storage

log = get_task_logger(__name__)

MAX_RETRIES = 5


def backoff_seconds(retries: int) -> int:
    """30 s, 60 s, 120 s, … capped at 30 minutes."""
    return min(30 * 2**retries, 1800)


def run_claimed(task, stage: str, subject: str, body, *, sample_id=None, lease_s=None):
    """Run `body(run)` under the (stage, subject) claim, retrying transient failures."""
    try:
        with stage_run(
            stage, subject, sample_id=sample_id, task_id=task.request.id, lease_s=lease_s
        ) as run:
            # Kept if the attempt fails, so an admin can send the same call again.
            run.result = {"call": {"task": task.name, "args": list(task.request.args or []),
                                   "kwargs": dict(task.request.kwargs or {})}}
            run.result = body(run)
            return run.result
    except ClaimTaken as taken:
        # Another worker is on it; a redelivered duplicate simply steps aside.
        log.info("%s", taken)
        return {"skipped": str(taken)}
    except Exception as error:
        if is_permanent(error) or task.request.is_eager or task.request.retries >= MAX_RETRIES:
            raise
        raise task.retry(exc=error, countdown=backoff_seconds(task.request.retries)) from error


@shared_task(bind=True, name="pipeline.selftest", soft_time_limit=120, time_limit=150)
def selftest(self, subject: str = "selftest", hold_s: float = 0.0):
    """Prove a worker can reach the database and take claims (`flask pipeline selftest`).

    `hold_s` keeps the claim for a while, which shows that a second worker steps aside.
    """

    def body(run):
        time.sleep(min(hold_s, 60.0))
        return {"worker": worker_name(), "attempt": run.attempt}

    return run_claimed(self, "selftest", subject, body)


def ingest_body(recording: Recording):
    def body(run):
        outcome = ingest(recording)
        run.sample_id = uuid.UUID(outcome.sample_id) if outcome.sample_id else None
        return asdict(outcome)

    return body


@shared_task(bind=True, name="pipeline.ingest.recording", soft_time_limit=1800, time_limit=1900)
def ingest_recording(self, recording: dict):
    """Ingest one local file (a YouTube download, an upload, an archive member)."""
    rec = Recording.from_json(recording)
    return run_claimed(self, "ingest", rec.subject, ingest_body(rec))


def youtube_download_dir() -> Path:
    return local_storage(current_app.config).path("downloads/youtube")


@shared_task(bind=True, name="pipeline.ingest.youtube", soft_time_limit=3600, time_limit=3700)
def ingest_youtube(self, ref: dict, cookies: str | None = None, require_transcript: bool = True):
    """Download one YouTube video (audio and subtitles) and ingest it."""
    video = youtube.VideoRef(**ref)

    def body(run):
        known = Recording(path="", kind=SourceKind.YOUTUBE, external_id=video.video_id)
        existing = find_existing(known)
        if existing is not None:  # never download a video twice
            return asdict(duplicate(known, existing))
        try:
            recording = youtube.download(
                video,
                youtube_download_dir(),
                cookies=cookies,
                require_transcript=require_transcript,
            )
        except youtube.NoTranscript as skipped:
            return {"status": "skipped", "label": video.video_id, "message": str(skipped)}
        return ingest_body(recording)(run)

    return run_claimed(self, "ingest", f"{SourceKind.YOUTUBE}:{video.video_id}", body)


@shared_task(
    bind=True, name="pipeline.ingest.archive", soft_time_limit=3 * 3600 - 300, time_limit=3 * 3600
)
def ingest_archive(self, location: str):
    """Unpack a .tar (a local path, or a key in S3 storage) and ingest its members.

    The scratch folder is removed afterwards, also on failure."""

    def ingest_member(rec: Recording) -> dict:
        try:
            with stage_run("ingest", rec.subject, task_id=self.request.id) as member_run:
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
