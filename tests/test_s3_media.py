"""The media in an S3 bucket (STORAGE_BACKEND=s3, moto's server on loopback): ingestion puts
a sample's files in the bucket and nothing under the host's DATA_ROOT, the review audio is
streamed with Range or redirected to a presigned URL (after the task's check), a window's
clip is cut and stored on first use, and a large upload cut off is resumed part by part."""

from __future__ import annotations

import threading
import uuid

import pytest
import requests

from config import celery_settings
from pipeline.ingest_cli import ingest_cli
from ra_app.core.media_store import media_storage
from ra_app.core.models import Sample
from ra_app.core.revisions import latest_transcript
from ra_app.core.s3 import S3Storage
from ra_app.extensions import db

from . import audio
from .conftest import PASSWORD, AuthActions, empty_tables, make_app
from .review_helpers import assign, claim, make_review_sample
from .test_storage import MiB, a_file, new_bucket

pytestmark = pytest.mark.usefixtures("s3_endpoint")


def s3_settings(endpoint: str, bucket: str) -> dict:
    return {
        "STORAGE_BACKEND": "s3",
        "S3_ENDPOINT": endpoint,
        "S3_ACCESS_KEY": "k",
        "S3_SECRET_KEY": "s",
        "S3_BUCKET": bucket,
        "S3_PREFIX": "site-1",
    }


@pytest.fixture
def bucket(s3_endpoint):
    return new_bucket(s3_endpoint)


@pytest.fixture
def app(database_url_for_session, tmp_path, s3_endpoint, bucket):
    app = make_app(
        database_url_for_session,
        tmp_path / "data",
        MEDIA_CACHE_DIR=str(tmp_path / "cache"),
        CELERY=celery_settings(None),  # tasks in-process: the drill runs real workers
        **s3_settings(s3_endpoint, bucket.bucket),
    )
    yield app
    empty_tables(app)


def task_on_a_sample(app, tmp_path, user_id, window_s=0, duration_s=20.0):
    with app.app_context():
        sample = make_review_sample(tmp_path, duration_s=duration_s)
        assign(sample, user_id, window_s=window_s)
        return str(claim(user_id).id), str(sample.id)


def test_ingestion_puts_the_files_in_the_bucket_and_nothing_on_the_host(app, bucket, tmp_path):
    with app.app_context():
        sample = make_review_sample(tmp_path)
        keys = set(bucket.keys(f"samples/{sample.id}"))
        assert keys == {
            f"samples/{sample.id}/{n}" for n in ("master.wav", "audio.m4a", "peaks.bin")
        }
        assert bucket.size(sample.master_path) == 44 + 20 * 16000 * 2
        assert media_storage() is media_storage()  # one client per process
    data_root = app.config["DATA_ROOT"]
    assert not (data_root / "samples").exists()
    assert not any((data_root / "tmp").iterdir())  # the work folder is cleared


@pytest.mark.parametrize("delivery", ["stream", "redirect"])
def test_review_audio_from_the_bucket_with_range(
    app, client, auth, reviewer, make_user, bucket, tmp_path, delivery
):
    app.config["AUDIO_DELIVERY"] = delivery
    task_id, sample_id = task_on_a_sample(app, tmp_path, reviewer.id)
    with app.app_context():
        stored = bucket.read_range(
            db.session.get(Sample, uuid.UUID(sample_id)).rendition_path, 0, 10**9
        )

    intruder = make_user("intruder@example.org")
    auth.login(intruder.email)
    refused = client.get(f"/tasks/{task_id}/audio")
    assert refused.status_code == 403 and "Location" not in refused.headers
    auth.logout()

    auth.login(reviewer.email)
    if delivery == "stream":
        whole = client.get(f"/tasks/{task_id}/audio")
        assert whole.status_code == 200 and whole.get_data() == stored
        assert whole.headers["Accept-Ranges"] == "bytes" and whole.mimetype == "audio/mp4"
        part = client.get(f"/tasks/{task_id}/audio", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.get_data() == stored[100:200]
        assert part.headers["Content-Range"] == f"bytes 100-199/{len(stored)}"
        tail = client.get(f"/tasks/{task_id}/audio", headers={"Range": "bytes=-50"})
        assert tail.status_code == 206 and tail.get_data() == stored[-50:]
        past = client.get(f"/tasks/{task_id}/audio", headers={"Range": f"bytes={len(stored)}-"})
        assert past.status_code == 416
    else:
        answer = client.get(f"/tasks/{task_id}/audio")
        assert answer.status_code == 302 and "no-store" in answer.headers["Cache-Control"]
        page = client.get(f"/tasks/{task_id}")
        media_src = next(
            d
            for d in page.headers["Content-Security-Policy"].split("; ")
            if d.startswith("media-src")
        )
        assert media_src == f"media-src 'self' blob: {app.config['S3_ENDPOINT']}"
        url = answer.headers["Location"]
        assert url.startswith(app.config["S3_ENDPOINT"]) and "Signature" in url
        part = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=10)
        assert part.status_code == 206 and part.content == stored[100:200]
        assert requests.get(url, timeout=10).content == stored
    peaks = client.get(f"/tasks/{task_id}/peaks?max_points=500").get_json()
    assert peaks["duration_s"] == 20.0 and max(peaks["data"]) > 0.1


