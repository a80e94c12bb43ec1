"""Post-review stages on a 60-minute reviewed recording: segmentation, CPU denoising, export.

    .venv/bin/python -m bench.post_review [--minutes 60]

Targets (issue: post-review stages), on this machine: segmentation at 200x real time or
better, CPU denoising at 10x or better; export of the recording's segments reported.

Setup (thrown away afterwards): a Postgres database made with the migrations; a generated
16 kHz mono master of speech-like audio (harmonic "words" 0.15–0.4 s long 60 ms apart,
sentences of 2–7 s with 0.3–1.0 s pauses, a little noise); a reviewed transcript and
translation of its ~900 sentences. Each stage is timed as an operator's run calls it: the
whole stage, database work included (`pipeline.stages.<stage>.run` in the app context).

* segment: twice, once on sentence times (state reviewed) and once on word timings (a second
  copy of the recording, aligned: ~9,000 word_alignments rows as the align stage writes them).
* denoise: spectral gating of the whole hour, loudness normalisation, the WAV written.
* export: the segmented, reviewed and denoised recording staged into reviewed/ and frozen
  as a snapshot (clips cut, manifests, SHA256SUMS over every file).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from ._support import create_database, drop_database, make_app, migrate
from .common import write_results

RATE = 16_000
WORDS = "em anh chị team deadline check email họp online project làm việc hôm nay nha".split()


def speech(minutes: float, seed: int = 7) -> tuple[np.ndarray, list[dict]]:
    """Speech-like audio and its sentences with word times (exact, counted in samples)."""
    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * RATE)
    audio = np.zeros(total, dtype=np.float32)
    bursts = []
    for _ in range(24):  # a small vocabulary of "words", reused
        n = int(rng.uniform(0.15, 0.4) * RATE)
        t = np.arange(n) / RATE
        f0 = rng.uniform(110, 230)
        voice = sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, 7))
        ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
        bursts.append((0.25 * voice * ramp).astype(np.float32))
    sentences = []
    pos = int(0.5 * RATE)
    while True:
        length = int(rng.uniform(2.0, 7.0) * RATE)
        if pos + length + RATE > total:
            break
        start, words, end_at = pos, [], pos + length
        while pos < end_at:
            burst = bursts[int(rng.integers(len(bursts)))]
            if pos + len(burst) > total:
                break
            audio[pos : pos + len(burst)] = burst
            words.append(
                {
                    "word": WORDS[len(words) % len(WORDS)],
                    "start": pos / RATE,
                    "end": (pos + len(burst)) / RATE,
                }
            )
            pos += len(burst) + int(0.06 * RATE)
        last = words[-1]["end"]
        sentences.append(
            {
                "start": round(start / RATE, 3),
                "end": round(last, 3),
                "text": " ".join(w["word"] for w in words),
                "translation": f"bản dịch câu {len(sentences)}",
                "words": words,
            }
        )
        pos = int(last * RATE) + int(rng.uniform(0.3, 1.0) * RATE)
    audio += rng.normal(0, 0.002, total).astype(np.float32)
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)
    return pcm, sentences


def reviewed_sample(app, pcm, sentences, title: str, aligned: bool):
    """The recording as the review app leaves it: reviewed (and, if asked, aligned)."""
    from ra_app.core.models import Origin, Sample, Source, SourceKind, WordAlignment
    from ra_app.core.revisions import write_revisions
    from ra_app.core.states import ProcessingState as S
    from ra_app.core.storage import local_storage
    from ra_app.core.wav import write_wav
    from ra_app.extensions import db

    sample_id = uuid.uuid4()
    key = f"samples/{sample_id}"
    master = local_storage(app.config).path(f"{key}/master.wav")
    master.parent.mkdir(parents=True)
    write_wav(master, pcm, RATE)
    sample = Sample(
        id=sample_id,
        source=Source(kind=SourceKind.FILE, external_id=f"bench/{title}", info={}),
        title=title,
        duration_s=len(pcm) / RATE,
        checksum_sha256=uuid.uuid4().hex * 2,
        master_path=f"{key}/master.wav",
        rendition_path=f"{key}/audio.m4a",
        peaks_path=f"{key}/peaks.bin",
        processing_state=S.ALIGNED if aligned else S.REVIEWED,
    )
    db.session.add(sample)
    db.session.flush()
    rows = [{k: s[k] for k in ("start", "end", "text", "translation")} for s in sentences]
    transcript, _ = write_revisions(sample, rows, origin=Origin.HUMAN, with_translation=True)
    db.session.flush()
    if aligned:
        db.session.execute(
            WordAlignment.__table__.insert(),
            [
                {
                    "sample_id": sample.id,
                    "transcript_revision_id": transcript.id,
                    "sentence_index": i,
                    "word_index": k,
                    "word": w["word"],
                    "start_s": round(w["start"], 3),
                    "end_s": round(w["end"], 3),
                    "score": 0.9,
                    "language": "vi",
                    "interpolated": False,
                }
                for i, s in enumerate(sentences)
                for k, w in enumerate(s["words"])
            ],
        )
    db.session.commit()
    return sample.id


def timed(call):
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def approve_segments(sample_id) -> None:
    """What the segment reviewers' approval leaves: tasks approved, segments reviewed."""
    import sqlalchemy as sa

    from ra_app.core.models import Assignment, AssignmentStatus, Sample, TaskType
    from ra_app.core.states import ProcessingState as S
    from ra_app.core.states import transition
    from ra_app.extensions import db

    db.session.execute(
        sa.update(Assignment)
        .where(
            Assignment.sample_id == sample_id,
            Assignment.task_type == TaskType.AUDIO_SEGMENTATION,
        )
        .values(status=AssignmentStatus.APPROVED)
    )
    transition(db.session.get(Sample, sample_id), S.SEGMENTS_REVIEWED)
    db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args()
    audio_s = args.minutes * 60
    name, url = create_database("bench_post_review")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app = make_app(url, Path(tmp) / "data")
            migrate(app)
            figures = run(app, args.minutes, audio_s)
    finally:
        drop_database(name)
    write_results("post_review", figures)


