"""The shared schema: the pipeline writes samples and their revisions, the app reads them
and appends human revisions. SQLAlchemy 2.0 typed models; Postgres types where they matter
(UUID keys, JSONB, native enums) with variants that keep the SQLite demo working."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from .states import ProcessingState

# Python None is SQL NULL (not a JSON `null`), so "no draft" reads the same everywhere and a
# restored backup gives back exactly the NULLs it took.
JSONDoc = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY columns.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 with the zone; SQLite hands datetimes back without one, and they are UTC."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def enum_type(enum_cls: type[enum.Enum], name: str) -> sa.Enum:
    """A native Postgres enum stored by value (a VARCHAR on SQLite)."""
    return sa.Enum(
        enum_cls,
        name=name,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Role(enum.StrEnum):
    ADMIN = "admin"
    REVIEWER = "reviewer"


class SourceKind(enum.StrEnum):
    YOUTUBE = "youtube"
    FILE = "file"
    ARCHIVE = "archive"


class Origin(enum.StrEnum):
    YOUTUBE_SUBTITLES = "youtube_subtitles"
    SIDECAR_SUBTITLES = "sidecar_subtitles"
    GEMINI = "gemini"
    GEMINI_REPAIR = "gemini_repair"
    HUMAN = "human"
    WHISPERX = "whisperx"
    IMPORTED = "imported"  # machine output brought in from files (the demo batch, older tools)


class JobStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"  # the worker stopped heart-beating; another took the claim over


class FailureClass(enum.StrEnum):
    TRANSIENT = "transient"  # retried with backoff
    PERMANENT = "permanent"  # never retried; shown to admins


class TaskType(enum.StrEnum):
    TRANSCRIPT_CORRECTION = "transcript_correction"
    TRANSLATION_REVIEW = "translation_review"
    AUDIO_SEGMENTATION = "audio_segmentation"


class AssignmentStatus(enum.StrEnum):
    PENDING = "pending"  # in the pool or assigned, not started
    IN_PROGRESS = "in_progress"  # claimed, under a lease
    SUBMITTED = "submitted"  # waiting for a second review, if staged
    APPROVED = "approved"
    REJECTED = "rejected"  # back with its author


class BatchStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DONE = "done"


class Decision(enum.StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    APPROVE_MINOR = "approve_minor"
    APPROVE_MAJOR = "approve_major"
    REJECT = "reject"
    FLAG = "flag"


class Timestamped:
    """Creation and last-change times. On Postgres a trigger (migration 9c4e1f7a2b3d) sets
    `updated_at` from the database clock on every insert and update, whatever wrote the row:
    incremental backups select by it and restores resolve by it."""

    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, server_default=sa.func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True),
        default=utcnow,
        onupdate=utcnow,
        server_default=sa.func.now(),
        index=True,  # incremental backups read rows changed since a checkpoint
    )


class User(UserMixin, Timestamped, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[Role] = mapped_column(enum_type(Role, "user_role"), default=Role.REVIEWER)
    # Flask-Login reads `is_active`; a disabled account cannot sign in.
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    # Every task of a reviewer in training goes to a second reviewer.
    in_training: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # Wrong passwords since the last sign-in (counted in the database, never in Python).
    failed_logins: Mapped[int] = mapped_column(default=0)
    # Part of the session id: raising it ends every open session and remember-me cookie
    # (a password reset, a role change, a disabled account).
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")
    last_login_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method="scrypt")

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def get_id(self) -> str:
        """What the session and the remember-me cookie hold (see auth.routes.load_user)."""
        return f"{self.id}:{self.session_epoch}"

    def end_sessions(self) -> None:
        self.session_epoch = User.session_epoch + 1

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


class Source(Timestamped, db.Model):
    """Where audio came from: a YouTube video, a local file, an archive member."""

    __tablename__ = "sources"
    __table_args__ = (sa.UniqueConstraint("kind", "external_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[SourceKind] = mapped_column(enum_type(SourceKind, "source_kind"))
    external_id: Mapped[str] = mapped_column(sa.String(512))  # video id, path, archive key
    url: Mapped[str | None] = mapped_column(sa.Text)
    title: Mapped[str | None] = mapped_column(sa.Text)
    channel: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    info: Mapped[dict] = mapped_column(JSONDoc, default=dict)

    samples: Mapped[list[Sample]] = relationship(back_populates="source")


class Sample(Timestamped, db.Model):
    """One recording and its derived audio files (paths relative to the storage root)."""

    __tablename__ = "samples"
    __table_args__ = (
        sa.Index("ix_samples_state_created", "processing_state", "created_at"),
        sa.Index("ix_samples_created_at", "created_at"),  # the newest samples, for admins
        sa.Index(
            "ix_samples_needs_translation_review",
            "needs_translation_review",
            postgresql_where=sa.text("needs_translation_review"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    source_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sources.id"), index=True)
    title: Mapped[str | None] = mapped_column(sa.Text)
    language: Mapped[str | None] = mapped_column(sa.String(16))
    duration_s: Mapped[float] = mapped_column(sa.Float)
    checksum_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    master_path: Mapped[str] = mapped_column(sa.String(1024))
    rendition_path: Mapped[str] = mapped_column(sa.String(1024))
    peaks_path: Mapped[str] = mapped_column(sa.String(1024))
    # Written beside the master, never over it; the method and parameters are kept with it.
    denoised_path: Mapped[str | None] = mapped_column(sa.String(1024))
    denoise_info: Mapped[dict | None] = mapped_column(JSONDoc)
    processing_state: Mapped[ProcessingState] = mapped_column(
        enum_type(ProcessingState, "processing_state"), default=ProcessingState.INGESTED
    )
    # Flags are columns, not JSON, so the dashboard and batch filters count them by index.
    needs_translation_review: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    translation_flag_count: Mapped[int] = mapped_column(default=0)

    source: Mapped[Source] = relationship(back_populates="samples")


class RevisionMixin:
    """Append-only: a correction is a new revision pointing at the one it was based on."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    version: Mapped[int]
    origin: Mapped[Origin] = mapped_column(enum_type(Origin, "revision_origin"))
    sentences: Mapped[list] = mapped_column(JSONDoc)
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    model_name: Mapped[str | None] = mapped_column(sa.String(128))
    prompt_version: Mapped[str | None] = mapped_column(sa.String(64))
    # The machine draft against the task's window of this revision (the whole recording
    # for an unwindowed task), after Vietnamese-aware normalisation: the task's edit rate.
    wer: Mapped[float | None] = mapped_column(sa.Float)
    cer: Mapped[float | None] = mapped_column(sa.Float)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, server_default=sa.func.now(), index=True
    )
    # The text never changes, but marks do (a gold answer): backups go by this.
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True),
        default=utcnow,
        onupdate=utcnow,
        server_default=sa.func.now(),
        index=True,
    )

    @declared_attr
    def assignment_id(cls) -> Mapped[uuid.UUID | None]:  # noqa: N805
        """The review task a human revision was submitted from."""
        # use_alter: assignments point back at revisions (their base), a cycle of keys.
        return mapped_column(sa.ForeignKey("assignments.id", use_alter=True), index=True)

    @declared_attr
    def author(cls) -> Mapped[User | None]:  # noqa: N805
        return relationship("User")


