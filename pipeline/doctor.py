"""`flask doctor`: everything an operator needs checked on one host, each failure with what
to do about it. Exit status 1 when anything failed, so a playbook or a timer can act on it.

The host's queues (`--queues`, default WORKER_QUEUES, which the deployment sets per host)
decide the host's own checks: a host serving gpu checks its WhisperX environment and
alignment models, one serving gpu_denoise its DeepFilterNet environment and model, one
serving llm (or the operator's run, with no queues) pings the Gemini keys. Each worker
unit sets WORKER_QUEUES for its own environment; deploy/ansible/health.yml runs the doctor
once per environment of a host, with that environment's queues. Every host
checks the shared pieces: database, schema, broker, storage, that every queue has a
consumer, the dispatcher, disk space and the backups' age.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ra_app.core import health
from ra_app.core.clock import as_utc, db_now
from ra_app.core.outbox import backlog
from ra_app.core.queue_health import queue_health
from ra_app.core.queues import QUEUES
from ra_app.extensions import db

from .backup import backup_dir, read_checkpoint

OK, WARN, FAIL = "ok", "warn", "FAIL"

# What to do when a readiness check fails.
READINESS_ACTIONS = {
    "database": "check DATABASE_URL and that Postgres answers (pg_isready -h HOST)",
    "migrations": "run `flask db upgrade` once, from one host",
    "broker": "check CELERY_BROKER_URL and that Redis answers (redis-cli -h HOST ping)",
    "storage": "make DATA_ROOT exist and be writable by the service's user",
}
# WhisperX's own defaults where ALIGN_MODEL_VI/EN are unset: a Hugging Face model for
# Vietnamese, a torchaudio bundle for English.
DEFAULT_ALIGN_MODELS = {"vi": "nguyenvulebinh/wav2vec2-base-vi", "en": "WAV2VEC2_ASR_BASE_960H"}


@dataclass
class Finding:
    name: str
    level: str
    detail: str
    action: str = ""


def readiness_findings() -> list[Finding]:
    found = []
    for check in health.readiness():
        level = OK if check.ok else FAIL
        action = "" if check.ok else READINESS_ACTIONS[check.name]
        found.append(Finding(check.name, level, check.detail, action))
    return found


def queue_findings() -> list[Finding]:
    found = []
    for queue in queue_health():
        name = f"queue {queue.name}"
        counted = "" if queue.broker_counted else " (the broker did not answer: outbox only)"
        finished = (
            queue.last_finished.strftime("%Y-%m-%d %H:%M UTC") if queue.last_finished else "never"
        )
        if queue.embedded:
            found.append(Finding(name, OK, "tasks run in-process (embedded mode)"))
        elif queue.consumers:
            by = ", ".join(sorted(queue.consumers))
            detail = f"consumed by {by}; {queue.waiting} waiting; last task finished {finished}"
            found.append(Finding(name, OK, detail + counted))
        elif queue.waiting:
            detail = f"{queue.waiting} task(s) waiting and no worker consumes it{counted}"
            action = f"start a worker for it: celery -A celery_worker worker -Q {queue.name}"
            found.append(Finding(name, FAIL, detail, action))
        else:
            found.append(
                Finding(
                    name,
                    WARN,
                    f"no worker consumes it; nothing waits for it{counted}",
                    f"where its work should run: celery -A celery_worker worker -Q {queue.name}",
                )
            )
    return found


def dispatcher_finding() -> Finding:
    count, oldest = backlog()
    limit = current_app.config["DOCTOR_DISPATCH_LATE_SECONDS"]
    if not count:
        return Finding("dispatcher", OK, "nothing waits to be sent")
    age = (as_utc(db_now()) - as_utc(oldest)).total_seconds()
    detail = f"{count} message(s) unsent, the oldest for {age:.0f} s"
    if age > limit:
        return Finding(
            "dispatcher", FAIL, detail, "run `flask pipeline dispatch` (one per installation)"
        )
    return Finding("dispatcher", OK, detail)


def gemini_finding() -> Finding:
    from .gemini.client import Gemini

    config = current_app.config
    gemini = Gemini.from_config(config)
    keys = gemini.ring.keys
    if not keys:
        return Finding(
            "gemini keys", FAIL, "no key configured", "set GEMINI_API_KEY_1 (and _2 … for more)"
        )
    states = {key.label: gemini.ping(key, config["GEMINI_MODEL"])[0] for key in keys}
    working = [label for label, state in states.items() if state == "ok"]
    detail = ", ".join(f"{label} {state}" for label, state in states.items())
    if not working:
        return Finding(
            "gemini keys", FAIL, detail, "run `flask gemini check-keys` for each key's reason"
        )
    if len(working) < len(keys):
        return Finding(
            "gemini keys", WARN, detail, "replace or top up the keys that do not answer ok"
        )
    return Finding("gemini keys", OK, detail)


def module_finding(name: str, module: str, requirements: str) -> Finding:
    if importlib.util.find_spec(module) is None:
        return Finding(
            name,
            FAIL,
            f"{module} is not importable in {sys.prefix}",
            f"run this worker from the environment of {requirements}",
        )
    return Finding(name, OK, f"{module} importable")


def incomplete_parts(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.incomplete"))


def align_models_finding() -> Finding:
    config = current_app.config
    folder = Path(config["ALIGN_MODEL_DIR"] or "")
    name = "alignment models"
    if not config["ALIGN_MODEL_DIR"] or not folder.is_dir():
        return Finding(
            name,
            FAIL,
            f"ALIGN_MODEL_DIR {str(folder) or '(unset)'} is not a folder",
            "set ALIGN_MODEL_DIR and sync the weights from the model mirror",
        )
    missing = []
    for language, default in DEFAULT_ALIGN_MODELS.items():
        model = config["ALIGN_MODELS"].get(language, default)
        if "/" in model:  # a Hugging Face model, in its cache layout
            snapshots = folder / f"models--{model.replace('/', '--')}" / "snapshots"
            complete = any(
                (s / "config.json").is_file()
                and any((s / w).is_file() for w in ("model.safetensors", "pytorch_model.bin"))
                for s in (snapshots.iterdir() if snapshots.is_dir() else [])
            )
        else:  # a torchaudio bundle: one checkpoint file
            complete = any(folder.rglob("*.pth"))
        if not complete:
            missing.append(f"{language}: {model}")
    partial = incomplete_parts(folder)
    if missing or partial:
        detail = "; ".join(
            filter(
                None,
                [
                    f"missing or incomplete: {', '.join(missing)}" if missing else "",
                    f"half-downloaded files: {', '.join(partial[:3])}" if partial else "",
                ],
            )
        )
        return Finding(name, FAIL, detail, "sync the weights from the model mirror again")
    return Finding(name, OK, f"complete under {folder}")


def denoise_model_finding() -> Finding:
    raw = current_app.config["DENOISE_MODEL_DIR"]
    folder = Path(raw or "")
    name = "denoise model"
    checkpoints = folder / "checkpoints"
    if (
        not raw
        or not (folder / "config.ini").is_file()
        or not checkpoints.is_dir()
        or not any(checkpoints.iterdir())
    ):
        return Finding(
            name,
            FAIL,
            f"DENOISE_MODEL_DIR {raw or '(unset)'} lacks config.ini or checkpoints/",
            "unpack the DeepFilterNet3 model there (the model-sync step does)",
        )
    if incomplete_parts(folder):
        return Finding(
            name, FAIL, "half-downloaded files in the model folder", "sync the model again"
        )
    return Finding(name, OK, f"complete under {folder}")


def gpu_findings(queues: set[str]) -> list[Finding]:
    """A GPU host's environment for each GPU queue it serves."""
    found = []
    if "gpu" in queues:
        found.append(module_finding("whisperx", "whisperx", "requirements-gpu-align.txt"))
        found.append(align_models_finding())
    if "gpu_denoise" in queues:
        found.append(module_finding("deepfilternet", "df", "requirements-gpu-denoise.txt"))
        found.append(denoise_model_finding())
    return found


