"""Admin pages at factory scale: the dashboards and the batch builder with 100,000 samples,
1,000,000 job runs and 200,000 transcript revisions in Postgres.

Long module: a benchmark script read top to bottom (the seed SQL, the requests, the plans).

    .venv/bin/python -m bench.admin [--samples 100000] [--runs 1000000] [--requests 30]

Setup (a throwaway database made with the migrations, dropped afterwards), written by SQL
`INSERT … SELECT generate_series` so it takes seconds: 100,000 sources and samples (states,
durations and translation flags spread), 1,000,000 job runs over 90 days across seven stages
(2 % failed, a few running), 100,000 machine and 100,000 human transcript revisions (the
human ones by 20 reviewers, with WER), 20 batches holding 50,000 review tasks (done, in
progress, pending), 5,000 second reviews with their decisions and 200 gold tasks. Then
VACUUM ANALYZE, as autovacuum would have done on a live database.

Measured: each page is requested --requests times in a row (after two warm-up requests)
by a signed-in admin through the app in this process (Flask's test client: the server's
own time, no network), p50 / p95 / max. Every SQL statement a page runs is EXPLAINed: the
figures name each sequential scan of a large table and flag any statement that reads a JSON
column outside its SELECT list (the target: no query scans a JSON column to count).
Target (issue 6): p95 under 200 ms for the dashboard and batch-builder pages.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from ._support import (
    PASSWORD,
    create_database,
    drop_database,
    make_app,
    make_users,
    migrate,
    summary_ms,
)
from .common import write_results

N_REVIEWERS = 20
N_BATCHES = 20
TASKS = 50_000
REVIEWS = 5_000
GOLD = 200
LARGE_TABLE_ROWS = 10_000
JSON_COLUMNS = ("info", "filters", "weights", "sentences", "result", "draft", "answer")

SEED = """
INSERT INTO sources (id, kind, external_id, title, channel, info, created_at, updated_at)
SELECT md5('src' || g)::uuid, 'youtube', 'video' || g, 'Video ' || g,
       'Kênh ' || (g % 500), '{{}}', now(), now()
FROM generate_series(1, {samples}) g;

INSERT INTO samples (id, source_id, title, language, duration_s, checksum_sha256, master_path,
                     rendition_path, peaks_path, processing_state, needs_translation_review,
                     translation_flag_count, created_at, updated_at)
SELECT md5('smp' || g)::uuid, md5('src' || g)::uuid, 'Buổi nói chuyện ' || g, 'vi',
       60 + (g % 3540), md5('sum' || g) || md5('sum2' || g), 'm/' || g, 'r/' || g, 'p/' || g,
       (ARRAY['ingested','transcribed','in_review','reviewed','aligned','segmented',
              'segments_reviewed','denoised','exported'])[1 + g % 9]::processing_state,
       g % 7 = 0, CASE WHEN g % 7 = 0 THEN 1 + g % 5 ELSE 0 END,
       now() - (g || ' minutes')::interval, now()
FROM generate_series(1, {samples}) g;

INSERT INTO job_runs (stage, subject, sample_id, status, attempt, worker, task_id, started_at,
                      finished_at, lease_expires_at, failure_class, error, updated_at)
SELECT (ARRAY['ingest','gemini','gemini_repair','align','segment','denoise','export'])[1 + g % 7],
       md5('smp' || (1 + g % {samples})), md5('smp' || (1 + g % {samples}))::uuid,
       (CASE WHEN g <= 7 THEN 'running' WHEN g % 50 = 0 THEN 'failed'
             ELSE 'succeeded' END)::job_status,
       1 + g % 3, 'worker-' || (g % 8) || '@host', md5('task' || g),
       now() - ((g * 7.776)::int || ' seconds')::interval,
       CASE WHEN g <= 7 THEN NULL ELSE now() - ((g * 7.776)::int - 30 || ' seconds')::interval END,
       CASE WHEN g <= 7 THEN now() + interval '2 minutes' END,
       (CASE WHEN g % 50 = 0 THEN
             (CASE WHEN g % 100 = 0 THEN 'transient' ELSE 'permanent' END) END)::failure_class,
       CASE WHEN g % 50 = 0 THEN 'error number ' || g END, now()
