"""`flask ingest files` and `flask ingest archive` with real ffmpeg, Postgres and a real
Celery worker on Redis."""

from __future__ import annotations

import io
import tarfile
import unicodedata

import pytest
import soundfile
import sqlalchemy as sa

from ra_app.core.models import FailureClass, JobRun, JobStatus, Origin, Sample, TranscriptRevision
from ra_app.core.states import ProcessingState
from ra_app.extensions import db

from . import audio

VTT = (
    "WEBVTT\n\n00:00.000 --> 00:01.500\nXin chào các bạn.\n\n"
    "00:01.500 --> 00:02.900\nHôm nay mình review laptop.\n"
)


def samples(app):
    with app.app_context():
        return db.session.scalars(sa.select(Sample).order_by(Sample.created_at)).all()


def job_runs(app):
    with app.app_context():
        return db.session.scalars(sa.select(JobRun).order_by(JobRun.id)).all()


def summary(output: str) -> dict[str, str]:
    """Summary lines by label: {'/path/a.mp3': 'created  /path/a.mp3  3.0 s'}."""
    lines = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in {
            "created",
            "duplicate",
            "failed",
            "would_create",
            "skipped",
            "busy",
            "retrying",
        }:
            lines[parts[1]] = line
    return lines


def leftovers(app) -> list[str]:
    tmp = app.config["DATA_ROOT"] / "tmp"
    return [str(p) for p in tmp.rglob("*")] if tmp.exists() else []


def test_files_become_playable_samples(app, runner, io_worker, tmp_path):
    src = tmp_path / "in"
    audio.tone(src / "talk.mp3", seconds=3.0)
    (src / "talk.vtt").write_text(unicodedata.normalize("NFD", VTT), encoding="utf-8")
    audio.video_with_audio(src / "nested" / "clip.mp4", seconds=2.0)

    result = runner.invoke(args=["ingest", "files", str(src)])
    assert result.exit_code == 0, result.output
    lines = summary(result.output)
    assert len(lines) == 2 and all(line.startswith("created") for line in lines.values())
    assert "2 created" in result.output

    talk, clip = sorted(samples(app), key=lambda s: s.title != "talk")
    assert talk.processing_state is ProcessingState.INGESTED
    assert talk.duration_s == pytest.approx(3.0, abs=0.05)
    assert clip.duration_s == pytest.approx(2.0, abs=0.1)
    root = app.config["DATA_ROOT"]
    info = soundfile.info(root / talk.master_path)
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert (root / talk.rendition_path).stat().st_size > 1000
    assert (root / talk.peaks_path).read_bytes()[:4] == b"RAPK"

    with app.app_context():
        (revision,) = db.session.scalars(sa.select(TranscriptRevision)).all()
        assert revision.sample_id == talk.id and revision.origin is Origin.SIDECAR_SUBTITLES
        assert [s["text"] for s in revision.sentences] == [
            "Xin chào các bạn.",
            "Hôm nay mình review laptop.",
        ]
        assert all(unicodedata.is_normalized("NFC", s["text"]) for s in revision.sentences)
    assert [r.status for r in job_runs(app)] == [JobStatus.SUCCEEDED] * 2
    assert leftovers(app) == []


def test_same_audio_twice_stays_one_sample(app, runner, io_worker, tmp_path):
    original = audio.tone(tmp_path / "a.mp3", freq=300)
    copy = tmp_path / "copy" / "same.mp3"
    copy.parent.mkdir()
    copy.write_bytes(original.read_bytes())
    first = runner.invoke(args=["ingest", "files", str(original)])
    assert first.exit_code == 0, first.output
    again = runner.invoke(args=["ingest", "files", str(original), str(copy)])
    assert again.exit_code == 0, again.output
    lines = summary(again.output)
    assert lines[str(original)].startswith("duplicate")
    assert lines[str(copy)].startswith("duplicate") and "already ingested" in lines[str(copy)]
    assert len(samples(app)) == 1


