"""The gemini stage: transcribe and translate one sample with Gemini.

The sample's browser rendition (`audio.m4a`, AAC at 64 kb/s: about 14 MB for the 27
minutes of one request) goes to Gemini with the prompt of `pipeline.gemini.prompt` and asks
for structured output (sentences with times, verbatim code-switched text, Vietnamese
translation). A recording longer than GEMINI_LONG_AUDIO_SECONDS is cut from its master into
overlapping chunks, each sent on its own, and their sentences joined back
(`pipeline.gemini.chunking`). Every sentence then goes through the translation checks
(`pipeline.gemini.detection`), and the transcript and translation revisions (origin
`gemini`, with the model and prompt version) are written in one transaction that also moves
the sample from ingested to transcribed.

Nothing is written until every request has succeeded: a reply that is not JSON, does not
match the schema, was blocked or cut off, or a timeout, leaves the sample as it was. No
database transaction is held open while Gemini works.

Idempotent: a sample with a Gemini revision is done. `replace_existing` transcribes it again;
`replaces` (the id of the Gemini revision the command meant to replace) makes a redelivered
task see that the replacement is already written.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from ra_app.core.media_store import drop_work_dir, local_file, media_storage, work_dir
from ra_app.core.models import Origin, Sample, TranscriptRevision
from ra_app.core.revisions import write_revisions
from ra_app.core.states import ProcessingState, transition
from ra_app.core.text import nfc
from ra_app.extensions import db

from ..errors import PermanentError, StageError, TransientError
from ..gemini import chunking, lexicon
from ..gemini.detection import KeepList, Thresholds, detect
from ..gemini.prompt import Glossary, prompt_version, system_instruction, transcribe_request
from ..gemini.schema import BadReply, TranscriptReply, parse_reply

STAGE = "gemini"


def latest_gemini(sample_id) -> TranscriptRevision | None:
    return db.session.scalar(
        sa.select(TranscriptRevision)
        .where(TranscriptRevision.sample_id == sample_id)
        .where(TranscriptRevision.origin == Origin.GEMINI)
        .order_by(TranscriptRevision.version.desc())
        .limit(1)
    )


def waiting(replace_existing: bool = False):
    """Samples `--batch` picks: ingested without a Gemini revision (with --replace-existing,
    every ingested or transcribed sample)."""
    if replace_existing:
        return Sample.processing_state.in_([ProcessingState.INGESTED, ProcessingState.TRANSCRIBED])
    has_gemini = (
        sa.select(TranscriptRevision.id)
        .where(TranscriptRevision.sample_id == Sample.id)
        .where(TranscriptRevision.origin == Origin.GEMINI)
        .exists()
    )
    return sa.and_(Sample.processing_state == ProcessingState.INGESTED, ~has_gemini)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def outcome(status: str, sample: Sample | None, sample_id, message: str, **extra) -> dict:
    title = f" ({sample.title})" if sample is not None and sample.title else ""
    return {
        "status": status,
        "label": str(sample_id),
        "message": message + title,
        "sample_id": str(sample_id),
        **extra,
    }


def why_not(sample: Sample, replace_existing: bool, replaces: str | None) -> str | None:
    """Why there is nothing to do for `sample`, or None. Raise for a state Gemini can't touch."""
    state = sample.processing_state
    if state not in (ProcessingState.INGESTED, ProcessingState.TRANSCRIBED):
        raise PermanentError(
            f"sample {sample.id} is {state}: Gemini transcribes samples that are ingested "
            "(or transcribed, with --replace-existing), never ones people work on",
            code="wrong_state",
        )
    current = latest_gemini(sample.id)
    if not replace_existing:
        if current is not None:
            return f"already has Gemini revision v{current.version} (--replace-existing redoes it)"
        if state is ProcessingState.TRANSCRIBED:
            return "already transcribed (--replace-existing transcribes it with Gemini)"
        return None
    if current is not None and replaces is not None and str(current.id) != replaces:
        return f"already replaced: Gemini revision v{current.version} is newer"
    return None


@dataclass
class Work:
    """What one run needs, read before any request so no transaction stays open."""

    sample_id: uuid.UUID
    duration_s: float
    rendition: str  # storage keys
    master: str
    chunks: list[chunking.Chunk]
    glossary: Glossary
    keep: KeepList
    thresholds: Thresholds

    @classmethod
    def prepare(cls, sample: Sample, config) -> Work:
        glossary = lexicon.glossary(config["GEMINI_LEXICON_MAX_TERMS"])
        return cls(
            sample_id=sample.id,
            duration_s=sample.duration_s,
            rendition=sample.rendition_path,
            master=sample.master_path,
            chunks=chunking.plan_chunks(
                sample.duration_s,
                config["GEMINI_LONG_AUDIO_SECONDS"],
                config["GEMINI_CHUNK_OVERLAP_SECONDS"],
            ),
            glossary=glossary,
            keep=KeepList.from_config(config, glossary.keep_english),
            thresholds=Thresholds.from_config(config),
        )

    @property
    def prompt_version(self) -> str:
        return prompt_version(self.glossary)


def load(sample_id) -> Sample:
    sample = db.session.get(Sample, sample_id)
    if sample is None:
        raise PermanentError(f"no sample {sample_id}", code="missing")
    return sample


