"""How often and how soon a stage that failed transiently runs again (the tasks retry with
it; the dispatcher's sweeper waits for it before it sends a task again)."""

from __future__ import annotations

from flask import current_app


def max_attempts() -> int:
    """Runs of one task before it gives up: the first and TASK_MAX_RETRIES retries."""
    return current_app.config["TASK_MAX_RETRIES"] + 1


def backoff_seconds(failures: int) -> int:
    """The wait before the next attempt after `failures` failed runs (one: the base, then
    doubling), capped at 30 minutes."""
    base = current_app.config["TASK_RETRY_BACKOFF_SECONDS"]
    return int(min(base * 2 ** max(failures - 1, 0), 1800))
