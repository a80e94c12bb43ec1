"""Gemini commands for operators.

* `flask pipeline run gemini` (`run_gemini`) and `flask pipeline run gemini_repair`
  (`run_gemini_repair`): one task per sample on the llm queue (in-process in the embedded
  mode), a progress bar, and one summary line per sample;
* `flask gemini check-keys`: one tiny request per configured key, its state, the key shown
  only by its number and last four characters;
* `flask gemini learn-terms`: collect the terms reviewers keep correcting into the lexicon.

google-genai is imported only when a command runs, so registering these costs nothing.
"""

from __future__ import annotations

import sys
from urllib.parse import urlsplit, urlunsplit

import click
from flask import current_app
from flask.cli import with_appcontext

from .cli import select_samples, stage_options
from .ingest_cli import Line, print_summary, run_tasks


def model_option(command):
    return click.option(
        "--model",
        default=None,
        help="The Gemini model [default: GEMINI_MODEL, which defaults to gemini-2.5-flash].",
    )(command)


@click.command("gemini")
@stage_options
@click.option(
    "--replace-existing",
    is_flag=True,
    help="Transcribe again samples that already have a transcript (a new revision; "
    "with --batch: every ingested or transcribed sample).",
)
@model_option
@with_appcontext
def run_gemini(sample_id, batch, limit, dry_run, replace_existing, model):
    """Transcribe and translate samples with Gemini: ingested samples without a Gemini
    revision (--batch), or one (--sample-id)."""
    from .stages import gemini as stage

    model = model or current_app.config["GEMINI_MODEL"]
    samples = select_samples(sample_id, batch, limit, stage.waiting(replace_existing))
    if dry_run:
        lines = [
            Line(**_line(stage.plan(s.id, model=model, replace_existing=replace_existing)))
            for s in samples
        ]
        print_summary(lines)
        return
    from .tasks import gemini

    calls = []
    for sample in samples:
        current = stage.latest_gemini(sample.id) if replace_existing else None
        replaces = str(current.id) if current is not None else None
        calls.append((str(sample.id), (str(sample.id), model, replace_existing, replaces)))
    print_summary(run_tasks("Gemini", gemini, calls))


@click.command("gemini_repair")
@stage_options
@model_option
@with_appcontext
def run_gemini_repair(sample_id, batch, limit, dry_run, model):
    """Translate again the flagged sentences of Gemini's drafts: transcribed samples whose
    newest translation is Gemini's and has flags (--batch), or one (--sample-id)."""
    from .stages import gemini_repair as stage

    model = model or current_app.config["GEMINI_MODEL"]
    samples = select_samples(sample_id, batch, limit, stage.waiting())
    if dry_run:
        print_summary([Line(**_line(stage.plan(s.id, model=model))) for s in samples])
        return
    from .tasks import gemini_repair

    calls = [(str(s.id), (str(s.id), model)) for s in samples]
    print_summary(run_tasks("Gemini repair", gemini_repair, calls))


def _line(outcome: dict) -> dict:
    return {key: outcome[key] for key in ("status", "label", "message")}


@click.group("gemini", help="Gemini keys and the lexicon of terms reviewers correct.")
def gemini_group():
    pass


@gemini_group.command("check-keys")
@model_option
@with_appcontext
def check_keys_command(model):
    """Send one tiny request with each key (GEMINI_API_KEY_1…N) and report its state.

    Exit status 1 when no key works."""
    from .gemini.client import Gemini

    config = current_app.config
    model = model or config["GEMINI_MODEL"]
    gemini = Gemini.from_config(config)
    keys = gemini.ring.keys
    if not keys:
        click.echo("No key configured: set GEMINI_API_KEY_1 (and _2, _3 … for more).")
        sys.exit(1)
    where = shown_url(config.get("GEMINI_BASE_URL")) or "Google's endpoint"
    click.echo(f"{len(keys)} key(s), model {model}, via {where}:")
    working = 0
    colours = {"ok": "green", "quota": "yellow"}
    for key in keys:
        resting = gemini.ring.state(key)
        state, detail = gemini.ping(key, model)
        if state == "quota":
            gemini.ring.rest_after_quota(key)
        elif state == "refused":
            gemini.ring.refuse(key, detail)
        working += state == "ok"
        note = f" [workers skip it until then: {resting}]" if resting and state != "ok" else ""
        shown = click.style(f"{state:<8}", fg=colours.get(state, "red"))
        click.echo(f"  {key.label:<22} {shown} {detail}{note}")
    click.echo(f"{working} of {len(keys)} key(s) work.")
    if not working:
        sys.exit(1)


def shown_url(url: str | None) -> str | None:
    """The gateway's address without any user or password in it."""
    if not url:
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@gemini_group.command("learn-terms")
@click.option(
    "--min-corrections",
    type=click.IntRange(min=1),
    default=None,
    help="Add a term corrected at least this often [default: GEMINI_LEXICON_MIN_CORRECTIONS].",
)
@click.option("--dry-run", is_flag=True, help="Show the terms; write nothing.")
@with_appcontext
def learn_terms_command(min_corrections, dry_run):
    """Collect the terms reviewers correct again and again into the lexicon (unapproved:
    an admin approves them before they reach the prompt)."""
    from .gemini.lexicon import learn_terms

    least = min_corrections or current_app.config["GEMINI_LEXICON_MIN_CORRECTIONS"]
    found = learn_terms(least, dry_run=dry_run)
    if not found:
        click.echo(f"No term was corrected {least} times or more.")
        return
    for term in found:
        status = "would add" if dry_run and term.status == "added" else term.status
        click.echo(f"  {status:<10} {term.corrections:>5}×  {term.kind:<13} {term.term}")
    added = sum(1 for t in found if t.status == "added")
    verb = "would be added" if dry_run else "added (unapproved)"
    click.echo(f"{added} term(s) {verb}; {len(found) - added} already in the lexicon.")
