"""Retrying with backoff, in one place: how often and how soon a stage that failed
transiently runs again (the tasks retry with Celery's `retry` and this countdown; the
dispatcher's sweeper waits for it before it sends a task again), and the doubling wait of
in-task retries (the Gemini client between 5xx answers).

Why not Celery's `retry_backoff`: it counts deliveries, and a task that waited for another
task's claim has been delivered without running; retries here count the runs that failed
(job_runs). Why not tenacity for the Gemini client: its loop is a key rotation with two
budgets (failures of one key, keys out of quota), not one retry count."""

from __future__ import annotations

from flask import current_app


def max_attempts() -> int:
    """Runs of one task before it gives up: the first and TASK_MAX_RETRIES retries."""
    return current_app.config["TASK_MAX_RETRIES"] + 1


def doubling(base: float, n: int, cap: float) -> float:
    """`base`, then twice that for each earlier try (n = 0, 1, 2 …), never more than `cap`."""
    return min(base * 2 ** max(n, 0), cap)


def backoff_seconds(failures: int) -> int:
    """The wait before the next attempt after `failures` failed runs (one: the base, then
    doubling), capped at 30 minutes."""
    return int(doubling(current_app.config["TASK_RETRY_BACKOFF_SECONDS"], failures - 1, 1800))
