"""The fault drill: a day of the pipeline and the review app under the faults a real day
brings, and the counts that say whether anything was lost or done twice.

Long module: one story read top to bottom (start the services, ingest, review, the faults,
the counts); its steps share the services and the reviewers' record of what they saw.

    .venv/bin/python -m bench.drill [--recordings 30] [--max-minutes 10]

What it runs, on this machine: a Postgres database of its own (on the machine's server), a
Redis of its own, gunicorn (the web app), one Celery worker per queue (io, cpu, llm; two
pool processes each), the outbox dispatcher (`flask pipeline dispatch`), and a fake Gemini
server on loopback that the real google-genai client talks to.

What it does: speaks the recordings with espeak-ng; `flask ingest files` them; `flask
pipeline run gemini --batch` transcribes and translates them (with one mistake each); a
pool batch goes to three reviewers, who correct them over HTTP as a browser does (every
fourth submit double-clicked, every fifth task also open in a second browser whose stale
autosave must be refused, every error page pressed again); the pipeline segments the
reviewed samples, the reviewers submit the segmentation tasks, and denoising and export
follow. Meanwhile it SIGKILLs a worker pool process every few seconds (at least 20 kills),
restarts Redis once (losing every queued message) and Postgres once.

What it counts, from the database and the export folders, and writes to
bench/results/drill.json: recordings in, samples exported, samples exported more than once,
duplicate revisions, segments and decisions, job runs left running, submits lost (a task a
reviewer saw submitted that is not, or a task never done), and how long the pipeline took.
Every count of loss or duplication must be 0.

It restarts the machine's Postgres server: run it on a development machine, not beside
other work.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from ra_app.core.storage import LocalStorage

from ._drill_faults import Faults, Proc, Redis, celery_worker, wait
from ._drill_reviewers import Reviewer, Tally
from ._support import (
    BENCH_SECRET_KEY,
    PASSWORD,
    Gunicorn,
    create_database,
    drop_database,
    make_app,
    make_users,
    migrate,
)
from .common import write_results

REVIEWERS = ["ana@drill.local", "binh@drill.local", "chi@drill.local"]


def speak_recordings(count: int, folder: Path, scratch: Path) -> dict[Path, list[dict]]:
    """`count` code-switched recordings (three or four sentences from the demo's, and one
    saying its number, so no two are the same) and what each says, with times."""
    from pipeline.demo import LAPTOP, MEETING, PODCAST, speak

    pool = LAPTOP + MEETING + PODCAST
    rng = random.Random(7)
    said = {}
    for i in range(count):
        lines = rng.sample(pool, rng.choice((3, 4))) + [("vi", f"Đây là bản ghi số {i + 1}.")]
        lines = [(voice, text) for voice, text, *_ in lines]
        work = scratch / f"rec{i:02d}"
        work.mkdir(parents=True)
        path, times = speak([(*line, None, "", []) for line in lines], work)
        final = folder / f"recording-{i:02d}.wav"
        path.rename(final)
        said[final] = [{**t, "text": text} for t, (_voice, text) in zip(times, lines, strict=True)]
    return said


def fake_gemini(truth_by_audio: dict):
    """The Gemini API on loopback: for a recording it knows, its sentences with the kind of
    mistake a model makes (the last word of the first sentence dropped), after a second or
    two of thinking, as a model takes."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.fake_gemini import FakeGemini, error_reply, transcript_reply

    fake = FakeGemini()

    def respond(request):
        audio = request.audio or {}
        rows = truth_by_audio.get(hashlib.sha256(audio.get("inline", b"")).hexdigest())
        if rows is None:
            return error_reply(400, "INVALID_ARGUMENT", "the drill does not know this audio")
        sentences = []
        for i, row in enumerate(rows):
            text = row["text"].rsplit(" ", 1)[0] if i == 0 else row["text"]
            sentences.append(
                {"start": row["start"], "end": row["end"], "text": text,
                 "translation": f"bản dịch của câu {i + 1}"}
            )  # fmt: skip
        reply = transcript_reply(sentences)
        reply.delay_s = 1.5
        return reply

    fake.responder = respond
    return fake


