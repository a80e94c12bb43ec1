"""Claim latency under contention: `claim_next` with many pending tasks and many claimers.

Long module: a benchmark script read top to bottom (setup, the runs, the report).

    .venv/bin/python -m bench.claims [--tasks 100000] [--claimers 20] [--seconds 30]

A throwaway Postgres database (made with the migrations, dropped afterwards) gets --tasks
pending transcript_correction tasks in the shared pool: 5-minute windows of 60-minute
recordings (12 per sample), created a millisecond apart, bulk-inserted with Core
`insert(Assignment)` executemany. Then --claimers reviewers, each its own process (own app
context, own connection; --mode thread runs them as threads of one process instead), call
`ra_app.review.tasks.claim_next` in a loop for --seconds. After each claim the reviewer's task
is marked submitted (one UPDATE, not timed), as a reviewer would finish it before taking the
next, so every timed call really claims a new task. Figures: median / p95 / p99 claim
latency, claims per second (the cycle includes that untimed UPDATE), and checks that no
task was handed out twice (ids in memory, and the rows in the database). An uncontended
single-claimer run comes first for comparison, and every SELECT one claim runs is caught
(SQLAlchemy cursor event) and EXPLAIN ANALYZEd, before and after the runs, to say where a
claim's time goes.

Reference (../shared/BASELINES.md): Postgres FOR UPDATE SKIP LOCKED claims ~2,900/s, p50 5 ms
on 4 vCPU (pg-queue-pubsub-benchmark). This machine has 2 vCPUs, shared by Postgres and the
claimers.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from ._support import (
    create_database,
    drop_database,
    make_app,
    make_users,
    migrate,
    summary_ms,
    write_markdown,
)
from .common import write_results

WINDOWS_PER_SAMPLE = 12  # a 60-minute recording in 5-minute windows


def seed(app, n_tasks: int, n_claimers: int) -> list[int]:
    """Users, sources, samples and pending pool tasks; returns the claimers' user ids."""
    from ra_app.core.models import (
        Assignment,
        AssignmentStatus,
        Sample,
        Source,
        SourceKind,
        TaskType,
    )
    from ra_app.core.states import ProcessingState
    from ra_app.extensions import db

    with app.app_context():
        user_ids = make_users([f"claimer{i}@example.org" for i in range(n_claimers)])
        n_samples = -(-n_tasks // WINDOWS_PER_SAMPLE)
        base = datetime.now(UTC) - timedelta(days=1)
        sources, samples = [], []
        for i in range(n_samples):
            source_id, sample_id = uuid.uuid4(), uuid.uuid4()
            sources.append(
                {
                    "id": source_id,
                    "kind": SourceKind.FILE,
                    "external_id": f"bench/{i}.wav",
                    "info": {},
                }
            )
            samples.append(
                {
                    "id": sample_id,
                    "source_id": source_id,
                    "title": f"bench recording {i}",
                    "duration_s": 3600.0,
                    "checksum_sha256": uuid.uuid4().hex + uuid.uuid4().hex,
                    "master_path": f"samples/{sample_id}/master.wav",
                    "rendition_path": f"samples/{sample_id}/audio.m4a",
                    "peaks_path": f"samples/{sample_id}/peaks.bin",
                    "processing_state": ProcessingState.IN_REVIEW,
                    "needs_translation_review": False,
                    "translation_flag_count": 0,
                }
            )
        tasks = []
        for i in range(n_tasks):
            sample = samples[i // WINDOWS_PER_SAMPLE]
            k = i % WINDOWS_PER_SAMPLE
            created = base + timedelta(milliseconds=i)
            tasks.append(
                {
                    "id": uuid.uuid4(),
                    "sample_id": sample["id"],
                    "task_type": TaskType.TRANSCRIPT_CORRECTION,
                    "window_start_s": k * 300.0,
                    "window_end_s": (k + 1) * 300.0 if k < WINDOWS_PER_SAMPLE - 1 else None,
                    "reviewer_id": None,
                    "from_pool": False,
                    "status": AssignmentStatus.PENDING,
                    "progress": 0.0,
                    "created_at": created,
                    "updated_at": created,
                }
            )
        chunk = 10_000
        for table, rows in ((Source, sources), (Sample, samples), (Assignment, tasks)):
            for start in range(0, len(rows), chunk):
                db.session.execute(sa.insert(table), rows[start : start + chunk])
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))  # what autovacuum would have done by now
        db.session.remove()
        db.engine.dispose()
    return user_ids


