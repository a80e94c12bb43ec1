"""Counts that the admin pages and the operators' commands (`flask pipeline status`) share."""

from __future__ import annotations

import sqlalchemy as sa

from ..extensions import db
from .models import Sample
from .states import ProcessingState


def samples_per_state() -> dict[ProcessingState, int]:
    """Every state with its count, zeros included, in pipeline order."""
    rows = db.session.execute(
        sa.select(Sample.processing_state, sa.func.count()).group_by(Sample.processing_state)
    ).all()
    counts = dict.fromkeys(ProcessingState, 0)
    counts.update({ProcessingState(state): n for state, n in rows})
    return counts
