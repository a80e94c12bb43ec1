"""Local files handed to `flask ingest files`, put in the media storage before they are
queued, so that a worker on any host can read them (with S3 storage; with local storage the
workers share the disk and read the path itself).

An upload's key follows from the file's source (its absolute path), so a second run of the
command after an interruption finds what the first sent: a complete object with the same
checksum is not sent again, and an unfinished large upload is resumed part by part
(ra_app/core/s3.py). The worker removes the upload once the sample exists.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from ra_app.core.files import sha256_file
from ra_app.core.storage import safe_name

from .stages.ingest import Recording, find_existing


def upload_key(recording: Recording, path: str) -> str:
    tag = hashlib.sha256(recording.external_id.encode()).hexdigest()[:24]
    return f"uploads/{tag}/{safe_name(Path(path).name)}"


def send(store, path: str, key: str, on_part=None) -> str:
    if store.exists(key) and store.checksum(key) == sha256_file(path):
        return key  # sent whole by an earlier run
    store.put_file(Path(path), key, on_part=on_part)
    return key


def uploaded(recording: Recording, store, on_part=None) -> Recording:
    """`recording` with its file (and sidecar subtitles) in `store`; one already ingested
    needs nothing sent (the worker reports it as a duplicate)."""
    if find_existing(recording) is not None:
        return recording
    key = send(store, recording.path, upload_key(recording, recording.path), on_part)
    subtitles_key = None
    if recording.subtitles_path:
        subtitles_key = send(
            store, recording.subtitles_path, upload_key(recording, recording.subtitles_path)
        )
    return replace(recording, key=key, subtitles_key=subtitles_key)
