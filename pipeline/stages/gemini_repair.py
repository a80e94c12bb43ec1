"""The gemini_repair stage: translate again only the sentences the checks flagged.

It works on a sample whose newest translation is Gemini's draft (origin `gemini`, state
transcribed): the sentences with a translation flag (empty, English left, length ratio,
sentence count) go to Gemini as text, each with its neighbours as context. A new
translation replaces the old one only when it passes the same checks; then its translation
flags are cleared. Otherwise the old translation and its flags stay for the reviewer.
Timestamp flags are not the translation's to fix and are kept as they are.

The result is a new translation revision (origin `gemini_repair`) that follows the same
transcript revision. `ra_app.core.revisions.write_revisions` always writes a transcript revision
as well; the transcript did not change, and a copy of it labelled `gemini_repair` would give
its sentences a false provenance, so this stage writes the translation revision alone
(`write_translation_revision`). `latest_translation` keeps finding it, since it names the
newest transcript. Idempotent: once the newest translation is the repair's, there is
nothing left to do.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from ra_app.core.models import Origin, Sample, TranslationRevision
from ra_app.core.revisions import latest, latest_transcript, rows_of, write_translation_revision
from ra_app.core.states import ProcessingState
from ra_app.core.text import nfc
from ra_app.extensions import db

from ..errors import TransientError
from ..gemini import lexicon
from ..gemini.detection import KeepList, Thresholds, is_translation_flag, translation_flags
from ..gemini.prompt import repair_instruction, repair_prompt_version, repair_request
from ..gemini.schema import BadReply, RepairReply, parse_reply
from .gemini import load, outcome

STAGE = "gemini_repair"


def latest_translation_origin():
    """The origin of a sample's newest translation revision (a correlated subquery)."""
    return (
        sa.select(TranslationRevision.origin)
        .where(TranslationRevision.sample_id == Sample.id)
        .order_by(TranslationRevision.version.desc())
        .limit(1)
        .scalar_subquery()
    )


def waiting():
    """Samples `--batch` picks: transcribed, flagged, newest translation Gemini's draft."""
    return sa.and_(
        Sample.processing_state == ProcessingState.TRANSCRIBED,
        Sample.needs_translation_review.is_(True),
        latest_translation_origin() == Origin.GEMINI,
    )


def current(sample: Sample):
    """(transcript, translation, rows, why there is nothing to do or None)."""
    transcript = latest_transcript(sample.id)
    translation = latest(TranslationRevision, sample.id)
    if transcript is None or translation is None:
        return transcript, translation, [], "no translation to repair"
    if translation.transcript_revision_id != transcript.id:
        return transcript, translation, [], "the newest translation does not follow the transcript"
    if translation.origin is not Origin.GEMINI:
        return (
            transcript,
            translation,
            [],
            f"the newest translation is {translation.origin.value}'s (repair works on "
            "Gemini's draft only)",
        )
    if sample.processing_state is not ProcessingState.TRANSCRIBED:
        return transcript, translation, [], f"the sample is {sample.processing_state}"
    return transcript, translation, rows_of(transcript, translation), None


def flagged_indexes(rows: list[dict]) -> list[int]:
    return [i for i, row in enumerate(rows) if any(is_translation_flag(f) for f in row["flags"])]


def run(sample_id, *, model: str | None = None) -> dict:
    config = current_app.config
    model = model or config["GEMINI_MODEL"]
    sample = load(sample_id)
    _, translation, rows, skip = current(sample)
    wanted = flagged_indexes(rows)
    if skip or not wanted:
        return outcome("done", sample, sample_id, skip or "no flagged translations")
    glossary = lexicon.glossary(config["GEMINI_LEXICON_MAX_TERMS"])
    keep = KeepList.from_config(config, glossary.keep_english)
    thresholds = Thresholds.from_config(config)
    version = repair_prompt_version(glossary)
    base_id = translation.id
    db.session.rollback()  # hold no transaction while Gemini works

    answers = ask(rows, wanted, model, config, repair_instruction(glossary))

    fixed, still = [], []
    for i in wanted:
        row = rows[i]
        new = answers.get(i)
        if new is None or translation_flags(row["text"], new, keep, thresholds):
            still.append(i)
            continue
        row["translation"] = new
        row["flags"] = [f for f in row["flags"] if not is_translation_flag(f)]
        fixed.append(i)

    sample = load(sample_id)
    transcript, translation, _, skip = current(sample)
    if skip or translation.id != base_id:
        return outcome("done", sample, sample_id, skip or "the translation changed meanwhile")
    write_translation_revision(
        sample,
        transcript,
        rows,
        base=translation,
        origin=Origin.GEMINI_REPAIR,
        model_name=model,
        prompt_version=version,
    )
    db.session.commit()
    unanswered = len([i for i in wanted if i not in answers])
    note = f"; the reply skipped {unanswered}" if unanswered else ""
    return outcome(
        "repaired",
        sample,
        sample_id,
        f"{len(fixed)} of {len(wanted)} flagged translations fixed, {len(still)} still flagged"
        + note,
        fixed=fixed,
        still_flagged=still,
        model=model,
        prompt_version=version,
    )


def ask(rows: list[dict], wanted: list[int], model: str, config, system: str) -> dict[int, str]:
    """{sentence index: new translation} for the flagged sentences Gemini answered."""
    from ..gemini.client import Gemini
    from ..gemini.replies import generation_config, reply_text

    response = Gemini.from_config(config).generate(
        model=model,
        prompt=repair_request(rows, wanted, config["GEMINI_REPAIR_CONTEXT"]),
        config=generation_config(config, system, RepairReply),
    )
    text = reply_text(response, config["GEMINI_MAX_OUTPUT_TOKENS"])
    try:
        reply = parse_reply(text, RepairReply)
    except BadReply as error:
        raise TransientError(str(error), "the task is retried later") from None
    asked = set(wanted)
    return {item.index: nfc(item.translation) for item in reply.translations if item.index in asked}


def plan(sample_id, *, model: str | None = None) -> dict:
    """What `run` would do (for --dry-run)."""
    model = model or current_app.config["GEMINI_MODEL"]
    sample = load(sample_id)
    _, _, rows, skip = current(sample)
    wanted = flagged_indexes(rows)
    if skip or not wanted:
        return outcome("done", sample, sample_id, skip or "no flagged translations")
    return outcome(
        "would_run",
        sample,
        sample_id,
        f"would translate {len(wanted)} flagged sentences again with {model}",
    )
