"""Export: the training layout, a frozen snapshot with manifests that NeMo and Hugging Face
`datasets` read, a split by source, checksums; the export stage after segment review."""

from __future__ import annotations

import json
import subprocess
import types
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from celery.contrib.testing.worker import start_worker

from pipeline import export_docs
from pipeline.post_review_cli import export_cmd, export_run_cmd
from pipeline.snapshot import verify_checksums
from pipeline.stages import denoise, export
from pipeline.stages.export import split_of
from ra_app.core.flow import follow_up
from ra_app.core.models import (
    Assignment,
    AssignmentStatus,
    OutboxMessage,
    Sample,
    Segment,
    Source,
    SourceKind,
    TaskType,
)
from ra_app.core.revisions import latest_transcript, latest_translation
from ra_app.core.states import ProcessingState as S
from ra_app.core.wav import read_pcm, wav_info
from ra_app.extensions import db

from .test_segment import RATE, stored_sample
from .workers import wait_for

ROWS = [
    {"start": 0.5 + 4 * i, "end": 3.5 + 4 * i, "text": text, "translation": f"bản dịch {i}"}
    for i, text in enumerate(
        [
            "hôm nay team mình review lại project",
            "em gửi email cho khách hàng rồi",
            "deadline là thứ sáu nha",
            "anh check lại cái slide giúp em",
            "meeting lúc ba giờ chiều",
            "ok vậy chốt như vậy nha",
        ]
    )
]
NEMO_FIELDS = {"audio_filepath": str, "offset": float, "duration": float, "text": str}


def finished_sample(app, source: Source, title: str, seed: int) -> Sample:
    """A sample with reviewed text and reviewed segments, as the review app leaves it."""
    rng = np.random.default_rng(seed)
    pcm = (rng.normal(0, 3000, 25 * RATE)).astype(np.int16)
    sample = stored_sample(app, pcm, ROWS, state=S.SEGMENTS_REVIEWED, source=source, title=title)
    transcript, translation = latest_transcript(sample.id), latest_translation(sample.id)
    for position, (start, end, rows) in enumerate([(0.3, 12.0, ROWS[:3]), (12.2, 24.0, ROWS[3:])]):
        db.session.add(
            Segment(
                sample_id=sample.id,
                position=position,
                start_s=start,
                end_s=end,
                text=" ".join(r["text"] for r in rows),
                translation=" ".join(r["translation"] for r in rows),
                transcript_revision_id=transcript.id,
                translation_revision_id=translation.id,
            )
        )
    for task_type, status in [
        (TaskType.TRANSCRIPT_CORRECTION, AssignmentStatus.SUBMITTED),
        (TaskType.AUDIO_SEGMENTATION, AssignmentStatus.APPROVED),
    ]:
        db.session.add(
            Assignment(sample_id=sample.id, task_type=task_type, status=status, reviewer_id=None)
        )
    db.session.commit()
    return sample


@pytest.fixture
def finished(app):
    """Three finished samples: two from one video, one from another; one denoised."""
    with app.app_context():
        video = Source(kind=SourceKind.YOUTUBE, external_id="abc123", info={})
        other = Source(kind=SourceKind.YOUTUBE, external_id="xyz789", info={})
        ids = [
            finished_sample(app, video, "part 1", 1).id,
            finished_sample(app, video, "part 2", 2).id,
            finished_sample(app, other, "other", 3).id,
        ]
        denoise.run(ids[0])
    return ids


def snapshot_folder(result) -> Path:
    line = next(line for line in result.output.splitlines() if line.startswith("export "))
    return Path(line.split(": ", 1)[1])


