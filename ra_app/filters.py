"""Template filters: how the pages write lengths and moments (one place for each)."""

from __future__ import annotations

from datetime import datetime

MOMENT_FORMATS = {
    "minute": "%Y-%m-%d %H:%M",
    "second": "%Y-%m-%d %H:%M:%S",
    "short": "%m-%d %H:%M",
    "clock": "%H:%M:%S",
}


def duration(seconds: float | None) -> str:
    """1:02:03 or 4:05 — how people read recording lengths."""
    if seconds is None:
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def moment(value: datetime | None, detail: str = "minute") -> str:
    """A point in time (UTC, as stored): 2026-11-29 20:15; `detail` second, short or clock."""
    if value is None:
        return "—"
    return value.strftime(MOMENT_FORMATS[detail])