def claim_plans(app, user_id: int) -> dict:
    """Every SQL statement one `claim_next` runs (caught with a cursor event, so this does not
    depend on how claim_next is written), each SELECT then EXPLAIN ANALYZEd in a rolled-back
    transaction. The claim itself is undone afterwards."""
    from ra_app.core.models import Assignment, AssignmentStatus, User
    from ra_app.core.tasks import claim_next
    from ra_app.extensions import db

    captured: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    with app.app_context():
        user = db.session.get(User, user_id)
        engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", grab)
        try:
            began = time.perf_counter()
            task = claim_next(user)
            claim_ms = (time.perf_counter() - began) * 1000
        finally:
            sa.event.remove(engine, "before_cursor_execute", grab)
        if task is not None:  # put it back in the pool
            db.session.execute(
                sa.update(Assignment)
                .where(Assignment.id == task.id)
                .values(
                    status=AssignmentStatus.PENDING,
                    reviewer_id=None,
                    from_pool=False,
                    lease_expires_at=None,
                    started_at=None,
                )
            )
            db.session.commit()
        selects = []
        with engine.connect() as conn:
            for statement, params in captured:
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                lines = [
                    row[0]
                    for row in conn.exec_driver_sql(
                        "EXPLAIN (ANALYZE, BUFFERS) " + statement, params
                    )
                ]
                conn.rollback()
                ms = next(
                    (float(x.split(":")[1].split()[0]) for x in lines if "Execution Time" in x),
                    None,
                )
                selects.append(
                    {"sql": " ".join(statement.split()), "execution_ms": ms, "plan": lines}
                )
        db.session.remove()
        engine.dispose()
    return {
        "one_claim_ms": round(claim_ms, 2),
        "statements_per_claim": len(captured),
        "statements": [" ".join(st.split())[:160] for st, _ in captured],
        "selects": selects,
    }