FROM generate_series(1, {runs}) g;

INSERT INTO transcript_revisions (id, sample_id, version, origin, sentences, model_name,
                                  prompt_version, created_at, is_gold)
SELECT md5('rev1' || g)::uuid, md5('smp' || g)::uuid, 1, 'gemini',
       '[{{"start": 0.5, "end": 3.5, "text": "câu một có laptop"}},
         {{"start": 4.0, "end": 7.0, "text": "okay mình bắt đầu"}}]'::jsonb,
       'gemini-2.5-flash', 'v1', now() - (g || ' minutes')::interval, false
FROM generate_series(1, {samples}) g;

INSERT INTO batches (id, name, task_type, status, filters, assignment_mode, weights,
                     review_share, max_pending_per_reviewer, created_at, updated_at)
SELECT b, 'Batch ' || b, 'transcript_correction', 'active', '{{}}', 'even',
       (SELECT jsonb_object_agg(u.id::text, 1) FROM users u WHERE u.role = 'reviewer'),
       0.1, NULL, now() - ((40 - b) || ' days')::interval, now()
FROM generate_series(1, {batches}) b;

INSERT INTO assignments (id, batch_id, sample_id, task_type, window_start_s, reviewer_id,
                         from_pool, status, progress, listened_fraction, is_gold,
                         started_at, submitted_at, created_at, updated_at)
SELECT md5('asg' || g)::uuid, 1 + g % {batches}, md5('smp' || g)::uuid,
       'transcript_correction', 0, r.ids[1 + g % {reviewers}], false,
       (CASE WHEN g % 10 < 6 THEN (CASE WHEN g % 4 = 0 THEN 'approved' ELSE 'submitted' END)
             WHEN g % 10 = 6 THEN 'in_progress' ELSE 'pending' END)::assignment_status,
       CASE WHEN g % 10 < 6 THEN 1 ELSE 0 END, 0, false,
       CASE WHEN g % 10 <= 6 THEN now() - ((g % 30) || ' days')::interval - interval '1 hour' END,
       CASE WHEN g % 10 < 6 THEN now() - ((g % 30) || ' days')::interval END,
       now() - interval '40 days', now()
FROM generate_series(1, {tasks}) g,
     (SELECT array_agg(id ORDER BY id) AS ids FROM users WHERE role = 'reviewer') r;

INSERT INTO transcript_revisions (id, sample_id, version, origin, sentences, author_id,
                                  base_revision_id, assignment_id, wer, cer, created_at, is_gold)
SELECT md5('rev2' || g)::uuid, md5('smp' || g)::uuid, 2, 'human',
       '[{{"start": 0.5, "end": 3.5, "text": "câu một có laptop mới"}},
         {{"start": 4.0, "end": 7.0, "text": "okay mình bắt đầu nhé"}}]'::jsonb,
       r.ids[1 + g % {reviewers}], md5('rev1' || g)::uuid,
       CASE WHEN g <= {tasks} AND g % 10 < 6 THEN md5('asg' || g)::uuid END,
       (g % 37) / 100.0, (g % 23) / 100.0, now() - ((g % 30) || ' days')::interval,
       g <= {gold}
FROM generate_series(1, {samples}) g,
     (SELECT array_agg(id ORDER BY id) AS ids FROM users WHERE role = 'reviewer') r;

INSERT INTO assignments (id, batch_id, sample_id, task_type, window_start_s, reviewer_id,
                         from_pool, status, review_of_id, listened_fraction, is_gold,
                         started_at, submitted_at, created_at, updated_at)
SELECT md5('rvw' || g)::uuid, 1 + g % {batches}, md5('smp' || g)::uuid,
       'transcript_correction', 0, r.ids[1 + (g + 1) % {reviewers}], true, 'submitted',
       md5('asg' || g)::uuid, 1, false, now() - interval '1 day', now(), now(), now()
