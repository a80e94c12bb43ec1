"""What a task endpoint answers when it cannot do what was asked: each error carries its HTTP
status, a message that says what to do next, and details for the page."""

from __future__ import annotations


class TaskError(Exception):
    """A request the task cannot take; `status` is the HTTP answer, `code` its name."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.details = details


class NotEditable(TaskError):
    status = 409
    code = "noteditable"


class AlreadySubmitted(NotEditable):
    """The same submit or decision again (a double click, a second tab, a retry)."""

    code = "already_submitted"


class LeaseLost(NotEditable):
    """The reviewer's hold ran out and the task went back to the pool or to someone else."""

    code = "lease_lost"


class DraftConflict(TaskError):
    """A draft saved from another tab or browser since this one last saved."""

    status = 409
    code = "draft_conflict"


class Invalid(TaskError):
    status = 422
    code = "invalid"


class Stale(TaskError):
    status = 409
    code = "stale"


class NotHeard(TaskError):
    """Approval needs the whole task's audio played."""

    status = 409
    code = "notheard"