@pytest.mark.parametrize("first", ["copy", "talk"])
def test_a_copy_without_subtitles_does_not_drop_them_whatever_comes_first(
    app, runner, io_worker, tmp_path, first
):
    """talk.mp3 with talk.vtt beside it, and the same bytes again without: the sample gets
    the subtitles as its first transcript in either order."""
    talk = audio.tone(tmp_path / "in" / "talk.mp3", freq=310)
    (tmp_path / "in" / "talk.vtt").write_text(VTT, encoding="utf-8")
    copy = tmp_path / "elsewhere" / "copy.mp3"
    copy.parent.mkdir()
    copy.write_bytes(talk.read_bytes())
    order = [copy, talk] if first == "copy" else [talk, copy]
    for path in order:
        result = runner.invoke(args=["ingest", "files", str(path)])
        assert result.exit_code == 0, result.output
    (sample,) = samples(app)
    with app.app_context():
        (transcript,) = db.session.scalars(
            sa.select(TranscriptRevision).where(TranscriptRevision.sample_id == sample.id)
        ).all()
        assert transcript.origin is Origin.SIDECAR_SUBTITLES and transcript.version == 1
        assert [s["text"] for s in transcript.sentences] == [
            "Xin chào các bạn.",
            "Hôm nay mình review laptop.",
        ]


def test_every_bad_input_gets_its_own_error(app, runner, io_worker, tmp_path):
    good = audio.tone(tmp_path / "good.wav", seconds=2.0, freq=880)
    bad = {
        "empty": tmp_path / "empty.mp3",
        "text": tmp_path / "notes.mp3",
        # The WAV header announces 20 s; only 6 s of data follow (an interrupted copy).
        "truncated": audio.truncated(
            audio.tone(tmp_path / "full.wav", seconds=20.0, freq=510), tmp_path / "cut.wav"
        ),
        "no_audio": audio.video_without_audio(tmp_path / "silent.mp4"),
        "short": audio.tone(tmp_path / "blip.wav", seconds=0.4, freq=990),
    }
    bad["empty"].write_bytes(b"")
    bad["text"].write_text("these are meeting notes, not audio\n")
    result = runner.invoke(
        args=["ingest", "files", str(good), *map(str, bad.values()), str(tmp_path / "missing.wav")]
    )
    assert result.exit_code == 1  # something failed
    lines = summary(result.output)
    assert lines[str(good)].startswith("created")
    assert "file is empty" in lines[str(bad["empty"])]
    assert "not an audio or video file" in lines[str(bad["text"])]
    assert any(w in lines[str(bad["truncated"])] for w in ("truncated", "corrupt"))
    assert "has no audio stream" in lines[str(bad["no_audio"])]
    assert "0.4 s long; the minimum is 1.0 s" in lines[str(bad["short"])]
    assert "no such file" in lines[str(tmp_path / "missing.wav")]

    assert [s.title for s in samples(app)] == ["good"]
    failed = [r for r in job_runs(app) if r.status is JobStatus.FAILED]
    assert len(failed) == 5
    assert all(r.failure_class is FailureClass.PERMANENT for r in failed)
    assert any("has no audio stream" in r.error for r in failed)
    sample_dirs = list((app.config["DATA_ROOT"] / "samples").iterdir())
    assert len(sample_dirs) == 1  # nothing half-made for the failures
    assert leftovers(app) == []


def test_dry_run_writes_nothing(app, runner, tmp_path):
    clip = audio.tone(tmp_path / "a.wav", freq=350)
    result = runner.invoke(args=["ingest", "files", "--dry-run", str(clip)])
    assert result.exit_code == 0, result.output
    assert summary(result.output)[str(clip)].startswith("would_create")
    assert samples(app) == [] and job_runs(app) == []
    assert not (app.config["DATA_ROOT"] / "samples").exists()


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes, **attrs) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    for key, value in attrs.items():
        setattr(member, key, value)
    tar.addfile(member, io.BytesIO(data))


def make_archive(tmp_path):
    ok1 = audio.tone(tmp_path / "src" / "one.mp3", freq=410).read_bytes()
    ok2 = audio.tone(tmp_path / "src" / "two.wav", freq=420, seconds=2).read_bytes()
    path = tmp_path / "batch.tar"
    with tarfile.open(path, "w") as tar:
        add_bytes(tar, "calls/one.mp3", ok1)
        add_bytes(tar, "calls/one.vtt", VTT.encode())
        add_bytes(tar, "calls/two.wav", ok2)
        add_bytes(tar, "calls/broken.mp3", b"ID3 this is not really audio" * 10)
        add_bytes(tar, "../escape.mp3", ok1)
        link = tarfile.TarInfo("calls/link.mp3")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    return path


