"""`flask ingest youtube` with the real yt-dlp against a local video site."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from yt_dlp.utils import DownloadError

from pipeline.errors import PermanentError, TransientError
from pipeline.stages.youtube import choose_subtitles, classify
from ra_app.core.models import FailureClass, JobRun, JobStatus, Origin, Sample, TranscriptRevision
from ra_app.extensions import db

from .test_ingest_files import summary
from .ytserver import fake_site as fake_site  # noqa: F401  (fixture)
from .ytserver import sample_vtt, write_netscape_cookie_file

VI = sample_vtt("Xin chào các bạn.", "Hôm nay mình review cái laptop này.", cue_seconds=1.0)
EN = sample_vtt("Hello everyone.", "Today I review this laptop.", cue_seconds=1.0)


@pytest.fixture
def app_settings(app):
    app.config.update(YTDLP_RETRIES=0, YTDLP_SOCKET_TIMEOUT=5)
    return app


def samples(app):
    with app.app_context():
        return db.session.scalars(sa.select(Sample).order_by(Sample.title)).all()


def runs(app):
    with app.app_context():
        return db.session.scalars(sa.select(JobRun).order_by(JobRun.id)).all()


def test_a_video_becomes_a_sample_with_metadata_and_subtitles(
    app_settings, runner, io_worker, fake_site
):
    app = app_settings
    fake_site.add_video(
        "vidA0000001",
        "Review laptop",
        "Kênh Công Nghệ",
        duration_s=3,
        subtitles={"vi": VI, "en": EN},
        upload_date="20250315",
    )
    url = fake_site.watch_url("vidA0000001")
    result = runner.invoke(args=["ingest", "youtube", url])
    assert result.exit_code == 0, result.output
    assert summary(result.output)["vidA0000001"].startswith("created")

    (sample,) = samples(app)
    assert sample.title == "Review laptop" and sample.language == "vi"
    assert sample.duration_s == pytest.approx(3.0, abs=0.1)
    with app.app_context():
        sample = db.session.get(Sample, sample.id)
        source = sample.source
        assert (source.kind.value, source.external_id) == ("youtube", "vidA0000001")
        assert source.channel == "Kênh Công Nghệ" and source.url == url
        assert source.info["upload_date"] == "20250315" and source.info["duration"] == 3
        assert source.info["subtitle_kind"] == "manual"
        (revision,) = db.session.scalars(sa.select(TranscriptRevision)).all()
        assert revision.origin is Origin.YOUTUBE_SUBTITLES
        assert [s["text"] for s in revision.sentences] == [
            "Xin chào các bạn.",
            "Hôm nay mình review cái laptop này.",
        ]
    download_dir = app.config["DATA_ROOT"] / "downloads" / "youtube"
    assert len((download_dir / "metadata.jsonl").read_text().splitlines()) == 1

    again = runner.invoke(args=["ingest", "youtube", url])
    assert summary(again.output)["vidA0000001"].startswith("duplicate")
    media_requests = fake_site.requests_to(fake_site.media_path("vidA0000001"))
    assert len(media_requests) == 1  # the duplicate was not downloaded again


def test_a_playlist_with_a_cap_and_the_transcript_rule(app_settings, runner, io_worker, fake_site):
    app = app_settings
    # Different lengths make different audio (the same bytes would be one sample).
    fake_site.add_video("vidB0000001", "Một", "Kênh", subtitles={"vi": VI}, duration_s=2)
    fake_site.add_video("vidB0000002", "Hai", "Kênh", subtitles=None, duration_s=3)
    fake_site.add_video("vidB0000003", "Ba", "Kênh", subtitles={"en": EN}, with_audio=False)
    fake_site.add_video("vidB0000004", "Bốn", "Kênh", subtitles={"vi": VI}, duration_s=4)
    playlist = fake_site.add_playlist(
        "pl1", ["vidB0000001", "vidB0000002", "vidB0000003", "vidB0000004"]
    )

    result = runner.invoke(args=["ingest", "youtube", playlist, "--max-videos", "3"])
    lines = summary(result.output)
    assert lines["vidB0000001"].startswith("created")
    assert (
        lines["vidB0000002"].startswith("skipped")
        and "no Vietnamese or English" in lines["vidB0000002"]
    )
    assert (
        lines["vidB0000003"].startswith("failed") and "has no audio stream" in lines["vidB0000003"]
    )
    assert "vidB0000004" not in lines  # beyond --max-videos
    assert result.exit_code == 1  # one video failed
    assert [s.title for s in samples(app)] == ["Một"]

    kept = runner.invoke(
        args=["ingest", "youtube", "--no-require-transcript", fake_site.watch_url("vidB0000002")]
    )
    assert summary(kept.output)["vidB0000002"].startswith("created")


def test_failures_are_classified_and_one_bad_url_never_stops_the_rest(
    app_settings, runner, io_worker, fake_site
):
    fake_site.add_video("vidC0000001", "Tốt", "Kênh", subtitles={"vi": VI})
    urls = {
        "forbidden": fake_site.status_url(403),
        "limited": fake_site.status_url(429),
        "gone": fake_site.status_url(410),
        "removed": fake_site.status_url(404),
    }
    result = runner.invoke(
        args=["ingest", "youtube", *urls.values(), fake_site.watch_url("vidC0000001")]
    )
    lines = summary(result.output)
    assert result.exit_code == 1
    assert lines["vidC0000001"].startswith("created")
    assert "[transient]" in lines[urls["forbidden"]] and "--cookies" in lines[urls["forbidden"]]
    assert "[transient]" in lines[urls["limited"]] and "back off" in lines[urls["limited"]]
    assert "[permanent]" in lines[urls["gone"]] and "410" in lines[urls["gone"]]
    assert "[permanent]" in lines[urls["removed"]] and "404" in lines[urls["removed"]]


def test_a_transient_failure_during_download_is_retried_by_the_worker(
    app_settings, runner, io_worker, fake_site
):
    app = app_settings
    fake_site.add_video("vidD0000001", "Bận", "Kênh", subtitles={"vi": VI})
    fake_site.fail(fake_site.media_path("vidD0000001"), 429, times=1)
    result = runner.invoke(args=["ingest", "youtube", fake_site.watch_url("vidD0000001")])
    line = summary(result.output)["vidD0000001"]
    assert line.startswith("retrying") and "try again later" in line
    (run,) = runs(app)
    assert run.status is JobStatus.FAILED and run.failure_class is FailureClass.TRANSIENT
    assert "429" in run.error
    assert samples(app) == []


def test_cookies_reach_the_site(app_settings, runner, io_worker, fake_site, tmp_path):
    fake_site.add_video(
        "vidE0000001", "Riêng", "Kênh", subtitles={"vi": VI}, require_cookie=("SID", "s3cr3t")
    )
    url = fake_site.watch_url("vidE0000001")
    refused = runner.invoke(args=["ingest", "youtube", url])
    assert "--cookies" in summary(refused.output)[url]
    cookies = write_netscape_cookie_file(tmp_path / "cookies.txt", {"SID": "s3cr3t"})
    result = runner.invoke(args=["ingest", "youtube", "--cookies", str(cookies), url])
    assert summary(result.output)["vidE0000001"].startswith("created"), result.output
    assert fake_site.requests_to(fake_site.media_path("vidE0000001"))[-1].cookies["SID"] == "s3cr3t"


def test_dry_run_downloads_and_writes_nothing(app_settings, runner, fake_site):
    app = app_settings
    fake_site.add_video("vidF0000001", "Thử", "Kênh", subtitles={"vi": VI})
    result = runner.invoke(
        args=["ingest", "youtube", "--dry-run", fake_site.watch_url("vidF0000001")]
    )
    assert result.exit_code == 0, result.output
    line = summary(result.output)["vidF0000001"]
    assert line.startswith("would_create") and "manual vi subtitles" in line
    assert fake_site.requests_to(fake_site.media_path("vidF0000001")) == []
    assert samples(app) == [] and runs(app) == []
    assert not (app.config["DATA_ROOT"] / "downloads").exists()


def test_skip_download_reimports_earlier_downloads(app_settings, runner, io_worker, fake_site):
    app = app_settings
    fake_site.add_video("vidG0000001", "Lần trước", "Kênh", subtitles={"vi": VI})
    assert (
        runner.invoke(args=["ingest", "youtube", fake_site.watch_url("vidG0000001")]).exit_code == 0
    )
    with app.app_context():  # the database is lost; the downloads are not
        for table in ("transcript_revisions", "job_runs", "samples", "sources"):
            db.session.execute(sa.text(f"DELETE FROM {table}"))
        db.session.commit()
    fake_site.stop()  # no network from here on

    result = runner.invoke(args=["ingest", "youtube", "--skip-download"])
    assert result.exit_code == 0, result.output
    assert summary(result.output)["vidG0000001"].startswith("created")
    (sample,) = samples(app)
    assert sample.title == "Lần trước"


@pytest.mark.parametrize(
    "message,expected",
    [
        (
            "ERROR: [youtube] abc: Sign in to confirm you’re not a bot. Use --cookies-from-browser",
            TransientError,
        ),
        (
            "ERROR: [youtube] abc: Private video. Sign in if you've been granted access",
            PermanentError,
        ),
        (
            "ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader",
            PermanentError,
        ),
        ("ERROR: unable to download video data: HTTP Error 429: Too Many Requests", TransientError),
        (
            "ERROR: [youtube] abc: Unable to download API page: <urlopen error timed out>",
            TransientError,
        ),
    ],
)
def test_youtube_messages_are_classified(message, expected):
    error = classify(DownloadError(message))
    assert type(error) is expected
    if "not a bot" in message:
        assert "--cookies" in str(error)
    if "429" in message:
        assert "back off" in str(error)


@pytest.mark.parametrize(
    "info,choice",
    [
        ({"subtitles": {"vi": [{}], "en": [{}]}}, ("vi", "manual")),
        ({"subtitles": {"en": [{}]}, "automatic_captions": {"vi": [{}]}}, ("en", "manual")),
        (
            {"subtitles": {}, "automatic_captions": {"en": [{}], "vi-orig": [{}]}},
            ("vi-orig", "automatic"),
        ),
        ({"subtitles": {"fr": [{}]}, "automatic_captions": {"fr": [{}]}}, None),
        ({}, None),
    ],
)
def test_manual_subtitles_first_then_automatic_captions(info, choice):
    assert choose_subtitles(info) == choice
