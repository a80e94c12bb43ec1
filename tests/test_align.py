"""Alignment: WhisperX's documented interface, played by a test double injected as the
`whisperx` module; word timings stored with scores, untimed words interpolated; a host
without WhisperX refuses and leaves the task for a GPU worker; the flow queues alignment
only where a gpu worker serves it."""

from __future__ import annotations

import sys
import types
from datetime import timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from celery.contrib.testing.worker import start_worker

from pipeline.errors import TransientError
from pipeline.stages import align
from pipeline.tasks import align_sample
from ra_app.core.flow import advance, next_task
from ra_app.core.models import (
    FailureClass,
    JobRun,
    JobStatus,
    OutboxMessage,
    Sample,
    WordAlignment,
    WorkerSeen,
    utcnow,
)
from ra_app.core.states import ProcessingState as S
from ra_app.core.text import word_languages
from ra_app.extensions import db

from .test_segment import RATE, stored_sample
from .workers import wait_for

ROWS = [
    {"start": 0.5, "end": 4.5, "text": "hôm nay em họp. với team lúc 9 giờ", "translation": "a"},
    {
        "start": 5.0,
        "end": 9.0,
        "text": "let's check the deadline for this project nha",
        "translation": "b",
    },
    {"start": 9.5, "end": 12.0, "text": "giảm 50 % chi phí", "translation": "c"},
]


class FakeWhisperX(types.ModuleType):
    """`whisperx.load_align_model` and `whisperx.align` with the shapes whisperx documents:
    align returns {"segments": [{"start", "end", "text", "words": [{"word", "start", "end",
    "score"}]}], "word_segments": [...]}. Like whisperx, a word with no character in the
    model's dictionary (digits) comes back without start/end/score, and a word it filled in
    itself ("%") with times but no score. A segment with a full stop is returned as two
    sentence segments, as whisperx's sentence splitter does."""

    ALPHABET = "abcdefghijklmnopqrstuvwxyz'àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ"  # noqa: E501

    def __init__(self):
        super().__init__("whisperx")
        self.loads: list[tuple] = []
        self.calls: list[tuple] = []

    def load_align_model(self, language_code, device, model_name=None, model_dir=None):
        self.loads.append((language_code, device, model_name, model_dir))
        dictionary = {c: i for i, c in enumerate("-|" + self.ALPHABET)}
        metadata = {"language": language_code, "dictionary": dictionary, "type": "huggingface"}
        return (f"wav2vec2-{language_code}", metadata)

    @staticmethod
    def expected_times(segment):
        words = segment["text"].split(" ")
        step = (segment["end"] - segment["start"]) / len(words)
        return [
            (round(segment["start"] + k * step, 3), round(segment["start"] + (k + 0.8) * step, 3))
            for k in range(len(words))
        ]

    def align(
        self,
        transcript,
        model,
        align_model_metadata,
        audio,
        device,
        interpolate_method="nearest",
        return_char_alignments=False,
    ):
        assert not return_char_alignments
        assert isinstance(audio, np.ndarray) and audio.dtype == np.float32
        self.calls.append((model, align_model_metadata["language"], device, len(transcript)))
        segments = []
        for segment in transcript:
            words = []
            for word, (start, end) in zip(
                segment["text"].split(" "), self.expected_times(segment), strict=True
            ):
                if not any(c in align_model_metadata["dictionary"] for c in word.lower()):
                    if word == "%":
                        words.append({"word": word, "start": start, "end": end})
                    else:
                        words.append({"word": word})
                else:
                    words.append({"word": word, "start": start, "end": end, "score": 0.75})
            cut = next((i + 1 for i, w in enumerate(words) if w["word"].endswith(".")), None)
            for part in [words[:cut], words[cut:]] if cut else [words]:
                if part:
                    timed = [w for w in part if "start" in w]
                    segments.append(
                        {
                            "start": timed[0]["start"] if timed else segment["start"],
                            "end": timed[-1]["end"] if timed else segment["end"],
                            "text": " ".join(w["word"] for w in part),
                            "words": part,
                        }
                    )
        return {"segments": segments, "word_segments": [w for s in segments for w in s["words"]]}


@pytest.fixture
def whisperx(monkeypatch):
    fake = FakeWhisperX()
    monkeypatch.setitem(sys.modules, "whisperx", fake)
    align.forget_models()
    yield fake
    align.forget_models()


