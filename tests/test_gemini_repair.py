"""gemini_repair: flagged translations sent again with their neighbours; a new translation
is kept only when it passes the checks. Through the real client and the fake Gemini."""

from __future__ import annotations

import json

import sqlalchemy as sa

from pipeline.gemini_cli import run_gemini_repair
from pipeline.tasks import gemini as gemini_task
from pipeline.tasks import gemini_repair as repair_task
from ra_app.core.models import Origin, Sample, TranscriptRevision, TranslationRevision
from ra_app.core.revisions import latest_transcript, latest_translation, rows_of
from ra_app.extensions import db

from .fake_gemini import audio_dir as audio_dir  # noqa: F401  (fixtures)
from .fake_gemini import fake as fake  # noqa: F401
from .fake_gemini import gemini_app as gemini_app  # noqa: F401
from .fake_gemini import ingested, repair_reply, transcript_reply
from .fake_gemini import llm_worker as llm_worker  # noqa: F401
from .ytserver import no_internet as no_internet  # noqa: F401

DRAFT = [
    {
        "start": 0.4,
        "end": 2.0,
        "text": "Xin chào các bạn.",
        "translation": "Xin chào các bạn.",
    },
    {
        "start": 2.2,
        "end": 4.0,
        "text": "Anh ấy đang đi meeting với khách hàng.",
        "translation": "Anh ấy đang đi meeting với khách hàng.",
    },
    {
        "start": 4.2,
        "end": 6.0,
        "text": "Let's check the report before lunch.",
        "translation": "",
    },
    {  # starts well before the previous one ends: a timing flag, not the translation's
        "start": 5.0,
        "end": 7.5,
        "text": "Cảm ơn mọi người nhé.",
        "translation": "Cảm ơn mọi người nhé.",
    },
]


def gemini_draft(app, fake, audio_dir, freq=330) -> str:
    """A sample transcribed by the gemini stage, with flagged sentences."""
    sample_id = ingested(app, audio_dir, freq=freq)
    fake.queue(transcript_reply(DRAFT))
    assert gemini_task.apply(args=[sample_id]).successful()
    return sample_id


def current(app, sample_id):
    with app.app_context():
        sample = db.session.get(Sample, sample_id)
        transcript, translation = latest_transcript(sample.id), latest_translation(sample.id)
        return {
            "sample": sample,
            "transcript": transcript,
            "translation": translation,
            "rows": rows_of(transcript, translation),
            "transcripts": db.session.scalar(sa.select(sa.func.count(TranscriptRevision.id))),
            "translations": db.session.scalar(sa.select(sa.func.count(TranslationRevision.id))),
        }


def test_repair_keeps_a_new_translation_only_when_it_passes(gemini_app, fake, audio_dir):
    sample_id = gemini_draft(gemini_app, fake, audio_dir)
    before = current(gemini_app, sample_id)
    assert [r["flags"] for r in before["rows"]] == [
        [],
        ["english_untranslated: meeting"],
        ["empty_translation"],
        ["overlap"],
    ]
    assert before["sample"].translation_flag_count == 3

    fake.queue(
        repair_reply(
            {
                1: "Anh ấy đang đi họp với khách hàng.",  # passes: kept, flag cleared
                2: "Hãy check the report trước bữa trưa.",  # still English: not kept
            }
        )
    )
    result = repair_task.apply(args=[sample_id])
    assert result.successful(), result.result
    assert result.result["status"] == "repaired"
    assert "1 of 2 flagged translations fixed, 1 still flagged" in result.result["message"]

    after = current(gemini_app, sample_id)
    assert [r["translation"] for r in after["rows"]] == [
        "Xin chào các bạn.",
        "Anh ấy đang đi họp với khách hàng.",
        "",
        "Cảm ơn mọi người nhé.",
    ]
    assert [r["flags"] for r in after["rows"]] == [[], [], ["empty_translation"], ["overlap"]]
    translation = after["translation"]
    assert translation.origin is Origin.GEMINI_REPAIR and translation.version == 2
    assert translation.base_revision_id == before["translation"].id
    assert translation.prompt_version == "repair-v1"
    # The transcript did not change, so no transcript revision was written.
    assert after["transcript"].id == before["transcript"].id and after["transcripts"] == 1
    assert translation.transcript_revision_id == after["transcript"].id
    assert after["sample"].needs_translation_review
    assert after["sample"].translation_flag_count == 2

    (_, request) = fake.generate_requests()
    assert "You correct Vietnamese translations" in request.system
    asked = json.loads(request.text.split("\n", 1)[1])["sentences"]
    assert [(s["index"], s["translate"]) for s in asked] == [
        (0, False),
        (1, True),
        (2, True),
        (3, False),  # neighbours as context, not translated again
    ]
    assert asked[1]["problems"] == ["english_untranslated: meeting"]
    schema = request.json["generationConfig"]["responseSchema"]
    assert set(schema["properties"]) == {"translations"}

    again = repair_task.apply(args=[sample_id])  # idempotent
    assert again.result["status"] == "done" and "gemini_repair" in again.result["message"]
    assert len(fake.generate_requests()) == 2


def test_repair_command_on_a_worker_when_nothing_passes(gemini_app, fake, llm_worker, audio_dir):
    flagged = gemini_draft(gemini_app, fake, audio_dir, freq=300)
    clean = ingested(gemini_app, audio_dir, freq=400)
    fake.queue(transcript_reply(DRAFT[:1]))
    assert gemini_task.apply(args=[clean]).successful()
    runner = gemini_app.test_cli_runner()

    planned = runner.invoke(run_gemini_repair, ["--batch", "--dry-run"])
    assert planned.exit_code == 0, planned.output
    lines = planned.output.splitlines()
    assert any(line.startswith("would_run") and flagged in line for line in lines)
    assert clean not in planned.output  # nothing flagged: not waiting for repair

    fake.queue(repair_reply({1: "Anh ấy đang đi meeting với khách hàng ạ."}))  # 2 unanswered
    result = runner.invoke(run_gemini_repair, ["--batch"])
    assert result.exit_code == 0, result.output
    assert "0 of 2 flagged translations fixed, 2 still flagged; the reply skipped 1" in (
        result.output
    )
    after = current(gemini_app, flagged)
    assert [r["flags"] for r in after["rows"]] == [
        [],
        ["english_untranslated: meeting"],
        ["empty_translation"],
        ["overlap"],
    ]
    assert after["translation"].origin is Origin.GEMINI_REPAIR
    assert after["sample"].needs_translation_review  # still for a reviewer

    nothing = runner.invoke(run_gemini_repair, ["--batch"])
    assert "nothing to do" in nothing.output
