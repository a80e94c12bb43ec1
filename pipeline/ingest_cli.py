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
from pathlib import Path

import click
from celery.result import AsyncResult
from flask import current_app
from flask.cli import with_appcontext

from ra_app.core.media_store import is_local, media_storage
from ra_app.core.models import SourceKind

from .errors import StageError, is_permanent
from .stages.ingest import Recording, ingest
from .stages.local_files import find_media, recording_for_file
from .uploads import uploaded


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

    recordings, lines = upload_all(recordings)
    calls = [(rec.external_id, (rec.to_json(),)) for rec in recordings]
    return lines + run_tasks("Ingesting", ingest_recording, calls)


def upload_all(recordings: list[Recording]) -> tuple[list[Recording], list[Line]]:
    """With S3 storage, every file into the bucket first (pipeline/uploads.py); a file that
    cannot be sent is reported and not queued."""
    store = media_storage()
    if is_local(store) or not recordings:
        return recordings, []
    sent, lines = [], []
    total = sum(Path(rec.path).stat().st_size for rec in recordings)
    with click.progressbar(length=total, label="Uploading", file=sys.stderr) as bar:
        for rec in recordings:
            size = Path(rec.path).stat().st_size
            moved = 0

            def on_part(n: int) -> None:
                nonlocal moved
                moved += n
                bar.update(n)

            try:
                sent.append(uploaded(rec, store, on_part))
            except Exception as error:  # one file's failure never stops the others
                lines.append(Line("failed", rec.external_id, f"upload failed: {error}"))
            bar.update(size - moved)
    return sent, lines


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


def youtube_refs(urls, cookies, max_videos) -> tuple[list, list[Line]]:
    """Expand video, playlist and channel URLs into videos; a bad URL becomes a line."""
    from .stages import youtube

    refs, lines, seen = [], [], set()
    for url in urls:
        remaining = max_videos - len(refs) if max_videos else None
        if remaining == 0:
            break
        try:
            found = youtube.expand(url, cookies=cookies, max_videos=remaining)
        except StageError as error:
            kind = "permanent" if is_permanent(error) else "transient"
            lines.append(Line("failed", url, f"[{kind}] {error}", getattr(error, "code", None)))
            continue
        for ref in found:
            if ref.video_id not in seen:
                seen.add(ref.video_id)
                refs.append(ref)
    return refs, lines


def youtube_dry_run(refs, cookies, require_transcript) -> list[Line]:
    from .stages import youtube
    from .stages.ingest import find_existing

    lines = []
    for ref in refs:
        known = Recording(path="", kind=SourceKind.YOUTUBE, external_id=ref.video_id)
        if find_existing(known) is not None:
            lines.append(Line("duplicate", ref.video_id, "already ingested"))
            continue
        try:
            info = youtube.inspect(ref, cookies=cookies, require_transcript=require_transcript)
        except youtube.NoTranscript as skipped:
            lines.append(Line("skipped", ref.video_id, str(skipped)))
        except StageError as error:
            lines.append(Line("failed", ref.video_id, str(error), getattr(error, "code", None)))
        else:
            choice = youtube.choose_subtitles(info)
            subs = f"{choice[1]} {choice[0]} subtitles" if choice else "no subtitles"
            lines.append(Line("would_create", ref.video_id, f"{info.get('title')} ({subs})"))
    return lines


def reimport_lines(urls, require_transcript: bool, dry_run: bool) -> list[Line]:
    """--skip-download: the videos recorded in metadata.jsonl by earlier runs."""
    from .stages import youtube
    from .tasks import youtube_download_dir

    download_dir = youtube_download_dir()
    records = youtube.read_metadata(download_dir)
    if urls:
        wanted = set(urls)
        records = [r for r in records if r["id"] in wanted or r.get("url") in wanted]
    lines, recordings = [], []
    for record in records:
        if require_transcript and not record.get("subtitle_file"):
            lines.append(Line("skipped", record["id"], "no subtitles were downloaded"))
        else:
            recordings.append(youtube.recording_from_metadata(record, download_dir))
    if not records:
        lines.append(Line("failed", str(download_dir), "no earlier downloads recorded there"))
    return lines + ingest_recordings(recordings, dry_run)


@ingest_cli.command("youtube")
@click.argument("urls", nargs=-1)
@click.option(
    "--require-transcript/--no-require-transcript",
    default=True,
    show_default=True,
    help="Skip videos without Vietnamese or English subtitles.",
)
@click.option("--skip-download", is_flag=True, help="Re-import earlier downloads (metadata.jsonl).")
@click.option("--dry-run", is_flag=True, help="Look the videos up; download and write nothing.")
@click.option("--max-videos", type=click.IntRange(min=1), help="At most this many videos.")
@click.option(
    "--cookies",
    type=click.Path(exists=True, dir_okay=False),
    help="A Netscape cookies.txt, for videos behind a sign-in or a bot check.",
)
@with_appcontext
def youtube_command(urls, require_transcript, skip_download, dry_run, max_videos, cookies):
    """Ingest YouTube videos, playlists and channels: best audio, metadata, subtitles."""
    from dataclasses import asdict

    from .tasks import ingest_youtube

    if skip_download:
        print_summary(reimport_lines(urls, require_transcript, dry_run))
        return
    if not urls:
        raise click.UsageError("give at least one URL (or --skip-download)")
    refs, lines = youtube_refs(urls, cookies, max_videos)
    if dry_run:
        lines += youtube_dry_run(refs, cookies, require_transcript)
    elif refs:
        calls = [(ref.video_id, (asdict(ref), cookies, require_transcript)) for ref in refs]
        lines += run_tasks("Downloading", ingest_youtube, calls)
    print_summary(lines)
