"""Operator commands of the post-review stages.

Stage runs, for `flask pipeline run STAGE [--sample-id ID | --batch --limit N] [--dry-run]`
(`run_commands`): align, segment, denoise, export. Each sends one task per sample to its
queue (in-process in the embedded mode), waits with a progress bar and prints one line per
sample; `--dry-run` plans in-process and writes nothing.

Top-level commands (`top_commands`): `flask export …` (a frozen snapshot of reviewed data),
`flask backup [--full]`, `flask restore [--force] [--dry-run]`.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ra_app.core.models import Sample, TaskType
from ra_app.core.states import ProcessingState as S

from .cli import select_samples, stage_options
from .errors import StageError
from .ingest_cli import Line, print_summary, run_tasks

# ------------------------------------------------------------------------------ stage runs


def line_of(result: dict) -> Line:
    return Line(result["status"], result["label"], result["message"])


def run_stage(label: str, samples: list[Sample], task, plan, dry_run: bool) -> None:
    if not samples:
        click.echo(f"nothing to do: no sample is waiting to {label}")
        return
    if dry_run:
        lines = []
        for sample in samples:
            try:
                lines.append(line_of(plan(sample.id)))
            except StageError as error:
                lines.append(Line("failed", str(sample.id), str(error)))
        print_summary(lines)
        return
    calls = [(str(sample.id), (str(sample.id),)) for sample in samples]
    print_summary(run_tasks(label.capitalize(), task, calls))


@click.command("align")
@stage_options
@with_appcontext
def align_cmd(sample_id, batch: bool, limit: int, dry_run: bool):
    """Word timings with WhisperX for reviewed samples (queue gpu)."""
    from .stages import align
    from .tasks import align_sample

    samples = select_samples(sample_id, batch, limit, Sample.processing_state == S.REVIEWED)
    run_stage("align", samples, align_sample, lambda sid: align.run(sid, dry_run=True), dry_run)


@click.command("segment")
@stage_options
@with_appcontext
def segment_cmd(sample_id, batch: bool, limit: int, dry_run: bool):
    """Cut samples into 10–30 s segments at pauses (queue cpu). --batch takes aligned
    samples, and reviewed ones too when alignment is not wanted (ALIGN_ENABLED off, or auto
    with no gpu worker seen)."""
    from ra_app.core.flow import alignment_wanted

    from .stages import segment
    from .tasks import segment_sample

    waiting = [S.ALIGNED] if alignment_wanted() else [S.ALIGNED, S.REVIEWED]
    samples = select_samples(sample_id, batch, limit, Sample.processing_state.in_(waiting))
    run_stage(
        "segment", samples, segment_sample, lambda sid: segment.run(sid, dry_run=True), dry_run
    )


@click.command("denoise")
@stage_options
@click.option(
    "--method",
    type=click.Choice(["spectral_gating", "deepfilternet"]),
    help="Default: DENOISE_METHOD. deepfilternet runs on the gpu queue.",
)
@with_appcontext
def denoise_cmd(sample_id, batch: bool, limit: int, dry_run: bool, method: str | None):
    """Denoise into samples/<id>/denoised.wav, beside the master (queue cpu or gpu)."""
    from .stages import denoise
    from .tasks import denoise_sample, denoise_sample_gpu

    method = method or current_app.config["DENOISE_METHOD"]
    task = denoise_sample_gpu if method == "deepfilternet" else denoise_sample
    samples = select_samples(
        sample_id, batch, limit, Sample.processing_state == S.SEGMENTS_REVIEWED
    )
    run_stage(
        "denoise",
        samples,
        task,
        lambda sid: denoise.run(sid, dry_run=True, method=method),
        dry_run,
    )


@click.command("export")
@stage_options
@with_appcontext
def export_run_cmd(sample_id, batch: bool, limit: int, dry_run: bool):
    """Stage samples with reviewed segments into reviewed/audio_segmentation/<id>/ and mark
    them exported (queue io). `flask export` makes a snapshot of the staged data."""
    from .stages import export
    from .tasks import export_sample

    samples = select_samples(
        sample_id,
        batch,
        limit,
        Sample.processing_state.in_([S.SEGMENTS_REVIEWED, S.DENOISED]),
    )
    run_stage("export", samples, export_sample, lambda sid: export.run(sid, dry_run=True), dry_run)


run_commands = [align_cmd, segment_cmd, denoise_cmd, export_run_cmd]


# -------------------------------------------------------------------------- flask export


@click.group("export", invoke_without_command=True)
@click.option(
    "--task-type",
    "task_types",
    type=click.Choice([t.value for t in TaskType]),
    multiple=True,
    help="Which review's results (repeatable). Default: every task type.",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many sample folders.")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Root of reviewed/ and exports/ (default EXPORT_DIR, else DATA_ROOT).",
)
@click.option(
    "--include-exported",
    is_flag=True,
    help="Also samples already in an earlier snapshot, unchanged since.",
)
@click.option("--sample-id", "sample_ids", type=click.UUID, multiple=True, help="Only these.")
@click.option("--dry-run", is_flag=True, help="List what would be exported; write nothing.")
@click.pass_context
@with_appcontext
def export_cmd(ctx, task_types, limit, output_dir, include_exported, sample_ids, dry_run):
    """Export reviewed samples and segments as a frozen snapshot with its own id:
    reviewed/{task_type}/{sample_id}/ plus exports/<id>/ with the NeMo / Hugging Face
    manifests (train/dev/test split by source) and SHA256SUMS. `flask export labelstudio`
    writes Label Studio's import format instead."""
    if ctx.invoked_subcommand:
        return
    from .snapshot import make_export

    chosen = [TaskType(t) for t in task_types] or list(TaskType)
    result = make_export(
        chosen,
        limit=limit,
        output_dir=output_dir,
        include_exported=include_exported,
        dry_run=dry_run,
        sample_ids=list(sample_ids) or None,
    )
    lines = [
        Line(o["status"], f"{o.get('task_type', '?')}/{o['label']}", o["message"])
        for o in result["outcomes"]
    ]
    if result["folder"]:
        click.echo(f"export {result['export_id']}: {result['folder']}")
    elif not dry_run:
        click.echo("no snapshot made: nothing (new) to export")
    print_summary(lines)