def test_export_writes_the_layout_and_a_snapshot_that_reads_back(app, runner, finished):
    result = runner.invoke(export_cmd, ["--task-type", "audio_segmentation"])
    assert result.exit_code == 0, result.output
    folder = snapshot_folder(result)
    data_root = app.config["DATA_ROOT"]
    assert folder.parent == data_root / "exports"

    for sample_id in finished:
        staged = data_root / f"reviewed/audio_segmentation/{sample_id}"
        names = {p.name for p in staged.iterdir()}
        expected = {"audio.wav", "transcript.json", "translation.json", "metadata.json"}
        assert expected | {"segments.jsonl", "segments"} <= names
        assert ("denoised.wav" in names) == (sample_id == finished[0])
        transcript = json.loads((staged / "transcript.json").read_text())
        assert [s["text"] for s in transcript["sentences"]] == [r["text"] for r in ROWS]
        assert {w["lang"] for s in transcript["sentences"] for w in s["words"]} == {"vi", "en"}
        translation = json.loads((staged / "translation.json").read_text())
        assert [s["translation"] for s in translation["sentences"]] == [
            r["translation"] for r in ROWS
        ]
        meta = json.loads((staged / "metadata.json").read_text())
        assert meta["task_type"] == "audio_segmentation" and meta["segments"] == 2

    manifest = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 6
    with app.app_context():
        for line in manifest:  # NeMo's fields, paths relative to the manifest's folder
            for name, kind in NEMO_FIELDS.items():
                assert isinstance(line[name], kind), (name, line[name])
            audio = folder / line["audio_filepath"]
            master = read_pcm(wav_info(audio))
            assert line["offset"] + line["duration"] <= len(master) / RATE
            clip = read_pcm(wav_info(folder / line["clip_filepath"]))
            first = round(line["offset"] * RATE)
            assert np.array_equal(clip, master[first : first + len(clip)])
            assert abs(len(clip) / RATE - line["duration"]) < 1 / RATE
            seg = db.session.get(Segment, line["segment_id"])
            assert (line["text"], line["translation"]) == (seg.text, seg.translation)
            assert len(line["lang_tags"]) == len(line["text"].split()) == len(line["words"])
            assert line["source"]["external_id"] in ("abc123", "xyz789")
            assert line["transcript_revision_id"] == str(seg.transcript_revision_id)
            sample = db.session.get(Sample, line["sample_id"])
            assert line["split"] == split_of(sample.source)
            assert sample.processing_state is S.EXPORTED

    # One video never spans two splits; the split files partition the manifest.
    by_video = {}
    for line in manifest:
        by_video.setdefault(line["source"]["external_id"], set()).add(line["split"])
    assert all(len(splits) == 1 for splits in by_video.values())
    parts = [
        json.loads(line)
        for split in ("train", "dev", "test")
        for line in (folder / f"{split}.jsonl").read_text().splitlines()
    ]
    assert sorted(p["segment_id"] for p in parts) == sorted(m["segment_id"] for m in manifest)

    info = json.loads((folder / "export.json").read_text())
    assert info["export_id"] == folder.name and info["samples"] == 3 and info["segments"] == 6
    assert verify_checksums(folder) == []
    check = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=folder)
    assert check.returncode == 0


def test_every_export_is_a_frozen_snapshot(app, runner, finished):
    first = snapshot_folder(runner.invoke(export_cmd, ["--task-type", "audio_segmentation"]))
    again = runner.invoke(export_cmd, ["--task-type", "audio_segmentation"])
    assert again.exit_code == 0 and "nothing (new) to export" in again.output

    with app.app_context():  # a reviewer changes a segment: only that sample is new
        content = export_docs.content_of(
            db.session.get(Sample, finished[2]), TaskType.AUDIO_SEGMENTATION
        )
        seg = content.segments[0]
        seg.text = seg.text + " thôi"
        db.session.commit()
    changed = runner.invoke(export_cmd, ["--task-type", "audio_segmentation"])
    second = snapshot_folder(changed)
    assert second != first
    lines = (second / "samples.jsonl").read_text().splitlines()
    assert [json.loads(x)["sample_id"] for x in lines] == [str(finished[2])]

    everything = snapshot_folder(
        runner.invoke(export_cmd, ["--task-type", "audio_segmentation", "--include-exported"])
    )
    assert json.loads((everything / "export.json").read_text())["samples"] == 3
    # The re-exports replaced the staged folders; the first snapshot did not change.
    assert verify_checksums(first) == []
    assert "thôi" not in (first / "manifest.jsonl").read_text()


def test_limit_dry_run_output_dir_and_task_types(app, runner, finished, tmp_path):
    dry = runner.invoke(export_cmd, ["--dry-run"])
    assert dry.exit_code == 0 and "would_export" in dry.output
    assert not (app.config["DATA_ROOT"] / "exports").exists()
    assert not (app.config["DATA_ROOT"] / "reviewed").exists()

    out = tmp_path / "elsewhere"
    result = runner.invoke(
        export_cmd,
        ["--task-type", "transcript_correction", "--limit", "2", "--output-dir", str(out)],
    )
    assert result.exit_code == 0, result.output
    folder = snapshot_folder(result)
    assert folder.parent == out / "exports"
    assert sorted(p.name for p in (out / "reviewed/transcript_correction").iterdir()) == sorted(
        str(i) for i in finished[:2]
    )
    samples = [json.loads(x) for x in (folder / "samples.jsonl").read_text().splitlines()]
    assert [s["task_type"] for s in samples] == ["transcript_correction"] * 2
    with app.app_context():  # a text export does not move the sample on
        assert db.session.get(Sample, finished[0]).processing_state is S.DENOISED


