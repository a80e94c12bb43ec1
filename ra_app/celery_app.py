"""Flask's "Background tasks with Celery" pattern: one Celery app per Flask app, every task
running inside the Flask app context."""

from __future__ import annotations

from celery import Celery, Task
from flask import Flask
from kombu import Queue

from .core.queues import QUEUES, task_routes


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.conf.update(
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue="io",
        task_routes=task_routes,
        # The tasks are the pipeline's, registered by name: a worker imports them on start
        # (celery_worker.py), the embedded mode when it first runs one (core/outbox.py);
        # the web app itself never does.
        imports=("pipeline.tasks",),
    )
    celery_app.set_default()
    celery_app.flask_app = app  # for worker signals, which run outside any app context
    app.extensions["celery"] = celery_app
    _forget_connections_on_fork(app)
    return celery_app


def _forget_connections_on_fork(app: Flask) -> None:
    """A forked pool process must not reuse its parent's database connections: two
    processes on one socket corrupt both. `close=False` leaves the parent's open."""
    from celery.signals import worker_process_init

    from .extensions import db

    def forget(**_):
        with app.app_context():
            db.engine.dispose(close=False)

    worker_process_init.connect(forget, weak=False)
