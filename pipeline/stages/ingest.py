"""Ingest one recording: from a local file to a playable, reviewable sample.

The same audio stays one sample: a source already ingested (same video id, same path) or
the same bytes (same sha256) is reported as a duplicate. A new recording gets, with one
ffmpeg pass, its processing master, browser rendition and waveform peaks under
`samples/<sample id>/`, and — when subtitles came with it — its first transcript revision.
The files are made in a scratch folder and placed in the media storage (a rename, or an
upload of whole objects) just before the database row is committed, so a failure or a kill
leaves nothing half-made: a rerun clears the scratch and, because the sample id follows from
the source, replaces any folder left by a killed attempt.

The input is a local file on the worker's host, or (`key`) a file uploaded to the media
storage by `flask ingest files` on another host (pipeline/uploads.py), with its sidecar
subtitles (`subtitles_key`); an upload is removed once its sample exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from ra_app.core.audio import MASTER_NAME, PEAKS_NAME, RENDITION_NAME
from ra_app.core.files import sha256_file
from ra_app.core.media_store import (
    delete_tree,
    drop_work_dir,
    local_file,
    media_storage,
    publish_dir,
    work_dir,
)
from ra_app.core.models import Origin, Sample, Source, SourceKind, TranscriptRevision
from ra_app.core.states import ProcessingState
from ra_app.core.storage import MissingObject
from ra_app.extensions import db

from .. import media
from ..errors import PermanentError
from ..probe import MediaError, probe
from ..subtitles import SubtitleError, load_subtitle_file

SAMPLE_NAMESPACE = uuid.UUID("6f1f0c1e-5d0b-4c4e-9d7a-2b8f6c1d9e30")


@dataclass
class Recording:
    """A piece of audio to ingest, with what is known about where it came from."""

    path: str
    kind: SourceKind
    external_id: str  # video id, absolute file path, or "archive key/member"
    title: str | None = None
    url: str | None = None
    channel: str | None = None
    language: str | None = None
    info: dict = field(default_factory=dict)
    subtitles_path: str | None = None
    subtitles_origin: Origin | None = None
    key: str | None = None  # uploaded to the media storage (the file is then not local)
    subtitles_key: str | None = None
    transcribe: bool = False  # queue the machine transcript once ingested (the HTTP API)

    @property
    def subject(self) -> str:
        """The claim key: one ingest of one source at a time."""
        return f"{self.kind}:{self.external_id}"[:512]

    def to_json(self) -> dict:
        data = {k: (v.value if hasattr(v, "value") else v) for k, v in asdict(self).items()}
        for name in ("key", "subtitles_key", "transcribe"):  # absent unless used: a worker of
            if not data[name]:  # the release before them (a rolling upgrade) takes the rest
                del data[name]
        return data

    @classmethod
    def from_json(cls, data: dict) -> Recording:
        data = dict(data)
        data["kind"] = SourceKind(data["kind"])
        if data.get("subtitles_origin"):
            data["subtitles_origin"] = Origin(data["subtitles_origin"])
        return cls(**data)


@dataclass
class Outcome:
    """One line of an ingest summary."""

    status: str  # created | duplicate | would_create
    label: str
    message: str
    sample_id: str | None = None


def sample_id_for(recording: Recording) -> uuid.UUID:
    return uuid.uuid5(SAMPLE_NAMESPACE, recording.subject)


def find_existing(recording: Recording, checksum: str | None = None) -> Sample | None:
    by_source = db.session.scalar(
        sa.select(Sample)
        .join(Source)
        .where(Source.kind == recording.kind, Source.external_id == recording.external_id)
    )
    if by_source is not None or checksum is None:
        return by_source
    return db.session.scalar(sa.select(Sample).where(Sample.checksum_sha256 == checksum))


def duplicate(recording: Recording, existing: Sample) -> Outcome:
    """The same audio again. When it brings subtitles and the sample has no transcript yet
    (its first copy came without), they become the sample's first transcript: the result
    does not depend on which copy was seen first."""
    adopted = adopt_subtitles(recording, existing)
    return Outcome(
        "duplicate",
        recording.external_id,
        f"already ingested as sample {existing.id} ({existing.title or 'untitled'})"
        + (f"; its {adopted} subtitle sentences became the first transcript" if adopted else ""),
        str(existing.id),
    )


def adopt_subtitles(recording: Recording, existing: Sample) -> int:
    """Give `existing` the recording's subtitles if it has no transcript; returns how many
    sentences it took (0 when it took none). Two copies racing: the unique (sample,
    version) lets one win, and the other leaves it as it is."""
    if not recording.subtitles_path:
        return 0
    has_transcript = db.session.scalar(
        sa.select(sa.func.count()).where(TranscriptRevision.sample_id == existing.id)
    )
    if has_transcript:
        return 0
    sentences = read_subtitles(recording)
    if not sentences:
        return 0
    try:
        with db.session.begin_nested():
            db.session.add(
                TranscriptRevision(
                    sample_id=existing.id,
                    version=1,
                    origin=recording.subtitles_origin,
                    sentences=sentences,
                )
            )
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()
        return 0
    return len(sentences)


def read_subtitles(recording: Recording) -> list | None:
    if not recording.subtitles_path:
        return None
    try:
        with input_file(recording.subtitles_key, recording.subtitles_path) as path:
            return load_subtitle_file(path) or None
    except SubtitleError as error:
        raise PermanentError(f"subtitles unreadable: {error}", code="bad_subtitles") from error


@contextmanager
def input_file(key: str | None, path: str) -> Iterator[Path]:
    """The input as a local file: the uploaded object `key`, else the path on this host."""
    if key is None:
        if not Path(path).is_file():
            raise PermanentError(f"no such file: {path}", code="missing")
        yield Path(path)
        return
    try:
        with local_file(key) as local:
            yield local
    except MissingObject:
        raise PermanentError(
            f"the upload of {path} is no longer in storage ({key}); send the file again",
            code="missing",
        ) from None


def forget_upload(recording: Recording) -> None:
    """The uploaded input is not needed once its sample exists (a duplicate's neither)."""
    store = media_storage()
    for key in (recording.key, recording.subtitles_key):
        if key:
            store.delete(key)


def media_error(error: MediaError) -> PermanentError:
    return PermanentError(str(error), code=error.code)


def ingest(recording: Recording, *, dry_run: bool = False) -> Outcome:
    """Ingest `recording`; raise PermanentError for input that can never become a sample."""
    existing = find_existing(recording)
    try:
        if existing is None:
            with input_file(recording.key, recording.path) as path:
                result = ingest_file(recording, path, dry_run)
        else:
            result = duplicate(recording, existing)
    except PermanentError as error:
        if error.code != "missing" and not dry_run:
            forget_upload(recording)  # it can never become a sample: nothing to keep it for
        raise
    if result.status in ("created", "duplicate"):
        forget_upload(recording)
    return result


def ingest_file(recording: Recording, path: Path, dry_run: bool) -> Outcome:
    checksum = sha256_file(path)
    existing = find_existing(recording, checksum)
    if existing is not None:
        return duplicate(recording, existing)
    min_s = current_app.config["MIN_CLIP_SECONDS"]
    sentences = read_subtitles(recording)
    if dry_run:
        try:
            info = probe(path, min_duration_s=min_s)
        except MediaError as error:
            raise media_error(error) from error
        return Outcome("would_create", recording.external_id, f"{info.duration_s or 0:.1f} s")

    store = media_storage()
    sample_id = sample_id_for(recording)
    name = f"ingest-{sample_id}"
    scratch = work_dir(name, store)
    final_key = f"samples/{sample_id}"
    placed = False
    try:
        try:
            result = media.convert(path, scratch, min_duration_s=min_s)
        except MediaError as error:
            raise media_error(error) from error
        sample = save_sample(recording, sample_id, final_key, result, checksum, sentences)
        placed = True  # from here a failure removes what was placed, even half of it
        publish_dir(store, scratch, final_key, last=MASTER_NAME)
        db.session.commit()
    except sa.exc.IntegrityError:
        # The same bytes were committed by a concurrent ingest of another path.
        db.session.rollback()
        if placed:
            delete_tree(store, final_key)
        existing = find_existing(recording, checksum)
        if existing is None:
            raise
        return duplicate(recording, existing)
    except BaseException:
        db.session.rollback()
        if placed:
            delete_tree(store, final_key)
        raise
    finally:
        drop_work_dir(name, store)
    transcript = f", {len(sentences)} subtitle sentences" if sentences else ""
    return Outcome(
        "created",
        recording.external_id,
        f"{sample.duration_s:.1f} s{transcript}",
        str(sample.id),
    )


def save_sample(recording, sample_id, key, result, checksum, sentences) -> Sample:
    source = db.session.scalar(
        sa.select(Source).where(
            Source.kind == recording.kind, Source.external_id == recording.external_id
        )
    ) or Source(kind=recording.kind, external_id=recording.external_id)
    source.url = recording.url
    source.title = recording.title
    source.channel = recording.channel
    source.info = recording.info
    sample = Sample(
        id=sample_id,
        source=source,
        title=recording.title or Path(recording.path).stem,
        language=recording.language,
        duration_s=round(result.duration_s, 3),
        checksum_sha256=checksum,
        master_path=f"{key}/{MASTER_NAME}",
        rendition_path=f"{key}/{RENDITION_NAME}",
        peaks_path=f"{key}/{PEAKS_NAME}",
        processing_state=ProcessingState.INGESTED,
    )
    db.session.add(sample)
    if sentences:
        db.session.add(
            TranscriptRevision(
                sample=sample,
                version=1,
                origin=recording.subtitles_origin,
                sentences=sentences,
            )
        )
    db.session.flush()  # a duplicate checksum fails here, before the files are placed
    return sample
