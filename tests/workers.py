"""Real Celery worker processes for tests that need more than one worker, or one to kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def worker_process(
    celery_app,
    database_url: str,
    broker_url: str,
    data_root,
    queues=("io",),
    concurrency: int = 1,
    log_path: Path | None = None,
    **settings: str,
):
    """Start `celery -A celery_worker worker` on the test database, with extra environment
    `settings`; yield the Popen."""
    name = f"test-{uuid.uuid4().hex[:8]}@localhost"
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database_url.replace("postgresql+psycopg2://", "postgresql://"),
        "CELERY_BROKER_URL": broker_url,
        "DATA_ROOT": str(data_root),
        "SECRET_KEY": "test-secret-key-for-worker-processes",
        **settings,
    }
    log = open(log_path or os.devnull, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_worker",
            "worker",
            "-Q",
            ",".join(queues),
            "-c",
            str(concurrency),
            "-n",
            name,
            "--loglevel",
            "INFO",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not celery_app.control.ping(destination=[name], timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} did not start (exit {proc.poll()})")
        proc.worker_name = name
        yield proc
    finally:
        stop_group(proc)
        log.close()


def stop_group(proc, timeout: float = 30) -> None:
    """SIGTERM a process started in its own session, and its children; SIGKILL after
    `timeout` (a warm shutdown that hangs)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def web_env(database_url: str, tmp_path: Path, port: int, **settings: str) -> dict:
    """The environment of a gunicorn (gunicorn.conf.py) on the test database and broker."""
    from .conftest import REDIS_URL

    return {
        **os.environ,
        "APP_ENV": "development",
        "BIND": f"127.0.0.1:{port}",
        "DATABASE_URL": database_url.replace("+psycopg2", ""),
        "CELERY_BROKER_URL": REDIS_URL,
        "SECRET_KEY": "k" * 40,
        "DATA_ROOT": str(tmp_path / "data"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "web-metrics"),
        **settings,
    }


def kill_hard(proc) -> None:
    """SIGKILL the worker and its pool processes, as a crash or an OOM kill would."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.05):
    """Poll `predicate` until it returns something true; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting")


@contextmanager
def thread_worker(celery_app, *queues: str, concurrency: int = 2):
    """A real Celery worker in a thread of the test process, consuming `queues` (it sees
    the test's app and database; use `worker_process` to kill one). One per test: kombu's
    event loop is one per process, and two thread workers in one process can hang at
    their shutdown."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(
        celery_app,
        pool="threads",
        concurrency=concurrency,
        queues=list(queues),
        perform_ping_check=False,
        shutdown_timeout=60,
    ) as worker:
        yield worker