def test_archive_members_are_ingested_and_bad_ones_reported(app, runner, io_worker, tmp_path):
    archive = make_archive(tmp_path)
    result = runner.invoke(args=["ingest", "archive", str(archive)])
    assert result.exit_code == 1, result.output  # some members failed
    lines = summary(result.output)
    key = str(archive)
    assert lines[f"{key}/calls/one.mp3"].startswith("created")
    assert (
        "1 subtitle sentences" in lines[f"{key}/calls/one.mp3"]
        or "2 subtitle" in lines[f"{key}/calls/one.mp3"]
    )
    assert lines[f"{key}/calls/two.wav"].startswith("created")
    assert "not an audio or video file" in lines[f"{key}/calls/broken.mp3"]
    assert "escapes the scratch folder" in lines[f"{key}/../escape.mp3"]
    assert "links are not accepted" in lines[f"{key}/calls/link.mp3"]
    assert sorted(s.title for s in samples(app)) == ["one", "two"]
    assert not (tmp_path.parent / "escape.mp3").exists()
    assert leftovers(app) == []  # the scratch folder is gone
    with app.app_context():  # members are tasks of their own: their failures are not the
        runs = db.session.scalars(sa.select(JobRun)).all()  # archive's retries
        (whole,) = [r for r in runs if r.subject == f"archive:{key}"]
        members = [r for r in runs if r is not whole]
        assert whole.status is JobStatus.SUCCEEDED and len(members) == 3  # two refused unread
        assert whole.task_id not in {r.task_id for r in members}
        assert len({r.task_id for r in members}) == 3

    again = runner.invoke(args=["ingest", "archive", str(archive)])
    assert "2 duplicate" in again.output and len(samples(app)) == 2


def test_an_unreadable_archive_is_reported_and_cleaned_up(app, runner, io_worker, tmp_path):
    not_tar = tmp_path / "x.tar"
    not_tar.write_text("not a tar file at all")
    result = runner.invoke(args=["ingest", "archive", str(not_tar)])
    assert result.exit_code == 1
    assert "not a readable .tar archive" in result.output
    (run,) = job_runs(app)
    assert run.status is JobStatus.FAILED and run.failure_class is FailureClass.PERMANENT
    assert leftovers(app) == []
    missing = runner.invoke(args=["ingest", "archive", str(tmp_path / "nope.tar")])
    assert missing.exit_code == 1 and "no such archive" in missing.output


def test_archive_from_s3_storage(app, runner, io_worker, tmp_path):
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="k",
            aws_secret_access_key="s",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="audio")
        s3.upload_file(str(make_archive(tmp_path)), "audio", "incoming/batch-7.tar")
        app.config.update(
            S3_ENDPOINT=endpoint, S3_ACCESS_KEY="k", S3_SECRET_KEY="s", S3_BUCKET="audio"
        )
        result = runner.invoke(args=["ingest", "archive", "incoming/batch-7.tar"])
        assert "incoming/batch-7.tar/calls/two.wav" in result.output
        assert sorted(s.title for s in samples(app)) == ["one", "two"]
        assert leftovers(app) == []
        unsafe = runner.invoke(args=["ingest", "archive", "../outside/keys.tar"])
        assert unsafe.exit_code == 1 and "unsafe storage key" in unsafe.output, unsafe.output
    finally:
        server.stop()


def test_ingested_sample_shows_on_the_admin_page(
    app, client, auth, admin, runner, io_worker, tmp_path
):
    clip = audio.tone(tmp_path / "interview.mp3", seconds=65.0, freq=260)
    assert runner.invoke(args=["ingest", "files", str(clip)]).exit_code == 0
    auth.login(admin.email)
    page = client.get("/admin/").get_data(as_text=True)
    (sample,) = samples(app)
    row = page[page.index(f'data-sample="{sample.id}"') :]
    row = row[: row.index("</tr>")]
    assert "interview" in row and "ingested" in row and "1:05" in row
    assert 'data-state="ingested">1<' in page
    assert 'data-ingest="succeeded">1<' in page
