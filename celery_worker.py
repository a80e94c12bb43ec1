"""Worker entry point: `celery -A celery_worker worker -Q io,cpu` (queues per host)."""

from ra_app import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
