"""Bringing a Label Studio project's work in: each task's audio becomes a sample (the same
audio in two projects stays one), each annotation a human revision (origin `label_studio`)
and each prediction a machine draft.

- Annotations go in the order Label Studio last changed them, so the newest is the current
  text. Cancelled annotations (a skip) hold no work and are counted, not imported.
- The author is the user with the annotator's e-mail (the snapshot export carries it, or
  `--user ID=EMAIL` maps the other formats' ids); otherwise their name is kept as text.
- A task without annotations becomes a machine draft ready for review when the export holds
  its predictions; without one it waits for the pipeline's transcription like any sample.
- A prediction never goes over people's work: once a sample has a human revision, a
  prediction is counted and left out.
- Each item imported is recorded (`imported_items`, keyed by its id and its last change):
  importing the same export again, or another format of it, changes nothing. Each task is
  one transaction under the sample's row lock, so two imports at once write it once.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sqlalchemy as sa

from ra_app.core.accounts import find_user
from ra_app.core.files import sha256_file
from ra_app.core.models import (
    HUMAN_ORIGINS,
    ImportedItem,
    Origin,
    Sample,
    SourceKind,
    TranscriptRevision,
)
from ra_app.core.revisions import write_revisions
from ra_app.core.states import ProcessingState, can_transition, transition
from ra_app.extensions import db

from ..errors import PermanentError, StageError
from ..jobs import ClaimTaken, stage_run
from ..stages.ingest import Outcome, Recording, find_existing, ingest
from .audio import AudioNotFound, locate
from .exports import Annotation, Names, Task, read_export

TOOL = "label_studio"


@dataclass
class Report:
    tasks: int = 0
    samples_created: int = 0
    samples_existing: int = 0
    annotations: int = 0
    predictions: int = 0
    already_imported: int = 0
    cancelled: int = 0
    predictions_not_in_file: int = 0
    predictions_over_human_work: int = 0
    rows: int = 0  # revisions, imported-item records and sample rows written
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


@dataclass
class Importer:
    audio_root: Path | None = None
    names: Names = field(default_factory=Names)
    users: dict[int, str] = field(default_factory=dict)  # Label Studio id → e-mail here
    report: Report = field(default_factory=Report)

    def import_file(self, path: Path) -> Report:
        started = time.monotonic()
        tasks = read_export(path, self.names)
        with tempfile.TemporaryDirectory(prefix="ls-import-") as scratch:
            for task in tasks:
                self.report.tasks += 1
                try:
                    self.import_task(task, Path(scratch))
                except (AudioNotFound, StageError) as error:  # this task only; on to the next
                    db.session.rollback()
                    self.report.problems.append(f"task {task.task_id}: {error}")
        self.report.seconds += time.monotonic() - started
        return self.report

    def import_task(self, task: Task, scratch: Path) -> None:
        sample = self.sample_for(task, scratch)
        self.report.predictions_not_in_file += task.predictions_not_included
        # One transaction per task, under the sample's lock: a second import waits, then
        # finds every item recorded.
        sample = db.session.scalar(
            sa.select(Sample).where(Sample.id == sample.id).with_for_update()
        )
        items = sorted(task.annotations, key=lambda a: (a.item != "prediction", a.version))
        for annotation in items:
            self.import_item(sample, annotation)
        db.session.commit()

    def sample_for(self, task: Task, scratch: Path) -> Sample:
        path = locate(task.audio, self.audio_root, scratch)
        recording = Recording(
            path=str(path),
            kind=SourceKind.FILE,
            external_id=f"label-studio:{task.audio}"[:512],
            title=task.title,
            info={"label_studio": {"task": task.task_id, "data": task.data}},
        )
        outcome = ingest_claimed(recording)
        if outcome.status == "created":
            self.report.samples_created += 1
            self.report.rows += 1
        else:
            self.report.samples_existing += 1
        return db.session.get(Sample, uuid.UUID(outcome.sample_id))

    def import_item(self, sample: Sample, annotation: Annotation) -> None:
        self.report.problems += [f"{sample.title or sample.id}: {p}" for p in annotation.problems]
        if annotation.cancelled:
            self.report.cancelled += 1
            return
        if self.recorded(sample, annotation):
            self.report.already_imported += 1
            return
        if not any(r.text is not None for r in annotation.regions):
            self.report.problems.append(
                f"{annotation.item} {annotation.item_id}: no transcription to import"
            )
            return
        human = annotation.item == "annotation"
        if not human and has_human_work(sample):
            self.report.predictions_over_human_work += 1
            return
        transcript, translation = self.write(sample, annotation, human)
        db.session.add(
            ImportedItem(
                tool=TOOL,
                sample_id=sample.id,
                item=annotation.item,
                item_id=annotation.item_id,
                item_version=annotation.version,
                transcript_revision_id=transcript.id,
                translation_revision_id=translation.id if translation else None,
            )
        )
        self.report.rows += 2 + (translation is not None)
        if human:
            self.report.annotations += 1
            advance(sample, ProcessingState.REVIEWED)
        else:
            self.report.predictions += 1
            advance(sample, ProcessingState.TRANSCRIBED)

    def recorded(self, sample: Sample, annotation: Annotation) -> bool:
        return (
            db.session.scalar(
                sa.select(ImportedItem.id).where(
                    ImportedItem.tool == TOOL,
                    ImportedItem.sample_id == sample.id,
                    ImportedItem.item == annotation.item,
                    ImportedItem.item_id == annotation.item_id,
                    ImportedItem.item_version == annotation.version,
                )
            )
            is not None
        )

    def write(self, sample: Sample, annotation: Annotation, human: bool):
        rows = [
            {
                "start": round(r.start, 3),
                "end": round(r.end, 3),
                "text": r.text or "",
                "label": r.label,
                "translation": r.translation or "",
            }
            for r in annotation.regions
        ]
        author_id, author_name = self.author(annotation) if human else (None, None)
        transcript, translation = write_revisions(
            sample,
            rows,
            origin=Origin.LABEL_STUDIO if human else Origin.IMPORTED,
            with_translation=annotation.has_translation,
            author_id=author_id,
            model_name=None if human else f"Label Studio: {annotation.model_version or '?'}",
        )
        for revision in (transcript, translation):
            if revision is not None:
                revision.author_name = author_name
        db.session.flush()
        return transcript, translation

    def author(self, annotation: Annotation) -> tuple[int | None, str | None]:
        """(user id here, None) for a known annotator, else (None, their name as text)."""
        who = annotation.author
        if who is None:
            return None, None
        email = who.email or self.users.get(who.ls_id)
        user = find_user(email) if email else None
        if user is not None:
            return user.id, None
        return None, who.label() if (who.name or who.email) else (email or who.label())


def ingest_claimed(recording: Recording, wait_s: float = 600.0):
    """Ingest under the stage's claim, as a worker would: another import (or worker)
    ingesting the same audio is waited for, and its sample is then found as a duplicate."""
    existing = find_existing(recording, sha256_file(Path(recording.path)))
    if existing is not None:  # this audio is here already: no stage run to record
        return Outcome("duplicate", recording.external_id, "already here", str(existing.id))
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with stage_run("ingest", recording.subject) as run:
                outcome = ingest(recording)
                run.sample_id = uuid.UUID(outcome.sample_id) if outcome.sample_id else None
                run.result = asdict(outcome)
            return outcome
        except ClaimTaken as taken:
            if time.monotonic() > deadline:
                raise PermanentError(f"{taken}; import again when it has finished") from None
            time.sleep(min(max(taken.retry_in, 0.2), 2.0))


def has_human_work(sample: Sample) -> bool:
    return (
        db.session.scalar(
            sa.select(TranscriptRevision.id)
            .where(
                TranscriptRevision.sample_id == sample.id,
                TranscriptRevision.origin.in_(HUMAN_ORIGINS),
            )
            .limit(1)
        )
        is not None
    )


def advance(sample: Sample, target: ProcessingState) -> None:
    """Move a sample the import gave text to `target`, through review when reviewed work
    came in; a sample already further along (or under review here) is left where it is."""
    path = {
        ProcessingState.TRANSCRIBED: [ProcessingState.TRANSCRIBED],
        ProcessingState.REVIEWED: [ProcessingState.IN_REVIEW, ProcessingState.REVIEWED],
    }[target]
    if sample.processing_state not in (ProcessingState.INGESTED, ProcessingState.TRANSCRIBED):
        return
    for state in path:
        if sample.processing_state is not state and can_transition(sample.processing_state, state):
            transition(sample, state)
