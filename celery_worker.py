"""Worker entry point: `celery -A celery_worker worker -Q io,cpu` (queues per host)."""

import pipeline.tasks  # noqa: F401 - the tasks, and the signals a worker process connects
from ra_app import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