def flask(args: list[str], env: dict, logs: Path, name: str) -> int:
    proc = Proc(name, [sys.executable, "-m", "flask", "--app", "ra_app", *args], env, logs)
    return proc.start().proc.wait()


# --- what the drills share (bench/multihost.py too) ------------------------------------


def samples_in(app, *states) -> int:
    """Samples in any of `states` (all samples when none is given)."""
    from ra_app.core.models import Sample
    from ra_app.extensions import db

    with app.app_context():
        query = sa.select(sa.func.count()).select_from(Sample)
        if states:
            query = query.where(Sample.processing_state.in_(states))
        return db.session.scalar(query)


def learn_renditions(app, store, said_by_path: dict, truth_by_audio: dict, truth_by_sample: dict):
    """What the fake Gemini will hear: each sample's browser rendition, sent inline (read
    from `store`, a folder or the bucket), and what the reviewers know was said."""
    from ra_app.core.models import Sample, Source
    from ra_app.extensions import db

    from ._drill_counts import read_object

    with app.app_context():
        for sample in db.session.scalars(sa.select(Sample).join(Source)):
            rows = said_by_path[Path(sample.source.external_id)]
            data = read_object(store, sample.rendition_path)
            truth_by_audio[hashlib.sha256(data).hexdigest()] = rows
            truth_by_sample[str(sample.id)] = rows


def open_pool_batch(app, name: str) -> None:
    """The transcripts as one batch in the reviewers' shared pool."""
    from ra_app.admin import batches
    from ra_app.core.models import TaskType, User
    from ra_app.extensions import db

    with app.app_context():
        people = db.session.scalars(sa.select(User).where(User.email.in_(REVIEWERS))).all()
        batches.create_batch(
            name, batches.Filters(task_type=TaskType.TRANSCRIPT_CORRECTION), people, mode="pool"
        )


def start_reviewers(base: str, truth_by_sample: dict, finished) -> tuple[Tally, list]:
    """The three reviewers working over HTTP until `finished()`; their tally and threads."""
    tally = Tally()
    people = [Reviewer(base, email, PASSWORD, truth_by_sample, tally) for email in REVIEWERS]
    crew = [threading.Thread(target=r.day, args=(finished,), daemon=True) for r in people]
    for thread in crew:
        thread.start()
    return tally, crew


def stop_services(procs, redis, gemini, db_name: str, web=None) -> None:
    """Everything a drill started, in reverse, and its database dropped."""
    for proc in reversed(procs):
        proc.stop()
    if web is not None:
        web.stop()
    if redis.proc:
        redis.proc.stop()
    if gemini is not None:
        gemini.stop()
    drop_database(db_name)


