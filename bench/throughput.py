"""The pipeline's throughput: recordings through ingest → Gemini → segmentation → denoise →
export with a given number of worker processes per queue, and which stage holds it back.

    .venv/bin/python -m bench.throughput [--recordings 100] [--minutes 10] [--keys 2]
        [--rpm 10] [--gemini-seconds-per-minute 2] [--processes io=2,cpu=2,llm=8]

Long module: one story read top to bottom (the recordings, the services, the day, the
figures and the plot).

Setup, on this machine, thrown away afterwards: a Postgres database and a Redis of its own,
one Celery worker per queue with the processes asked for, the outbox dispatcher, and a fake
Gemini on loopback that answers each request after `--gemini-seconds-per-minute` of
"thinking" per minute of audio (2 s: 20 s for 10 minutes, what Gemini Flash takes) and
allows each key `--rpm` requests a minute (more get a 429 quota error). The product paces
itself with GEMINI_REQUESTS_PER_MINUTE = `--rpm` for each key, counted across all workers in
Redis.
The recordings are generated speech-like audio (bench/post_review.py) with noise, 16 kHz
mono WAV, ingested with `flask ingest files` as an operator would.

People's time is not the pipeline's: a sample transcribed is taken as reviewed at once, and
its segments as approved once cut (the state moves and approvals the review app makes).
Gemini is queued for each sample as soon as it is ingested.

Figures (bench/results/throughput.json, the plot bench/results/throughput.svg):
- per stage, audio hours processed per wall-clock hour over the stage's own active span,
  its runs' total seconds and the share of its workers' time they used;
- end to end, all the audio over the span from the first ingest to the last export;
- the Gemini ceiling: keys × rpm requests a minute × the minutes of audio each carries;
- every 2 s, the samples waiting for each stage (queued or running); the bottleneck is the
  stage with the most sample-seconds waiting.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from ._drill_faults import Proc, Redis
from ._support import ROOT, create_database, make_app, migrate
from .common import RESULTS, write_results
from .drill import run_in_work_folder, samples_in, stop_services
from .post_review import RATE, speech

STAGES = ("ingest", "gemini", "segment", "denoise", "export")
QUEUE_OF = {"ingest": "io", "gemini": "llm", "segment": "cpu", "denoise": "cpu", "export": "io"}


def make_recordings(count: int, minutes: float, folder: Path) -> dict[str, list[dict]]:
    """`count` recordings, speech plus noise at 15–25 dB SNR; their sentences by file name."""
    from ra_app.core.wav import write_wav

    folder.mkdir(parents=True)
    said = {}
    for i in range(count):
        pcm, sentences = speech(minutes, seed=100 + i)
        rng = np.random.default_rng(i)
        level = np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) / 10 ** (rng.uniform(15, 25) / 20)
        noisy = pcm + rng.normal(0, level, len(pcm))
        write_wav(folder / f"rec{i:03d}.wav", np.clip(noisy, -32768, 32767).astype(np.int16), RATE)
        said[f"rec{i:03d}"] = [{k: s[k] for k in ("start", "end", "text", "translation")}
                               for s in sentences]  # fmt: skip
    return said


def fake_gemini(truth: dict[str, list[dict]], seconds_per_minute: float, rpm: int):
    """The Gemini API with a delay per minute of audio and a per-key limit per minute."""
    sys.path.insert(0, str(ROOT))
    from tests.fake_gemini import FakeGemini, error_reply, quota_reply, transcript_reply

    fake = FakeGemini()
    fake.quota_errors = 0
    recent: dict[str, deque] = {}
    lock = threading.Lock()

    def respond(request):
        now = time.monotonic()
        with lock:
            window = recent.setdefault(request.api_key or "", deque())
            while window and now - window[0] > 60:
                window.popleft()
            if len(window) >= rpm:
                fake.quota_errors += 1
                return quota_reply("5s")
            window.append(now)
        rows = truth.get(hashlib.sha256((request.audio or {}).get("inline", b"")).hexdigest())
        if rows is None:
            return error_reply(400, "INVALID_ARGUMENT", "the bench does not know this audio")
        reply = transcript_reply(rows)
        reply.delay_s = seconds_per_minute * rows[-1]["end"] / 60
        return reply

    fake.responder = respond
    return fake


def parse_processes(spec: str) -> dict[str, int]:
    pairs = (item.split("=") for item in spec.split(","))
    return {queue: int(n) for queue, n in pairs}


class Throughput:
    def __init__(self, args, work: Path):
        self.args, self.work = args, work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True)
        self.data_root = work / "data"
        self.processes = parse_processes(args.processes)
        self.db_name, self.db_url = create_database("ra_throughput")
        self.redis = Redis(self.logs)
        self.procs: list[Proc] = []
        self.samples: list[tuple[float, dict]] = []  # (seconds since start, waiting per stage)
        self.done = threading.Event()
        self._app = None

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "CELERY_"))}
        env.update(
            APP_ENV="development",
            DATABASE_URL=self.db_url.replace("postgresql+psycopg2://", "postgresql://"),
            CELERY_BROKER_URL=self.redis.url,
            SECRET_KEY="throughput-bench-secret-key",
            DATA_ROOT=str(self.data_root),
            GEMINI_BASE_URL=self.gemini.base_url,
            GEMINI_REQUESTS_PER_MINUTE=str(self.args.rpm),
            ALIGN_ENABLED="off",
            **{f"GEMINI_API_KEY_{i + 1}": f"bench-key-{i + 1}" for i in range(self.args.keys)},
        )
        return env

    def app(self):
        if self._app is None:
            from config import celery_settings

            # Its own enqueues go to the broker like the web's, never run in this process.
            self._app = make_app(
                self.db_url, self.data_root, ALIGN_ENABLED="off",
                CELERY=celery_settings(self.redis.url),
            )  # fmt: skip
        return self._app

    def start(self) -> None:
        print(f"making {self.args.recordings} recordings of {self.args.minutes:g} min…", flush=True)
        self.said = make_recordings(self.args.recordings, self.args.minutes, self.work / "in")
        self.truth: dict[str, list[dict]] = {}
        self.gemini = fake_gemini(self.truth, self.args.gemini_seconds_per_minute, self.args.rpm)
        migrate(self.app())
        self.redis.start()
        env = self.env()
        for queue, n in self.processes.items():
            argv = [sys.executable, "-m", "celery", "-A", "celery_worker", "worker",
                    "-Q", queue, "-c", str(n), "-n", f"{queue}@%h", "--loglevel", "WARNING",
                    "--without-gossip", "--without-mingle",
                    "--prefetch-multiplier", "1"]  # fmt: skip
            self.procs.append(Proc(f"worker-{queue}", argv, env, self.logs).start())
        dispatcher = [sys.executable, "-m", "flask", "--app", "ra_app", "pipeline", "dispatch",
                      "--poll", "0.5", "--sweep", "5"]  # fmt: skip
        self.procs.append(Proc("dispatcher", dispatcher, env, self.logs).start())

    # --- the day --------------------------------------------------------------------------

    def reviewer(self) -> None:
        """Queue Gemini for each sample ingested; take each transcript as reviewed and each
        segmentation as approved the moment it is there."""
        from ra_app.core.flow import advance
        from ra_app.core.models import Assignment, AssignmentStatus, Sample, TaskType
        from ra_app.core.outbox import enqueue
        from ra_app.core.states import ProcessingState as S
        from ra_app.core.states import transition
        from ra_app.extensions import db

        queued: set = set()
        with self.app().app_context():
            while not self.done.is_set():
                for sample in db.session.scalars(sa.select(Sample)):
                    state = sample.processing_state
                    if state is S.INGESTED and sample.id not in queued:
                        rendition = (self.data_root / sample.rendition_path).read_bytes()
                        key = hashlib.sha256(rendition).hexdigest()
                        self.truth[key] = self.said[sample.title]
                        enqueue("pipeline.gemini", args=[str(sample.id)], sample_id=sample.id)
                        queued.add(sample.id)
                    elif state is S.TRANSCRIBED:
                        transition(sample, S.IN_REVIEW)
                        advance(sample, S.REVIEWED)
                    elif state is S.SEGMENTED:
                        db.session.execute(
                            sa.update(Assignment)
                            .where(Assignment.sample_id == sample.id,
                                   Assignment.task_type == TaskType.AUDIO_SEGMENTATION)
                            .values(status=AssignmentStatus.APPROVED)
                        )  # fmt: skip
                        advance(sample, S.SEGMENTS_REVIEWED)
                db.session.commit()
                time.sleep(0.5)

    def watch(self, began: float) -> None:
        """Every 2 s, the samples waiting for each stage (queued or running)."""
        from ra_app.core.models import Sample
        from ra_app.core.states import ProcessingState as S
        from ra_app.extensions import db

        waiting_for = {
            "gemini": (S.INGESTED,),
            "segment": (S.TRANSCRIBED, S.IN_REVIEW, S.REVIEWED),
            "denoise": (S.SEGMENTED, S.SEGMENTS_REVIEWED),
            "export": (S.DENOISED,),
        }
        with self.app().app_context():
            while not self.done.is_set():
                states = dict(
                    db.session.execute(
                        sa.select(Sample.processing_state, sa.func.count()).group_by(
                            Sample.processing_state
                        )
                    ).all()
                )
                db.session.commit()
                row = {"ingest": self.args.recordings - sum(states.values())}
                for stage, wanted in waiting_for.items():
                    row[stage] = sum(states.get(s, 0) for s in wanted)
                self.samples.append((round(time.monotonic() - began, 1), row))
                time.sleep(2)

    def exported(self) -> int:
        from ra_app.core.states import ProcessingState as S

        return samples_in(self.app(), S.EXPORTED)

    def run(self) -> dict:
        self.start()
        began = time.monotonic()
        threads = [
            threading.Thread(target=self.reviewer, daemon=True),
            threading.Thread(target=self.watch, args=(began,), daemon=True),
        ]
        for thread in threads:
            thread.start()
        with open(self.logs / "ingest.log", "ab") as log:
            ingest = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "ra_app", "ingest", "files",
                 str(self.work / "in")],
                cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = began + self.args.max_minutes * 60
        while self.exported() < self.args.recordings and time.monotonic() < deadline:
            time.sleep(1)
        self.done.set()
        ingest.wait(60)
        for thread in threads:
            thread.join(10)
        return self.figures()

    # --- figures --------------------------------------------------------------------------

    def figures(self) -> dict:
        from ra_app.core.models import JobRun, JobStatus, Sample
        from ra_app.extensions import db

        args = self.args
        with self.app().app_context():
            runs = db.session.execute(
                sa.select(JobRun.stage, JobRun.started_at, JobRun.finished_at, Sample.duration_s)
                .join(Sample, Sample.id == JobRun.sample_id)
                .where(JobRun.status == JobStatus.SUCCEEDED, JobRun.stage.in_(STAGES))
            ).all()
            failed = db.session.scalar(
                sa.select(sa.func.count()).where(JobRun.status == JobStatus.FAILED)
            )
        stages, first, last = {}, None, None
        for stage in STAGES:
            mine = [r for r in runs if r.stage == stage]
            if not mine:
                stages[stage] = {"runs": 0}
                continue
            start = min(r.started_at for r in mine)
            end = max(r.finished_at for r in mine)
            first = start if first is None or start < first else first
            last = end if last is None or end > last else last
            span_h = (end - start).total_seconds() / 3600
            busy_s = sum((r.finished_at - r.started_at).total_seconds() for r in mine)
            audio_h = sum(r.duration_s for r in mine) / 3600
            stages[stage] = {
                "runs": len(mine),
                "audio_hours_per_hour": round(audio_h / span_h, 1) if span_h else None,
                "run_seconds_mean": round(busy_s / len(mine), 2),
                "worker_time_used": round(
                    busy_s / (self.processes[QUEUE_OF[stage]] * span_h * 3600), 2
                ) if span_h else None,
            }  # fmt: skip
        exported = stages["export"].get("runs", 0)
        audio_h = exported * args.minutes / 60
        wall_h = (last - first).total_seconds() / 3600 if first and last else None
        end_to_end = round(audio_h / wall_h, 1) if wall_h else None
        ceiling = args.keys * args.rpm * args.minutes  # audio minutes a minute = hours an hour
        waited = {s: sum(row[s] for _, row in self.samples) * 2 for s in STAGES}
        plot = self.plot()
        return {
            "command": " ".join(["python -m bench.throughput", *sys.argv[1:]]),
            "recordings": f"{args.recordings} × {args.minutes:g} min, 16 kHz mono WAV, "
            "speech-like audio with noise",
            "processes": self.processes,
            "gemini": {
                "keys": args.keys,
                "requests_per_minute_per_key": args.rpm,
                "seconds_per_audio_minute": args.gemini_seconds_per_minute,
                "quota_errors_answered": self.gemini.quota_errors,
            },  # fmt: skip
            "stages": stages,
            "samples_exported": exported,
            "job_runs_failed": failed,
            "end_to_end_audio_hours_per_hour": end_to_end,
            "gemini_ceiling_audio_hours_per_hour": ceiling,
            "end_to_end_share_of_ceiling": round(end_to_end / ceiling, 2) if end_to_end else None,
            "sample_seconds_waiting": waited,
            "bottleneck": max(waited, key=waited.get),
            "plot": str(plot.relative_to(ROOT)),
        }

    def plot(self) -> Path:
        """Samples waiting per stage over time, as an SVG line chart."""
        width, height, pad = 720, 320, 40
        colours = dict(zip(STAGES, ("#1b6ac9", "#c92a2a", "#2b8a3e", "#e67700", "#6741d9"),
                           strict=True))  # fmt: skip
        t_max = max((t for t, _ in self.samples), default=1) or 1
        y_max = max((max(row.values()) for _, row in self.samples), default=1) or 1

        def xy(t, v):
            return (
                pad + (width - 2 * pad) * t / t_max,
                height - pad - (height - 2 * pad) * v / y_max,
            )

        lines = []
        for i, stage in enumerate(STAGES):
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in
                              (xy(t, row[stage]) for t, row in self.samples))  # fmt: skip
            lines.append(f'<polyline fill="none" stroke="{colours[stage]}" stroke-width="2" '
                         f'points="{points}"/>')  # fmt: skip
            lines.append(f'<text x="{width - pad - 110}" y="{pad + 16 * i}" '
                         f'fill="{colours[stage]}">{stage}</text>')  # fmt: skip
        svg = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            'font-family="sans-serif" font-size="12">'
            f"<title>Samples waiting for each stage over time</title>"
            f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
            'stroke="#333"/>'
            f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#333"/>'
            f'<text x="{pad}" y="{height - 10}">0 s</text>'
            f'<text x="{width - pad - 40}" y="{height - 10}">{t_max:.0f} s</text>'
            f'<text x="4" y="{pad}">{y_max}</text>' + "".join(lines) + "</svg>\n"
        )
        path = RESULTS / "throughput.svg"
        RESULTS.mkdir(exist_ok=True)
        path.write_text(svg)
        return path

    def stop(self) -> None:
        self.done.set()
        stop_services(self.procs, self.redis, getattr(self, "gemini", None), self.db_name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recordings", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--keys", type=int, default=2)
    parser.add_argument("--rpm", type=int, default=10, help="Requests a minute per key.")
    parser.add_argument("--gemini-seconds-per-minute", type=float, default=2.0)
    parser.add_argument("--processes", default="io=2,cpu=2,llm=8")
    parser.add_argument("--max-minutes", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="Keep the logs and data folder.")
    args = parser.parse_args()
    figures = run_in_work_folder("throughput-", lambda work: Throughput(args, work), args.keep)
    write_results("throughput", figures)


if __name__ == "__main__":
    main()
