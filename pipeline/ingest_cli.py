"""`flask ingest …`: YouTube URLs, local files and folders, and .tar archives.

Every input becomes a task on the `io` queue (run in-process in the embedded mode). The
command shows a progress bar while they run and ends with one summary line per input; one
bad input never stops the others. The exit status is 1 when any input failed or is
waiting for a retry.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass

import click
from celery.result import AsyncResult
from flask import current_app
from flask.cli import with_appcontext

from .errors import StageError, is_permanent
from .stages.ingest import Recording, ingest
from .stages.local_files import find_media, recording_for_file


@dataclass
class Line:
    status: str  # created, duplicate, would_create, skipped, failed, retrying, busy
    label: str
    message: str
    code: str | None = None
    sample_id: str | None = None


def lines_from_result(label: str, result: AsyncResult) -> list[Line]:
    if result.state == "RETRY":
        return [Line("retrying", label, f"{result.info}; a worker will try again later")]
    if result.failed():
        error = result.result
        kind = "permanent" if is_permanent(error) else "transient"
        return [Line("failed", label, f"[{kind}] {error}", getattr(error, "code", None))]
    value = result.result or {}
    if "skipped" in value:
        return [Line("busy", label, value["skipped"])]
    if "members" in value:  # an archive: one line per member
        return [Line(**member) for member in value["members"]] or [
            Line("done", label, "no audio files in the archive")
        ]
    return [Line(value["status"], value["label"], value["message"])]


def run_tasks(label: str, task, calls: list[tuple[str, tuple]]) -> list[Line]:
    """Send one task per (label, args) and wait for all, with a progress bar on stderr."""
    eager = current_app.extensions["celery"].conf.task_always_eager
    done: dict[int, list[Line]] = {}
    with click.progressbar(length=len(calls), label=label, file=sys.stderr) as bar:
        results = []
        for item_label, args in calls:
            results.append((item_label, task.apply_async(args=args)))
            if eager:  # in-process: the task has already run
                bar.update(1)
        pending = dict(enumerate(results))
        while pending:
            for i, (item_label, result) in list(pending.items()):
                if result.ready() or result.state == "RETRY":
                    done[i] = lines_from_result(item_label, result)
                    del pending[i]
                    if not eager:
                        bar.update(1)
            if pending:
                time.sleep(0.3)
    return [line for i in sorted(done) for line in done[i]]


def print_summary(lines: list[Line]) -> None:
    click.echo("")
    for line in lines:
        style = {"failed": "red", "created": "green", "retrying": "yellow"}.get(line.status)
        status = click.style(f"{line.status:<12}", fg=style) if style else f"{line.status:<12}"
        click.echo(f"{status} {line.label}  {line.message}")
    counts = Counter(line.status for line in lines)
    click.echo(
        ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing to do"
    )
    if counts["failed"] or counts["retrying"]:
        sys.exit(1)


def dry_run_lines(recordings: list[Recording]) -> list[Line]:
    lines = []
    for rec in recordings:
        try:
            outcome = ingest(rec, dry_run=True)
            lines.append(Line(outcome.status, outcome.label, outcome.message))
        except StageError as error:
            lines.append(Line("failed", rec.external_id, str(error), getattr(error, "code", None)))
    return lines


def ingest_recordings(recordings: list[Recording], dry_run: bool) -> list[Line]:
    if dry_run:
        return dry_run_lines(recordings)
    from .tasks import ingest_recording

    calls = [(rec.external_id, (rec.to_json(),)) for rec in recordings]
    return run_tasks("Ingesting", ingest_recording, calls)


@click.group("ingest", help="Bring audio in: YouTube, local files, archives.")
def ingest_cli():
    pass


@ingest_cli.command("files")
@click.argument("paths", nargs=-1, required=True)
@click.option("--dry-run", is_flag=True, help="Check the files; write nothing.")
@with_appcontext
def files_command(paths: tuple[str, ...], dry_run: bool):
    """Ingest audio and video files, and folders of them (searched recursively).

    Sidecar subtitles (name.vtt / name.srt beside name.mp3) become the first transcript.
    """
    found, missing = find_media(paths)
    lines = [Line("failed", label, message, "missing") for label, message in missing]
    lines += ingest_recordings([recording_for_file(p) for p in found], dry_run)
    print_summary(lines)


@ingest_cli.command("archive")
@click.argument("location")
@with_appcontext
def archive_command(location: str):
    """Ingest the audio files in a .tar: a local path, or a key in S3 storage (S3_*).

    It is unpacked to a scratch folder that is removed afterwards, also on failure."""
    from .tasks import ingest_archive

    print_summary(run_tasks("Ingesting archive", ingest_archive, [(location, (location,))]))
