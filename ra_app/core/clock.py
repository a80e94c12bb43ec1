"""The database's clock. Leases and stamps that several hosts compare are taken from the one
database they share, never from each host's own clock (which may run a little fast or slow).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from ..extensions import db
from .models import utcnow


def db_now(bind=None) -> datetime:
    """Postgres' `clock_timestamp()` (the time of this call, not of the transaction's start);
    on SQLite, one file on one host, the host's clock. `bind` is a Connection or a Session
    (default: the app's session)."""
    bind = db.session if bind is None else bind
    dialect = bind.dialect if hasattr(bind, "dialect") else bind.get_bind().dialect
    if dialect.name != "postgresql":
        return utcnow()
    return bind.execute(sa.select(sa.func.clock_timestamp())).scalar_one()


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; they are UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
