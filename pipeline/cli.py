"""`flask pipeline …`: pipeline state and stage runs for operators."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from ra_app.core import outbox
from ra_app.core.counts import samples_per_state
from ra_app.core.models import JobRun, JobStatus
from ra_app.extensions import db


@click.group("pipeline", help="Pipeline stages and their state.")
def pipeline_cli():
    pass


@pipeline_cli.command("status")
@with_appcontext
def status_command():
    """Samples per processing state, job runs per stage, recent failures."""
    click.echo("Samples per state:")
    for state, count in samples_per_state().items():
        click.echo(f"  {state.value:<18} {count:>8}")
    rows = db.session.execute(
        sa.select(JobRun.stage, JobRun.status, sa.func.count())
        .group_by(JobRun.stage, JobRun.status)
        .order_by(JobRun.stage, JobRun.status)
    ).all()
    click.echo("Job runs per stage:")
    if not rows:
        click.echo("  none yet")
    for stage, status, count in rows:
        click.echo(f"  {stage:<16} {status.value:<10} {count:>8}")
    unsent, oldest = outbox.backlog()
    click.echo(
        f"Outbox: {unsent} waiting to be sent"
        + (f" (oldest {oldest:%Y-%m-%d %H:%M:%S})" if unsent else "")
    )
    failures = db.session.scalars(
        sa.select(JobRun)
        .where(JobRun.status == JobStatus.FAILED)
        .order_by(JobRun.finished_at.desc())
        .limit(10)
    ).all()
    if failures:
        click.echo("Latest failures:")
    for run in failures:
        kind = run.failure_class.value if run.failure_class else "?"
        click.echo(
            f"  #{run.id} {run.stage} {run.subject} attempt {run.attempt} [{kind}] {run.error}"
        )


@pipeline_cli.command("dispatch")
@click.option("--once", is_flag=True, help="One pass (send, then sweep), then exit.")
@click.option("--poll", default=2.0, show_default=True, help="Seconds between looks.")
@click.option("--sweep", default=60.0, show_default=True, help="Seconds between sweeps.")
@with_appcontext
def dispatch_command(once: bool, poll: float, sweep: float):
    """Send queued work to the broker and re-queue work that got lost (run one per
    installation beside the workers; see pipeline/dispatch.py)."""
    from .dispatch import run

    click.echo("dispatching the outbox" + (" once" if once else "; Ctrl+C stops"))
    run(once=once, poll_s=poll, sweep_s=sweep)


@pipeline_cli.command("selftest")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for a worker.")
@with_appcontext
def selftest_command(timeout: float):
    """Send a task through the broker and wait for a worker to record its job run."""
    import uuid

    from .tasks import selftest

    result = selftest.delay(subject=f"selftest:{uuid.uuid4()}")
    embedded = current_app.config["CELERY"]["task_always_eager"]
    outcome = result.get(timeout=timeout) if not embedded else result.result
    click.echo(f"ok: {outcome}")


@pipeline_cli.group("run")
def run_group():
    """Run one stage: flask pipeline run STAGE [--sample-id ID | --batch --limit N] [--dry-run]."""


def stage_options(command):
    """The options every stage command takes."""
    command = click.option("--dry-run", is_flag=True, help="Show what would run; write nothing.")(
        command
    )
    command = click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=100,
        show_default=True,
        help="With --batch: at most this many samples.",
    )(command)
    command = click.option(
        "--batch", "batch", is_flag=True, help="Every sample waiting for this stage."
    )(command)
    command = click.option("--sample-id", type=click.UUID, help="One sample.")(command)
    return command


def select_samples(sample_id, batch: bool, limit: int, waiting) -> list:
    """The samples a stage command works on: one by id, or up to `limit` of those matching
    `waiting` (a SQLAlchemy condition on Sample), oldest first."""
    from ra_app.core.models import Sample

    if sample_id is None and not batch:
        raise click.UsageError("give --sample-id ID or --batch [--limit N]")
    if sample_id is not None:
        sample = db.session.get(Sample, sample_id)
        if sample is None:
            raise click.ClickException(f"no sample {sample_id}")
        return [sample]
    return list(
        db.session.scalars(
            sa.select(Sample).where(waiting).order_by(Sample.created_at).limit(limit)
        )
    )
