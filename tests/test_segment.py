"""Segmentation: generated speech with known pauses, cut at those pauses into 10–30 s
segments, with and without word timings; the audio cut sample-exact; the stage idempotent."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from pipeline.cuts import Unit, plan_segments
from pipeline.errors import PermanentError
from pipeline.stages import segment
from pipeline.stages.ingest import Recording, ingest
from pipeline.vad import FRAME_S, Vad
from ra_app.core.models import (
    Assignment,
    Origin,
    Sample,
    Segment,
    Source,
    SourceKind,
    TaskType,
    WordAlignment,
)
from ra_app.core.revisions import latest_transcript, write_revisions
from ra_app.core.states import ProcessingState as S
from ra_app.core.states import transition
from ra_app.core.storage import local_storage
from ra_app.core.wav import read_pcm, wav_info, write_wav
from ra_app.extensions import db

RATE = 16_000
TOLERANCE_S = 0.05


@dataclass
class Speech:
    """Generated speech: where every sentence, word and pause is."""

    path: Path
    sentences: list[dict] = field(default_factory=list)  # start, end, text, translation, words
    pauses: list[tuple[float, float]] = field(default_factory=list)  # between sentences
    inner_pauses: list[tuple[float, float]] = field(default_factory=list)  # inside sentences
    duration: float = 0.0


VI_WORDS = "em anh chị làm việc với team hôm nay họp online deadline gấp lắm nha".split()


def speak(
    path: Path,
    sentence_lengths: list[float],
    pauses: list[float],
    seed: int = 1,
    inner_pause_at: dict[int, float] | None = None,
) -> Speech:
    """'Words' are harmonic bursts 0.15–0.4 s long, 60 ms apart; sentences are separated by
    the given pauses; a little noise everywhere, as in a quiet room. `inner_pause_at` puts a
    0.4 s pause that far into a sentence. Times are counted in samples, so they are exact."""
    rng = np.random.default_rng(seed)
    inner_pause_at = inner_pause_at or {}
    pieces: list[np.ndarray] = []
    speech = Speech(path)

    def now() -> float:
        return sum(len(p) for p in pieces) / RATE

    def silence(seconds: float) -> None:
        pieces.append(np.zeros(int(round(seconds * RATE))))

    silence(0.6)  # lead-in
    for index, length in enumerate(sentence_lengths):
        start, words = now(), []
        target_end = start + length
        split_at = start + inner_pause_at[index] if index in inner_pause_at else None
        while now() < target_end - 0.15:
            n = int(round(min(rng.uniform(0.15, 0.4), target_end - now()) * RATE))
            time = np.arange(n) / RATE
            f0 = rng.uniform(110, 230)
            burst = sum(np.sin(2 * np.pi * f0 * k * time + k) / k for k in range(1, 7))
            ramp = np.minimum(1.0, np.minimum(time, time[::-1]) / 0.02)
            word_start = now()
            pieces.append(0.25 * burst * ramp)
            word = VI_WORDS[len(words) % len(VI_WORDS)]
            words.append({"word": word, "start": word_start, "end": now()})
            if now() < target_end - 0.15:
                gap = 0.06
                if split_at is not None and now() >= split_at:
                    gap, split_at = 0.4, None
                    speech.inner_pauses.append((now(), now() + gap))
                silence(gap)
        end = words[-1]["end"]
        speech.sentences.append(
            {
                "start": round(start, 3),
                "end": round(end, 3),
                "text": " ".join(w["word"] for w in words),
                "translation": f"câu {index}",
                "words": words,
            }
        )
        if index < len(pauses):
            silence(pauses[index])
            speech.pauses.append((end, now()))
    silence(0.6)
    signal = np.concatenate(pieces)
    signal += rng.normal(0, 0.002, len(signal))
    pcm = np.clip(np.round(signal * 32767), -32768, 32767).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, pcm, RATE)
    speech.duration = len(pcm) / RATE
    return speech


def reviewed_sample(speech: Speech, aligned: bool = False, title: str = "talk") -> Sample:
    """Ingest the generated audio and give it a reviewed transcript (and word timings)."""
    outcome = ingest(
        Recording(path=str(speech.path), kind=SourceKind.FILE, external_id=str(speech.path))
    )
    sample = db.session.get(Sample, outcome.sample_id)
    sample.title = title
    write_revisions(
        sample,
        [{k: s[k] for k in ("start", "end", "text", "translation")} for s in speech.sentences],
        origin=Origin.HUMAN,
        with_translation=True,
    )
    for state in (S.TRANSCRIBED, S.IN_REVIEW, S.REVIEWED):
        transition(sample, state)
    db.session.flush()
    if aligned:
        transcript = latest_transcript(sample.id)
        for i, sentence in enumerate(speech.sentences):
            for k, w in enumerate(sentence["words"]):
                db.session.add(
                    WordAlignment(
                        sample_id=sample.id,
                        transcript_revision_id=transcript.id,
                        sentence_index=i,
                        word_index=k,
                        word=w["word"],
                        start_s=round(w["start"], 3),
                        end_s=round(w["end"], 3),
                        score=0.9,
                        language="vi",
                    )
                )
        transition(sample, S.ALIGNED)
    db.session.commit()
    return sample


def stored_sample(
    app,
    pcm: np.ndarray,
    rows: list[dict] | None = None,
    state: S = S.REVIEWED,
    source: Source | None = None,
    title: str = "a recording",
) -> Sample:
    """A sample whose master is `pcm` (16 kHz mono), written straight into storage, with a
    reviewed transcript and translation made of `rows`. Call inside an app context."""
    sample_id = uuid.uuid4()
    key = f"samples/{sample_id}"
    master = local_storage(app.config).path(f"{key}/master.wav")
    master.parent.mkdir(parents=True)
    write_wav(master, pcm, RATE)
    sample = Sample(
        id=sample_id,
        source=source or Source(kind=SourceKind.FILE, external_id=f"test/{sample_id}", info={}),
        title=title,
        duration_s=round(len(pcm) / RATE, 3),
        checksum_sha256=hashlib.sha256(pcm.tobytes() + sample_id.bytes).hexdigest(),
        master_path=f"{key}/master.wav",
        rendition_path=f"{key}/audio.m4a",
        peaks_path=f"{key}/peaks.bin",
        processing_state=state,
    )
    db.session.add(sample)
    db.session.flush()
    if rows:
        write_revisions(sample, rows, origin=Origin.HUMAN, with_translation=True)
    db.session.commit()
    return sample


def segments_of(sample_id) -> list[Segment]:
    return db.session.scalars(
        sa.select(Segment).where(Segment.sample_id == sample_id).order_by(Segment.position)
    ).all()


def near_a_pause(moment: float, pauses: list[tuple[float, float]]) -> bool:
    return any(a - TOLERANCE_S <= moment <= b + TOLERANCE_S for a, b in pauses)


LENGTHS = [4.2, 6.1, 3.3, 5.5, 7.0, 2.8, 4.9, 6.4, 3.7, 5.2, 4.4, 6.8, 3.1, 5.9, 4.0, 6.6]
PAUSES = [0.55, 0.8, 0.6, 0.95, 0.5, 0.7, 0.65, 0.9, 0.6, 0.75, 0.85, 0.5, 0.7, 0.6, 0.8]


@pytest.mark.parametrize("aligned", [False, True], ids=["sentences", "word-timings"])
def test_segments_are_cut_at_the_pauses(app, tmp_path, aligned):
    speech = speak(tmp_path / "talk.wav", LENGTHS, PAUSES)
    with app.app_context():
        sample = reviewed_sample(speech, aligned=aligned)
        result = segment.run(sample.id)
        assert result["status"] == "segmented" and result["aligned"] is aligned, result
        segments = segments_of(sample.id)
        assert len(segments) >= 3
        for seg in segments:
            assert 10.0 <= seg.end_s - seg.start_s <= 30.0, seg.__dict__
            assert not seg.too_long
        for before, after in zip(segments, segments[1:], strict=False):
            assert before.end_s <= after.start_s
            assert near_a_pause(before.end_s, speech.pauses), before.end_s
            assert near_a_pause(after.start_s, speech.pauses), after.start_s
        # Every sentence lands in exactly one segment, with its translation, in order.
        assert " ".join(s.text for s in segments) == " ".join(x["text"] for x in speech.sentences)
        assert " ".join(s.translation for s in segments) == " ".join(
            x["translation"] for x in speech.sentences
        )
        assert segments[0].start_s <= speech.sentences[0]["start"]
        assert segments[-1].end_s >= speech.sentences[-1]["end"]
        sample = db.session.get(Sample, sample.id)
        assert sample.processing_state is S.SEGMENTED
        tasks = db.session.scalars(sa.select(Assignment).where(Assignment.sample_id == sample.id))
        assert {(t.task_type, t.reviewer_id) for t in tasks} == {
            (TaskType.AUDIO_SEGMENTATION, None)
        }


def test_sentence_times_that_run_early_are_cut_in_the_pause_the_audio_has(app, tmp_path):
    """Subtitle times often lead the voice: every sentence here is stated 0.5 s early, so
    halfway between one's stated end and the next one's stated start is still speech. The
    voice-activity detector moves each cut into the pause that is really there."""
    speech = speak(tmp_path / "early.wav", LENGTHS, PAUSES, seed=7)
    for sentence in speech.sentences:
        sentence["start"] = round(max(0.0, sentence["start"] - 0.5), 3)
        sentence["end"] = round(sentence["end"] - 0.5, 3)
    with app.app_context():
        sample = reviewed_sample(speech)
        segment.run(sample.id)
        segments = segments_of(sample.id)
        assert len(segments) >= 3
        for before, after in zip(segments, segments[1:], strict=False):
            assert near_a_pause(before.end_s, speech.pauses), before.end_s
            assert near_a_pause(after.start_s, speech.pauses), after.start_s


def test_segments_are_rows_whose_clips_only_the_export_cuts(app, tmp_path):
    speech = speak(tmp_path / "exact.wav", LENGTHS[:8], PAUSES[:7], seed=3)
    with app.app_context():
        sample = reviewed_sample(speech)
        segment.run(sample.id)
        assert segments_of(sample.id)
        folder = local_storage(app.config).path(f"samples/{sample.id}")
        assert not (folder / "segments").exists()  # one source of truth: export cuts them


@pytest.mark.parametrize("aligned", [False, True], ids=["sentences", "word-timings"])
def test_a_sentence_over_30_s_is_split_at_its_pause_and_flagged(app, tmp_path, aligned):
    speech = speak(
        tmp_path / "long.wav", [5.0, 40.0, 5.0], [0.7, 0.7], seed=5, inner_pause_at={1: 19.0}
    )
    ((p0, p1),) = speech.inner_pauses
    with app.app_context():
        sample = reviewed_sample(speech, aligned=aligned)
        segment.run(sample.id)
        segments = segments_of(sample.id)
        inside = [
            (before, after)
            for before, after in zip(segments, segments[1:], strict=False)
            if p0 - TOLERANCE_S <= before.end_s <= p1 + TOLERANCE_S
        ]
        assert len(inside) == 1, [(s.start_s, s.end_s) for s in segments]
        before, after = inside[0]
        assert near_a_pause(after.start_s, speech.inner_pauses)
        assert before.too_long and after.too_long
        for seg in segments:
            assert seg.end_s - seg.start_s <= 30.0
        # The long sentence's words are shared out in order, its translation goes with its
        # middle.
        assert " ".join(s.text for s in segments) == " ".join(x["text"] for x in speech.sentences)
        assert sum("câu 1" in s.translation for s in segments) == 1


def test_rerun_changes_nothing_and_dry_run_writes_nothing(app, tmp_path):
    speech = speak(tmp_path / "again.wav", LENGTHS[:6], PAUSES[:5], seed=7)
    with app.app_context():
        sample = reviewed_sample(speech)
        plan = segment.run(sample.id, dry_run=True)
        assert plan["status"] == "would_segment" and plan["segments"] >= 1
        assert segments_of(sample.id) == []
        assert not (app.config["DATA_ROOT"] / f"samples/{sample.id}/segments").exists()
        assert db.session.get(Sample, sample.id).processing_state is S.REVIEWED

        first = segment.run(sample.id)
        before = [(s.id, s.start_s, s.end_s, s.updated_at) for s in segments_of(sample.id)]
        again = segment.run(sample.id)
        assert first["status"] == "segmented" and again["status"] == "already_segmented"
        assert [(s.id, s.start_s, s.end_s, s.updated_at) for s in segments_of(sample.id)] == before
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Assignment))
        assert count == 1  # the review task is not created twice
    assert not any((app.config["DATA_ROOT"] / "tmp").iterdir())


def test_a_sample_not_yet_reviewed_is_left_alone(app, tmp_path):
    speech = speak(tmp_path / "early.wav", LENGTHS[:3], PAUSES[:2], seed=9)
    with app.app_context():
        sample = reviewed_sample(speech)
        sample.processing_state = S.IN_REVIEW
        db.session.commit()
        assert segment.run(sample.id)["status"] == "skipped"
        assert segments_of(sample.id) == []


def vad_with_silences(silences: list[tuple[float, float]]) -> Vad:
    starts = np.array([round(a / FRAME_S) for a, _ in silences], dtype=np.int64)
    ends = np.array([round(b / FRAME_S) for _, b in silences], dtype=np.int64)
    return Vad(starts, ends)


@pytest.mark.parametrize(
    ("sentences", "expected"),
    [
        # Three 8 s sentences: one 10–30 s segment can hold them all.
        ([(0.5, 8.5), (9.0, 17.0), (17.5, 25.5)], [(0.3, 25.7)]),
        # Five 6 s sentences, the pause after the third is the widest: cut there.
        (
            [(0.5, 6.5), (6.8, 12.8), (13.1, 19.1), (20.1, 26.1), (26.4, 32.4)],
            [(0.3, 19.3), (19.9, 32.6)],
        ),
        # Music between two talks stays out of both segments.
        ([(0.5, 12.5), (40.0, 52.0)], [(0.3, 12.7), (39.8, 52.2)]),
    ],
)
def test_planning_table(sentences, expected):
    units = [Unit(i, a, b, f"s{i}", f"t{i}") for i, (a, b) in enumerate(sentences)]
    gaps = [(a[1], b[0]) for a, b in zip(sentences, sentences[1:], strict=False)]
    planned = plan_segments(units, vad_with_silences(gaps), 60.0, 10.0, 30.0, aligned=False)
    got = [edge for p in planned for edge in (p.start, p.end)]
    assert got == pytest.approx([edge for pair in expected for edge in pair], abs=0.011)


def test_pipeline_run_commands_as_wired(app, celery_app, tmp_path):
    """`flask pipeline run segment …` once the commands are added to the run group."""
    import click
    from celery.contrib.testing.worker import start_worker

    from pipeline.post_review_cli import run_commands

    group = click.Group("run", commands=run_commands)
    assert sorted(group.commands) == ["align", "denoise", "export", "segment"]
    speech = speak(tmp_path / "cli.wav", LENGTHS[:6], PAUSES[:5], seed=11)
    with app.app_context():
        sample_id = reviewed_sample(speech).id
    runner = app.test_cli_runner()
    usage = runner.invoke(group, ["segment"])
    assert usage.exit_code != 0 and "--sample-id ID or --batch" in usage.output
    dry = runner.invoke(group, ["segment", "--sample-id", str(sample_id), "--dry-run"])
    assert dry.exit_code == 0 and "would_segment" in dry.output, dry.output
    app.config["ALIGN_ENABLED"] = False  # --batch takes reviewed samples too
    with start_worker(
        celery_app, pool="threads", concurrency=1, queues=["cpu"], perform_ping_check=False
    ):
        done = runner.invoke(group, ["segment", "--batch", "--limit", "5"])
    assert done.exit_code == 0 and "segmented" in done.output, done.output
    with app.app_context():
        assert db.session.get(Sample, sample_id).processing_state is S.SEGMENTED
    nothing = runner.invoke(group, ["segment", "--batch"])
    assert "nothing to do" in nothing.output


@pytest.mark.parametrize(
    "damage,code",
    [
        ("truncate", "master_mismatch"),  # cut to a quarter of what ingestion recorded
        ("not_wav", "bad_master"),  # replaced by something that is no WAV at all
    ],
)
def test_a_master_that_is_not_what_ingestion_recorded_fails_for_good(app, tmp_path, damage, code):
    from pipeline.jobs import stage_run
    from ra_app.core.models import FailureClass, JobRun, JobStatus

    speech = speak(tmp_path / "talk.wav", LENGTHS[:5], PAUSES[:4], seed=7)
    with app.app_context():
        sample = reviewed_sample(speech)
        master = local_storage(app.config).path(sample.master_path)
        if damage == "truncate":
            info = wav_info(master)
            pcm = np.asarray(read_pcm(info))
            write_wav(master, pcm[: len(pcm) // 4], info.sample_rate)
        else:
            master.write_bytes(b"ID3\x04\x00" + bytes(4000))  # an MP3 under the WAV's name
        with pytest.raises(PermanentError) as refused, stage_run("segment", str(sample.id)):
            segment.run(sample.id)
        assert refused.value.code == code
        assert "ingest the recording again" in str(refused.value)
        (run,) = db.session.scalars(sa.select(JobRun)).all()
        assert run.status is JobStatus.FAILED and run.failure_class is FailureClass.PERMANENT
        assert segments_of(sample.id) == []  # no 4 s segment carrying all the text
        assert db.session.get(Sample, sample.id).processing_state is S.REVIEWED
