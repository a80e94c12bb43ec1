"""The lexicon: service functions for the admin UI, terms learned from reviewers'
corrections, and approved terms reaching the prompt (and its version) and the checks."""

from __future__ import annotations

import pytest

from pipeline.gemini import lexicon
from pipeline.gemini.lexicon import learn_terms
from pipeline.gemini_cli import gemini_group
from pipeline.tasks import gemini as gemini_task
from ra_app.core.lexicon import TermError, delete_term, list_terms, save_term
from ra_app.core.models import LexiconTerm, Origin, Sample
from ra_app.core.revisions import latest_transcript, latest_translation, rows_of, write_revisions
from ra_app.extensions import db

from .fake_gemini import audio_dir as audio_dir  # noqa: F401  (fixtures)
from .fake_gemini import fake as fake  # noqa: F401
from .fake_gemini import gemini_app as gemini_app  # noqa: F401
from .fake_gemini import ingested, transcript_reply
from .ytserver import no_internet as no_internet  # noqa: F401


def test_admins_edit_terms_and_only_approved_ones_reach_the_prompt(gemini_app, fake, audio_dir):
    with gemini_app.app_context():
        with pytest.raises(TermError, match="empty"):
            save_term("  ")
        with pytest.raises(TermError, match="kind"):
            save_term("Shopee", kind="brand")
        shopee = save_term("Shopee", kind="vocabulary", approved=True, note="a shop")
        meeting = save_term("meeting", kind="keep_english", approved=True)
        draft = save_term("deadline", kind="keep_english")
        with pytest.raises(TermError, match="already in the lexicon"):
            save_term("Shopee")
        with pytest.raises(TermError, match="already in the lexicon"):
            save_term("Shopee", term_id=draft.id)
        edited = save_term("Shopee", translation="Shopee", approved=True, term_id=shopee.id)
        assert edited.id == shopee.id and edited.translation == "Shopee"
        assert [t.term for t in list_terms(approved=True)] == ["meeting", "Shopee"]
        assert [t.term for t in list_terms(kind="keep_english")] == ["meeting", "deadline"]
        assert delete_term(draft.id) and not delete_term(draft.id)
        glossary = lexicon.glossary()
        assert glossary.keep_english == ("meeting",) and glossary.vocabulary == (
            ("Shopee", "Shopee"),
        )
        meeting_id = meeting.id

    sample_id = ingested(gemini_app, audio_dir)
    fake.queue(
        transcript_reply(
            [
                {
                    "start": 0.5,
                    "end": 3.0,
                    "text": "Anh ấy đang đi meeting với khách hàng.",
                    "translation": "Anh ấy đang đi meeting với khách hàng.",
                }
            ]
        )
    )
    assert gemini_task.apply(args=[sample_id]).successful()
    (request,) = fake.generate_requests()
    assert "- Shopee (translate as: Shopee)" in request.system
    assert "Keep these English terms untranslated" in request.system
    assert "- meeting" in request.system and "- deadline" not in request.system
    with gemini_app.app_context():
        sample = db.session.get(Sample, sample_id)
        transcript = latest_transcript(sample.id)
        version = transcript.prompt_version
        assert version.startswith("v1+lex:")
        (row,) = rows_of(transcript, latest_translation(sample.id))
        assert row["flags"] == []  # the glossary keeps "meeting"
        assert not sample.needs_translation_review
        save_term("meeting", kind="keep_english", approved=False, term_id=meeting_id)
        assert lexicon.glossary().keep_english == ()  # unapproved: out of the prompt
        from pipeline.gemini.prompt import prompt_version

        assert prompt_version(lexicon.glossary()) not in (version, "v1")


def corrected(make_sample, app, machine: str, human: str, machine_tr="", human_tr="", twice=False):
    """A sample with a machine draft and the reviewer's correction of it."""
    sample_id = make_sample()
    with app.app_context():
        sample = db.session.get(Sample, sample_id)
        row = {"start": 0.0, "end": 2.0, "flags": []}
        write_revisions(
            sample,
            [{**row, "text": machine, "translation": machine_tr}],
            origin=Origin.GEMINI,
            with_translation=True,
        )
        for _ in range(2 if twice else 1):  # a second pass keeps the first one's fixes
            write_revisions(
                sample,
                [{**row, "text": human, "translation": human_tr}],
                origin=Origin.HUMAN,
                with_translation=True,
            )
        db.session.commit()


def test_terms_reviewers_keep_correcting_are_learned(app, make_sample):
    for i in range(3):
        corrected(
            make_sample,
            app,
            f"hôm nay mình ri viu cái láp tóp số {i}",
            f"hôm nay mình review cái laptop số {i}",
            "anh ấy đi cuộc họp",
            "anh ấy đi meeting",
            twice=i == 0,
        )
    corrected(make_sample, app, "mua trên sô pi", "mua trên Shopee")  # once: not yet a term

    runner = app.test_cli_runner()
    preview = runner.invoke(gemini_group, ["learn-terms", "--dry-run"])
    assert preview.exit_code == 0, preview.output
    assert "would add" in preview.output and "laptop" in preview.output
    with app.app_context():
        assert list_terms() == []

    result = runner.invoke(gemini_group, ["learn-terms"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        terms = {t.term: (t.kind, t.corrections, t.approved) for t in list_terms()}
        assert terms == {
            "review": ("vocabulary", 3, False),  # "ri viu" → "review"
            "laptop": ("vocabulary", 3, False),  # "láp tóp" → "laptop"
            "meeting": ("keep_english", 3, False),
        }
        assert db.session.query(LexiconTerm).count() == 3
        again = learn_terms(3)  # nothing new: counted from scratch, same numbers
        assert {t.status for t in again} == {"known"}
        assert learn_terms(1, dry_run=True)[-1].term == "Shopee"