FROM generate_series(1, {tasks}) g,
     (SELECT array_agg(id ORDER BY id) AS ids FROM users WHERE role = 'reviewer') r
WHERE g % 10 = 0 AND g <= {reviews} * 10;

INSERT INTO review_decisions (id, assignment_id, reviewer_id, decision, comment, wer, cer,
                              created_at, updated_at)
SELECT md5('dec' || g)::uuid, md5('rvw' || g)::uuid, r.ids[1 + (g + 1) % {reviewers}],
       (ARRAY['approve','approve_minor','approve_major','reject'])[1 + g % 4]::review_decision,
       CASE WHEN g % 4 = 3 THEN 'nghe lại câu hai' END, (g % 11) / 100.0, (g % 7) / 100.0,
       now(), now()
FROM generate_series(1, {tasks}) g,
     (SELECT array_agg(id ORDER BY id) AS ids FROM users WHERE role = 'reviewer') r
WHERE g % 10 = 0 AND g <= {reviews} * 10;

INSERT INTO assignments (id, batch_id, sample_id, task_type, window_start_s, reviewer_id,
                         from_pool, status, is_gold, gold_revision_id, score, answer,
                         started_at, submitted_at, created_at, updated_at)
SELECT md5('gld' || g)::uuid, 1 + g % {batches}, md5('smp' || (1 + g % {gold}))::uuid,
       'transcript_correction', 0, r.ids[1 + g % {reviewers}], false, 'submitted', true,
       md5('rev2' || (1 + g % {gold}))::uuid, (g % 100) / 100.0,
       '{{"sentences": [{{"start": 0.5, "end": 3.5, "text": "câu một"}}]}}'::jsonb,
       now() - interval '2 hours', now() - interval '1 hour', now(), now()
FROM generate_series(1, {gold}) g,
     (SELECT array_agg(id ORDER BY id) AS ids FROM users WHERE role = 'reviewer') r;
"""


def seed(app, samples: int, runs: int) -> dict:
    from ra_app.core import tallies
    from ra_app.core.models import Role
    from ra_app.extensions import db

    with app.app_context():
        make_users([f"reviewer{i}@example.org" for i in range(N_REVIEWERS)])
        make_users(["admin@example.org"], role=Role.ADMIN)
        started = time.perf_counter()
        sql = SEED.format(
            samples=samples,
            runs=runs,
            batches=N_BATCHES,
            tasks=TASKS,
            reviewers=N_REVIEWERS,
            reviews=REVIEWS,
            gold=GOLD,
        )
        with db.engine.begin() as conn:
            for statement in sql.split(";\n"):
                if statement.strip():
                    conn.execute(sa.text(statement))
        # The running tallies, as `flask quality recount` makes them for data written
        # behind the app's back (the app keeps them as work is decided).
        tallies.rebuild()
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
        counts = {
            table: db.session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()  # noqa: S608
            for table in (
                "samples",
                "job_runs",
                "transcript_revisions",
                "assignments",
                "review_decisions",
            )
        }
        sample_id = db.session.execute(sa.text("SELECT md5('smp1')::uuid")).scalar()
    return {"rows": counts, "seed_s": round(time.perf_counter() - started, 1), "sample": sample_id}


def sign_in(client) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    answer = client.post(
        "/login", data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": token}
    )
    if answer.status_code != 302:
        raise RuntimeError(f"sign-in answered {answer.status_code}")


class Statements:
    """Every statement the app sends while a page is served (with its parameters)."""

    def __init__(self, engine):
        self.engine = engine
        self.seen: list[tuple[str, object]] = []
        self.on = False
        sa.event.listen(engine, "before_cursor_execute", self.record)

    def record(self, conn, cursor, statement, parameters, context, executemany):
        if self.on and statement.lstrip().upper().startswith("SELECT"):
            self.seen.append((statement, parameters))


def explain(engine, statement: str, parameters) -> dict:
    """Sequential scans of large tables, and JSON columns read outside the SELECT list."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
        plan = cursor.fetchone()[0][0]["Plan"]
    finally:
        raw.close()
    scans = []

    def walk(node):
        if node.get("Node Type") == "Seq Scan":
            table = node.get("Relation Name")
            if table and table_rows(engine, table) >= LARGE_TABLE_ROWS:
                scans.append(table)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan)
    tail = re.split(r"\bFROM\b", statement, maxsplit=1, flags=re.IGNORECASE)[-1]
    json_used = [c for c in JSON_COLUMNS if re.search(rf"\.{c}\b", tail)]
    return {"seq_scans": scans, "json_filters": json_used}


