"""What every stage module shares: the sample it works on, and the line it reports."""

from __future__ import annotations

import uuid

from ra_app.core.models import Sample
from ra_app.extensions import db

from ..errors import PermanentError


def outcome(status: str, sample_id, message: str, **extra) -> dict:
    return {"status": status, "label": str(sample_id), "message": message, **extra}


def get_sample(sample_id) -> Sample:
    sample = db.session.get(Sample, uuid.UUID(str(sample_id)))
    if sample is None:
        raise PermanentError(f"no sample {sample_id}", code="missing")
    return sample