def run(app, minutes: float, audio_s: float) -> dict:
    from pipeline import snapshot
    from pipeline.stages import denoise, segment
    from ra_app.core.models import Segment, TaskType
    from ra_app.extensions import db

    print(f"making a {minutes:g}-minute reviewed recording …")
    pcm, sentences = speech(minutes)
    words = sum(len(s["words"]) for s in sentences)
    with app.app_context():
        by_sentences = reviewed_sample(app, pcm, sentences, "sentences", aligned=False)
        by_words = reviewed_sample(app, pcm, sentences, "words", aligned=True)
        del pcm

        print("segmenting …")
        seg_s, seg_s_wall = timed(lambda: segment.run(by_sentences))
        seg_w, seg_w_wall = timed(lambda: segment.run(by_words))
        lengths = [
            s.end_s - s.start_s
            for s in db.session.query(Segment).filter(Segment.sample_id == by_sentences)
        ]
        approve_segments(by_sentences)

        print("denoising …")
        den, den_wall = timed(lambda: denoise.run(by_sentences, method="spectral_gating"))

        print("exporting …")
        exp, exp_wall = timed(
            lambda: snapshot.make_export([TaskType.AUDIO_SEGMENTATION], sample_ids=[by_sentences])
        )
        snapshot = exp["folder"]
        snapshot_bytes = sum(p.stat().st_size for p in snapshot.rglob("*") if p.is_file())

    def rtf(wall: float) -> float:
        return round(audio_s / wall, 1)

    return {
        "recording": (
            f"{minutes:g} min, 16 kHz mono, {len(sentences)} sentences, {words} words "
            "(generated speech-like audio)"
        ),
        "command": ".venv/bin/python -m bench.post_review",
        "segment": {
            "sentence_times": {
                "wall_s": round(seg_s_wall, 2),
                "real_time_factor": rtf(seg_s_wall),
                "segments": seg_s["segments"],
                "too_long": seg_s["too_long"],
                "length_s": {
                    "min": round(min(lengths), 2),
                    "median": round(float(np.median(lengths)), 2),
                    "max": round(max(lengths), 2),
                },
            },
            "word_timings": {
                "wall_s": round(seg_w_wall, 2),
                "real_time_factor": rtf(seg_w_wall),
                "segments": seg_w["segments"],
                "too_long": seg_w["too_long"],
            },
            "target": ">= 200x real time",
            "includes": "VAD, cut planning, clips written, rows replaced, review tasks",
        },
        "denoise_cpu": {
            "wall_s": round(den_wall, 2),
            "real_time_factor": rtf(den_wall),
            "status": den["status"],
            "target": ">= 10x real time",
            "includes": "noise profile, STFT gating, loudness pass, 16-bit WAV written",
        },
        "export": {
            "wall_s": round(exp_wall, 2),
            "real_time_factor": rtf(exp_wall),
            "segments": seg_s["segments"],
            "snapshot_mb": round(snapshot_bytes / 1e6, 1),
            "includes": "staging (clips cut, JSON), snapshot (hard links, manifests, SHA256SUMS)",
        },
        # The whole bench process, dominated by generating the hour of audio in memory; the
        # stages themselves read the master span by span (denoising an hour: ~+200 MB).
        "peak_rss_mb_whole_bench": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
    }


if __name__ == "__main__":
    main()
