"""Recordings uploaded from the browser (the admin's Upload page), in parts, resumable.

The browser asks to `begin` a file: its upload id follows from who sends it and the file's
name, size and time, so choosing the same file again after a lost connection or a closed tab
resumes it: the answer lists the parts already here, and only the others are sent. Each part
(`PART_BYTES`, under the request size limit) is written whole or not at all, so a part sent
twice is harmless. `finish` joins the parts, puts the file in the media storage (the bucket,
with S3, so any worker can read it) and queues its ingest in the same transaction as the
outbox row; the upload is removed by the worker once the sample exists. Finishing twice (a
double click, two tabs) queues once: a lock per upload, and a record of the first answer.

Parts wait under the web host's DATA_ROOT/tmp/uploads/<id>/ (one web host: the parts and
the lock are on its disk); an upload belongs to the admin who began it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import re
from pathlib import Path

from flask import current_app

from ..core.audio import MEDIA_EXTENSIONS
from ..core.files import replaced_atomically, write_text_atomically
from ..core.media_store import media_storage, publish_file
from ..core.outbox import enqueue
from ..core.storage import local_storage, safe_name
from ..extensions import db

PART_BYTES = 8 * 1024 * 1024
UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


class UploadError(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def begin(user_id: int, name: str, size: int, modified: int) -> dict:
    name = Path(str(name)).name
    if Path(name).suffix.lower() not in MEDIA_EXTENSIONS:
        kinds = ", ".join(sorted(MEDIA_EXTENSIONS))
        raise UploadError(f"{name or 'the file'} is not an audio or video file ({kinds})")
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    if not isinstance(size, int) or not 0 < size <= limit:
        raise UploadError(f"{name}: {size} bytes; a file must have 1 to {limit} bytes", 413)
    upload_id = hashlib.sha256(f"{user_id}:{name}:{size}:{modified}".encode()).hexdigest()[:32]
    folder = folder_of(upload_id)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "meta.json").exists():
        meta = {"name": name, "size": size, "user_id": user_id}
        write_text_atomically(folder / "meta.json", json.dumps(meta))
    meta = read_meta(upload_id, user_id)
    return {
        "upload_id": upload_id,
        "part_bytes": PART_BYTES,
        "parts": parts_of(meta["size"]),
        "received": received(folder),
        "finished": read_done(folder),
    }


def put_part(user_id: int, upload_id: str, number: int, data: bytes) -> None:
    meta = read_meta(upload_id, user_id)
    parts = parts_of(meta["size"])
    if not 1 <= number <= parts:
        raise UploadError(f"part {number} of an upload in {parts} parts")
    expected = PART_BYTES if number < parts else meta["size"] - PART_BYTES * (parts - 1)
    if len(data) != expected:
        raise UploadError(f"part {number} has {len(data)} bytes; {expected} were expected")
    with replaced_atomically(folder_of(upload_id) / f"part-{number:05d}") as partial:
        partial.write_bytes(data)


def finish(user_id: int, upload_id: str) -> dict:
    meta = read_meta(upload_id, user_id)
    folder = folder_of(upload_id)
    with open(folder / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = read_done(folder)
        if done:
            return done
        missing = sorted(set(range(1, parts_of(meta["size"]) + 1)) - set(received(folder)))
        if missing:
            raise UploadError(f"parts {missing[:10]} have not arrived yet", 409)
        whole, digest = join_parts(folder, meta)
        key = f"uploads/{upload_id}/{safe_name(meta['name'])}"
        publish_file(media_storage(), whole, key)
        recording = {
            "path": meta["name"],
            "kind": "file",
            "external_id": f"upload:{digest}",  # the same bytes twice: one sample
            "title": Path(meta["name"]).stem,
            "key": key,
        }
        enqueue("pipeline.ingest.recording", args=[recording])
        db.session.commit()
        result = {"status": "queued", "name": meta["name"], "sha256": digest}
        write_text_atomically(folder / "done.json", json.dumps(result))
        for part in folder.glob("part-*"):
            part.unlink()
        return result


def join_parts(folder: Path, meta: dict) -> tuple[Path, str]:
    whole = folder / "whole"
    digest = hashlib.sha256()
    with open(whole, "wb") as out:
        for number in range(1, parts_of(meta["size"]) + 1):
            data = (folder / f"part-{number:05d}").read_bytes()
            digest.update(data)
            out.write(data)
    return whole, digest.hexdigest()


def folder_of(upload_id: str) -> Path:
    if not UPLOAD_ID.match(upload_id):
        raise UploadError("no such upload", 404)
    return local_storage(current_app.config).path(f"tmp/uploads/{upload_id}")


def read_meta(upload_id: str, user_id: int) -> dict:
    """The upload's facts; another person's upload is no upload of this one's."""
    try:
        meta = json.loads((folder_of(upload_id) / "meta.json").read_text())
    except FileNotFoundError:
        raise UploadError("no such upload", 404) from None
    if meta.get("user_id") != user_id:
        raise UploadError("no such upload", 404)
    return meta


def read_done(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "done.json").read_text())
    except FileNotFoundError:
        return None


def parts_of(size: int) -> int:
    return max(1, math.ceil(size / PART_BYTES))


def received(folder: Path) -> list[int]:
    return sorted(int(p.name.removeprefix("part-")) for p in folder.glob("part-*"))