def disk_findings() -> list[Finding]:
    config = current_app.config
    minimum = config["DOCTOR_MIN_FREE_GB"]
    places = {
        "DATA_ROOT": config["DATA_ROOT"],
        "EXPORT_DIR": config.get("EXPORT_DIR"),
        "BACKUP_DIR": config.get("BACKUP_DIR"),
        "MEDIA_CACHE_DIR": config.get("MEDIA_CACHE_DIR"),
    }
    found = []
    for label, place in places.items():
        if not place:
            continue
        path = Path(place)
        while not path.exists() and path != path.parent:
            path = path.parent
        free_gb = shutil.disk_usage(path).free / 1e9
        detail = f"{free_gb:.1f} GB free under {place}"
        if free_gb < minimum:
            found.append(
                Finding(
                    f"disk {label}",
                    FAIL,
                    detail,
                    f"free space: at least {minimum:g} GB (DOCTOR_MIN_FREE_GB)",
                )
            )
        elif free_gb < 2 * minimum:
            found.append(Finding(f"disk {label}", WARN, detail, "plan more space soon"))
        else:
            found.append(Finding(f"disk {label}", OK, detail))
    return found


def backup_finding() -> Finding:
    checkpoint = read_checkpoint(backup_dir())
    hours = current_app.config["DOCTOR_BACKUP_MAX_AGE_HOURS"]
    embedded = bool(current_app.extensions["celery"].conf.task_always_eager)
    late = WARN if embedded else FAIL
    action = "run `flask backup` and check the backup timer (review-backup.timer)"
    if checkpoint is None:
        return Finding("backups", late, f"no backup under {backup_dir()}", action)
    taken = as_utc(datetime.fromisoformat(checkpoint["taken_at"]))
    age = as_utc(db_now()) - taken
    detail = f"last {checkpoint['backup_id']}, {age.total_seconds() / 3600:.1f} h ago"
    if age > timedelta(hours=hours):
        return Finding("backups", late, detail + f" (older than {hours:g} h)", action)
    return Finding("backups", OK, detail)


