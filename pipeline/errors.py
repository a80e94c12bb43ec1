"""How a stage says why it failed: transient failures are retried, permanent ones are not."""


class StageError(Exception):
    """Base class; `permanent` decides whether the job is retried."""

    permanent = False


class TransientError(StageError):
    """Worth retrying later (network, rate limit, a busy resource)."""


class PermanentError(StageError):
    """Retrying cannot help (bad input, a removed video); shown to admins."""

    permanent = True


def is_permanent(error: BaseException) -> bool:
    return bool(getattr(error, "permanent", False))