class TranscriptRevision(RevisionMixin, db.Model):
    __tablename__ = "transcript_revisions"
    __table_args__ = (
        sa.UniqueConstraint("sample_id", "version"),
        sa.Index(
            "ix_transcript_revisions_gold",
            "sample_id",
            postgresql_where=sa.text("is_gold"),
            sqlite_where=sa.text("is_gold"),
        ),
    )

    sample_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("samples.id"))
    base_revision_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("transcript_revisions.id")
    )
    # Picked by an admin as the known-correct answer for hidden gold tasks.
    is_gold: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())

    sample: Mapped[Sample] = relationship()


class TranslationRevision(RevisionMixin, db.Model):
    __tablename__ = "translation_revisions"
    __table_args__ = (sa.UniqueConstraint("sample_id", "version"),)

    sample_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("samples.id"))
    base_revision_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("translation_revisions.id")
    )
    # The transcript whose sentences these translations follow, index for index.
    transcript_revision_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("transcript_revisions.id")
    )

    sample: Mapped[Sample] = relationship()
    transcript: Mapped[TranscriptRevision | None] = relationship()


class WordAlignment(db.Model):
    __tablename__ = "word_alignments"
    __table_args__ = (
        sa.Index(
            "ix_word_alignments_revision_position",
            "transcript_revision_id",
            "sentence_index",
            "word_index",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sample_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("samples.id"), index=True)
    transcript_revision_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("transcript_revisions.id")
    )
    sentence_index: Mapped[int]
    word_index: Mapped[int]
    word: Mapped[str] = mapped_column(sa.Text)
    start_s: Mapped[float] = mapped_column(sa.Float)
    end_s: Mapped[float] = mapped_column(sa.Float)
    score: Mapped[float | None] = mapped_column(sa.Float)
    language: Mapped[str | None] = mapped_column(sa.String(8))
    interpolated: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, server_default=sa.func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=sa.func.now()
    )