def diagnose(queues: set[str]) -> list[Finding]:
    found = readiness_findings()
    if any(f.level != OK for f in found if f.name in ("database", "migrations")):
        return found  # nothing below can be asked of a database that is down or behind
    checks = [queue_findings, lambda: [dispatcher_finding()]]
    if not queues or "llm" in queues:
        checks.append(lambda: [gemini_finding()])
    checks += [lambda: gpu_findings(queues), disk_findings, lambda: [backup_finding()]]
    for check in checks:
        try:
            found += check()
        except Exception as error:  # noqa: BLE001 - one broken check must not hide the rest
            db.session.rollback()
            name = getattr(check, "__name__", "check").removesuffix("_findings")
            found.append(
                Finding(
                    name,
                    FAIL,
                    f"the check failed: {type(error).__name__}: {error}",
                    "look into it: the error above is what the check met",
                )
            )
    db.session.rollback()
    return found


@click.command("doctor")
@click.option(
    "--queues",
    envvar="WORKER_QUEUES",
    default="",
    help="The queues this host serves, comma-separated (default WORKER_QUEUES).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for playbooks.")
@with_appcontext
def doctor_command(queues, as_json):
    """Check this host and the installation; say what to do for each failure."""
    served = {q.strip() for q in queues.split(",") if q.strip()}
    unknown = served - set(QUEUES)
    if unknown:
        raise click.BadParameter(
            f"unknown queue(s) {', '.join(sorted(unknown))}; known: {', '.join(QUEUES)}"
        )
    found = diagnose(served)
    failed = [f for f in found if f.level == FAIL]
    if as_json:
        click.echo(json.dumps({"ok": not failed, "findings": [asdict(f) for f in found]}, indent=1))
    else:
        colours = {OK: "green", WARN: "yellow", FAIL: "red"}
        for f in found:
            click.echo(
                f"{click.style(f'{f.level:<4}', fg=colours[f.level])}  {f.name:<18} {f.detail}"
            )
            if f.action:
                click.echo(f"{'':<24}→ {f.action}")
        click.echo(f"{len(failed)} failure(s)." if failed else "All checks passed.")
    if failed:
        sys.exit(1)
