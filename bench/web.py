"""Page latency under load: the queue page (/) and a task page (/tasks/<id>) with 50
signed-in reviewers against gunicorn (the repo's gunicorn.conf.py, WEB_CONCURRENCY=2) on
Postgres.

    .venv/bin/python -m bench.web [--users 50] [--rounds 10] [--max-seconds 120]

Setup (thrown away afterwards): a Postgres database made with the migrations; 60-minute
recordings (sample rows: the pages never read the audio files) each with a machine transcript
of a sentence every 4 s (~10 words of real code-switched text, 900 sentences), cut into the
default 5-minute transcript_correction windows (75 sentences each); every user holds one
window under a lease (the task page they work in) and has four more pending in their queue.

Load: each user is a thread with its own `requests.Session`, signed in through the /login
form with its CSRF token; after all have signed in they start together and each alternates
GET / and GET /tasks/<its task> for --rounds rounds, no think time (closed loop), over
loopback. A user starts no new request after --max-seconds, so the run stays bounded; what
was not sent is reported. Figures: p50 / p95 / p99 per page from the client, the server's own
request time per page (gunicorn access log, %(L)s), and requests per second.

With --whatif, a second pass serves the same database from bench/_whatif_app.py (the task
page's WER/CER score replaced by a constant; NOT the product) to show what that score costs.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import threading
import time
import uuid
from pathlib import Path

from ._support import (
    Gunicorn,
    create_database,
    drop_database,
    make_app,
    make_users,
    migrate,
    sign_in,
    summary_ms,
    write_markdown,
)
from .common import write_results

TASKS_PER_USER = 5
WINDOW_S = 300
SAMPLE_S = 3600.0


def machine_rows(duration_s: float, every_s: float = 4.0) -> list[dict]:
    from .review_page import machine_rows as rows

    return rows(duration_s, every_s)


def seed(app, n_users: int) -> dict[str, str]:
    """Users and their tasks; returns {email: the task id they hold}."""
    from ra_app.core.models import (
        Assignment,
        AssignmentStatus,
        Origin,
        Sample,
        Source,
        SourceKind,
        TaskType,
        User,
    )
    from ra_app.core.revisions import write_revisions
    from ra_app.core.states import ProcessingState
    from ra_app.core.tasks import start
    from ra_app.extensions import db

    windows = int(SAMPLE_S // WINDOW_S)
    held = {}
    with app.app_context():
        emails = [f"reviewer{i:02d}@example.org" for i in range(n_users)]
        user_ids = make_users(emails)
        n_tasks = n_users * TASKS_PER_USER
        samples = []
        rows = machine_rows(SAMPLE_S)
        for i in range(-(-n_tasks // windows)):
            sample = Sample(
                source=Source(kind=SourceKind.FILE, external_id=f"bench/web/{i}.wav", info={}),
                title=f"bench recording {i}",
                duration_s=SAMPLE_S,
                checksum_sha256=uuid.uuid4().hex + uuid.uuid4().hex,
                master_path="x/master.wav",
                rendition_path="x/audio.m4a",
                peaks_path="x/peaks.bin",
                processing_state=ProcessingState.IN_REVIEW,
            )
            db.session.add(sample)
            db.session.flush()
            transcript, translation = write_revisions(
                sample, rows, origin=Origin.IMPORTED, with_translation=True, model_name="bench"
            )
            samples.append((sample, transcript, translation))
        db.session.flush()
        for u, (email, user_id) in enumerate(zip(emails, user_ids, strict=True)):
            user = db.session.get(User, user_id)
            for j in range(TASKS_PER_USER):
                g = u * TASKS_PER_USER + j
                sample, transcript, translation = samples[g // windows]
                k = g % windows
                task = Assignment(
                    sample=sample,
                    task_type=TaskType.TRANSCRIPT_CORRECTION,
                    reviewer_id=user_id,
                    window_start_s=float(k * WINDOW_S),
                    window_end_s=float((k + 1) * WINDOW_S) if k < windows - 1 else None,
                    status=AssignmentStatus.PENDING,
                    base_transcript_revision_id=transcript.id,
                    base_translation_revision_id=translation.id,
                )
                db.session.add(task)
                if j == 0:
                    db.session.flush()
                    start(task, user)
                    held[email] = str(task.id)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return held


ACCESS = re.compile(r'"GET (\S+)" (\d{3}) \S+ ([\d.]+)s')


def server_times(log_path: Path, offset: int) -> dict[str, list[float]]:
    """Request time per page from gunicorn's access log (format '%(h)s "%(m)s %(U)s" %(s)s
    %(b)s %(L)ss'), from byte `offset` on."""
    out: dict[str, list[float]] = {"queue": [], "task": []}
    with open(log_path, "rb") as f:
        f.seek(offset)
        for raw in f:
            match = ACCESS.search(raw.decode(errors="replace"))
            if not match:
                continue
            path, _status, seconds = match.groups()
            if path == "/":
                out["queue"].append(float(seconds))
            elif path.startswith("/tasks/") and path.count("/") == 2:
                out["task"].append(float(seconds))
    return out


