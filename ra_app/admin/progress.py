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


def task_audio_s(task) -> float:
    """Seconds of audio in a task row (window_start_s, window_end_s, duration_s)."""
    end = task.window_end_s if task.window_end_s is not None else task.duration_s
    return max(0.0, min(end, task.duration_s) - task.window_start_s)


def progress(tasks, active_reviewers: int = 1) -> Progress:
    result = Progress()
    rates, remaining_audio = [], 0.0
    for task in tasks:
        audio = task_audio_s(task)
        if task.status in DONE:
            result.done += 1
            result.audio_hours_done += audio / 3600
            if task.started_at and task.submitted_at and audio > 0:
                worked = (task.submitted_at - task.started_at).total_seconds() / 60
                rates.append(worked / (audio / 60))
        elif task.status is AssignmentStatus.IN_PROGRESS:
            result.in_progress += 1
            remaining_audio += audio
        else:
            result.remaining += 1
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
    # Plain rows of the columns progress needs, not ORM objects: a batch has thousands.
    tasks = db.session.execute(
        sa.select(
            Assignment.reviewer_id,
            Assignment.status,
            Assignment.window_start_s,
            Assignment.window_end_s,
            Sample.duration_s,
            Assignment.started_at,
            Assignment.submitted_at,
        )
        .join(Sample, Sample.id == Assignment.sample_id)
        .where(Assignment.batch_id == batch.id)
    ).all()
    by_reviewer: dict[int | None, list] = {}
    for task in tasks:
        by_reviewer.setdefault(task.reviewer_id, []).append(task)
    users = {
        u.id: u
        for u in db.session.scalars(
            sa.select(User).where(User.id.in_([uid for uid in by_reviewer if uid]))
        )
    }
    active = len([uid for uid in by_reviewer if uid])
    days = Counter(t.submitted_at.date() for t in tasks if t.submitted_at)
    return {
        "overall": progress(tasks, active),
        "reviewers": [
            (users.get(uid), progress(items))
            for uid, items in sorted(
                by_reviewer.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)
            )
        ],
        "per_day": sorted(days.items()),
    }


def throughput_svg(per_day: list, width: int = 480, height: int = 120) -> str:
    """Tasks done per day as bars, drawn by the server (no chart library, no CDN)."""
    if not per_day:
        return ""
    top = max(n for _, n in per_day)
    bar = width / len(per_day)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 20}" '
        f'role="img" aria-label="Tasks done per day">'
    ]
    for i, (day, n) in enumerate(per_day):
        h = (height - 10) * n / top
        x = i * bar
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{height - h:.1f}" width="{bar - 4:.1f}" '
            f'height="{h:.1f}" fill="#1f5fbf"><title>{day}: {n}</title></rect>'
        )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{height + 14}" font-size="10" '
            f'text-anchor="middle">{day:%m-%d}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
