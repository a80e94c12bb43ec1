"""What a Celery worker does around its tasks, through Celery's signals:
- it stamps itself in `workers` while it runs (its name, the queues it consumes, when it
  was last seen): the flow asks whether anyone serves the gpu queue (ra_app/core/flow.py),
  and the queue health checks count consumers (ra_app/core/queue_health.py);
- it serves its pool's metrics on WORKER_METRICS_PORT (ra_app/core/metrics.py);
- each task's log lines carry its task id (ra_app/core/logs.py)."""

from __future__ import annotations

import logging
import os
import shutil
import threading

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ra_app.core import logs, metrics
from ra_app.core.clock import db_now
from ra_app.core.models import WorkerSeen
from ra_app.extensions import db

log = logging.getLogger(__name__)
STAMP_EVERY_S = 30.0


def stamp(name: str, queues: list[str]) -> None:
    """Insert or refresh this worker's row (the caller's app context)."""
    now = db_now()
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    statement = insert(WorkerSeen).values(
        name=name, queues=",".join(sorted(queues)), started_at=now, seen_at=now
    )
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[WorkerSeen.name],
            set_={"queues": statement.excluded.queues, "seen_at": statement.excluded.seen_at},
        )
    )
    db.session.commit()


class Stamper:
    """Stamps from a thread of the worker's main process until it shuts down; a failed
    stamp (the database restarting) is logged and tried again at the next one."""

    def __init__(self, flask_app, name: str, queues: list[str]):
        self.flask_app, self.name, self.queues = flask_app, name, queues
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="worker-stamp", daemon=True)

    def _run(self) -> None:
        while True:
            with self.flask_app.app_context():
                try:
                    stamp(self.name, self.queues)
                except Exception as error:  # noqa: BLE001 - try again at the next stamp
                    db.session.rollback()
                    log.warning("could not stamp worker %s: %s", self.name, error)
                finally:
                    db.session.remove()
            if self.stopped.wait(STAMP_EVERY_S):
                return


_stamper: Stamper | None = None


def _on_ready(sender, **_):
    global _stamper
    app = sender.app
    selected = app.amqp.queues.consume_from or app.amqp.queues
    _stamper = Stamper(app.flask_app, sender.hostname, list(selected))
    _stamper.thread.start()
    port = app.flask_app.config.get("WORKER_METRICS_PORT")
    if port:
        metrics.serve_worker_metrics(port, app.flask_app.config["WORKER_METRICS_ADDR"])
        log.info("worker metrics on port %s", port)


def _on_init(**_):
    """Before the pool starts: counts left by an earlier run of this worker are gone with
    it (Prometheus sees the restart as a counter reset, as it should)."""
    folder = metrics.multiprocess_dir()
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)


def _on_process_shutdown(**_):
    metrics.forget_process(os.getpid())


def _on_task_start(task_id=None, **_):
    logs.clear()
    logs.bind(task_id=task_id)


def _on_task_end(**_):
    logs.clear()


def _on_shutdown(**_):
    if _stamper is not None:
        _stamper.stopped.set()


def connect_signals() -> None:
    from celery.signals import (
        task_postrun,
        task_prerun,
        worker_init,
        worker_process_shutdown,
        worker_ready,
        worker_shutdown,
    )

    task_prerun.connect(_on_task_start, weak=False)
    task_postrun.connect(_on_task_end, weak=False)

    worker_init.connect(_on_init, weak=False)
    worker_ready.connect(_on_ready, weak=False)
    worker_shutdown.connect(_on_shutdown, weak=False)
    worker_process_shutdown.connect(_on_process_shutdown, weak=False)