class Segment(Timestamped, db.Model):
    """A 10–30 s training clip of a sample with its text and translation."""

    __tablename__ = "segments"
    __table_args__ = (sa.UniqueConstraint("sample_id", "position"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    sample_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("samples.id"))
    position: Mapped[int]
    start_s: Mapped[float] = mapped_column(sa.Float)
    end_s: Mapped[float] = mapped_column(sa.Float)
    text: Mapped[str] = mapped_column(sa.Text, default="")
    translation: Mapped[str] = mapped_column(sa.Text, default="")
    transcript_revision_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("transcript_revisions.id")
    )
    translation_revision_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("translation_revisions.id")
    )
    # Longer than the maximum because it is one sentence that cannot be cut; its clip is cut
    # from the master by start and end (pipeline/stages/export.py), like every segment's.
    too_long: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class JobRun(db.Model):
    """One attempt of one stage. A `running` row is also the stage's claim on its subject:
    a partial unique index lets only one run per (stage, subject) be running at a time, and
    its lease lets another worker take over when the holder stops heart-beating."""

    __tablename__ = "job_runs"
    __table_args__ = (
        sa.Index(
            "uq_job_runs_one_running_claim",
            "stage",
            "subject",
            unique=True,
            postgresql_where=sa.text("status = 'running'"),
            sqlite_where=sa.text("status = 'running'"),
        ),
        sa.Index("ix_job_runs_stage_status", "stage", "status"),
        sa.Index("ix_job_runs_status_lease", "status", "lease_expires_at"),
        sa.Index("ix_job_runs_started_at", "started_at"),
        sa.Index("ix_job_runs_task_id", "task_id"),  # the outbox sweeper's "did it run?"
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    stage: Mapped[str] = mapped_column(sa.String(64))
    # What the stage works on: a sample id, or for ingestion the source key (no sample yet).
    subject: Mapped[str] = mapped_column(sa.String(512))
    sample_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("samples.id"), index=True)
    status: Mapped[JobStatus] = mapped_column(enum_type(JobStatus, "job_status"))
    attempt: Mapped[int] = mapped_column(default=1)
    worker: Mapped[str | None] = mapped_column(sa.String(255))
    task_id: Mapped[str | None] = mapped_column(sa.String(255))
    started_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    lease_expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    failure_class: Mapped[FailureClass | None] = mapped_column(
        enum_type(FailureClass, "failure_class")
    )
    error: Mapped[str | None] = mapped_column(sa.Text)
    result: Mapped[dict | None] = mapped_column(JSONDoc)
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=sa.func.now()
    )


