"""How a stage says why it failed: transient failures are retried, permanent ones are not."""


class StageError(Exception):
    """Base class; `permanent` decides whether the job is retried."""

    permanent = False


class TransientError(StageError):
    """Worth retrying later (network, rate limit, a busy resource); `advice` says what helps."""

    def __init__(self, message: str, advice: str = ""):
        super().__init__(message, advice)
        self.advice = advice

    def __str__(self) -> str:
        return f"{self.args[0]} ({self.args[1]})" if self.args[1] else str(self.args[0])


class PermanentError(StageError):
    """Retrying cannot help (bad input, a removed video); shown to admins.

    `code` is a short stable token (`too_short`, `unreadable`, `removed` …) for summaries.
    """

    permanent = True

    def __init__(self, message: str, code: str = "permanent"):
        # Both in args: Celery rebuilds a task's exception from its args on the caller's side.
        super().__init__(message, code)
        self.code = code

    def __str__(self) -> str:
        return str(self.args[0])


def is_permanent(error: BaseException) -> bool:
    return bool(getattr(error, "permanent", False))