def run(
    sample_id, *, model: str | None = None, replace_existing: bool = False, replaces=None
) -> dict:
    """Transcribe and translate one sample; return a summary line (status, label, message)."""
    config = current_app.config
    model = model or config["GEMINI_MODEL"]
    sample = load(sample_id)
    skip = why_not(sample, replace_existing, replaces)
    if skip:
        return outcome("done", sample, sample_id, skip)
    work = Work.prepare(sample, config)
    db.session.rollback()  # Gemini may take minutes: hold no transaction meanwhile

    rows = transcribe(work, model, config)

    sample = load(sample_id)
    skip = why_not(sample, replace_existing, replaces)
    if skip:
        return outcome("done", sample, sample_id, skip)
    rows = detect(rows, work.duration_s, work.keep, work.thresholds)
    write_revisions(
        sample,
        rows,
        origin=Origin.GEMINI,
        with_translation=True,
        model_name=model,
        prompt_version=work.prompt_version,
    )
    if sample.processing_state is ProcessingState.INGESTED:
        transition(sample, ProcessingState.TRANSCRIBED)
    db.session.commit()
    flagged = sum(1 for row in rows if row["flags"])
    parts = f", {len(work.chunks)} chunks" if len(work.chunks) > 1 else ""
    return outcome(
        "transcribed",
        sample,
        sample_id,
        f"{plural(len(rows), 'sentence')}, {flagged} flagged{parts}"
        + (" — no speech found" if not rows else ""),
        sentences=len(rows),
        flagged=flagged,
        chunks=len(work.chunks),
        model=model,
        prompt_version=work.prompt_version,
    )


def transcribe(work: Work, model: str, config) -> list[dict]:
    """Every request of the sample, then the sentences on the recording's clock."""
    from ..gemini.client import Audio, Gemini
    from ..gemini.replies import generation_config

    gemini = Gemini.from_config(config)
    settings = generation_config(config, system_instruction(work.glossary), TranscriptReply)

    def ask(audio: Audio, duration_s: float, part: int, parts: int) -> list[dict]:
        where = "" if parts == 1 else f"chunk {part} of {parts}: "
        try:
            response = gemini.generate(
                model=model,
                prompt=transcribe_request(duration_s, part, parts),
                config=settings,
                audio=audio,
            )
            return read_sentences(response, config["GEMINI_MAX_OUTPUT_TOKENS"])
        except StageError as error:
            if not where:
                raise
            raise type(error)(where + error.args[0], *error.args[1:]) from error

    if len(work.chunks) == 1 and media_storage().exists(work.rendition):
        with local_file(work.rendition) as rendition:
            return ask(Audio(rendition), work.duration_s, 1, 1)
    name = f"gemini-{work.sample_id}"
    scratch = work_dir(name)
    try:
        results = []
        with local_file(work.master) as master:
            for chunk in work.chunks:
                path = chunking.cut(master, chunk, scratch / f"chunk-{chunk.index}.m4a")
                rows = ask(Audio(path), chunk.duration, chunk.index + 1, len(work.chunks))
                results.append(chunking.shift(rows, chunk.start))
                path.unlink(missing_ok=True)
        return chunking.merge(work.chunks, results)
    finally:
        drop_work_dir(name)


def read_sentences(response, max_output_tokens: int) -> list[dict]:
    """The reply's sentences as rows; raise for a reply that cannot be used."""
    from ..gemini.replies import reply_text

    text = reply_text(response, max_output_tokens)
    try:
        reply = parse_reply(text, TranscriptReply)
    except BadReply as error:
        raise TransientError(str(error), "the task is retried later") from None
    rows = []
    for sentence in reply.sentences:
        said, translated = nfc(sentence.text), nfc(sentence.translation)
        if not said and not translated:
            continue
        rows.append(
            {
                "start": round(sentence.start, 3),
                "end": round(sentence.end, 3),
                "text": said,
                "translation": translated,
                "flags": [],
            }
        )
    return rows


def plan(sample_id, *, model: str | None = None, replace_existing: bool = False) -> dict:
    """What `run` would do (for --dry-run): no request, no write."""
    config = current_app.config
    model = model or config["GEMINI_MODEL"]
    sample = load(sample_id)
    try:
        skip = why_not(sample, replace_existing, None)
    except PermanentError as error:
        return outcome("failed", sample, sample_id, str(error))
    if skip:
        return outcome("done", sample, sample_id, skip)
    work = Work.prepare(sample, config)
    if len(work.chunks) > 1:
        how = (
            f"{len(work.chunks)} chunks of {work.chunks[0].duration / 60:.1f} min cut from the "
            f"master (overlap {config['GEMINI_CHUNK_OVERLAP_SECONDS']:g} s)"
        )
    else:
        store = media_storage()
        size = store.size(work.rendition) if store.exists(work.rendition) else 0
        inline = size <= config["GEMINI_INLINE_MAX_BYTES"]
        shown = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB"
        how = f"{Path(work.rendition).name}, {shown} " + (
            "inline" if inline else "via the Files API"
        )
    return outcome(
        "would_run",
        sample,
        sample_id,
        f"{work.duration_s / 60:.1f} min: {how}; {model}, prompt {work.prompt_version}",
    )
