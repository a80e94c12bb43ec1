"""Zero-downtime upgrades: gunicorn reloaded (HUP) onto a new release behind the `current`
link answers every request meanwhile and then serves the new code; a worker told to stop
(SIGTERM, what systemd sends) finishes the task it holds before it exits."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import requests
import sqlalchemy as sa

from ra_app.core.models import JobRun, JobStatus
from ra_app.extensions import db

from .conftest import REDIS_URL
from .test_metrics import free_port
from .workers import ROOT, wait_for, web_env, worker_process

RELEASE_FILES = (
    "ra_app",
    "pipeline",
    "migrations",
    "templates",
    "static",
    "config.py",
    "gunicorn.conf.py",
    "celery_worker.py",
)


def release(folder, marker: str):
    for name in RELEASE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, folder / name)
    routes = folder / "ra_app" / "ops" / "routes.py"
    text = routes.read_text()
    assert 'jsonify(status="ok")' in text
    routes.write_text(
        text.replace('jsonify(status="ok")', f'jsonify(status="ok", release="{marker}")')
    )
    return folder


def point(link, target) -> None:
    """Switch the `current` link atomically, as the upgrade playbook does."""
    fresh = link.with_name(link.name + ".new")
    fresh.unlink(missing_ok=True)
    fresh.symlink_to(target)
    os.replace(fresh, link)


def test_a_reload_onto_a_new_release_drops_no_request(database_url_for_session, tmp_path):
    old, new = release(tmp_path / "r1", "old"), release(tmp_path / "r2", "new")
    current = tmp_path / "current"
    point(current, old)
    port = free_port()
    env = web_env(database_url_for_session, tmp_path, port, WEB_CONCURRENCY="2")
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(current / "gunicorn.conf.py"),
            "--chdir",
            str(current),
            "ra_app:create_app()",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/healthz"
    answers: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                answer = requests.get(url, timeout=10, headers={"Connection": "close"})
                answer.raise_for_status()
                answers.append(answer.json()["release"])
            except (requests.RequestException, ValueError) as error:
                failures.append(repr(error))

    try:
        wait_for(lambda: _answers(url), timeout=60, interval=0.2)
        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(answers) > 50, timeout=30)
        point(current, new)
        web.send_signal(signal.SIGHUP)
        wait_for(lambda: answers[-30:].count("new") == 30, timeout=60)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        stop.set()
        web.terminate()
        web.wait(timeout=30)
    assert not failures, failures[:3]
    assert answers[0] == "old" and answers[-1] == "new"
    assert len(answers) > 100


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def test_a_stopped_worker_finishes_its_task_first(
    app, celery_app, database_url_for_session, tmp_path
):
    with worker_process(celery_app, database_url_for_session, REDIS_URL, tmp_path / "d") as worker:
        celery_app.send_task("pipeline.selftest", kwargs={"subject": "drain", "hold_s": 3.0})

        def running():
            with app.app_context():
                found = db.session.scalar(sa.select(JobRun).where(JobRun.subject == "drain"))
                db.session.remove()
                return found

        wait_for(running, timeout=30)
        began = time.monotonic()
        os.kill(worker.pid, signal.SIGTERM)  # systemd's stop: Celery's warm shutdown
        worker.wait(timeout=60)
        assert time.monotonic() - began > 1.0  # it waited for the task
    with app.app_context():
        run = db.session.scalar(sa.select(JobRun).where(JobRun.subject == "drain"))
        assert run.status is JobStatus.SUCCEEDED and run.attempt == 1
