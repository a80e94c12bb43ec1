"""The media in an S3 bucket (STORAGE_BACKEND=s3, moto's server on loopback): ingestion puts
a sample's files in the bucket and nothing under the host's DATA_ROOT, the review audio is
streamed with Range or redirected to a presigned URL (after the task's check), a window's
clip is cut and stored on first use, and a large upload cut off is resumed part by part."""

from __future__ import annotations

import uuid

import pytest
import requests

from config import celery_settings
from pipeline.ingest_cli import ingest_cli
from ra_app.core.files import sha256_file
from ra_app.core.media_store import media_storage
from ra_app.core.models import Sample
from ra_app.core.revisions import latest_transcript
from ra_app.core.s3 import S3Storage
from ra_app.extensions import db

from . import audio
from .conftest import empty_tables, make_app
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
        store.put_file(big, "uploads/a/long.wav", on_part=cut_after_two)
    assert not store.exists("uploads/a/long.wav")  # nobody sees half an object

    resumed = []
    digest = store.put_file(big, "uploads/a/long.wav", on_part=resumed.append)
    assert resumed == [5 * MiB, 5 * MiB, 3 * MiB]  # the two parts already there were kept
    assert store.checksum("uploads/a/long.wav") == digest
    store.get_file("uploads/a/long.wav", tmp_path / "back.wav", digest)  # verified
    assert (tmp_path / "back.wav").read_bytes() == big.read_bytes()
    assert plain.client.list_multipart_uploads(Bucket=plain.bucket).get("Uploads", []) == []

    # Another file under the same key: the parts of an unfinished upload that do not match
    # are not used, and the object ends with the new bytes and their checksum.
    with pytest.raises(CutOff):
        sent.clear()
        store.put_file(big, "uploads/b/long.wav", on_part=cut_after_two)
    other = a_file(tmp_path / "other.wav", 23 * MiB)
    digest = store.put_file(other, "uploads/b/long.wav")
    store.get_file("uploads/b/long.wav", tmp_path / "back2.wav", digest)
    assert (tmp_path / "back2.wav").read_bytes() == other.read_bytes()


def test_backups_are_copied_to_the_bucket_manifest_last(app, bucket, tmp_path):
    from pipeline.backup import backup

    with app.app_context():
        make_review_sample(tmp_path)
        manifest = backup()
    folder = f"backups/{manifest['backup_id']}"
    keys = set(bucket.keys(folder))
    local = app.config["DATA_ROOT"] / "db_sync" / manifest["backup_id"]
    assert keys == {f"{folder}/{p.name}" for p in local.iterdir()}
    assert f"{folder}/manifest.json" in keys and f"{folder}/samples.jsonl.gz" in keys
    for path in local.iterdir():
        assert bucket.checksum(f"{folder}/{path.name}") == sha256_file(path)


def test_readyz_fails_the_storage_check_when_the_bucket_cannot_be_reached(app, bucket):
    client = app.test_client()
    answer = client.get("/readyz")
    assert answer.status_code == 200 and answer.get_json()["checks"]["storage"]["ok"]
    app.config["S3_BUCKET"] = "no-such-bucket"
    answer = client.get("/readyz")
    storage = answer.get_json()["checks"]["storage"]
    assert answer.status_code == 503 and storage["ok"] is False
    assert "no-such-bucket" not in str(storage)  # the kind of error, not the place


def test_a_browser_upload_goes_to_the_bucket_and_becomes_a_sample(app, admin, bucket, tmp_path):
    from ra_app.core.outbox import wait_idle

    from .test_admin_upload import begin, signed_in

    wav = audio.tone(tmp_path / "talk.wav", seconds=2, freq=440, channels=1)
    data = wav.read_bytes()
    client, headers = signed_in(app, admin.email)
    started = begin(client, headers, wav.name, len(data)).get_json()
    url = f"/admin/uploads/{started['upload_id']}"
    assert client.put(f"{url}/parts/1", data=data, headers=headers).status_code == 200
    assert client.post(f"{url}/finish", headers=headers).get_json()["status"] == "queued"
    wait_idle(60)  # the embedded mode runs the queued ingest in this process
    with app.app_context():
        sample = db.session.query(Sample).one()
        assert bucket.exists(sample.master_path) and sample.title == "talk"
    assert list(bucket.keys("uploads")) == []
    assert not (app.config["DATA_ROOT"] / "uploads").exists()
