"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py "ra_app:create_app()"`."""

import multiprocessing
import os
import shutil
import tempfile

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
threads = int(os.environ.get("WEB_THREADS", "2"))
worker_class = "gthread"  # threads keep audio Range streams from blocking page loads
timeout = 60
graceful_timeout = 30  # let in-flight saves finish on restart
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# Query strings can hold nothing secret here, but keep the log to method, path and status.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Metrics: every web process counts into files here and /metrics sums them (prometheus
# client's multiprocess mode, see ra_app/core/metrics.py). Set before the app is imported.
metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    os.path.join(tempfile.gettempdir(), f"review-metrics-web-{bind.rsplit(':', 1)[-1]}"),
)


def on_starting(server):
    """A fresh start counts from zero; a reload (HUP) keeps the counts."""
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir, exist_ok=True)


def child_exit(server, worker):
    from ra_app.core.metrics import forget_process

    forget_process(worker.pid)
