"""How far a batch has come: done / in progress / remaining, speed, the day-by-day chart."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from ..core.models import Assignment, AssignmentStatus, Batch, Sample, User
from ..core.tasks import DONE
from ..extensions import db


@dataclass
class Progress:
    done: int = 0
    in_progress: int = 0
    remaining: int = 0
    audio_hours_done: float = 0.0
    minutes_per_audio_minute: float | None = None
    eta: timedelta | None = None


def progress(tallied: dict, rates: list[float], active_reviewers: int = 1) -> Progress:
    """A Progress from {status: (tasks, audio seconds)} and the minutes each done task took
    per minute of its audio."""
    result = Progress()
    remaining_audio = 0.0
    for status, (count, audio) in tallied.items():
        if status in DONE:
            result.done += count
            result.audio_hours_done += audio / 3600
        elif status is AssignmentStatus.IN_PROGRESS:
            result.in_progress += count
            remaining_audio += audio
        else:
            result.remaining += count
            remaining_audio += audio
    if rates:
        result.minutes_per_audio_minute = statistics.median(rates)
        result.eta = timedelta(
            minutes=result.minutes_per_audio_minute
            * remaining_audio
            / 60
            / max(1, active_reviewers)
        )
    return result


def batch_counts(batch_ids: list[int]) -> dict[int, Progress]:
    """Done / in progress / remaining per batch: one GROUP BY over the (batch, status)
    index, for the list of batches."""
    counts = {batch_id: Progress() for batch_id in batch_ids}
    rows = db.session.execute(
        sa.select(Assignment.batch_id, Assignment.status, sa.func.count())
        .where(Assignment.batch_id.in_(batch_ids))
        .group_by(Assignment.batch_id, Assignment.status)
    )
    for batch_id, status, count in rows:
        target = counts[batch_id]
        if status in DONE:
            target.done += count
        elif status is AssignmentStatus.IN_PROGRESS:
            target.in_progress += count
        else:
            target.remaining += count
    return counts


def batch_report(batch: Batch) -> dict:
    """The batch's progress overall and per reviewer, and tasks done per day: grouped in the
    database; only done tasks come back one by one (for the median speed)."""
    audio = sa.func.coalesce(Assignment.window_end_s, Sample.duration_s) - Assignment.window_start_s
    in_batch = (Assignment.batch_id == batch.id, Sample.id == Assignment.sample_id)
    tallied: dict[int | None, dict] = {}
    for uid, status, count, seconds in db.session.execute(
        sa.select(Assignment.reviewer_id, Assignment.status, sa.func.count(), sa.func.sum(audio))
        .where(*in_batch)
        .group_by(Assignment.reviewer_id, Assignment.status)
    ):
        tallied.setdefault(uid, {})[status] = (count, max(0.0, seconds or 0.0))
    rates: dict[int | None, list[float]] = {}
    days: Counter = Counter()
    for uid, started, submitted, seconds in db.session.execute(
        sa.select(
            Assignment.reviewer_id, Assignment.started_at, Assignment.submitted_at, audio
        ).where(*in_batch, Assignment.status.in_(DONE), Assignment.submitted_at.is_not(None))
    ):
        days[submitted.date()] += 1
        if started and seconds and seconds > 0:
            worked = (submitted - started).total_seconds() / 60
            rates.setdefault(uid, []).append(worked / (seconds / 60))
    users = {
        u.id: u
        for u in db.session.scalars(sa.select(User).where(User.id.in_([u for u in tallied if u])))
    }
    overall: dict = {}
    for per_status in tallied.values():
        for status, (count, seconds) in per_status.items():
            was = overall.get(status, (0, 0.0))
            overall[status] = (was[0] + count, was[1] + seconds)
    return {
        "overall": progress(
            overall, [r for rs in rates.values() for r in rs], len([u for u in tallied if u])
        ),
        "reviewers": [
            (users.get(uid), progress(tallied[uid], rates.get(uid, [])))
            for uid in sorted(tallied, key=lambda uid: (uid is None, uid or 0))
        ],
        "per_day": sorted(days.items()),
    }
