"""Template filters."""


def duration(seconds: float | None) -> str:
    """1:02:03 or 4:05 — how people read recording lengths."""
    if seconds is None:
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
