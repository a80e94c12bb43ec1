"""Queries behind the admin pages, named so tests can call them directly."""

import sqlalchemy as sa

from ..extensions import db
from ..models import Sample, User
from ..states import ProcessingState


def samples_per_state() -> dict[ProcessingState, int]:
    """Every state with its count, zeros included, in pipeline order."""
    rows = db.session.execute(
        sa.select(Sample.processing_state, sa.func.count()).group_by(Sample.processing_state)
    ).all()
    counts = dict.fromkeys(ProcessingState, 0)
    counts.update({ProcessingState(state): n for state, n in rows})
    return counts


def all_users() -> list[User]:
    return list(db.session.scalars(sa.select(User).order_by(User.role, User.email)))
