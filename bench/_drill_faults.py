"""The drill's processes and its faults: the services it starts (a Redis of its own, the
web app, one Celery worker per queue, the outbox dispatcher) and what it does to them
(SIGKILL of worker pool processes at random moments, a Redis restart that loses every
queued message, a Postgres restart that drops every connection)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
    except OSError:
        return False
    return True


class Proc:
    """A process of the installation, in its own session, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict, logs: Path):
        self.name, self.argv, self.env = name, argv, env
        self.log_path = logs / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Proc:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self) -> list[int]:
        """The live pool processes of a Celery worker (children of its main process; a
        killed one not yet replaced is a zombie, and no target)."""
        try:
            found = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(pid) for pid in found if alive(int(pid))]

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait()


class Redis:
    """A Redis of the drill's own, configured like the machine's (nothing kept on disk):
    a restart loses every queued and unacknowledged message."""

    def __init__(self, logs: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.logs = logs
        self.proc: Proc | None = None

    def start(self) -> None:
        argv = [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no"]  # fmt: skip
        self.proc = Proc("redis", argv, dict(os.environ), self.logs).start()
        wait(lambda: listening(self.port), 20, "redis to listen")

    def restart(self) -> None:
        self.proc.stop()
        self.start()


def restart_postgres() -> None:
    """The machine's cluster, as an operator restarts it (every connection drops)."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        capture_output=True,
    )


def wait(predicate, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def celery_worker(queue: str, env: dict, logs: Path, concurrency: int = 2) -> Proc:
    argv = [sys.executable, "-m", "celery", "-A", "celery_worker", "worker", "-Q", queue,
            "-c", str(concurrency), "-n", f"drill-{queue}@%h", "--loglevel", "INFO",
            "--without-gossip", "--without-mingle"]  # fmt: skip
    return Proc(f"worker-{queue}", argv, env, logs).start()


@dataclass
class Faults:
    """Kills a pool process every few seconds until stopped: one that is running a stage
    when there is one (`busy()` lists their pids), else any; restarts Redis and Postgres
    once each when told to."""

    workers: list[Proc]
    redis: Redis
    busy: object  # callable() -> set of pids running a stage now
    every_s: tuple[float, float] = (1.5, 4.0)
    kills: int = 0
    kills_mid_stage: int = 0
    events: list[tuple[float, str]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    stopped: threading.Event = field(default_factory=threading.Event)
    rng: random.Random = field(default_factory=lambda: random.Random(11))

    def note(self, what: str) -> None:
        at = round(time.monotonic() - self.started, 1)
        self.events.append((at, what))
        print(f"  [{at:7.1f} s] {what}", flush=True)

    def run(self) -> None:
        while not self.stopped.wait(self.rng.uniform(*self.every_s)):
            pools = {pid: w for w in self.workers for pid in w.children()}
            busy = [pid for pid in self.busy() if pid in pools]
            if not pools:
                continue
            pid = self.rng.choice(busy or list(pools))
            worker, mid_stage = pools[pid], bool(busy)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            self.kills += 1
            self.kills_mid_stage += mid_stage
            self.note(
                f"SIGKILL {worker.name} pool process {pid}" + (" mid-stage" if mid_stage else "")
            )

    def restart_redis(self, stall: Proc, queue: str) -> int:
        """Restart Redis while messages wait in `queue`: its worker is stopped (SIGSTOP, a
        host that hangs) until some are queued, so the restart loses them. Returns how many
        were waiting."""
        import redis

        broker = redis.Redis.from_url(self.redis.url)
        os.kill(stall.pid, signal.SIGSTOP)
        try:
            waiting = wait(lambda: broker.llen(queue), 30, f"messages on {queue}")
        except RuntimeError:
            waiting = 0
        self.note(f"restarting Redis with {waiting} message(s) waiting on {queue}: lost")
        self.redis.restart()
        os.kill(stall.pid, signal.SIGCONT)
        self.note("Redis is back")
        return waiting

    def restart_postgres(self) -> None:
        self.note("restarting Postgres (every connection drops)")
        restart_postgres()
        self.note("Postgres is back")
