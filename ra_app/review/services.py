"""The reviewer's queue."""

from collections import defaultdict

import sqlalchemy as sa

from ..core.models import Assignment, TaskType
from ..core.tasks import OPEN
from ..extensions import db


def my_queue(user_id: int) -> dict[TaskType, list[Assignment]]:
    """The reviewer's open tasks, grouped by task type in a fixed order."""
    tasks = db.session.scalars(
        sa.select(Assignment)
        .where(Assignment.reviewer_id == user_id, Assignment.status.in_(OPEN))
        .order_by(Assignment.created_at, Assignment.window_start_s)
    )
    grouped: dict[TaskType, list[Assignment]] = defaultdict(list)
    for task in tasks:
        grouped[task.task_type].append(task)
    return {task_type: grouped[task_type] for task_type in TaskType if grouped[task_type]}