def test_a_window_clip_is_cut_once_and_kept_in_the_bucket(
    app, client, auth, reviewer, bucket, tmp_path
):
    task_id, sample_id = task_on_a_sample(app, tmp_path, reviewer.id, window_s=20, duration_s=50.0)
    auth.login(reviewer.email)
    first = client.get(f"/tasks/{task_id}/audio")
    assert first.status_code == 200
    clips = list(bucket.keys(f"samples/{sample_id}/windows"))
    assert len(clips) == 1
    clip = tmp_path / "clip.m4a"
    clip.write_bytes(first.get_data())
    from pipeline.probe import probe

    assert abs(probe(clip).duration_s - 20.0) < 0.1
    again = client.get(f"/tasks/{task_id}/audio")
    assert again.get_data() == first.get_data()
    assert list(bucket.keys(f"samples/{sample_id}/windows")) == clips


def test_two_tabs_opening_a_new_window_at_once_get_the_same_clip(app, reviewer, bucket, tmp_path):
    """Both requests may cut the clip; each stores it whole, and both play the same audio."""
    task_id, sample_id = task_on_a_sample(app, tmp_path, reviewer.id, window_s=20, duration_s=50.0)
    tabs = []
    for _ in range(2):
        tab = app.test_client()
        AuthActions(tab).login(reviewer.email, PASSWORD)
        tabs.append(tab)
    answers = [None, None]

    def listen(i):
        answers[i] = tabs[i].get(f"/tasks/{task_id}/audio")

    threads = [threading.Thread(target=listen, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].get_data() == answers[1].get_data() and len(answers[0].get_data()) > 1000
    (clip,) = bucket.keys(f"samples/{sample_id}/windows")
    assert bucket.read_range(clip, 0, 10**9) == answers[0].get_data()
    assert not any((app.config["DATA_ROOT"] / "tmp").iterdir())  # both work folders cleared


def test_ingest_files_uploads_first_so_any_worker_can_read_them(app, bucket, tmp_path):
    talk = audio.tone(tmp_path / "in" / "bài nói 1.wav", seconds=3, freq=440, channels=1)
    (tmp_path / "in" / "bài nói 1.vtt").write_text(
        "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nxin chào các bạn\n", encoding="utf-8"
    )
    result = app.test_cli_runner().invoke(ingest_cli, ["files", str(tmp_path / "in")])
    assert result.exit_code == 0, result.output
    assert "1 created" in result.output
    with app.app_context():
        sample = db.session.query(Sample).one()
        assert sample.title == "bài nói 1" and sample.source.external_id == str(talk.resolve())
        sentences = latest_transcript(sample.id).sentences
        assert [s["text"] for s in sentences] == ["xin chào các bạn"]
    assert list(bucket.keys("uploads")) == []  # removed once the sample exists
    again = app.test_cli_runner().invoke(ingest_cli, ["files", str(tmp_path / "in")])
    assert again.exit_code == 0 and "1 duplicate" in again.output
    assert list(bucket.keys("uploads")) == []  # an ingested file is not sent again


def test_an_upload_that_was_removed_is_a_clear_failure(app, bucket, tmp_path):
    from pipeline.errors import PermanentError
    from pipeline.stages.ingest import Recording, ingest
    from ra_app.core.models import SourceKind

    with (
        app.app_context(),
        pytest.raises(PermanentError, match="no longer in storage.*send the file again"),
    ):
        ingest(
            Recording(
                path="/elsewhere/a.wav",
                kind=SourceKind.FILE,
                external_id="/elsewhere/a.wav",
                key="uploads/x/a.wav",
            )
        )


class CutOff(Exception):
    pass


def test_a_large_upload_cut_off_is_resumed_part_by_part(s3_endpoint, tmp_path):
    plain = new_bucket(s3_endpoint)
    store = S3Storage(s3_endpoint, "k", "s", plain.bucket, prefix="site-1", part_bytes=5 * MiB)
    big = a_file(tmp_path / "long.wav", 23 * MiB)  # 5 parts: 4 of 5 MiB and 3 MiB

    sent = []

    def cut_after_two(n):
        sent.append(n)
        if len(sent) == 2:
            raise CutOff

    with pytest.raises(CutOff):
        store.put_file(big, "uploads/a/long.wav", on_part=cut_after_two, resume=True)
    assert not store.exists("uploads/a/long.wav")  # nobody sees half an object

    resumed = []
    digest = store.put_file(big, "uploads/a/long.wav", on_part=resumed.append, resume=True)
    assert resumed == [5 * MiB, 5 * MiB, 3 * MiB]  # the two parts already there were kept
    assert store.checksum("uploads/a/long.wav") == digest
    store.get_file("uploads/a/long.wav", tmp_path / "back.wav", digest)  # verified
    assert (tmp_path / "back.wav").read_bytes() == big.read_bytes()
    assert plain.client.list_multipart_uploads(Bucket=plain.bucket).get("Uploads", []) == []

    # A key that does not name its bytes (a master written again) never resumes: an
    # unfinished upload there is aborted and the whole file sent, with its own checksum.
    with pytest.raises(CutOff):
        sent.clear()
        store.put_file(big, "samples/b/master.wav", on_part=cut_after_two)
    other = a_file(tmp_path / "other.wav", 23 * MiB)
    again = []
    digest = store.put_file(other, "samples/b/master.wav", on_part=again.append)
    assert len(again) == 5
    store.get_file("samples/b/master.wav", tmp_path / "back2.wav", digest)
    assert (tmp_path / "back2.wav").read_bytes() == other.read_bytes()
    assert plain.client.list_multipart_uploads(Bucket=plain.bucket).get("Uploads", []) == []


def test_sidecar_subtitles_reach_a_recording_already_ingested(app, bucket, tmp_path):
    """The same file again, now with subtitles beside it: only they are sent, and they
    become the sample's first transcript on whichever worker takes it."""
    folder = tmp_path / "in"
    audio.tone(folder / "talk.wav", seconds=3, freq=440, channels=1)
    runner = app.test_cli_runner()
    assert runner.invoke(ingest_cli, ["files", str(folder)]).exit_code == 0
    (folder / "talk.vtt").write_text(
        "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nxin chào\n", encoding="utf-8"
    )
    again = runner.invoke(ingest_cli, ["files", str(folder)])
    assert again.exit_code == 0 and "1 duplicate" in again.output, again.output
    assert "subtitle sentences became the first transcript" in again.output
    with app.app_context():
        sample = db.session.query(Sample).one()
        assert [s["text"] for s in latest_transcript(sample.id).sentences] == ["xin chào"]
    assert list(bucket.keys("uploads")) == []


def test_an_unusable_upload_is_removed_with_its_failure(app, bucket, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "broken.mp3").write_bytes(b"not audio at all" * 100)
    result = app.test_cli_runner().invoke(ingest_cli, ["files", str(folder)])
    assert result.exit_code == 1 and "failed" in result.output
    assert list(bucket.keys("uploads")) == []  # it can never become a sample


def test_long_names_keep_their_extension_and_media_and_subtitles_their_own_keys():
    from pipeline.stages.ingest import Recording
    from pipeline.uploads import upload_key
    from ra_app.core.models import SourceKind
    from ra_app.core.storage import safe_key, safe_name

    stem = "Bài giảng " * 30
    assert safe_name(stem + ".mp3").endswith(".mp3") and len(safe_name(stem + ".mp3")) <= 104
    rec = Recording(path=f"/in/{stem}.mp3", kind=SourceKind.FILE, external_id=f"/in/{stem}.mp3")
    media = upload_key(rec, f"/in/{stem}.mp3", "media", "a" * 64)
    subtitles = upload_key(rec, f"/in/{stem}.vi.vtt", "subtitles", "b" * 64)
    assert media != subtitles and safe_key(media) and safe_key(subtitles)
