"""The pipeline's operator commands, as the web app's `flask` CLI finds them by name (see
`ra_app.commands`): importing this module loads the stage commands, so the app itself never
does until a command runs."""

from __future__ import annotations

from .cli import pipeline_cli, run_group
from .demo import demo_command
from .doctor import doctor_command
from .gemini_cli import gemini_group, run_gemini, run_gemini_repair
from .ingest_cli import ingest_cli
from .labelstudio.cli import export_labelstudio_cmd, import_cli
from .post_review_cli import backup_cmd, export_cmd, restore_cmd, run_commands
from .storage_cli import storage_cli
from .sync.cli import sync_command

export_cmd.add_command(export_labelstudio_cmd)  # flask export labelstudio
run_group.add_command(run_gemini)
run_group.add_command(run_gemini_repair)
for command in run_commands:  # flask pipeline run align|segment|denoise|export
    run_group.add_command(command)

COMMANDS = {
    "pipeline": pipeline_cli,
    "ingest": ingest_cli,
    "gemini": gemini_group,
    "export": export_cmd,
    "backup": backup_cmd,
    "restore": restore_cmd,
    "demo": demo_command,
    "doctor": doctor_command,
    "storage": storage_cli,
    "import": import_cli,
    "sync": sync_command,
}