def run_in_work_folder(prefix: str, make, keep: bool) -> dict:
    """`make(work).run()` in a new folder, then its `stop()`; the folder removed unless
    `keep` (its logs are the first place to look when a run fails)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    bench = make(work)
    try:
        return bench.run()
    finally:
        bench.stop()
        if keep:
            print(f"logs and data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


class Drill:
    def __init__(self, recordings: int, max_minutes: float, work: Path):
        self.count, self.deadline_s, self.work = recordings, max_minutes * 60, work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True)
        self.data_root = work / "data"
        self.db_name, self.db_url = create_database("ra_drill")
        self.redis = Redis(self.logs)
        self.procs: list[Proc] = []
        self._app = None

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "CELERY_"))}
        env.update(
            APP_ENV="development",
            DATABASE_URL=self.db_url.replace("postgresql+psycopg2://", "postgresql://"),
            CELERY_BROKER_URL=self.redis.url,
            SECRET_KEY=BENCH_SECRET_KEY,
            DATA_ROOT=str(self.data_root),
            GEMINI_API_KEY_1="drill-key",
            GEMINI_BASE_URL=self.gemini.base_url,
            GEMINI_REQUESTS_PER_MINUTE="6000",
            GEMINI_RETRIES="1",
            GEMINI_BACKOFF_SECONDS="0.2",
            ALIGN_ENABLED="off",  # no GPU here
            JOB_LEASE_SECONDS="10",
            TASK_RETRY_BACKOFF_SECONDS="2",
            OUTBOX_RESEND_AFTER_SECONDS="20",
            REVIEW_WINDOW_SECONDS="300",
        )
        return env

    def app(self):
        """One app for the drill's own reads (each new app would hold its own pool)."""
        if self._app is None:
            self._app = make_app(self.db_url, self.data_root, ALIGN_ENABLED="off")
        return self._app

    # --- phases ---------------------------------------------------------------------------

    def prepare(self) -> dict:
        print(f"speaking {self.count} recordings with espeak-ng…", flush=True)
        (self.work / "audio").mkdir()
        said = speak_recordings(self.count, self.work / "audio", self.work / "scratch")
        self.said_by_path = said
        self.truth_by_audio: dict[str, list[dict]] = {}
        self.gemini = fake_gemini(self.truth_by_audio)
        migrate(self.app())
        with self.app().app_context():
            make_users(REVIEWERS)
        return said

    def start(self) -> None:
        self.redis.start()
        env = self.env()
        self.web = Gunicorn(
            self.db_url, self.data_root, self.logs / "web.log", workers=2,
            CELERY_BROKER_URL=self.redis.url, WEB_THREADS="4", ALIGN_ENABLED="off",
        ).__enter__()  # fmt: skip
        self.workers = [celery_worker(q, env, self.logs) for q in ("io", "cpu", "llm")]
        dispatcher = [sys.executable, "-m", "flask", "--app", "ra_app", "pipeline", "dispatch",
                      "--poll", "0.5", "--sweep", "5"]  # fmt: skip
        self.procs = [*self.workers, Proc("dispatcher", dispatcher, env, self.logs).start()]

    def samples_in(self, *states) -> int:
        return samples_in(self.app(), *states)

    def ingest_and_transcribe(self) -> None:
        from ra_app.core.states import ProcessingState as S

        folder = str(self.work / "audio")
        while self.samples_in() < self.count:  # an operator runs it again until all are in
            flask(["ingest", "files", folder], self.env(), self.logs, "ingest")
        learn_renditions(self.app(), LocalStorage(self.data_root), self.said_by_path,
                         self.truth_by_audio, self.truth_by_sample)  # fmt: skip
        while self.samples_in(S.TRANSCRIBED) < self.count:
            flask(["pipeline", "run", "gemini", "--batch", "--limit", str(self.count)],
                  self.env(), self.logs, "gemini")  # fmt: skip

    def busy(self) -> set[int]:
        """The pool processes running a stage now (a job run's worker is host:pid)."""
        from ra_app.core.models import JobRun, JobStatus
        from ra_app.extensions import db

        try:
            with self.app().app_context():
                workers = db.session.scalars(
                    sa.select(JobRun.worker).where(JobRun.status == JobStatus.RUNNING)
                ).all()
        except sa.exc.OperationalError:
            return set()
        return {int(w.rsplit(":", 1)[1]) for w in workers if w}

    def run(self) -> dict:
        from ra_app.core.states import ProcessingState as S

        self.truth_by_sample: dict[str, list[dict]] = {}
        self.prepare()
        self.start()
        began = time.monotonic()
        faults = Faults(self.workers, self.redis, self.busy)
        killer = threading.Thread(target=faults.run, name="kills", daemon=True)
        killer.start()
        self.ingest_and_transcribe()
        faults.note(f"{self.count} samples ingested and transcribed")
        open_pool_batch(self.app(), "drill")

        def finished():
            return (
                self.samples_in(S.EXPORTED) >= self.count
                or time.monotonic() - began > self.deadline_s
            )

        tally, crew = start_reviewers(self.web.base, self.truth_by_sample, finished)
        # The restarts come while work is in flight: Redis once a third of the samples are
        # reviewed (their stages queued), Postgres once a third have their segments reviewed.
        third = max(1, self.count // 3)
        reviewed = (S.REVIEWED, S.SEGMENTED, S.SEGMENTS_REVIEWED, S.DENOISED, S.EXPORTED)
        wait(lambda: self.samples_in(*reviewed) >= third, self.deadline_s, "reviews", every=0.5)
        lost = faults.restart_redis(stall=self.workers[1], queue="cpu")
        cut = (S.SEGMENTS_REVIEWED, S.DENOISED, S.EXPORTED)
        wait(lambda: self.samples_in(*cut) >= third, self.deadline_s, "segment reviews", every=0.5)
        faults.restart_postgres()
        while not finished():
            time.sleep(1)
        pipeline_s = time.monotonic() - began
        while faults.kills < 20 and time.monotonic() - began < self.deadline_s:
            time.sleep(1)  # at least 20 kills in all
        faults.stopped.set()
        for thread in crew:
            thread.join(60)
        self.settle()
        figures = self.count_up(tally, faults, pipeline_s)
        figures["faults"]["messages_lost_with_redis"] = lost
        figures["events"] = faults.events
        return figures

    def settle(self, timeout: float = 60) -> None:
        """Let work in flight end (a killed stage's redelivery, a lease running out)."""
        from ra_app.core.models import JobRun, JobStatus
        from ra_app.extensions import db

        def quiet():
            with self.app().app_context():
                return not db.session.scalar(
                    sa.select(sa.func.count()).where(JobRun.status == JobStatus.RUNNING)
                )

        try:
            wait(quiet, timeout, "running job runs to end", every=1)
        except RuntimeError as error:
            print(f"  {error}")

    def count_up(self, tally: Tally, faults: Faults, pipeline_s: float) -> dict:
        from ._drill_counts import counts

        with self.app().app_context():
            found = counts(LocalStorage(self.data_root), tally)
        return {
            "recordings_in": self.count,
            **found,
            "pipeline_seconds": round(pipeline_s, 1),
            "faults": {
                "pool_process_kills": faults.kills,
                "kills_mid_stage": faults.kills_mid_stage,
                "redis_restarts": 1,
                "postgres_restarts": 1,
            },
            "careless_reviewers": {
                "double_submits": tally.double_submits,
                "double_submit_answers": sorted({tuple(a) for a in tally.double_submit_answers}),
                "second_tab_saves": tally.two_tab_attempts,
                "second_tab_saves_refused": tally.two_tab_conflicts,
                "requests_pressed_again": tally.retries,
            },
        }

    def stop(self) -> None:
        stop_services(self.procs, self.redis, getattr(self, "gemini", None), self.db_name,
                      web=getattr(self, "web", None))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recordings", type=int, default=30)
    parser.add_argument("--max-minutes", type=float, default=10.0)
    parser.add_argument("--keep", action="store_true", help="Keep the logs and data folder.")
    args = parser.parse_args()
    figures = run_in_work_folder(
        "drill-", lambda work: Drill(args.recordings, args.max_minutes, work), args.keep
    )
    write_results("drill", figures)
    losses = {k: v for k, v in figures.items() if k in LOSSES and v}
    if losses or figures["samples_exported"] != figures["recordings_in"]:
        sys.exit(f"the drill found losses or duplicates: {losses}")


LOSSES = (
    "samples_exported_more_than_once",
    "duplicate_revisions",
    "duplicate_segments",
    "duplicate_decisions",
    "job_runs_left_running",
    "submits_lost",
    "exported_audio_mismatches",
)


if __name__ == "__main__":
    main()
