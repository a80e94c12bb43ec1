"""Batches: choosing samples by filters, creating their review tasks, handing them out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..core.models import (
    HUMAN_ORIGINS,
    Assignment,
    AssignmentStatus,
    Batch,
    BatchStatus,
    Sample,
    Source,
    SourceKind,
    TaskType,
    TranscriptRevision,
    User,
)
from ..core.states import ProcessingState
from ..core.tasks import OPEN, create_tasks, release_expired_leases
from ..extensions import db

MODES = ("even", "weighted", "pool")
ORDERS = {
    "oldest": "oldest first",
    "flags": "most translation flags first",
    "disagreement": "largest machine/human disagreement first",
}


@dataclass
class Filters:
    task_type: TaskType = TaskType.TRANSCRIPT_CORRECTION
    states: list[ProcessingState] = field(default_factory=list)
    source_kind: SourceKind | None = None
    channel: str = ""
    min_minutes: float | None = None
    max_minutes: float | None = None
    needs_translation_review: bool = False
    not_reviewed: bool = False
    order: str = "oldest"

    @classmethod
    def from_args(cls, args) -> Filters:
        def number(name):
            value = (args.get(name) or "").strip()
            try:
                return float(value) if value else None
            except ValueError:
                return None

        return cls(
            task_type=TaskType(args.get("task_type") or TaskType.TRANSCRIPT_CORRECTION.value),
            states=[
                ProcessingState(s)
                for s in args.getlist("state")
                if s in ProcessingState._value2member_map_
            ],
            source_kind=SourceKind(args["source_kind"])
            if args.get("source_kind") in SourceKind._value2member_map_
            else None,
            channel=(args.get("channel") or "").strip(),
            min_minutes=number("min_minutes"),
            max_minutes=number("max_minutes"),
            needs_translation_review=args.get("needs_translation_review") == "y",
            not_reviewed=args.get("not_reviewed") == "y",
            order=args.get("order") if args.get("order") in ORDERS else "oldest",
        )

    def to_json(self) -> dict:
        return {
            "task_type": self.task_type.value,
            "states": [s.value for s in self.states],
            "source_kind": self.source_kind.value if self.source_kind else None,
            "channel": self.channel,
            "min_minutes": self.min_minutes,
            "max_minutes": self.max_minutes,
            "needs_translation_review": self.needs_translation_review,
            "not_reviewed": self.not_reviewed,
            "order": self.order,
        }


def matching(filters: Filters):
    """The samples a batch with these filters takes: those without an open task of the
    batch's type, and matching every filter. Flags are indexed columns, not JSON."""
    open_task = sa.exists().where(
        Assignment.sample_id == Sample.id,
        Assignment.task_type == filters.task_type,
        Assignment.status.in_(OPEN),
    )
    query = sa.select(Sample).where(
        ~open_task, Sample.processing_state != ProcessingState.DISCARDED
    )
    if filters.states:
        query = query.where(Sample.processing_state.in_(filters.states))
    if filters.source_kind or filters.channel:
        query = query.join(Source, Source.id == Sample.source_id)
        if filters.source_kind:
            query = query.where(Source.kind == filters.source_kind)
        if filters.channel:
            query = query.where(Source.channel.ilike(f"%{filters.channel}%"))
    if filters.min_minutes is not None:
        query = query.where(Sample.duration_s >= filters.min_minutes * 60)
    if filters.max_minutes is not None:
        query = query.where(Sample.duration_s <= filters.max_minutes * 60)
    if filters.needs_translation_review:
        query = query.where(Sample.needs_translation_review.is_(True))
    if filters.not_reviewed:
        query = query.where(
            ~sa.exists().where(
                TranscriptRevision.sample_id == Sample.id,
                TranscriptRevision.origin.in_(HUMAN_ORIGINS),
            )
        )
    return query


def count_matching(filters: Filters) -> tuple[int, float]:
    """How many samples, and how many hours of audio, the filters match."""
    subquery = matching(filters).with_only_columns(Sample.duration_s).subquery()
    count, seconds = db.session.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(subquery.c.duration_s), 0))
    ).one()
    return count, seconds / 3600