class Batch(Timestamped, db.Model):
    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    task_type: Mapped[TaskType] = mapped_column(enum_type(TaskType, "task_type"))
    status: Mapped[BatchStatus] = mapped_column(
        enum_type(BatchStatus, "batch_status"), default=BatchStatus.ACTIVE
    )
    filters: Mapped[dict] = mapped_column(JSONDoc, default=dict)
    # How tasks reach reviewers: "even", "weighted" (by `weights`), or a shared "pool".
    assignment_mode: Mapped[str] = mapped_column(
        sa.String(16), default="even", server_default="even"
    )
    weights: Mapped[dict] = mapped_column(JSONDoc, default=dict)
    # The share of submitted tasks that go to a second reviewer (staged review).
    review_share: Mapped[float] = mapped_column(sa.Float, default=0.0, server_default="0")
    max_pending_per_reviewer: Mapped[int | None]
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


REVIEW_PENDING = "status = 'pending' AND reviewer_id IS NULL AND review_of_id IS NOT NULL"


class Assignment(Timestamped, db.Model):
    """A review task: one task type on a sample, or on a window of a long sample."""

    __tablename__ = "assignments"
    __table_args__ = (
        sa.Index("ix_assignments_reviewer_status", "reviewer_id", "status"),
        sa.Index("ix_assignments_status_lease", "status", "lease_expires_at"),
        sa.Index("ix_assignments_batch_status", "batch_id", "status"),
        sa.Index("ix_assignments_sample", "sample_id", "task_type"),
        # The two queues "Start next" reads, each an ordered index scan (core/tasks.py).
        sa.Index(
            "ix_assignments_own_pending",
            "reviewer_id",
            "created_at",
            "window_start_s",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        sa.Index(
            "ix_assignments_pool_pending",
            "created_at",
            "window_start_s",
            postgresql_where=sa.text("status = 'pending' AND reviewer_id IS NULL"),
            sqlite_where=sa.text("status = 'pending' AND reviewer_id IS NULL"),
        ),
        sa.Index(
            "ix_assignments_review_pending",
            "created_at",
            "window_start_s",
            postgresql_where=sa.text(REVIEW_PENDING),
            sqlite_where=sa.text(REVIEW_PENDING),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    batch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("batches.id"))
    sample_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("samples.id"))
    task_type: Mapped[TaskType] = mapped_column(enum_type(TaskType, "task_type"))
    # The window of the recording under review; NULL end means to the end of the sample.
    window_start_s: Mapped[float] = mapped_column(sa.Float, default=0.0)
    window_end_s: Mapped[float | None] = mapped_column(sa.Float)
    reviewer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))  # NULL: pool
    # A task taken from the shared pool goes back to the pool when its lease expires.
    from_pool: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    status: Mapped[AssignmentStatus] = mapped_column(
        enum_type(AssignmentStatus, "assignment_status"), default=AssignmentStatus.PENDING
    )
    lease_expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # The revisions the reviewer started from: a submit whose window changed since is stale.
    base_transcript_revision_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("transcript_revisions.id")
    )
    base_translation_revision_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("translation_revisions.id")
    )
    progress: Mapped[float] = mapped_column(sa.Float, default=0.0, server_default="0")
    # Staged review: a second reviewer's task points at the submitted task it checks.
    review_of_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("assignments.id"), index=True
    )
    # How much of the task's audio the reviewer has played (approval needs all of it).
    listened_fraction: Mapped[float] = mapped_column(sa.Float, default=0.0, server_default="0")
    # Hidden gold tasks: the known-correct answer, and the reviewer's score against it.
    is_gold: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    gold_revision_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("transcript_revisions.id")
    )
    score: Mapped[float | None] = mapped_column(sa.Float)
    # What a submit sent when it is not a revision: a gold task's rows (kept out of the
    # sample's history), a segmentation task's boundaries (segments are replaced in place).
    answer: Mapped[dict | None] = mapped_column(JSONDoc)
    # Drafts live with the task so a reload or a server restart loses nothing typed. Each
    # save raises the version; a save based on an older one (another tab) is refused.
    draft: Mapped[dict | None] = mapped_column(JSONDoc)
    draft_saved_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    draft_version: Mapped[int] = mapped_column(default=0, server_default="0")
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # When the current holder claimed it: what they can have heard is bounded by the time since.
    claimed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # The reviewer whose lease ran out: their next save is told why, not just refused.
    lease_lost_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    submitted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    sample: Mapped[Sample] = relationship()
    reviewer: Mapped[User | None] = relationship(foreign_keys=[reviewer_id])
    review_of: Mapped[Assignment | None] = relationship(remote_side=[id])