# ----------------------------------------------------------------------- backup / restore


@click.command("backup")
@click.option("--full", is_flag=True, help="Every row, and a new start for incrementals.")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Default BACKUP_DIR, else DATA_ROOT/db_sync.",
)
@click.option("--dry-run", is_flag=True, help="Count the rows it would write; write nothing.")
@with_appcontext
def backup_cmd(full: bool, output_dir: Path | None, dry_run: bool):
    """Back up every table as gzip JSONL: incremental since the last backup, or --full."""
    from .backup import backup
    from .jobs import ClaimTaken, stage_run

    if dry_run:
        manifest = backup(full=full, dry_run=True, out_dir=output_dir)
    else:
        try:
            with stage_run("backup", "database") as run:
                manifest = backup(full=full, out_dir=output_dir)
                run.result = {"backup_id": manifest["backup_id"], "kind": manifest["kind"]}
        except ClaimTaken as taken:
            raise click.ClickException(f"{taken}; try again when it has finished") from None
    total = 0
    for name, entry in manifest["tables"].items():
        total += entry["rows"]
        if entry["rows"]:
            click.echo(f"  {name:<24} {entry['rows']:>9}")
    since = f" (rows changed since {manifest['since']})" if manifest["since"] else ""
    verb = "would write" if dry_run else "wrote"
    click.echo(f"{manifest['kind']} backup {manifest['backup_id']}: {verb} {total} rows{since}")


@click.command("restore")
@click.option(
    "--force",
    is_flag=True,
    help="The backup wins even over newer rows; allowed across schema revisions.",
)
@click.option("--dry-run", is_flag=True, help="Run the restore and roll it back; report counts.")
@click.option(
    "--from",
    "src_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Default BACKUP_DIR, else DATA_ROOT/db_sync.",
)
@with_appcontext
def restore_cmd(force: bool, dry_run: bool, src_dir: Path | None):
    """Restore the newest full backup and the incremental ones after it, last write wins
    by updated_at. Stop the workers first."""
    from .backup import BackupError
    from .restore import restore

    try:
        report = restore(force=force, dry_run=dry_run, src_dir=src_dir)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"backups: {', '.join(report.backups)}")
    click.echo(f"  {'table':<24} {'inserted':>9} {'updated':>9} {'kept':>9} {'deleted':>9}")
    for name, t in report.tables.items():
        if t.inserted or t.updated or t.kept or t.deleted:
            click.echo(f"  {name:<24} {t.inserted:>9} {t.updated:>9} {t.kept:>9} {t.deleted:>9}")
    total = report.totals()
    verb = "would restore" if dry_run else "restored"
    click.echo(
        f"{verb}: {total.inserted} inserted, {total.updated} updated, {total.kept} kept "
        f"(newer here), {total.deleted} deleted" + (" — rolled back (dry run)" if dry_run else "")
    )


top_commands = [export_cmd, backup_cmd, restore_cmd]
