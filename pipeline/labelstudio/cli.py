"""`flask import labelstudio` and `flask export labelstudio`."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from .exporter import LOCAL_FILES_PREFIX, export_labelstudio
from .exports import ExportError, Names
from .importer import Importer


def user_map(values: tuple[str, ...]) -> dict[int, str]:
    users = {}
    for value in values:
        ls_id, sep, email = value.partition("=")
        if not sep or not ls_id.strip().isdigit() or "@" not in email:
            raise click.BadParameter(f"{value!r}: write it as ID=EMAIL", param_hint="--user")
        users[int(ls_id)] = email.strip()
    return users


@click.group("import", help="Bring work in from other tools.")
def import_cli():
    pass


@import_cli.command("labelstudio")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--audio-root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Where the tasks' audio files are (else each task's http(s) URL is fetched).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The project's labeling config (XML), for its control names. "
    "Default: lang, transcription, translation.",
)
@click.option(
    "--user",
    "users",
    multiple=True,
    metavar="ID=EMAIL",
    help="A Label Studio user id and the e-mail of their account here (repeatable); the "
    "snapshot export carries e-mails itself.",
)
@with_appcontext
def import_labelstudio(files, audio_root, config_path, users):
    """Import Label Studio JSON, JSON_MIN or CSV exports of audio projects: each task's
    audio becomes a sample, each annotation a human revision, each prediction a machine
    draft. Importing the same export again changes nothing."""
    try:
        names = Names.from_config(config_path) if config_path else Names()
        importer = Importer(audio_root=audio_root, names=names, users=user_map(users))
        for path in files:
            importer.import_file(path)
    except ExportError as error:
        raise click.ClickException(str(error)) from None
    r = importer.report
    click.echo(
        f"{r.tasks} tasks: {r.samples_created} new samples, {r.samples_existing} already here; "
        f"{r.annotations} annotations and {r.predictions} predictions imported, "
        f"{r.already_imported} already imported, {r.cancelled} cancelled; "
        f"{r.rows} rows in {r.seconds:.1f} s"
    )
    if r.predictions_not_in_file:
        click.echo(
            f"{r.predictions_not_in_file} predictions are listed by id only (the UI's JSON "
            "export): their tasks wait for transcription; the snapshot export includes them"
        )
    if r.predictions_over_human_work:
        click.echo(f"{r.predictions_over_human_work} predictions left out: people's work is newer")
    for problem in r.problems:
        click.echo(f"  ! {problem}")
    if r.tasks and r.samples_created + r.samples_existing == 0:
        raise click.ClickException("no task's audio could be imported")


@click.command("labelstudio")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--audio-url-prefix",
    default=LOCAL_FILES_PREFIX,
    show_default=True,
    help="What goes before <sample id>.wav in each task's audio URL.",
)
@with_appcontext
def export_labelstudio_cmd(out: Path, audio_url_prefix: str):
    """Write the reviewed samples in Label Studio's import format: OUT/tasks.json and the
    audio under OUT/audio/."""
    tasks, copied = export_labelstudio(out, audio_url_prefix)
    click.echo(f"{tasks} tasks written to {out / 'tasks.json'}; {copied} audio files copied")