class LexiconTerm(Timestamped, db.Model):
    """A term reviewers correct again and again (a name, brand, slang, an English term kept
    untranslated): given to the model as vocabulary and glossary hints."""

    __tablename__ = "lexicon_terms"

    id: Mapped[int] = mapped_column(primary_key=True)
    term: Mapped[str] = mapped_column(sa.String(200), unique=True)
    # vocabulary: spell it this way; keep_english: leave it untranslated in Vietnamese
    kind: Mapped[str] = mapped_column(sa.String(32), default="vocabulary")
    translation: Mapped[str | None] = mapped_column(sa.String(200))  # the preferred rendering
    note: Mapped[str | None] = mapped_column(sa.Text)
    corrections: Mapped[int] = mapped_column(default=0)  # how often reviewers fixed it
    approved: Mapped[bool] = mapped_column(sa.Boolean, default=False)  # used in prompts
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


class ReviewDecision(db.Model):
    __tablename__ = "review_decisions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    assignment_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("assignments.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    decision: Mapped[Decision] = mapped_column(enum_type(Decision, "review_decision"))
    comment: Mapped[str | None] = mapped_column(sa.Text)
    transcript_revision_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("transcript_revisions.id")
    )
    translation_revision_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("translation_revisions.id")
    )
    # A second review's agreement with the author: WER/CER between the author's text and the
    # approved text (0 when approved unchanged), or for segments the mean boundary shift.
    wer: Mapped[float | None] = mapped_column(sa.Float)
    cer: Mapped[float | None] = mapped_column(sa.Float)
    boundary_diff_s: Mapped[float | None] = mapped_column(sa.Float)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, server_default=sa.func.now(), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=sa.func.now()
    )


class OutboxMessage(Timestamped, db.Model):
    """A task to send, written in the same transaction as the change that calls for it, so
    work is queued exactly when the change commits, whatever the broker is doing. The
    dispatcher (pipeline/dispatch.py) sends unsent rows and marks them; `task_id` is the
    Celery task id, fixed here, so a message sent twice is one task (its claim is taken over,
    see pipeline/jobs.py) and a job run can be traced back to the row that asked for it."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index(
            "ix_outbox_unsent",
            "id",
            postgresql_where=sa.text("sent_at IS NULL"),
            sqlite_where=sa.text("sent_at IS NULL"),
        ),
        sa.Index("ix_outbox_sample", "sample_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_name: Mapped[str] = mapped_column(sa.String(128))
    args: Mapped[list] = mapped_column(JSONDoc, default=list)
    kwargs: Mapped[dict] = mapped_column(JSONDoc, default=dict)
    task_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    sample_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("samples.id"))
    sent_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    sends: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(sa.Text)


class WorkerSeen(db.Model):
    """Celery workers and the queues they consume, stamped while they run (pipeline/
    workers.py): whether anyone serves the gpu queue decides if alignment joins the flow."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    queues: Mapped[str] = mapped_column(sa.String(255))  # comma-separated
    started_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=sa.func.now()
    )