def claimer(app, user_id: int, go, stop_at_holder, max_claims: int, out) -> None:
    """Claim, mark done (untimed), repeat until the deadline; puts (latencies, ids, errors)."""
    from ra_app.core.models import Assignment, AssignmentStatus, User, utcnow
    from ra_app.core.tasks import claim_next
    from ra_app.extensions import db

    latencies, ids, errors = [], [], []
    with app.app_context():
        user = db.session.get(User, user_id)
        go.wait()
        stop_at = stop_at_holder[0] if isinstance(stop_at_holder, list) else stop_at_holder.value
        while time.time() < stop_at and len(ids) < max_claims:
            began = time.perf_counter()
            try:
                task = claim_next(user)
            except Exception as error:  # noqa: BLE001 (reported, not hidden)
                db.session.rollback()
                errors.append(f"{type(error).__name__}: {str(error)[:200]}")
                continue
            latencies.append(time.perf_counter() - began)
            if task is None:
                break
            ids.append(str(task.id))
            db.session.execute(
                sa.update(Assignment)
                .where(Assignment.id == task.id)
                .values(status=AssignmentStatus.SUBMITTED, submitted_at=utcnow(), progress=1.0)
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
            db.session.refresh(user)  # expired by the commit; reload outside the timing
        db.session.remove()
    out.put((user_id, latencies, ids, errors))


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [float(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def run_claimers(app, user_ids, seconds, max_claims, mode) -> dict:
    import resource

    from ra_app.extensions import db

    with app.app_context():
        db.engine.dispose()  # no connection crosses a fork
    if mode == "process":
        ctx = multiprocessing.get_context("fork")
        go, out, stop_at = ctx.Event(), ctx.Queue(), ctx.Value("d", 0.0)
        workers = [
            ctx.Process(target=claimer, args=(app, uid, go, stop_at, max_claims, out))
            for uid in user_ids
        ]
    else:
        import queue

        go, out, stop_at = threading.Event(), queue.Queue(), [0.0]
        workers = [
            threading.Thread(target=claimer, args=(app, uid, go, stop_at, max_claims, out))
            for uid in user_ids
        ]
    for w in workers:
        w.start()
    time.sleep(2.0 if mode == "process" else 0.5)  # let every claimer connect first
    began = time.time()
    if mode == "process":
        stop_at.value = began + seconds
    else:
        stop_at[0] = began + seconds
    busy0, total0 = cpu_times()
    own0 = resource.getrusage(resource.RUSAGE_SELF)
    go.set()
    results = [out.get(timeout=seconds + 120) for _ in workers]
    elapsed = time.time() - began
    busy1, total1 = cpu_times()
    for w in workers:
        w.join(timeout=30)
    own1 = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the claimer processes, reaped
    if mode == "process":
        claimer_cpu = children.ru_utime + children.ru_stime - run_claimers.children_cpu
        run_claimers.children_cpu = children.ru_utime + children.ru_stime
    else:
        claimer_cpu = own1.ru_utime + own1.ru_stime - own0.ru_utime - own0.ru_stime
    latencies = [v for _uid, lat, _ids, _err in results for v in lat]
    ids = [i for _uid, _lat, task_ids, _err in results for i in task_ids]
    errors = [e for _uid, _lat, _ids, errs in results for e in errs]
    per_claimer = sorted(len(task_ids) for _uid, _lat, task_ids, _err in results)
    return {
        "claimers": len(user_ids),
        "mode": mode,
        "seconds": round(elapsed, 2),
        "claims": len(ids),
        "claims_per_s": round(len(ids) / elapsed, 1),
        "latency": summary_ms(latencies),
        "claims_per_claimer_min_median_max": [
            per_claimer[0],
            per_claimer[len(per_claimer) // 2],
            per_claimer[-1],
        ],
        "errors": errors[:10],
        "error_count": len(errors),
        "machine_cpu_busy_pct": round(100 * (busy1 - busy0) / max(total1 - total0, 1), 1),
        "claimers_cpu_s": round(claimer_cpu, 2),
        "claimers_cpu_ms_per_claim": round(1000 * claimer_cpu / max(len(ids), 1), 2),
        "_ids": ids,
        "_by_user": {uid: task_ids for uid, _lat, task_ids, _err in results},
    }


run_claimers.children_cpu = 0.0


def check_no_double_claims(app, runs: list[dict]) -> dict:
    """Each claimed id once in memory; in the database, as many non-pending rows as claims,
    each held by the reviewer that claimed it."""
    from ra_app.core.models import Assignment, AssignmentStatus
    from ra_app.extensions import db

    ids = [i for run in runs for i in run["_ids"]]
    owner = {i: uid for run in runs for uid, task_ids in run["_by_user"].items() for i in task_ids}
    with app.app_context():
        taken = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Assignment)
            .where(Assignment.status != AssignmentStatus.PENDING)
        )
        rows = db.session.execute(
            sa.select(Assignment.id, Assignment.reviewer_id).where(
                Assignment.status != AssignmentStatus.PENDING
            )
        ).all()
        db.session.remove()
        db.engine.dispose()
    wrong_owner = sum(1 for task_id, reviewer in rows if owner.get(str(task_id)) != reviewer)
    return {
        "claims": len(ids),
        "distinct_tasks": len(set(ids)),
        "rows_not_pending": taken,
        "rows_with_another_reviewer": wrong_owner,
        "ok": len(ids) == len(set(ids)) == taken and wrong_owner == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=100_000, help="pending tasks in the pool")
    parser.add_argument("--claimers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the contended run")
    parser.add_argument("--max-claims", type=int, default=100_000, help="per claimer, at most")
    parser.add_argument("--mode", choices=("process", "thread"), default="process")
    parser.add_argument("--baseline-seconds", type=float, default=5.0, help="single claimer")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    load_before = [round(x, 2) for x in os.getloadavg()]  # others may share the machine
    db_name, db_url = create_database("bench_claims")
    print(f"database {db_name}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench_claims_"))
    try:
        app = make_app(
            db_url,
            tmp / "data",
            SQLALCHEMY_ENGINE_OPTIONS={
                "pool_pre_ping": True,
                "pool_size": max(5, args.claimers + 2),  # --mode thread shares one pool
            },
        )
        migrate(app)
        began = time.perf_counter()
        user_ids = seed(app, args.tasks, args.claimers)
        seed_s = time.perf_counter() - began
        print(f"seeded {args.tasks} pending tasks in {seed_s:.1f} s", flush=True)
        plans_before = claim_plans(app, user_ids[0])
        for q in plans_before["selects"]:
            print(f"{q['execution_ms']} ms: {q['sql'][:200]}", flush=True)
        baseline = run_claimers(
            app, user_ids[:1], args.baseline_seconds, args.max_claims, "process"
        )
        print(f"1 claimer: {baseline['claims']} claims, {baseline['latency']}", flush=True)
        contended = run_claimers(app, user_ids, args.seconds, args.max_claims, args.mode)
        print(f"{args.claimers} claimers: {contended['claims']} claims, {contended['latency']}")
        check = check_no_double_claims(app, [baseline, contended])
        plans_after = claim_plans(app, user_ids[0])
    finally:
        if not args.keep:
            drop_database(db_name)
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    for run in (baseline, contended):
        run.pop("_ids")
        run.pop("_by_user")
    result = {
        "setup": {
            "pending_tasks": args.tasks,
            "samples": -(-args.tasks // WINDOWS_PER_SAMPLE),
            "seed_s": round(seed_s, 1),
            "database": "PostgreSQL (throwaway, migrations applied, VACUUM ANALYZE after seeding)",
        },
        "uncontended": baseline,
        "contended": contended,
        "no_task_claimed_twice": check,
        "claim_queries_before_runs": plans_before,
        "claim_queries_after_runs": plans_after,
        "reference": "pg-queue-pubsub-benchmark: ~2,900 claims/s, p50 5 ms on 4 vCPU",
    }
    result["load_average_1_5_15_min"] = {
        "before": load_before,
        "after": [round(x, 2) for x in os.getloadavg()],
    }
    write_results("claims", result)
    lat_b, lat_c = baseline["latency"], contended["latency"]
    md = [
        "# Claim latency (`claim_next`, Postgres, FOR UPDATE SKIP LOCKED)",
        "",
        f"{args.tasks:,} pending pool tasks; `.venv/bin/python -m bench.claims`.",
        "",
        "| claimers | claims | claims/s | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) "
        "| machine CPU busy | claimers' CPU per claim (ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run, lat in ((baseline, lat_b), (contended, lat_c)):
        md.append(
            f"| {run['claimers']} ({run['mode']}) | {run['claims']} | {run['claims_per_s']} "
            f"| {lat.get('p50_ms')} | {lat.get('p95_ms')} | {lat.get('p99_ms')} "
            f"| {lat.get('max_ms')} | {run['machine_cpu_busy_pct']}% "
            f"| {run['claimers_cpu_ms_per_claim']} |"
        )
    md += [
        "",
        f"No task claimed twice: **{check['ok']}** ({check})",
        "",
        f"One claim runs {plans_before['statements_per_claim']} SQL statements. "
        "Its SELECTs, EXPLAIN ANALYZEd before the runs:",
        "",
        "| execution (ms) | statement |",
        "|---|---|",
        *[f"| {q['execution_ms']} | `{q['sql'][:180]}` |" for q in plans_before["selects"]],
        "",
    ]
    slowest = max(plans_before["selects"], key=lambda q: q["execution_ms"] or 0, default=None)
    if slowest:
        md += ["Plan of the slowest:", "", "```", *slowest["plan"], "```"]
    write_markdown("claims", "\n".join(md))


if __name__ == "__main__":
    main()
