"""The `flask` command line of the app: its own groups (`flask users|quality`), and the
pipeline's (`flask pipeline|ingest|gemini|export|backup|restore|demo|doctor|storage`),
which live in the `pipeline` package and are imported by name only when one of them is
listed or run. So creating the app (every web request's process) never loads stage code,
and the web app does not import the pipeline."""

from __future__ import annotations

import importlib

import click
from flask import Flask
from flask.cli import AppGroup

PIPELINE_COMMANDS = "pipeline.commands"  # its COMMANDS: name -> click command
PIPELINE_NAMES = (
    "pipeline",
    "ingest",
    "gemini",
    "export",
    "backup",
    "restore",
    "demo",
    "doctor",
    "storage",
    "import",
    "sync",
)


class AppCommands(AppGroup):
    """`app.cli`, with the pipeline's commands looked up by name when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *PIPELINE_NAMES})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in PIPELINE_NAMES:
            return importlib.import_module(PIPELINE_COMMANDS).COMMANDS[name]
        return super().get_command(ctx, name)


def register_commands(app: Flask) -> None:
    from .api.cli import api_keys_cli
    from .cli import quality_cli, users_cli

    commands = AppCommands(name=app.name)
    commands.commands.update(app.cli.commands)  # what extensions registered (flask db …)
    commands.add_command(users_cli)
    commands.add_command(quality_cli)
    commands.add_command(api_keys_cli)
    app.cli = commands
