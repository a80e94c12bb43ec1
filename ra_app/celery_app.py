"""Flask's "Background tasks with Celery" pattern: one Celery app per Flask app, every task
running inside the Flask app context."""

from __future__ import annotations

from celery import Celery, Task
from flask import Flask
from kombu import Queue

from pipeline.queues import QUEUES, task_routes


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
    )
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    # Importing registers the @shared_task functions with this app.
    import pipeline.tasks  # noqa: F401

    return celery_app
