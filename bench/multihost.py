"""The multi-host drill: the web host and three worker hosts that share no disk, only
Postgres, Redis and an S3 bucket, take recordings from ingest to export.

    .venv/bin/python -m bench.multihost [--recordings 20] [--max-minutes 10] [--keep]

Long module: one story read top to bottom (the hosts, the day, the counts), as bench/drill.py.

What runs, on this machine: an S3 server on loopback (moto), a Postgres database and a Redis
of the drill's own, a fake Gemini on loopback, and four "hosts", each with its own DATA_ROOT
and MEDIA_CACHE_DIR (STORAGE_BACKEND=s3):
- web: gunicorn, the outbox dispatcher, and the operator's commands (`flask ingest files`,
  `flask pipeline run gemini`, `flask export`); the recordings are in its inbox;
- host1 (io, cpu), host2 (cpu, llm), host3 (io, llm, cpu): one Celery worker each, started
  in a mount namespace of its own where every other host's folders are hidden (an empty
  tmpfs mounted over them), so a worker reading a path of another host fails.

What it does: `flask ingest files` uploads the inbox to the bucket and queues; Gemini
transcribes (fake, with a mistake per recording); three reviewers correct the transcripts
and the segmentations over HTTP; segmentation, denoising and export follow on whichever
host takes them. Once a third of the samples are reviewed, host2's cache folder is
removed. At the end `flask export` freezes a snapshot in the bucket.

What it checks (bench/results/multihost.json; exit status 1 on any failure): every
recording exported once, its exported audio equal to its master in the bucket; no loss or
duplicate (the fault drill's counts); nothing of a sample left on any host's disk (no
`samples/`, an empty `tmp/`); no upload left in the bucket; the snapshot's SHA256SUMS true
for every object; and which host ran which stage.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from ._drill_faults import Proc, Redis, wait
from ._drill_reviewers import Tally
from ._support import ROOT, Gunicorn, create_database, make_app, make_users
from ._support import migrate as migrate_database
from .common import write_results
from .drill import (
    LOSSES,
    REVIEWERS,
    fake_gemini,
    learn_renditions,
    open_pool_batch,
    run_in_work_folder,
    samples_in,
    speak_recordings,
    start_reviewers,
    stop_services,
)

HOSTS = {"host1": "io,cpu", "host2": "cpu,llm", "host3": "io,llm,cpu"}
BUCKET = "review-media"


class S3Server:
    def __init__(self):
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").disabled = True  # a line per request otherwise
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.stop()


def can_isolate() -> bool:
    """Whether this machine lets us hide folders from a process (a mount namespace)."""
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True
    )
    return probe.returncode == 0


def hidden_from(argv: list[str], folders: list[Path]) -> list[str]:
    """`argv` run where each of `folders` shows as an empty tmpfs."""
    mounts = " && ".join(f"mount -t tmpfs -o size=1m none {shlex.quote(str(f))}" for f in folders)
    return ["unshare", "--mount", "--propagation", "private",
            "sh", "-c", f'{mounts} && exec "$@"', "sh", *argv]  # fmt: skip


class MultiHost:
    def __init__(self, recordings: int, max_minutes: float, work: Path):
        self.count, self.deadline_s, self.work = recordings, max_minutes * 60, work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True)
        self.hosts = {name: work / name for name in ("web", *HOSTS)}
        for root in self.hosts.values():
            (root / "data").mkdir(parents=True)
        self.inbox = self.hosts["web"] / "inbox"
        self.db_name, self.db_url = create_database("ra_multihost")
        self.redis = Redis(self.logs)
        self.s3 = S3Server()
        self.procs: list[Proc] = []
        self.events: list[str] = []
        self.command_pids: set[int] = set()
        self.began = time.monotonic()
        self._app = None

    def settings(self) -> dict:
        return {
            "STORAGE_BACKEND": "s3",
            "S3_ENDPOINT": self.s3.url,
            "S3_ACCESS_KEY": "drill",
            "S3_SECRET_KEY": "drill-secret",
            "S3_BUCKET": BUCKET,
            "S3_PREFIX": "site",
            "ALIGN_ENABLED": "off",  # no GPU here
        }

    def env(self, host: str) -> dict:
        import os

        root = self.hosts[host]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "CELERY_"))}
        env.update(
            self.settings(),
            APP_ENV="development",
            DATABASE_URL=self.db_url.replace("postgresql+psycopg2://", "postgresql://"),
            CELERY_BROKER_URL=self.redis.url,
            SECRET_KEY="multihost-drill-secret-key",
            DATA_ROOT=str(root / "data"),
            MEDIA_CACHE_DIR=str(root / "cache"),
            GEMINI_API_KEY_1="drill-key",
            GEMINI_BASE_URL=self.gemini.base_url,
            GEMINI_REQUESTS_PER_MINUTE="6000",
            GEMINI_RETRIES="1",
            GEMINI_BACKOFF_SECONDS="0.2",
            JOB_LEASE_SECONDS="10",
            TASK_RETRY_BACKOFF_SECONDS="2",
            OUTBOX_RESEND_AFTER_SECONDS="20",
        )
        return env

    def app(self):
        if self._app is None:
            from config import celery_settings

            self._app = make_app(
                self.db_url, self.hosts["web"] / "data", **self.settings(),
                MEDIA_CACHE_DIR=str(self.hosts["web"] / "cache"),
                CELERY=celery_settings(self.redis.url),  # what it queues goes to the broker
            )  # fmt: skip
        return self._app

    def bucket(self):
        from ra_app.core.media_store import media_storage

        with self.app().app_context():
            return media_storage()

    def flask(self, args: list[str], name: str) -> int:
        """An operator's command on the web host; its exit status."""
        if time.monotonic() - self.began > self.deadline_s:
            raise RuntimeError(f"out of time before `flask {' '.join(args)}`; see {self.logs}")
        argv = [sys.executable, "-m", "flask", "--app", "ra_app", *args]
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(argv, env=self.env("web"), stdout=log,
                                    stderr=subprocess.STDOUT, cwd=ROOT)  # fmt: skip
            self.command_pids.add(proc.pid)  # stages it runs in-process count for the web
            return proc.wait()

    # --- phases ---------------------------------------------------------------------------

    def prepare(self) -> None:
        print(f"speaking {self.count} recordings with espeak-ng…", flush=True)
        self.inbox.mkdir()
        self.said_by_path = speak_recordings(self.count, self.inbox, self.work / "scratch")
        self.truth_by_audio: dict[str, list[dict]] = {}
        self.truth_by_sample: dict[str, list[dict]] = {}
        self.gemini = fake_gemini(self.truth_by_audio)
        import boto3

        boto3.client(
            "s3", endpoint_url=self.s3.url, aws_access_key_id="drill",
            aws_secret_access_key="drill-secret", region_name="us-east-1",
        ).create_bucket(Bucket=BUCKET)  # fmt: skip
        migrate_database(self.app())
        with self.app().app_context():
            make_users(REVIEWERS)

    def start(self) -> None:
        self.redis.start()
        web = self.env("web")
        self.web = Gunicorn(
            self.db_url, self.hosts["web"] / "data", self.logs / "web.log", workers=2,
            **{k: web[k] for k in ("CELERY_BROKER_URL", "MEDIA_CACHE_DIR")}, **self.settings(),
        ).__enter__()  # fmt: skip
        dispatcher = [sys.executable, "-m", "flask", "--app", "ra_app", "pipeline", "dispatch",
                      "--poll", "0.5", "--sweep", "5"]  # fmt: skip
        self.procs.append(Proc("dispatcher", dispatcher, web, self.logs).start())
        self.isolated = can_isolate()
        self.workers = {}
        for host, queues in HOSTS.items():
            argv = [sys.executable, "-m", "celery", "-A", "celery_worker", "worker", "-Q", queues,
                    "-c", "2", "-n", f"{host}@%h", "--loglevel", "INFO",
                    "--without-gossip", "--without-mingle"]  # fmt: skip
            if self.isolated:
                others = [root for name, root in self.hosts.items() if name != host]
                argv = hidden_from(argv, others)
            self.workers[host] = Proc(f"worker-{host}", argv, self.env(host), self.logs).start()
            self.procs.append(self.workers[host])

    def samples_in(self, *states) -> int:
        return samples_in(self.app(), *states)

    def ingest_and_transcribe(self) -> None:
        from ra_app.core.states import ProcessingState as S

        while self.samples_in() < self.count:  # an operator runs it again until all are in
            self.flask(["ingest", "files", str(self.inbox)], "ingest")
        learn_renditions(self.app(), self.bucket(), self.said_by_path, self.truth_by_audio,
                         self.truth_by_sample)  # fmt: skip
        while self.samples_in(S.TRANSCRIBED) < self.count:
            self.flask(["pipeline", "run", "gemini", "--batch", "--limit", str(self.count)],
                       "gemini")  # fmt: skip

    def run(self) -> dict:
        from ra_app.core.states import ProcessingState as S

        self.prepare()
        self.start()
        self.began = began = time.monotonic()
        self.ingest_and_transcribe()
        self.events.append(f"{time.monotonic() - began:.0f} s: all ingested and transcribed")
        open_pool_batch(self.app(), "multihost")

        def finished():
            return (
                self.samples_in(S.EXPORTED) >= self.count
                or time.monotonic() - began > self.deadline_s
            )

        tally, crew = start_reviewers(self.web.base, self.truth_by_sample, finished)
        reviewed = (S.REVIEWED, S.SEGMENTED, S.SEGMENTS_REVIEWED, S.DENOISED, S.EXPORTED)
        wait(lambda: self.samples_in(*reviewed) >= max(1, self.count // 3), self.deadline_s,
             "a third of the reviews", every=0.5)  # fmt: skip
        cache = self.hosts["host2"] / "cache"
        held = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
        shutil.rmtree(cache, ignore_errors=True)
        self.events.append(
            f"{time.monotonic() - began:.0f} s: host2's cache removed ({held / 1e6:.1f} MB)"
        )
        while not finished():
            time.sleep(1)
        pipeline_s = time.monotonic() - began
        for thread in crew:
            thread.join(60)
        self.began = time.monotonic()  # the snapshot gets its own time
        status = self.flask(["export", "--task-type", "audio_segmentation"], "export")
        return self.count_up(tally, pipeline_s, status)

    # --- counts ---------------------------------------------------------------------------

    def count_up(self, tally: Tally, pipeline_s: float, export_status: int) -> dict:
        from ._drill_counts import counts

        store = self.bucket()
        with self.app().app_context():
            found = counts(store, tally)
            by_host = self.stages_by_host()
        left = {
            host: sorted(
                str(p.relative_to(root))
                for p in (root / "data").rglob("*")
                if p.is_file() and not p.name.startswith(".")
            )
            for host, root in self.hosts.items()
        }
        return {
            "recordings_in": self.count,
            **found,
            "pipeline_seconds": round(pipeline_s, 1),
            "hosts_isolated": self.isolated,
            "stages_by_host": by_host,
            "files_left_on_hosts": {h: files[:10] for h, files in left.items() if files},
            "uploads_left_in_bucket": len(list(store.keys("uploads"))),
            "snapshot": self.check_snapshot(store, export_status),
            "events": self.events,
        }

    def stages_by_host(self) -> dict:
        """Finished job runs per host and stage (a run's worker is host:pid; each pool
        process is a child of its host's worker; `flask export` runs on the web host)."""
        from ra_app.core.models import JobRun, JobStatus
        from ra_app.extensions import db

        host_of = dict.fromkeys(self.command_pids, "web")
        for host, proc in self.workers.items():
            for pid in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split():
                host_of[int(pid)] = host
        rows = db.session.execute(
            sa.select(JobRun.worker, JobRun.stage, sa.func.count())
            .where(JobRun.status == JobStatus.SUCCEEDED, JobRun.worker.is_not(None))
            .group_by(JobRun.worker, JobRun.stage)
        ).all()
        table: dict = {}
        for worker, stage, n in rows:
            host = host_of.get(int(worker.rsplit(":", 1)[1]), "a pool process since replaced")
            table.setdefault(host, {}).setdefault(stage, 0)
            table[host][stage] += n
        return table

    def check_snapshot(self, store, export_status: int) -> dict:
        from ._drill_counts import read_object

        ids = sorted({k.split("/")[1] for k in store.keys("exports")})
        if export_status != 0 or len(ids) != 1:
            return {"ok": False, "exit_status": export_status, "snapshots": ids}
        folder = f"exports/{ids[0]}"
        bad = []
        sums = read_object(store, f"{folder}/SHA256SUMS").decode().splitlines()
        for line in sums:
            digest, name = line.split("  ", 1)
            if hashlib.sha256(read_object(store, f"{folder}/{name}")).hexdigest() != digest:
                bad.append(name)
        samples = len(read_object(store, f"{folder}/samples.jsonl").splitlines())
        return {"ok": not bad and samples == self.count, "files": len(sums),
                "samples": samples, "checksum_failures": bad}  # fmt: skip

    def stop(self) -> None:
        stop_services(self.procs, self.redis, getattr(self, "gemini", None), self.db_name,
                      web=getattr(self, "web", None))  # fmt: skip
        self.s3.stop()


def failures(figures: dict) -> list[str]:
    found = [f"{k}: {figures[k]}" for k in LOSSES if figures.get(k)]
    if figures["samples_exported"] != figures["recordings_in"]:
        found.append(f"{figures['samples_exported']} of {figures['recordings_in']} exported")
    if not figures["hosts_isolated"]:
        found.append("the hosts could not be isolated (no mount namespace)")
    if figures["files_left_on_hosts"]:
        found.append(f"files left on hosts: {figures['files_left_on_hosts']}")
    if figures["uploads_left_in_bucket"]:
        found.append(f"{figures['uploads_left_in_bucket']} uploads left in the bucket")
    if not figures["snapshot"]["ok"]:
        found.append(f"snapshot: {figures['snapshot']}")
    workers = [h for h in HOSTS if figures["stages_by_host"].get(h)]
    if len(workers) < len(HOSTS):
        found.append(f"only {workers} ran stages")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recordings", type=int, default=20)
    parser.add_argument("--max-minutes", type=float, default=10.0)
    parser.add_argument("--keep", action="store_true", help="Keep the logs and host folders.")
    parser.add_argument("--results", type=Path, help="Default bench/results/multihost.json.")
    args = parser.parse_args()
    figures = run_in_work_folder(
        "multihost-", lambda work: MultiHost(args.recordings, args.max_minutes, work), args.keep
    )
    figures["failures"] = failures(figures)
    write_results("multihost", figures, args.results)
    if figures["failures"]:
        sys.exit("the multi-host drill failed: " + "; ".join(figures["failures"]))


if __name__ == "__main__":
    main()