_ROWS: dict[str, int] = {}


def table_rows(engine, table: str) -> int:
    if table not in _ROWS:
        with engine.connect() as conn:
            _ROWS[table] = (
                conn.execute(
                    sa.text("SELECT reltuples::bigint FROM pg_class WHERE relname = :t"),
                    {"t": table},
                ).scalar()
                or 0
            )
    return _ROWS[table]


def pages(sample_id) -> dict[str, str]:
    return {
        "admin home (dashboard)": "/admin/",
        "pipeline dashboard": "/admin/pipeline",
        "batches": "/admin/batches",
        "batch builder": "/admin/batches/new",
        "batch builder, filtered": "/admin/batches/new?task_type=translation_review"
        "&state=transcribed&state=in_review&min_minutes=5&max_minutes=40"
        "&needs_translation_review=y&not_reviewed=y&order=flags",
        "batch builder live count": "/admin/batches/count?task_type=transcript_correction"
        "&channel=K%C3%AAnh+12&min_minutes=10&order=disagreement",
        "batch detail": "/admin/batches/3",
        "quality": "/admin/quality",
        "samples": "/admin/samples",
        "sample audit": f"/admin/samples/{sample_id}",
        "queue health (/readyz/queues)": "/readyz/queues",
        "metrics (/metrics)": "/metrics",
    }


def measure(app, sample_id, requests: int) -> dict:
    from ra_app.extensions import db

    client = app.test_client()
    with app.app_context():
        engine = db.engine
    sign_in(client)
    statements = Statements(engine)
    results = {}
    for name, url in pages(sample_id).items():
        for _ in range(2):
            assert client.get(url).status_code == 200, url
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            answer = client.get(url)
            times.append(time.perf_counter() - started)
            assert answer.status_code == 200, (url, answer.status_code)
        statements.seen, statements.on = [], True
        client.get(url)
        statements.on = False
        checks = [explain(engine, s, p) for s, p in statements.seen]
        results[name] = {
            "url": url,
            **summary_ms(times),
            "queries": len(statements.seen),
            "seq_scans_of_large_tables": sorted({t for c in checks for t in c["seq_scans"]}),
            "json_columns_filtered": sorted({j for c in checks for j in c["json_filters"]}),
        }
        row = results[name]
        print(
            f"{name:28s} p50 {row['p50_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms  "
            f"{row['queries']:3d} queries  seq scans {row['seq_scans_of_large_tables']}"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    name, url = create_database("bench_admin")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            app = make_app(url, Path(scratch))
            migrate(app)
            seeded = seed(app, args.samples, args.runs)
            print(f"seeded {seeded['rows']} in {seeded['seed_s']} s")
            figures = measure(app, seeded["sample"], args.requests)
        target = [
            "admin home (dashboard)",
            "pipeline dashboard",
            "batch builder",
            "batch builder, filtered",
            "batch builder live count",
        ]
        write_results(
            "admin",
            {
                "rows": seeded["rows"],
                "requests_per_page": args.requests,
                "pages": figures,
                "target_p95_ms": 200,
                "target_met": all(figures[p]["p95_ms"] < 200 for p in target),
                "json_scans": any(f["json_columns_filtered"] for f in figures.values()),
            },
        )
    finally:
        if args.keep:
            print(f"kept database {name}: {url}")
        else:
            drop_database(name)


if __name__ == "__main__":
    main()