def quiet(seconds: float) -> np.ndarray:
    return (np.random.default_rng(0).normal(0, 30, int(seconds * RATE))).astype(np.int16)


def word_rows(sample_id) -> list[WordAlignment]:
    return db.session.scalars(
        sa.select(WordAlignment)
        .where(WordAlignment.sample_id == sample_id)
        .order_by(WordAlignment.sentence_index, WordAlignment.word_index)
    ).all()


def test_word_timings_from_whisperx_are_stored_with_scores(app, whisperx, tmp_path):
    app.config.update(ALIGN_DEVICE="cuda:0", ALIGN_MODEL_DIR=str(tmp_path / "models"))
    with app.app_context():
        sample = stored_sample(app, quiet(13), ROWS)
        result = align.run(sample.id)
        assert result["status"] == "aligned", result
        assert result["languages"] == ["en", "vi"]
        words = word_rows(sample.id)
        assert [w.word for w in words] == [t for r in ROWS for t in r["text"].split()]
        for index, row in enumerate(ROWS):
            mine = [w for w in words if w.sentence_index == index]
            tags = [t["lang"] for t in word_languages(row["text"])]
            assert [w.language for w in mine] == tags
            expected = FakeWhisperX.expected_times(row)
            for w, (start, end) in zip(mine, expected, strict=True):
                if not w.interpolated:
                    assert (w.start_s, w.end_s, w.score) == (start, end, 0.75)
        # Each sentence went to its majority language's model, loaded once per language.
        assert [c[1] for c in whisperx.calls] == ["vi", "en", "vi"]
        assert sorted(whisperx.loads) == [
            ("en", "cuda:0", None, str(tmp_path / "models")),
            ("vi", "cuda:0", None, str(tmp_path / "models")),
        ]
        assert db.session.get(Sample, sample.id).processing_state is S.ALIGNED


def test_untimed_words_are_interpolated_between_their_neighbours(app, whisperx):
    with app.app_context():
        sample = stored_sample(app, quiet(13), ROWS)
        align.run(sample.id)
        words = word_rows(sample.id)
        flagged = [w.word for w in words if w.interpolated]
        assert flagged == ["9", "50", "%"]  # a digit, a number, a symbol whisperx filled in
        for k, w in enumerate(words):
            if w.interpolated:
                before, after = words[k - 1], words[k + 1]
                assert w.score is None
                assert before.end_s <= w.start_s < w.end_s <= after.start_s
        fifty, percent = words[-4], words[-3]
        assert fifty.start_s == words[-5].end_s and percent.end_s == words[-2].start_s
        assert fifty.end_s == percent.start_s  # the two share the gap, by length


def test_models_are_loaded_once_per_process_and_a_rerun_changes_nothing(app, whisperx):
    with app.app_context():
        first = stored_sample(app, quiet(13), ROWS, title="one")
        second = stored_sample(app, quiet(13), ROWS, title="two")
        align.run(first.id)
        align.run(second.id)
        assert len(whisperx.loads) == 2  # vi and en, not per task
        before = [(w.id, w.start_s, w.end_s) for w in word_rows(first.id)]
        calls = len(whisperx.calls)
        assert align.run(first.id)["status"] == "already_aligned"
        assert [(w.id, w.start_s, w.end_s) for w in word_rows(first.id)] == before
        assert len(whisperx.calls) == calls


def test_unequal_word_lists_are_matched_by_text():
    tokens = ["em", "check", "email", "nha"]
    found = [{"word": "em", "start": 0.0, "end": 0.2, "score": 0.9}, {"word": "nha"}]
    timed = align.interpolate(align.match_words(tokens, found), 0.0, 2.0)
    assert [w.interpolated for w in timed] == [False, True, True, True]
    assert timed[1].start == 0.2 and timed[-1].end == 2.0


def test_a_host_without_whisperx_refuses_clearly(app, monkeypatch):
    monkeypatch.setitem(sys.modules, "whisperx", None)  # `import whisperx` raises ImportError
    with app.app_context():
        sample = stored_sample(app, quiet(13), ROWS)
        assert align.run(sample.id, dry_run=True)["status"] == "would_align"
        with pytest.raises(TransientError) as refused:
            align.run(sample.id)
        assert "GPU worker" in str(refused.value)
        assert "requirements-gpu-align.txt" in str(refused.value)
        db.session.rollback()
        assert word_rows(sample.id) == []
        assert db.session.get(Sample, sample.id).processing_state is S.REVIEWED