def test_export_stage_is_idempotent(app, runner, finished, io_worker):
    result = runner.invoke(export_run_cmd, ["--batch"])
    assert result.exit_code == 0, result.output
    staged = app.config["DATA_ROOT"] / f"reviewed/audio_segmentation/{finished[1]}"
    stamp = (staged / "metadata.json").stat().st_mtime_ns
    with app.app_context():
        assert db.session.get(Sample, finished[1]).processing_state is S.EXPORTED
        again = export.run(finished[1])
    assert again["status"] == "already_exported"
    assert (staged / "metadata.json").stat().st_mtime_ns == stamp


def test_segment_review_flows_into_denoise_then_export(app, celery_app, finished, dispatcher):
    sample_id = finished[1]
    with app.app_context():
        follow_up(db.session.get(Sample, sample_id))  # what the segment review's submit queues
        db.session.commit()

    def exported():
        with app.app_context():
            return db.session.get(Sample, sample_id).processing_state is S.EXPORTED

    with start_worker(
        celery_app, pool="threads", concurrency=1, queues=["cpu", "io"], perform_ping_check=False
    ):
        wait_for(exported, timeout=60)
    with app.app_context():
        names = db.session.scalars(
            sa.select(OutboxMessage.task_name)
            .where(OutboxMessage.sample_id == sample_id)
            .order_by(OutboxMessage.id)
        ).all()
        assert names == ["pipeline.denoise", "pipeline.export"]  # each queued by the one before
        sample = db.session.get(Sample, sample_id)
        assert sample.processing_state is S.EXPORTED and sample.denoised_path
        staged = app.config["DATA_ROOT"] / f"reviewed/audio_segmentation/{sample_id}"
        assert (staged / "denoised.wav").is_file()


def test_split_follows_the_source_deterministically(app):
    with app.app_context():
        sources = [
            types.SimpleNamespace(kind=SourceKind.YOUTUBE, external_id=f"video{i}")
            for i in range(2000)
        ]
        splits = [split_of(s) for s in sources]
        assert splits == [split_of(s) for s in sources]
        counts = Counter(splits)
        assert 0.85 < counts["train"] / 2000 < 0.95
        assert 0.02 < counts["dev"] / 2000 < 0.08 and 0.02 < counts["test"] / 2000 < 0.08


def test_manifest_loads_with_hugging_face_datasets(app, runner, finished):
    datasets = pytest.importorskip("datasets")  # not installed by default: heavy
    folder = snapshot_folder(runner.invoke(export_cmd, ["--task-type", "audio_segmentation"]))
    table = datasets.load_dataset("json", data_files=str(folder / "manifest.jsonl"))["train"]
    assert table.num_rows == 6
    assert {"audio_filepath", "offset", "duration", "text", "translation"} <= set(
        table.column_names
    )


def test_an_export_of_every_task_type_lists_each_clip_once(app, runner, finished):
    """Each sample was reviewed as text and as segments: its clips belong to the
    audio_segmentation export only, so the manifest has one line per clip."""
    result = runner.invoke(export_cmd, [])  # every task type
    assert result.exit_code == 0, result.output
    folder = snapshot_folder(result)
    lines = [json.loads(x) for x in (folder / "manifest.jsonl").read_text().splitlines()]
    segment_ids = [line["segment_id"] for line in lines]
    assert len(segment_ids) == len(set(segment_ids)) == 2 * len(finished)
    assert {line["task_type"] for line in lines} == {"audio_segmentation"}
    samples = [json.loads(x) for x in (folder / "samples.jsonl").read_text().splitlines()]
    assert {s["task_type"] for s in samples} == {"audio_segmentation", "transcript_correction"}


def test_the_manifest_says_how_long_each_clip_really_is(app, runner, finished):
    """A segment recorded past the end of the recording (an older review) gets the length
    of the clip that is cut, not the length the row says."""
    with app.app_context():
        last = db.session.scalar(
            sa.select(Segment).where(Segment.sample_id == finished[1], Segment.position == 1)
        )
        last.end_s = 30.0  # the recording is 25 s long
        db.session.commit()
    folder = snapshot_folder(runner.invoke(export_cmd, ["--task-type", "audio_segmentation"]))
    for line in (folder / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        clip = wav_info(folder / entry["clip_filepath"])
        assert abs(clip.duration_s - entry["duration"]) < 1 / RATE
        assert entry["offset"] + entry["duration"] <= 25.0 + 1e-6
