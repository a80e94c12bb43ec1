"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py "ra_app:create_app()"`."""

import importlib.util
import multiprocessing
import os
import tempfile

bind = os.environ.get("BIND", "127.0.0.1:8000")

# Metrics: every web process counts into files here and /metrics sums them (prometheus
# client's multiprocess mode, see ra_app/core/metrics.py). Set before the app is imported.
metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    os.path.join(tempfile.gettempdir(), f"review-metrics-web-{bind.rsplit(':', 1)[-1]}"),
)
os.makedirs(metrics_dir, exist_ok=True)


def private_copy(name: str, filename: str):
    """A module of the app loaded under a private name. The master must not import the app
    itself: workers fork from it, and a reload (HUP) must give them the new release's code."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), filename)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_logs = private_copy("_review_logs", "ra_app/core/logs.py")
_config = private_copy("_review_config", "config.py")


def app_log_format():
    return _logs.formatter_for(_logs.config_of(_config.config_from_env()))


workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
threads = int(os.environ.get("WEB_THREADS", "2"))
worker_class = "gthread"  # threads keep audio Range streams from blocking page loads
timeout = 60
# On restart and on reload (HUP) a worker finishes its requests (in-flight saves) first.
graceful_timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Method, path (never the query string) and status; the request id ties the line to the
# app's own lines of that request (ra_app/core/logs.py).
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss request_id=%({x-request-id}o)s'
# gunicorn's own lines in the app's format (JSON in production), secrets redacted.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"app": {"()": app_log_format}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "app",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": []},  # the app adds its own (ra_app/core/logs.py)
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """A fresh start counts from zero; a reload (HUP) keeps the counts."""
    for name in os.listdir(metrics_dir):
        os.remove(os.path.join(metrics_dir, name))


def child_exit(server, worker):
    from prometheus_client import multiprocess  # not the app's module: see private_copy

    multiprocess.mark_process_dead(worker.pid)
