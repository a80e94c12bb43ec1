"""/metrics: a short real run (two recordings ingested by a worker, two reviews submitted
over HTTP, one lease run out) moves each counter by exactly what happened; the web's
processes under gunicorn are summed into one answer; a worker host serves its pool's
counts on its own port; scrapers are refused without the token or from elsewhere."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
import uuid
from datetime import timedelta

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from ra_app.core.clock import db_now
from ra_app.core.models import Assignment, Origin, Sample, TaskType
from ra_app.core.revisions import write_revisions
from ra_app.core.states import ProcessingState, transition
from ra_app.extensions import db

from . import audio
from .conftest import REDIS_URL
from .review_helpers import assign, machine_rows
from .test_review_flow import page_token, post_json
from .workers import ROOT, wait_for, web_env, worker_process


def samples_of(text: str) -> dict[tuple, float]:
    """Every sample of a Prometheus text answer: (name, sorted labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client) -> dict:
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.status_code
    return samples_of(answer.get_data(as_text=True))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_short_run_moves_each_counter_by_what_happened(
    app, client, auth, reviewer, io_worker, tmp_path
):
    before = scrape(client)
    files = [
        audio.tone(tmp_path / f"r{i}.wav", seconds=s, freq=300 + i, channels=1)
        for i, s in enumerate((12.0, 8.0))
    ]
    result = app.test_cli_runner().invoke(args=["ingest", "files", *map(str, files)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        samples = db.session.scalars(sa.select(Sample)).all()
        assert len(samples) == 2
        for sample in samples:
            write_revisions(
                sample,
                machine_rows(sample.duration_s),
                origin=Origin.IMPORTED,
                with_translation=True,
                model_name="test",
            )
            transition(sample, ProcessingState.TRANSCRIBED)
            assign(sample, reviewer.id)
        heard = sum(s.duration_s for s in samples)
        first_id = samples[0].id

    auth.login(reviewer.email)
    token = page_token(client)
    opened = client.post("/tasks/next", data={"csrf_token": token})
    task_url = opened.headers["Location"]
    for _ in range(2):  # submit, and the answer's next task
        task_id = task_url.rstrip("/").rsplit("/", 1)[-1]
        with app.app_context():
            rows = machine_rows(db.session.get(Assignment, uuid.UUID(task_id)).sample.duration_s)
        done = post_json(client, f"/tasks/{task_id}/submit", {"sentences": rows}, token)
        assert done.status_code == 200, done.get_json()
        task_url = done.get_json()["next_url"]

    with app.app_context():  # a third task, claimed and left until its lease ran out
        assign(db.session.get(Sample, first_id), reviewer.id, TaskType.TRANSLATION_REVIEW)
    assert client.post("/tasks/next", data={"csrf_token": token}).status_code == 302
    with app.app_context():
        db.session.execute(
            sa.update(Assignment)
            .where(Assignment.submitted_at.is_(None))
            .values(lease_expires_at=db_now() - timedelta(minutes=1))
        )
        db.session.commit()
    assert client.get("/").status_code == 200  # the queue page releases expired leases
    after = scrape(client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("review_job_runs_total", stage="ingest", outcome="succeeded") == 2
    assert moved("review_stage_duration_seconds_count", stage="ingest") == 2
    assert moved("review_task_claims_total", task_type="transcript_correction") == 2
    assert moved("review_task_claims_total", task_type="translation_review") == 1
    assert moved("review_task_lease_expiries_total") == 1
    assert (
        abs(moved("review_reviewed_audio_seconds_total", task_type="transcript_correction") - heard)
        < 0.01
    )
    submits = dict(endpoint="review.task_submit", method="POST", status="200")
    assert moved("review_http_request_duration_seconds_count", **submits) == 2
    # The installation's state, read when scraped: the translation task waits in the pool.
    assert value(after, "review_open_tasks", task_type="translation_review", status="pending") == 1
    assert value(after, "review_queue_consumers", queue="io") == 0  # a thread does not stamp


def test_scrapers_need_the_token_or_loopback(app, client):
    elsewhere = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get("/metrics", environ_base=elsewhere).status_code == 403
    # The HTTPS proxy on the same host: loopback, but the client is whoever it forwarded.
    proxied = {"X-Forwarded-For": "203.0.113.9"}
    assert client.get("/metrics", headers=proxied).status_code == 403
    assert client.get("/metrics").status_code == 200
    app.config["METRICS_TOKEN"] = "scrape-secret-token"
    assert client.get("/metrics").status_code == 403  # the token is asked even on loopback
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/metrics", headers=wrong, environ_base=elsewhere).status_code == 403
    right = {"Authorization": "Bearer scrape-secret-token"}
    answer = client.get("/metrics", headers=right, environ_base=elsewhere)
    assert answer.status_code == 200
    assert "scrape-secret-token" not in answer.get_data(as_text=True)


def test_gunicorn_processes_are_summed_into_one_answer(database_url_for_session, tmp_path):
    port = free_port()
    env = web_env(database_url_for_session, tmp_path, port, WEB_CONCURRENCY="3", WEB_THREADS="1")
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "ra_app:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(base + "/healthz"), timeout=60, interval=0.2)
        for _ in range(29):  # 30 with the one that found it up; new connections: any process
            _get(base + "/healthz")
        pids = {int(p.split("_")[-1].split(".")[0]) for p in os.listdir(tmp_path / "web-metrics")}
        answers = [samples_of(_get(base + "/metrics")) for _ in range(6)]
    finally:
        web.terminate()
        web.wait(timeout=30)
    assert len(pids) > 1, "the requests all went to one process: nothing was summed"
    for found in answers:
        count = value(
            found,
            "review_http_request_duration_seconds_count",
            endpoint="ops.healthz",
            method="GET",
            status="200",
        )
        assert count == 30, count


def test_a_worker_serves_its_pools_counts_on_its_port(
    celery_app, database_url_for_session, tmp_path
):
    port = free_port()
    with worker_process(
        celery_app,
        database_url_for_session,
        REDIS_URL,
        tmp_path / "data",
        queues=("io",),
        concurrency=2,
        WORKER_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "worker-metrics"),
    ):
        results = [
            celery_app.send_task("pipeline.selftest", kwargs={"subject": f"m{i}"}) for i in range(4)
        ]
        for result in results:
            result.get(timeout=60)
        found = samples_of(_get(f"http://127.0.0.1:{port}/metrics"))
    assert value(found, "review_job_runs_total", stage="selftest", outcome="succeeded") == 4
    assert value(found, "review_stage_duration_seconds_count", stage="selftest") == 4


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback
            return answer.read().decode()
    except OSError:
        return None


def test_the_grafana_dashboard_asks_only_for_metrics_we_serve(client):
    exposed = client.get("/metrics").get_data(as_text=True)
    served = set()
    for line in exposed.splitlines():
        if line.startswith("# TYPE review_"):
            _, _, name, kind = line.split()
            suffixes = ("_bucket", "_count", "_sum") if kind == "histogram" else ("",)
            served.update(name + suffix for suffix in suffixes)
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "review-factory.json").read_text())
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\breview_[a-z_]+", target["expr"])
    }
    assert len(dashboard["panels"]) >= 10 and len(asked) >= 9
    assert asked <= served, sorted(asked - served)
    assert {"review_queue_waiting", "review_open_tasks", "review_job_runs_total"} <= asked


def test_ten_submits_at_once_count_the_reviewed_audio_once(app, client, reviewer, tmp_path):
    from .review_helpers import claim, make_review_sample
    from .test_review_concurrency import at_once, signed_in

    with app.app_context():
        sample = make_review_sample(tmp_path, duration_s=12.0)
        assign(sample, reviewer.id)
        task_id = claim(reviewer.id).id
    before = scrape(client)
    tabs = [signed_in(app, reviewer.email) for _ in range(10)]
    rows = machine_rows(12.0)
    answers = at_once(
        [
            lambda c=c, t=t: post_json(c, f"/tasks/{task_id}/submit", {"sentences": rows}, t)
            for c, t in tabs
        ]
    )
    assert sorted(a.status_code for a in answers) == [200] + [409] * 9
    after = scrape(client)
    kind = {"task_type": "transcript_correction"}
    name = "review_reviewed_audio_seconds_total"
    assert value(after, name, **kind) - value(before, name, **kind) == 12.0
    submits = {"endpoint": "review.task_submit", "method": "POST"}
    count = "review_http_request_duration_seconds_count"
    assert (
        value(after, count, **submits, status="409") - value(before, count, **submits, status="409")
        == 9
    )
