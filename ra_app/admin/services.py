"""Queries behind the admin pages, named so tests can call them directly."""

from datetime import datetime

import sqlalchemy as sa

from ..core.models import JobRun, JobStatus, Sample, User
from ..extensions import db


def all_users() -> list[User]:
    return list(db.session.scalars(sa.select(User).order_by(User.role, User.email)))


def latest_samples(limit: int = 20) -> list[Sample]:
    return list(
        db.session.scalars(sa.select(Sample).order_by(Sample.created_at.desc()).limit(limit))
    )


def stage_counts(stage: str, since: datetime) -> dict[str, int]:
    """Job runs of one stage since `since` by status, plus those running now."""
    rows = db.session.execute(
        sa.select(JobRun.status, sa.func.count())
        .where(JobRun.stage == stage, JobRun.started_at >= since)
        .group_by(JobRun.status)
    ).all()
    counts = {status.value: 0 for status in JobStatus}
    counts.update({status.value: n for status, n in rows})
    return counts


def recent_failures(stage: str | None = None, limit: int = 10) -> list[JobRun]:
    query = sa.select(JobRun).where(JobRun.status == JobStatus.FAILED)
    if stage is not None:
        query = query.where(JobRun.stage == stage)
    return list(db.session.scalars(query.order_by(JobRun.id.desc()).limit(limit)))
