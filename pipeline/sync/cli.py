"""`flask sync [--once | --interval MINUTES] [--push | --pull] | --status | --force-restore`."""

from __future__ import annotations

import logging
import time

import click
from flask.cli import with_appcontext

from .cycle import Outcome, dvc_repo, force_restore, pull, push, status, sync_lock
from .dvc import SyncError

log = logging.getLogger(__name__)


@click.command("sync")
@click.option("--once", is_flag=True, help="One cycle, then exit (the default).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    metavar="MINUTES",
    help="A cycle every MINUTES until stopped.",
)
@click.option("--push", "push_only", is_flag=True, help="Only back up and push.")
@click.option(
    "--pull", "pull_only", is_flag=True, help="Only pull and merge the other machines' data."
)
@click.option(
    "--status",
    "show_status",
    is_flag=True,
    help="What is pushed, and what the other machines pushed.",
)
@click.option(
    "--force-restore",
    "restore_here",
    is_flag=True,
    help="Make this machine's database and data folder the remote's (a new machine).",
)
@click.option(
    "--source",
    metavar="MACHINE",
    help="With --force-restore: whose data (default: the newest push).",
)
@with_appcontext
def sync_command(once, interval, push_only, pull_only, show_status, restore_here, source):
    """Version the media, the database backups and the export snapshots with DVC, and keep
    this machine and the others in step through SYNC_REMOTE."""
    if push_only and pull_only:
        raise click.UsageError("--push and --pull together are a whole cycle: give neither")
    if (show_status or restore_here) and (interval or push_only or pull_only):
        raise click.UsageError("--status and --force-restore run alone")
    try:
        repo = dvc_repo()
        repo.ensure()
        if show_status:
            outcome = Outcome()
            status(repo, outcome)
            click.echo("\n".join(outcome.lines))
            return
        if restore_here:
            outcome = Outcome()
            with sync_lock(repo.root):
                force_restore(repo, outcome, source)
            click.echo("\n".join(outcome.lines))
            if outcome.mismatched:
                raise SystemExit(1)
            return
        while True:
            outcome = Outcome()
            try:
                with sync_lock(repo.root):
                    if not pull_only:
                        push(repo, outcome)
                    if not push_only:
                        pull(repo, outcome)
            except SyncError as error:
                if not interval:
                    raise
                log.warning("sync: %s; trying again in %s min", error, interval)
                outcome.say(f"failed: {error}; the next cycle tries again")
            click.echo("\n".join(outcome.lines))
            if not interval or once:
                return
            time.sleep(interval * 60)
    except SyncError as error:
        raise click.ClickException(str(error)) from None
