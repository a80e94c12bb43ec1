"""Worker entry point: `celery -A celery_worker worker -Q io,cpu` (queues per host).

With WORKER_METRICS_PORT set, the worker serves its pool's metrics on that port; its pool
processes count into PROMETHEUS_MULTIPROC_DIR, which must be known before the metrics are
first imported (ra_app/core/metrics.py), hence here, first."""

import os
import tempfile

import config  # noqa: F401 - loads .env first: WORKER_METRICS_PORT may be set there

if os.environ.get("WORKER_METRICS_PORT"):
    folder = os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR",
        os.path.join(tempfile.gettempdir(), f"review-metrics-{os.environ['WORKER_METRICS_PORT']}"),
    )
    os.makedirs(folder, exist_ok=True)  # emptied when the worker starts (pipeline/workers.py)

from celery.signals import setup_logging  # noqa: E402

import pipeline.tasks  # noqa: E402,F401 - the tasks, and the signals a worker process connects
from ra_app import create_app  # noqa: E402
from ra_app.core import logs  # noqa: E402

flask_app = create_app()
celery_app = flask_app.extensions["celery"]


@setup_logging.connect
def configure_logging(**_):
    """The worker logs as the web does (ra_app/core/logs.py), not in Celery's own format."""
    logs.configure(flask_app.config)