def load(base: str, held: dict[str, str], rounds: int, max_seconds: float, timeout: float):
    """All users sign in, then start together; returns (samples, elapsed, sign-in seconds)."""
    import requests

    sessions: dict[str, requests.Session] = {}
    began = time.perf_counter()
    sign_in_errors = []

    def do_sign_in(email):
        session = requests.Session()
        try:
            sign_in(session, base, email)
            sessions[email] = session
        except Exception as error:  # noqa: BLE001
            sign_in_errors.append(f"{email}: {error}")

    threads = [threading.Thread(target=do_sign_in, args=(e,)) for e in held]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sign_in_s = time.perf_counter() - began
    if sign_in_errors:
        raise RuntimeError(f"sign-in failed: {sign_in_errors[:3]}")

    go = threading.Event()
    samples: list[tuple] = []  # (page, seconds, status, bytes)
    lock = threading.Lock()
    deadline_holder = [0.0]

    def user(email):
        session = sessions[email]
        pages = [("queue", f"{base}/"), ("task", f"{base}/tasks/{held[email]}")]
        go.wait()
        for _ in range(rounds):
            for page, url in pages:
                if time.perf_counter() > deadline_holder[0]:
                    return
                t0 = time.perf_counter()
                try:
                    answer = session.get(url, timeout=timeout, allow_redirects=False)
                    status, size = answer.status_code, len(answer.content)
                except requests.RequestException as error:
                    status, size = type(error).__name__, 0
                with lock:
                    samples.append((page, time.perf_counter() - t0, status, size))

    threads = [threading.Thread(target=user, args=(e,)) for e in held]
    for t in threads:
        t.start()
    started = time.perf_counter()
    deadline_holder[0] = started + max_seconds
    go.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    for s in sessions.values():
        s.close()
    return samples, elapsed, sign_in_s


def figures(samples, elapsed, server: dict, planned: int) -> dict:
    out = {
        "planned_requests": planned,
        "completed_requests": len(samples),
        "not_sent_after_deadline": planned - len(samples),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(samples) / elapsed, 2) if elapsed else None,
        "pages": {},
    }
    for page in ("queue", "task"):
        mine = [s for s in samples if s[0] == page]
        bad = [s for s in mine if s[2] != 200]
        out["pages"][page] = {
            "client": summary_ms([s[1] for s in mine if s[2] == 200]),
            "server_request_time": summary_ms(server.get(page, [])),
            "errors": len(bad),
            "error_kinds": sorted({str(s[2]) for s in bad}),
            "html_bytes": max((s[3] for s in mine), default=0),
        }
    return out


