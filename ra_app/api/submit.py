"""A recording sent through the API: its fields checked, the ingest queued (through the
outbox, in the same transaction as the submission), and the same external id from the
same key answered with the same recording.

Three ways in, each the pipeline's ordinary ingest, told to transcribe once ingested:
- `url`: an http(s) address of an audio or video file, downloaded by an io worker;
- `youtube_id`: a YouTube video (its watch URL from YOUTUBE_WATCH_URL);
- `file`: a multipart upload, stored in the media storage before the ingest is queued,
  so any worker host can read it (the same bytes twice are one sample).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from ..core.audio import MEDIA_EXTENSIONS
from ..core.media_store import drop_work_dir, media_storage, publish_file, work_dir
from ..core.models import ApiKey, ApiSubmission
from ..core.outbox import enqueue
from ..core.storage import safe_name
from ..extensions import db

YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
EXTERNAL_ID = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces


class Invalid(ValueError):
    """The request's fields are wrong; `fields` maps each to what is wrong with it."""

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


def web_address(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and len(value) <= 2048


def inside_the_network(value: str) -> bool:
    """Whether the address's host is (or resolves to) a loopback, private, link-local or
    reserved address: a key holder must not make the workers fetch from, or post to, the
    installation's own network (the metadata service, the metrics port, the database)."""
    host = urlsplit(value).hostname or ""
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return False  # does not resolve here: the fetch fails on its own
    for address in found:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            return True
    return False


def check(form: dict, upload) -> dict[str, str]:
    """Each wrong field with what is wrong with it."""
    wrong = {
        name: "must be a string"
        for name in ("url", "youtube_id", "external_id", "webhook_url")
        if form.get(name) is not None and not isinstance(form[name], str)
    }
    if wrong:
        return wrong
    given = [name for name in ("url", "youtube_id") if form.get(name)] + (
        ["file"] if upload else []
    )
    if len(given) != 1:
        wrong["url"] = "send exactly one of url, youtube_id and file"
    private_allowed = current_app.config["API_PRIVATE_ADDRESSES_ALLOWED"]
    for name in ("url", "webhook_url"):
        if not form.get(name):
            continue
        if not web_address(form[name]):
            wrong[name] = "must be an http(s) address"
        elif not private_allowed and inside_the_network(form[name]):
            wrong[name] = "must be a public address, not one inside this network"
    if form.get("youtube_id") and not YOUTUBE_ID.match(form["youtube_id"]):
        wrong["youtube_id"] = "must be an 11-character YouTube video id"
    if upload is not None and Path(upload.filename or "").suffix.lower() not in MEDIA_EXTENSIONS:
        wrong["file"] = f"must be audio or video ({', '.join(sorted(MEDIA_EXTENSIONS))})"
    if form.get("external_id") is not None and not EXTERNAL_ID.match(str(form["external_id"])):
        wrong["external_id"] = "must be 1 to 255 printable characters without spaces"
    return wrong


def existing(key: ApiKey, external_id: str | None) -> ApiSubmission | None:
    if external_id is None:
        return None
    return db.session.scalar(
        sa.select(ApiSubmission).where(
            ApiSubmission.api_key_id == key.id, ApiSubmission.external_id == external_id
        )
    )


def submit(key: ApiKey, form: dict, upload) -> tuple[ApiSubmission, bool]:
    """(the recording, True) when new; (the earlier one, False) for a known external id."""
    wrong = check(form, upload)
    if wrong:
        raise Invalid(wrong)
    earlier = existing(key, form.get("external_id"))
    if earlier is not None:
        return earlier, False
    if upload is not None:
        submission, task, args, kwargs = from_file(upload)
    elif form.get("youtube_id"):
        submission, task, args, kwargs = from_youtube(form["youtube_id"])
    else:
        submission, task, args, kwargs = from_url(form["url"])
    submission.api_key_id = key.id
    submission.external_id = form.get("external_id")
    submission.webhook_url = form.get("webhook_url") or None
    db.session.add(submission)
    try:
        db.session.flush()  # two requests with one external id: the second finds the first
    except IntegrityError:
        db.session.rollback()
        return existing(key, form.get("external_id")), False
    enqueue(task, args=args, kwargs=kwargs)
    db.session.commit()
    return submission, True


def from_url(url: str):
    submission = ApiSubmission(kind="url", reference=url, subject=f"file:{url}"[:512])
    return submission, "pipeline.ingest.url", [url], {"transcribe": True}


def from_youtube(video_id: str):
    url = current_app.config["YOUTUBE_WATCH_URL"].format(id=video_id)
    submission = ApiSubmission(kind="youtube", reference=video_id, subject=f"youtube:{video_id}")
    ref = {"video_id": video_id, "url": url, "title": None}
    return (
        submission,
        "pipeline.ingest.youtube",
        [ref],
        {
            "require_transcript": False,
            "transcribe": True,
        },
    )


def from_file(upload):
    given = Path(upload.filename).name[:255]  # the sender's name: the title, as written
    name = safe_name(given)  # the storage key's
    store = media_storage()
    scratch = work_dir(f"api-{hashlib.sha256(name.encode()).hexdigest()[:8]}-{id(upload)}", store)
    try:
        path = scratch / name
        sha = hashlib.sha256()
        with path.open("wb") as out:
            while chunk := upload.stream.read(1024 * 1024):
                sha.update(chunk)
                out.write(chunk)
        digest = sha.hexdigest()
        key = f"uploads/api/{digest[:16]}/{name}"
        publish_file(store, path, key)
    finally:
        drop_work_dir(scratch.name, store)
    external_id = f"upload:{digest}"  # as the admin's Upload page: the same bytes, one sample
    recording = {
        "path": name,
        "kind": "file",
        "external_id": external_id,
        "title": Path(given).stem,
        "key": key,
        "transcribe": True,
    }
    submission = ApiSubmission(kind="file", reference=given, subject=f"file:{external_id}")
    return submission, "pipeline.ingest.recording", [recording], {}
