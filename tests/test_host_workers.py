"""scripts/workers.sh: a host's workers from one setting, WORKER_PROCESSES (queue=processes),
each queue its own worker with its own process count and metrics port; one signal stops
them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from .conftest import REDIS_URL
from .workers import ROOT, wait_for

VENV = Path(sys.executable).parent.parent


def free_ports(n: int) -> int:
    """The first of `n` consecutive free ports on loopback."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            first = s.getsockname()[1]
        if first + n < 65536 and all(_free(first + i) for i in range(1, n)):
            return first


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start(database_url: str, tmp_path: Path, **settings: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database_url.replace("+psycopg2", ""),
        "CELERY_BROKER_URL": REDIS_URL,
        "SECRET_KEY": "k" * 40,
        "DATA_ROOT": str(tmp_path / "data"),
        "WORKER_VENV": str(VENV),
        **settings,
    }
    return subprocess.Popen(
        ["bash", "scripts/workers.sh"], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_one_setting_starts_a_worker_per_queue_with_its_processes(
    app, database_url_for_session, tmp_path
):
    port = free_ports(2)
    script = start(
        database_url_for_session, tmp_path,
        WORKER_PROCESSES="io=1,cpu=2", WORKER_METRICS_PORT=str(port),
    )  # fmt: skip
    celery = app.extensions["celery"]
    host = socket.gethostname()
    names = {f"io@{host}", f"cpu@{host}"}
    try:
        stats = wait_for(
            lambda: (
                (s := celery.control.inspect(destination=list(names), timeout=1).stats())
                and set(s) == names
                and s
            ),
            timeout=90,
            interval=0.5,
        )
        assert stats[f"io@{host}"]["pool"]["max-concurrency"] == 1
        assert stats[f"cpu@{host}"]["pool"]["max-concurrency"] == 2
        queues = celery.control.inspect(destination=list(names), timeout=1).active_queues()
        assert {n: [q["name"] for q in qs] for n, qs in queues.items()} == {
            f"io@{host}": ["io"],
            f"cpu@{host}": ["cpu"],
        }
        for p in (port, port + 1):  # each worker's metrics on its own port
            with urllib.request.urlopen(f"http://127.0.0.1:{p}/metrics", timeout=5) as answer:
                assert answer.status == 200
    finally:
        os.kill(script.pid, signal.SIGTERM)
        script.wait(timeout=60)
    assert script.returncode == 143
    left = subprocess.run(["pgrep", "-s", str(script.pid)], capture_output=True, text=True)
    assert left.stdout.strip() == ""  # no worker outlives the script


def test_a_wrong_setting_is_refused_by_name(database_url_for_session, tmp_path):
    script = start(database_url_for_session, tmp_path, WORKER_PROCESSES="io=2,cpu=0")
    output, _ = script.communicate(timeout=60)
    assert script.returncode == 2
    assert "'cpu=0' is not queue=processes" in output
    left = subprocess.run(["pgrep", "-s", str(script.pid)], capture_output=True, text=True)
    assert left.stdout.strip() == ""  # the io worker started before it was stopped
