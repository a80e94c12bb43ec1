"""The transactional outbox: everything a request or a stage queues is first a row in
`outbox`, written in the same transaction as the change that calls for it.

- `enqueue` adds the row to the caller's session (nothing is sent before the commit, and a
  rollback queues nothing).
- `send_pending` sends unsent rows by task name and marks them sent. With a broker (Celery
  on Redis) the dispatcher process runs it (`flask pipeline dispatch`, pipeline/dispatch.py),
  woken by a Postgres NOTIFY from the committing transaction; a broker that is down leaves
  the rows unsent until it is back, so a request never waits on it. In the embedded mode
  (tasks in-process) a background thread of the process runs the tasks right after the
  commit, so a stage that fails is a failed job run, never an error of the request.

Each row carries the Celery task id it is sent with: a row sent twice (a dispatcher that
died between sending and marking) is one task, whose claim the second delivery takes over.
"""

from __future__ import annotations

import logging
import threading
import uuid

import sqlalchemy as sa
from flask import Flask, current_app

from ..extensions import db
from .clock import db_now
from .models import OutboxMessage

log = logging.getLogger(__name__)

CHANNEL = "outbox"  # Postgres NOTIFY channel the dispatcher listens on
SEND_BATCH = 100


def enqueue(task_name: str, args=(), kwargs=None, *, sample_id=None) -> OutboxMessage:
    """Queue `task_name(*args, **kwargs)` when the caller's transaction commits."""
    message = OutboxMessage(
        task_name=task_name,
        args=list(args),
        kwargs=dict(kwargs or {}),
        task_id=str(uuid.uuid4()),
        sample_id=sample_id,
        created_at=sa.func.now(),  # the database's clock, like the rows it is compared with
    )
    db.session.add(message)
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text(f"NOTIFY {CHANNEL}"))  # delivered on commit only
    _kick_after_commit()
    return message


def backlog() -> tuple[int, object]:
    """Queued work not yet sent to the broker, and when the oldest was queued: a backlog
    that grows means the dispatcher is not running, or the broker is down."""
    count, oldest = db.session.execute(
        sa.select(sa.func.count(), sa.func.min(OutboxMessage.created_at)).where(
            OutboxMessage.sent_at.is_(None)
        )
    ).one()
    return count, oldest


def is_embedded() -> bool:
    return bool(current_app.extensions["celery"].conf.task_always_eager)


def send_pending(limit: int = SEND_BATCH) -> int:
    """Send up to `limit` unsent rows, oldest first; returns how many were sent. Rows are
    taken with FOR UPDATE SKIP LOCKED, so several dispatchers never send one row twice."""
    celery = current_app.extensions["celery"]
    rows = db.session.scalars(
        sa.select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None))
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        db.session.commit()  # ends the locking read (on SQLite it holds the write lock)
        return 0
    if celery.conf.task_always_eager:
        return _run_in_process(celery, rows)
    sent, now = 0, db_now()
    for row in rows:
        try:
            celery.send_task(
                row.task_name,
                args=row.args,
                kwargs=row.kwargs,
                task_id=row.task_id,
                # The job run is the record; a result backend that is down must not hold
                # the send (Celery would retry it for many seconds).
                ignore_result=True,
                retry=True,
                retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5},
            )
        except Exception as error:  # noqa: BLE001 - the broker is down: keep the rest for later
            row.last_error = f"{type(error).__name__}: {error}"[:2000]
            log.warning("outbox: could not send %s (%s): %s", row.task_name, row.task_id, error)
            break
        row.sent_at = now
        row.sends += 1
        row.last_error = None
        sent += 1
    db.session.commit()
    return sent


def _run_in_process(celery, rows: list[OutboxMessage]) -> int:
    """The embedded mode: mark the rows sent, then run each task here, one after another
    (a failure is recorded by the task's job run and does not stop the others)."""
    calls = [(row.task_name, row.args, row.kwargs, row.task_id) for row in rows]
    celery.loader.import_default_modules()  # the pipeline's tasks, by name (once)
    now = db_now()
    for row in rows:
        row.sent_at = now
        row.sends += 1
    db.session.commit()
    for name, args, kwargs, task_id in calls:
        try:
            celery.tasks[name].apply(args=args, kwargs=kwargs, task_id=task_id)
        except Exception:  # an unknown task name; the job run says nothing, so the log does
            log.exception("outbox: %s (%s) could not run in-process", name, task_id)
        finally:
            db.session.remove()
    return len(calls)


# --- the embedded mode's in-process sender --------------------------------------------------

_lock = threading.Lock()
_wanted = threading.Event()
_sender: threading.Thread | None = None


def _kick_after_commit() -> None:
    """In the embedded mode, start sending once the caller's transaction commits."""
    if not is_embedded():
        return
    session = db.session()
    session.info["outbox_pending"] = True
    if session.info.get("outbox_listening"):
        return
    session.info["outbox_listening"] = True
    app = current_app._get_current_object()

    def after_commit(committed):
        if committed.info.pop("outbox_pending", False):
            kick(app)

    sa.event.listen(session, "after_commit", after_commit)
    sa.event.listen(session, "after_rollback", lambda s: s.info.pop("outbox_pending", None))


def kick(app: Flask) -> None:
    """Make sure a thread is sending this process's unsent rows. It is not a daemon: a
    command that queued work (`flask pipeline run …`) waits for it to finish at exit."""
    global _sender
    _wanted.set()
    with _lock:
        if _sender is not None and _sender.is_alive():
            return
        _sender = threading.Thread(target=_send_all, args=(app,), name="outbox-in-process")
        _sender.start()


def _send_all(app: Flask) -> None:
    global _sender
    while True:
        _wanted.clear()
        with app.app_context():
            try:
                while send_pending():
                    pass
            except Exception:  # noqa: BLE001 - logged; the next kick tries again
                log.exception("outbox: in-process sending failed")
            finally:
                db.session.remove()
        with _lock:
            if not _wanted.is_set():
                _sender = None
                return


def wait_idle(timeout: float | None = None) -> bool:
    """Wait for the in-process sender to finish (tests, and commands that print results)."""
    sender = _sender
    if sender is not None:
        sender.join(timeout)
        return not sender.is_alive()
    return True
