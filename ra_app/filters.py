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


def at(seconds: float | None) -> str:
    """A moment in a recording as the player shows it: 1:13.16 (to the hundredth)."""
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds, 2), 60)
    return f"{int(minutes)}:{secs:05.2f}"


def audio_amount(hours: float | None) -> str:
    """An amount of audio as people say it: "none", "40 s", "12 min", "2 h 05 min"."""
    if not hours:
        return "none"
    seconds = round(hours * 3600)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def moment(value: datetime | None, detail: str = "minute") -> str:
    """A point in time (UTC, as stored): 2026-11-29 20:15; `detail` second, short or clock."""
    if value is None:
        return "—"
    return value.strftime(MOMENT_FORMATS[detail])