def ordered(filters: Filters):
    query = matching(filters)
    if filters.order == "flags":
        return query.order_by(Sample.translation_flag_count.desc(), Sample.created_at)
    if filters.order == "disagreement":
        worst = (
            sa.select(sa.func.max(TranscriptRevision.wer))
            .where(TranscriptRevision.sample_id == Sample.id)
            .scalar_subquery()
        )
        return query.order_by(sa.func.coalesce(worst, 0).desc(), Sample.created_at)
    return query.order_by(Sample.created_at)


def share_out(count: int, weights: dict[int, float]) -> list[int]:
    """Reviewer ids for `count` tasks in proportion to `weights` (largest remainder), in an
    interleaved order so early tasks do not all go to one person."""
    total = sum(weights.values())
    quotas = {uid: count * w / total for uid, w in weights.items()}
    counts = {uid: int(q) for uid, q in quotas.items()}
    for uid in sorted(quotas, key=lambda u: quotas[u] - counts[u], reverse=True)[
        : count - sum(counts.values())
    ]:
        counts[uid] += 1
    order, given = [], Counter()
    for _ in range(count):
        uid = min(counts, key=lambda u: (given[u] / counts[u]) if counts[u] else 2)
        order.append(uid)
        given[uid] += 1
    return order


def create_batch(
    name: str,
    filters: Filters,
    reviewers: list[User],
    *,
    mode: str,
    weights: dict[int, float] | None = None,
    cap: int | None = None,
    review_share: float = 0.0,
    created_by: User | None = None,
    limit: int | None = None,
) -> Batch:
    if mode not in MODES:
        raise ValueError(f"unknown assignment mode {mode!r}")
    if not reviewers:
        raise ValueError("choose at least one reviewer")
    members = {r.id: float((weights or {}).get(r.id, 1.0)) for r in reviewers}
    if mode == "even":
        members = dict.fromkeys(members, 1.0)
    if any(w <= 0 for w in members.values()):
        raise ValueError("weights must be positive")
    batch = Batch(
        name=name.strip() or "Untitled batch",
        task_type=filters.task_type,
        filters=filters.to_json(),
        assignment_mode=mode,
        weights={str(uid): w for uid, w in members.items()},
        max_pending_per_reviewer=cap,
        review_share=max(0.0, min(1.0, review_share)),
        created_by_id=created_by.id if created_by else None,
    )
    db.session.add(batch)
    db.session.flush()
    query = ordered(filters)
    samples = db.session.scalars(query.limit(limit) if limit else query).all()
    tasks = [
        t for sample in samples for t in create_tasks(sample, filters.task_type, batch_id=batch.id)
    ]
    if mode != "pool":
        held = Counter()
        for task, uid in zip(tasks, share_out(len(tasks), members), strict=True):
            if cap is None or held[uid] < cap:
                task.reviewer_id = uid
                held[uid] += 1
            # Past the cap a task stays in the batch's pool, pulled as reviewers finish.
    db.session.commit()
    return batch


def reassign(batch: Batch, from_user: User, to_user: User) -> int:
    moved = db.session.execute(
        sa.update(Assignment)
        .where(
            Assignment.batch_id == batch.id,
            Assignment.reviewer_id == from_user.id,
            Assignment.status == AssignmentStatus.PENDING,
        )
        .values(reviewer_id=to_user.id)
    ).rowcount
    weights = dict(batch.weights or {})
    weights.setdefault(str(to_user.id), 1.0)
    batch.weights = weights
    db.session.commit()
    return moved


def waiting_reviews(batch: Batch) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).where(
            Assignment.batch_id == batch.id,
            Assignment.review_of_id.is_not(None),
            Assignment.status == AssignmentStatus.PENDING,
        )
    )


def set_paused(batch: Batch, paused: bool) -> None:
    batch.status = BatchStatus.PAUSED if paused else BatchStatus.ACTIVE
    db.session.commit()


def release_stale() -> int:
    released = release_expired_leases()
    db.session.commit()
    return released
