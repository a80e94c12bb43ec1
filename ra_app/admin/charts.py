"""The admin pages' charts: the figures (one query each) and their bars, drawn on the server
as SVG by templates/admin/_charts.html (no script, no CDN; the page's tables and the charts
read the same figures).

- reviewed audio per day: the audio of first-pass submits (second reviews re-hear work
  already counted), by the day of the submit, for the last two weeks;
- backlog by state: samples per processing state (core/counts.py);
- failures by stage: failed job runs per stage in the last week;
- per-reviewer throughput: audio each reviewer submitted in the last week.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa

from ..core.clock import db_now
from ..core.counts import samples_per_state
from ..core.models import Assignment, Decision, JobRun, JobStatus, ReviewDecision, Sample, User
from ..extensions import db
from ..filters import audio_amount


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str  # the value as the page writes it


@dataclass
class Chart:
    id: str
    title: str
    bars: list[Bar] = field(default_factory=list)
    empty: str = "Nothing yet."

    @property
    def top(self) -> float:
        return max((bar.value for bar in self.bars), default=0) or 1.0

    @property
    def has_data(self) -> bool:
        return any(bar.value for bar in self.bars)


def reviewed_audio(days: int, group_by):
    """(key, audio hours) of first-pass submits since `days` ago, grouped by `group_by`."""
    since = db_now() - timedelta(days=days)
    window_end = sa.func.coalesce(Assignment.window_end_s, Sample.duration_s)
    seconds = sa.func.sum(window_end - Assignment.window_start_s)
    return db.session.execute(
        sa.select(group_by, seconds / 3600.0)
        .select_from(ReviewDecision)
        .join(Assignment, Assignment.id == ReviewDecision.assignment_id)
        .join(Sample, Sample.id == Assignment.sample_id)
        .where(ReviewDecision.created_at >= since, ReviewDecision.decision == Decision.SUBMIT)
        .group_by(group_by)
    ).all()


def reviewed_per_day(days: int = 14) -> Chart:
    day = sa.func.date(ReviewDecision.created_at)
    hours = {str(key): value or 0.0 for key, value in reviewed_audio(days, day)}
    today = db_now().date()
    chart = Chart("reviewed-per-day", f"Reviewed audio per day, last {days} days")
    chart.empty = f"Nothing reviewed in the last {days} days."
    for back in range(days - 1, -1, -1):
        key = (today - timedelta(days=back)).isoformat()
        value = hours.get(key, 0.0)
        chart.bars.append(Bar(label_of_day(date.fromisoformat(key)), value, audio_amount(value)))
    return chart


def tasks_per_day(per_day: list[tuple[date, int]], days: int = 30) -> Chart:
    """A batch's tasks done per day, its last `days` days with work (admin/progress.py)."""
    chart = Chart("batch-per-day", "Tasks done per day")
    chart.bars = [Bar(label_of_day(day), n, f"{n:,}") for day, n in per_day[-days:]]
    return chart


def label_of_day(day: date) -> str:
    return day.strftime("%a %d %b")


def per_reviewer(days: int = 7) -> Chart:
    rows = reviewed_audio(days, ReviewDecision.reviewer_id)
    emails = dict(db.session.execute(sa.select(User.id, User.email)).all())
    chart = Chart("per-reviewer", f"Audio reviewed per reviewer, last {days} days")
    chart.empty = "No submits in the last week."
    for reviewer_id, value in sorted(rows, key=lambda r: -(r[1] or 0)):
        chart.bars.append(Bar(emails.get(reviewer_id, "?"), value or 0.0, audio_amount(value)))
    return chart


def backlog_by_state() -> Chart:
    chart = Chart("backlog", "Samples by processing state")
    for state, count in samples_per_state().items():
        chart.bars.append(Bar(state.value.replace("_", " "), count, f"{count:,}"))
    return chart


def failures_by_stage(days: int = 7) -> Chart:
    since = db_now() - timedelta(days=days)
    rows = db.session.execute(
        sa.select(JobRun.stage, sa.func.count())
        .where(JobRun.status == JobStatus.FAILED, JobRun.started_at >= since)
        .group_by(JobRun.stage)
        .order_by(sa.func.count().desc())
    ).all()
    chart = Chart("failures", f"Failed job runs by stage, last {days} days")
    chart.empty = "No failures in the last week."
    chart.bars = [Bar(stage, count, f"{count:,}") for stage, count in rows]
    return chart
