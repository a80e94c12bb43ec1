"""Local files handed to `flask ingest files`, put in the media storage before they are
queued, so that a worker on any host can read them (with S3 storage; with local storage the
workers share the disk and read the path itself).

An upload's key follows from the file's source (its absolute path) and its content, so a
second run of the command after an interruption finds what the first sent: a complete
object is not sent again, and an unfinished large upload of the same bytes is resumed part
by part (ra_app/core/s3.py). Sidecar subtitles go too, also for a recording already ingested
(they may become its first transcript). The worker removes the uploads once they are used.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from ra_app.core.files import sha256_file
from ra_app.core.storage import safe_name

from .stages.ingest import Recording, find_existing


def upload_key(recording: Recording, path: str, role: str, digest: str) -> str:
    tag = hashlib.sha256(recording.external_id.encode()).hexdigest()[:24]
    return f"uploads/{tag}/{digest[:16]}-{role}-{safe_name(Path(path).name)}"


def send(store, path: str, key: str, digest: str, on_part=None) -> str:
    if store.exists(key) and store.checksum(key) == digest:
        return key  # sent whole by an earlier run
    store.put_file(Path(path), key, on_part=on_part, resume=True, digest=digest)  # key names it
    return key


def uploaded(recording: Recording, store, on_part=None) -> Recording:
    """`recording` with its file (and sidecar subtitles) in `store`; for one already
    ingested only the subtitles are sent (the worker reports it as a duplicate)."""
    key = subtitles_key = None
    if find_existing(recording) is None:
        digest = sha256_file(recording.path)
        key = send(store, recording.path, upload_key(recording, recording.path, "media", digest),
                   digest, on_part)  # fmt: skip
    if recording.subtitles_path:
        digest = sha256_file(recording.subtitles_path)
        where = upload_key(recording, recording.subtitles_path, "subtitles", digest)
        subtitles_key = send(store, recording.subtitles_path, where, digest)
    return replace(recording, key=key, subtitles_key=subtitles_key)