def test_a_worker_without_whisperx_leaves_the_task_for_a_gpu_worker(app, celery_app):
    with app.app_context():
        sample_id = stored_sample(app, quiet(13), ROWS).id

    def failed_runs():
        with app.app_context():
            return db.session.scalars(
                sa.select(JobRun).where(JobRun.stage == "align", JobRun.status == JobStatus.FAILED)
            ).all()

    with start_worker(
        celery_app, pool="threads", concurrency=1, queues=["gpu"], perform_ping_check=False
    ):
        result = align_sample.delay(str(sample_id))
        (run,) = wait_for(failed_runs, timeout=30)
        wait_for(lambda: result.state == "RETRY", timeout=30)  # back on the gpu queue, not consumed
    assert run.failure_class is FailureClass.TRANSIENT
    assert "requirements-gpu-align.txt" in run.error
    with app.app_context():
        assert db.session.get(Sample, sample_id).processing_state is S.REVIEWED


def test_the_flow_names_each_stage_after_the_one_before_on_its_queue(app, celery_app):
    route = celery_app.amqp.router.route
    with app.app_context():
        sample = stored_sample(app, quiet(13), ROWS)
        steps = []
        for state in (S.REVIEWED, S.ALIGNED, S.SEGMENTS_REVIEWED, S.DENOISED, S.IN_REVIEW):
            sample.processing_state = state
            steps.append(next_task(sample))
        assert steps == [
            "pipeline.segment",  # no gpu worker seen: alignment is left out
            "pipeline.segment",
            "pipeline.denoise",
            "pipeline.export",
            None,  # people are working on it
        ]
        assert [route({}, n)["queue"].name for n in steps[1:4]] == ["cpu", "cpu", "io"]
        db.session.rollback()


@pytest.mark.parametrize(
    "setting,seen,expected",
    [
        ("auto", True, "pipeline.align"),
        ("auto", False, "pipeline.segment"),
        ("on", False, "pipeline.align"),
        ("off", True, "pipeline.segment"),
    ],
)
def test_alignment_joins_the_flow_only_where_a_gpu_worker_serves_it(app, setting, seen, expected):
    from pipeline.workers import stamp

    app.config["ALIGN_ENABLED"] = setting
    with app.app_context():
        if seen:
            stamp("gpu-host@test", ["cpu", "gpu"])
        stamp("cpu-host@test", ["cpu", "io"])
        sample = stored_sample(app, quiet(13), ROWS)
        assert next_task(sample) == expected
        assert celery_app_route(app, expected) == ("gpu" if "align" in expected else "cpu")


def celery_app_route(app, name):
    return app.extensions["celery"].amqp.router.route({}, name)["queue"].name


def test_a_gpu_worker_last_seen_long_ago_does_not_count(app):
    from pipeline.workers import stamp

    with app.app_context():
        stamp("gpu-host@test", ["gpu"])
        db.session.execute(sa.update(WorkerSeen).values(seen_at=utcnow() - timedelta(hours=1)))
        db.session.commit()
        sample = stored_sample(app, quiet(13), ROWS)
        assert next_task(sample) == "pipeline.segment"


def test_a_reviewed_sample_is_segmented_through_the_outbox(app, celery_app, dispatcher):
    with app.app_context():
        sample = stored_sample(app, quiet(13), ROWS, title="no gpu")
        sample.processing_state = S.IN_REVIEW
        advance(sample, S.REVIEWED)  # what the last submit does
        db.session.commit()
        sample_id = sample.id
    with start_worker(
        celery_app, pool="threads", concurrency=1, queues=["cpu"], perform_ping_check=False
    ):

        def segmented():
            with app.app_context():
                return db.session.get(Sample, sample_id).processing_state is S.SEGMENTED

        wait_for(segmented, timeout=60)
    with app.app_context():
        (message,) = db.session.scalars(sa.select(OutboxMessage)).all()
        assert message.task_name == "pipeline.segment" and message.sent_at is not None
        (run,) = db.session.scalars(sa.select(JobRun).where(JobRun.stage == "segment")).all()
        assert run.task_id == message.task_id and run.status is JobStatus.SUCCEEDED
