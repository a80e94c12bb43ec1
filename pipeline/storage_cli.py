"""`flask storage migrate`: copy every object of the local storage (DATA_ROOT) to the S3
bucket (S3_*), verifying each, before an installation moves to S3.

It switches nothing: the installation keeps running on local files while it copies, and
the operator changes the setting only once the command ends with every object verified.
Run again after an interruption, it skips what the bucket already holds with the same
sha256 and size (checked against the object's stored checksum), so it resumes where it
stopped; objects written meanwhile are picked up by the next run. Exit status 1 while any
object is not verified.
"""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup

from ra_app.core.storage import MissingObject, local_storage, s3_storage

storage_cli = AppGroup("storage", help="Move the installation's files between storage backends.")


def verified(target, key: str, digest: str, size: int) -> bool:
    try:
        return target.checksum(key) == digest and target.size(key) == size
    except MissingObject:
        return False


@storage_cli.command("migrate")
@click.option("--dry-run", is_flag=True, help="Say what would be copied; copy nothing.")
def migrate_command(dry_run: bool):
    """Copy every object under DATA_ROOT to the S3 bucket, verified; resumable."""
    source = local_storage(current_app.config)
    target = s3_storage(current_app.config)
    if target is None:
        click.echo(
            "S3 storage is not configured: set S3_ENDPOINT, S3_ACCESS_KEY, "
            "S3_SECRET_KEY and S3_BUCKET (and S3_PREFIX)."
        )
        sys.exit(1)
    where = f"s3://{target.bucket}/{target.prefix}"
    keys = list(source.keys())
    total = sum(source.size(key) for key in keys)
    click.echo(f"{len(keys)} object(s), {total / 1e9:.2f} GB, from {source.root} to {where}")
    already = copied = failed = 0
    with click.progressbar(keys, label="copying", file=sys.stderr) as bar:
        for key in bar:
            size, digest = source.size(key), source.checksum(key)
            if verified(target, key, digest, size):
                already += 1
                continue
            if dry_run:
                copied += 1
                continue
            try:
                target.put_file(source.path(key), key)
            except Exception as error:  # noqa: BLE001 - named below; the next run tries again
                click.echo(f"\nfailed: {key}: {type(error).__name__}: {error}", err=True)
                failed += 1
                continue
            if verified(target, key, digest, size):
                copied += 1
            else:
                click.echo(f"\nnot verified after copying: {key}", err=True)
                failed += 1
    verb = "would copy" if dry_run else "copied and verified"
    click.echo(f"{already} already there and verified, {copied} {verb}, {failed} failed.")
    if failed or dry_run:
        if failed:
            click.echo("Run it again: it goes on where it stopped.")
        sys.exit(1 if failed else 0)
    click.echo(
        f"Every object is in {where}. Nothing was switched: the installation still "
        "reads local files until STORAGE_BACKEND=s3 is set on every host (then restart)."
    )