def run_pass(db_url, data_root, log, held, args, app_spec, label) -> dict:
    with Gunicorn(db_url, data_root, log, app_spec=app_spec) as server:
        offset = log.stat().st_size
        samples, elapsed, sign_in_s = load(
            server.base, held, args.rounds, args.max_seconds, args.request_timeout
        )
        time.sleep(0.5)  # the access log is written after the response
        server_side = server_times(log, offset)
    result = figures(samples, elapsed, server_side, len(held) * args.rounds * 2)
    result["sign_in_all_users_s"] = round(sign_in_s, 2)
    result["app"] = app_spec
    print(f"[{label}] {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10, help="queue + task page per round")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="no new request after")
    parser.add_argument("--request-timeout", type=float, default=120.0)
    parser.add_argument("--whatif", action="store_true", help="also run the what-if app")
    parser.add_argument("--whatif-max-seconds", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument(
        "--summarize", action="store_true", help="only rewrite results/web.md from web.json"
    )
    args = parser.parse_args()
    if args.summarize:
        import json

        from .common import RESULTS

        write_markdown("web", markdown(json.loads((RESULTS / "web.json").read_text())))
        return

    load_before = [round(x, 2) for x in os.getloadavg()]  # others may share the machine
    db_name, db_url = create_database("bench_web")
    tmp = Path(tempfile.mkdtemp(prefix="bench_web_"))
    print(f"database {db_name}, files in {tmp}", flush=True)
    result: dict = {
        "setup": {
            "users": args.users,
            "tasks_per_user": TASKS_PER_USER,
            "task": f"transcript_correction, {WINDOW_S} s window of a {SAMPLE_S:.0f} s recording, "
            f"{int(WINDOW_S // 4)} sentences, held (editable)",
            "server": "gunicorn -c gunicorn.conf.py, WEB_CONCURRENCY=2 (gthread, 2 threads)",
            "rounds": args.rounds,
            "max_seconds": args.max_seconds,
            "whatif_max_seconds": args.whatif_max_seconds if args.whatif else None,
        }
    }
    try:
        data_root = tmp / "data"
        app = make_app(db_url, data_root)
        migrate(app)
        held = seed(app, args.users)
        result["product"] = run_pass(
            db_url, data_root, tmp / "gunicorn.log", held, args, "ra_app:create_app()", "product"
        )
        if args.whatif:
            args.max_seconds = args.whatif_max_seconds
            result["whatif"] = run_pass(
                db_url,
                data_root,
                tmp / "gunicorn-whatif.log",
                held,
                args,
                "bench._whatif_app:create_app()",
                "what-if",
            )
    finally:
        if not args.keep:
            drop_database(db_name)
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    result["load_average_1_5_15_min"] = {
        "before": load_before,
        "after": [round(x, 2) for x in os.getloadavg()],
    }
    write_results("web", result)
    write_markdown("web", markdown(result))


def markdown(result: dict) -> str:
    setup = result["setup"]
    md = [
        f"# Page latency, {setup['users']} signed-in users, gunicorn 2 workers × 2 threads, "
        "Postgres",
        "",
        f"`.venv/bin/python -m bench.web{' --whatif' if result.get('whatif') else ''}`; "
        "closed loop, no think time, loopback; "
        f"task page: {setup['task']}. Server, Postgres and the load generator share the 2 vCPUs.",
        "",
        "| app | page | ok | errors | p50 (ms) | p95 (ms) | p99 (ms) | server p50 / p95 (ms) "
        "| req/s (all pages) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for key, label in (("product", "product"), ("whatif", "what-if, score stubbed (NOT product)")):
        run = result.get(key)
        if not run:
            continue
        for page, p in run["pages"].items():
            c, s = p["client"], p["server_request_time"]
            errors = f"{p['errors']}" + (f" ({', '.join(p['error_kinds'])})" if p["errors"] else "")
            md.append(
                f"| {label} | {'/' if page == 'queue' else '/tasks/<id>'} | {c.get('n', 0)} "
                f"| {errors} | {c.get('p50_ms')} | {c.get('p95_ms')} | {c.get('p99_ms')} "
                f"| {s.get('p50_ms')} / {s.get('p95_ms')} | {run['requests_per_s']} |"
            )
        notes.append(
            f"- {label}: {run['completed_requests']} of {run['planned_requests']} requests "
            f"answered or failed in {run['seconds']} s; {run['not_sent_after_deadline']} not "
            "sent because the deadline "
            f"({setup['max_seconds'] if key == 'product' else setup.get('whatif_max_seconds')} s) "
            "had passed."
        )
    return "\n".join(md + [""] + notes)


if __name__ == "__main__":
    main()
