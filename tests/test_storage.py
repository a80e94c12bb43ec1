"""The storage contract, the same for both backends (a folder under DATA_ROOT, and an S3
server on loopback: moto's): put, get, get by range, size, checksum, list, delete; objects
appear whole or not at all; unsafe keys refused. Then the worker hosts' media cache: one
fetch for two processes, checked against the stored checksum, least recently used
evicted but never an object in use, a replaced object fetched again."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import requests

from ra_app.core.files import sha256_file
from ra_app.core.media_cache import MediaCache
from ra_app.core.s3 import S3Storage
from ra_app.core.storage import ChecksumMismatch, LocalStorage, MissingObject, StorageError

from .workers import ROOT, wait_for

MiB = 1024 * 1024


def new_bucket(endpoint: str) -> S3Storage:
    bucket = f"media-{uuid.uuid4().hex[:10]}"
    storage = S3Storage(endpoint, "k", "s", bucket, prefix="site-1")
    storage.client.create_bucket(Bucket=bucket)
    return storage


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "store")
    return new_bucket(request.getfixturevalue("s3_endpoint"))


def a_file(path: Path, size: int, fill: bytes = b"") -> Path:
    path.write_bytes(fill * (size // max(len(fill), 1)) if fill else os.urandom(size))
    return path


def test_put_get_range_size_checksum_list_delete(storage, tmp_path):
    src = a_file(tmp_path / "master.wav", 300_000)
    digest = storage.put_file(src, "samples/s1/master.wav")
    assert digest == sha256_file(src)
    assert storage.exists("samples/s1/master.wav") and not storage.exists("samples/s1/x.wav")
    assert storage.size("samples/s1/master.wav") == 300_000
    assert storage.checksum("samples/s1/master.wav") == digest
    got = storage.get_file("samples/s1/master.wav", tmp_path / "back.wav")
    assert got.read_bytes() == src.read_bytes()
    body = src.read_bytes()
    for start, length in ((0, 44), (1000, 4096), (299_990, 100), (300_000, 10)):
        assert (
            storage.read_range("samples/s1/master.wav", start, length)
            == body[start : start + length]
        )
    storage.put_file(a_file(tmp_path / "peaks.json", 10), "samples/s1/peaks.json")
    storage.put_file(a_file(tmp_path / "other", 10), "samples/s2/master.wav")
    assert list(storage.keys("samples/s1")) == ["samples/s1/master.wav", "samples/s1/peaks.json"]
    assert len(list(storage.keys())) == 3

    replaced = storage.put_file(a_file(tmp_path / "v2", 1000), "samples/s1/master.wav")
    assert replaced != digest and storage.checksum("samples/s1/master.wav") == replaced
    storage.delete("samples/s1/master.wav")
    assert not storage.exists("samples/s1/master.wav")
    with pytest.raises(MissingObject):
        storage.get_file("samples/s1/master.wav", tmp_path / "gone.wav")
    with pytest.raises(MissingObject):
        storage.size("samples/s1/master.wav")
    assert not (tmp_path / "gone.wav").exists()  # nothing half-written was left


@pytest.mark.parametrize("key", ["../outside", "/etc/passwd", "a//b", "a/./b", "a b", "", "x/.."])
def test_unsafe_keys_are_refused(storage, tmp_path, key):
    src = a_file(tmp_path / "f", 10)
    with pytest.raises(StorageError):
        storage.put_file(src, key)
    with pytest.raises(StorageError):
        storage.exists(key)
    with pytest.raises(StorageError):
        storage.get_file(key, tmp_path / "out")


def test_a_reader_sees_the_old_object_or_the_new_never_half(storage, tmp_path):
    from boto3.s3.transfer import TransferConfig

    if isinstance(storage, S3Storage):  # several parts: a multipart upload
        storage.transfer = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    old = a_file(tmp_path / "old", 1 * MiB, b"a")
    new = a_file(tmp_path / "new", 16 * MiB, b"b")
    storage.put_file(old, "samples/s/denoised.wav")
    seen, done = set(), threading.Event()

    def read():  # one read of the whole object at a time: what a reader gets in one go
        while not done.is_set():
            body = storage.read_range("samples/s/denoised.wav", 0, 17 * MiB)
            seen.add((len(body) // MiB, body[:1], body == body[:1] * len(body)))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        storage.put_file(new, "samples/s/denoised.wav")
    finally:
        done.set()
        reader.join()
    assert seen <= {(1, b"a", True), (16, b"b", True)}, seen
    assert storage.checksum("samples/s/denoised.wav") == sha256_file(new)


def test_a_presigned_url_serves_ranges(s3_endpoint, tmp_path):
    storage = new_bucket(s3_endpoint)
    src = a_file(tmp_path / "r.mp3", 50_000)
    storage.put_file(src, "samples/s/rendition.mp3")
    answer = requests.get(
        storage.presigned_url("samples/s/rendition.mp3", 60),
        headers={"Range": "bytes=100-199"},
        timeout=10,
    )
    assert answer.status_code == 206 and answer.content == src.read_bytes()[100:200]


class CountingS3(S3Storage):
    """The real backend; every fetch also noted in a file, to count them across processes."""

    counter: Path

    def get_file(self, key, dest, expected=None):
        with open(self.counter, "a") as fh:
            fh.write(f"{os.getpid()} {key}\n")
        return super().get_file(key, dest, expected)


def counting(endpoint: str, tmp_path: Path) -> CountingS3:
    plain = new_bucket(endpoint)
    storage = CountingS3(endpoint, "k", "s", plain.bucket, prefix="site-1")
    storage.counter = tmp_path / "fetches.log"
    return storage


def fetch_in_a_process(cache_root, storage, key, results):
    cache = MediaCache(cache_root, 100 * MiB, storage)
    with cache.local_copy(key) as path:
        results.put(sha256_file(path))


def test_two_workers_on_a_host_fetch_once_and_both_get_the_checked_file(s3_endpoint, tmp_path):
    storage = counting(s3_endpoint, tmp_path)
    digest = storage.put_file(a_file(tmp_path / "m.wav", 8 * MiB), "samples/s/master.wav")
    fork = multiprocessing.get_context("fork")
    results = fork.Queue()
    workers = [
        fork.Process(
            target=fetch_in_a_process,
            args=(tmp_path / "cache", storage, "samples/s/master.wav", results),
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]
    assert [results.get(timeout=5), results.get(timeout=5)] == [digest, digest]
    assert len(storage.counter.read_text().splitlines()) == 1


def test_least_recently_used_objects_go_but_never_one_in_use(s3_endpoint, tmp_path):
    storage = counting(s3_endpoint, tmp_path)
    for name in "abcde":
        storage.put_file(a_file(tmp_path / name, 1 * MiB), f"objects/{name}")
    cache = MediaCache(tmp_path / "cache", int(2.5 * MiB), storage)
    for name in "abc":
        with cache.local_copy(f"objects/{name}"):
            pass
    assert cache.size() <= 2.5 * MiB  # a went
    with cache.local_copy("objects/b") as held:  # b in use while d and e arrive
        for name in "de":
            with cache.local_copy(f"objects/{name}"):
                pass
        assert held.is_file()
    assert cache.size() <= 2.5 * MiB
    with cache.local_copy("objects/b"):
        pass
    fetched = [line.split()[1] for line in storage.counter.read_text().splitlines()]
    assert fetched == ["objects/a", "objects/b", "objects/c", "objects/d", "objects/e"]


def test_a_replaced_object_is_fetched_again_and_a_corrupt_one_refused(s3_endpoint, tmp_path):
    storage = counting(s3_endpoint, tmp_path)
    cache = MediaCache(tmp_path / "cache", 100 * MiB, storage)
    storage.put_file(a_file(tmp_path / "v1", 1000, b"1"), "samples/s/denoised.wav")
    with cache.local_copy("samples/s/denoised.wav") as path:
        assert path.read_bytes() == b"1" * 1000
    storage.put_file(a_file(tmp_path / "v2", 2000, b"2"), "samples/s/denoised.wav")
    with cache.local_copy("samples/s/denoised.wav") as path:
        assert path.read_bytes() == b"2" * 2000

    # The stored checksum no longer matches the bytes (a corrupted store or transfer).
    storage.put_file(a_file(tmp_path / "v3", 3000, b"3"), "samples/s/bad.wav")
    storage.client.copy_object(
        Bucket=storage.bucket,
        Key=storage.name("samples/s/bad.wav"),
        CopySource={"Bucket": storage.bucket, "Key": storage.name("samples/s/bad.wav")},
        Metadata={"sha256": hashlib.sha256(b"something else").hexdigest()},
        MetadataDirective="REPLACE",
    )
    with pytest.raises(ChecksumMismatch), cache.local_copy("samples/s/bad.wav"):
        pass
    assert not ChecksumMismatch.permanent  # a stage meeting it is retried
    assert (
        sorted(
            p.name
            for p in (tmp_path / "cache" / "objects").iterdir()
            if "bad" in p.name or p.suffix == ".part"
        )
        == []
    )
    assert len(list((tmp_path / "cache" / "objects").iterdir())) == 2  # denoised and its sum


def migrate(env: dict, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "storage", "migrate", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        **kwargs,
    )


def test_storage_migrate_copies_everything_verified_and_resumes(s3_endpoint, tmp_path):
    data = tmp_path / "data"
    local = LocalStorage(data)
    for i in range(120):
        path = local.path(f"samples/s{i:03d}/master.wav")
        path.parent.mkdir(parents=True)
        path.write_bytes(os.urandom(64 * 1024))
    (data / "tmp" / "ingest-x").mkdir(parents=True)
    (data / "tmp" / "ingest-x" / "half.wav").write_bytes(b"scratch")  # work in progress
    (data / "samples" / "s000" / ".peaks.bin.1a2b.part").write_bytes(b"half")
    bucket = new_bucket(s3_endpoint)
    env = {
        **os.environ,
        "APP_ENV": "development",
        "FLASK_APP": "ra_app",
        "SECRET_KEY": "k" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DATA_ROOT": str(data),
        "S3_ENDPOINT": s3_endpoint,
        "S3_ACCESS_KEY": "k",
        "S3_SECRET_KEY": "s",
        "S3_BUCKET": bucket.bucket,
        "S3_PREFIX": "site-1",
    }
    dry = migrate(env, "--dry-run")
    assert dry.wait(timeout=120) == 0
    assert "0 already there and verified, 120 would copy, 0 failed." in dry.stdout.read()
    assert list(bucket.keys()) == []

    first = migrate(env, start_new_session=True)  # killed partway, as a lost SSH session would be
    wait_for(lambda: len(list(bucket.keys())) >= 20, timeout=120, interval=0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    copied_before = len(list(bucket.keys()))
    assert 20 <= copied_before < 120

    spoiled = sorted(bucket.keys())[0]  # a copy that does not match any more
    bucket.client.put_object(Bucket=bucket.bucket, Key=bucket.name(spoiled), Body=b"wrong")
    again = migrate(env)
    assert again.wait(timeout=300) == 0
    said = again.stdout.read()
    assert f"{copied_before - 1} already there and verified, {121 - copied_before} copied" in said
    assert "Nothing was switched" in said
    keys = sorted(bucket.keys())
    assert keys == sorted(local.keys()) and len(keys) == 120  # no scratch, no half files
    for key in keys:
        assert bucket.checksum(key) == local.checksum(key)


def test_storage_migrate_needs_the_bucket(tmp_path):
    env = {
        **os.environ,
        "APP_ENV": "development",
        "FLASK_APP": "ra_app",
        "SECRET_KEY": "k" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DATA_ROOT": str(tmp_path),
    }
    for name in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET"):
        env.pop(name, None)
    refused = migrate(env)
    assert refused.wait(timeout=120) == 1
    assert "S3 storage is not configured" in refused.stdout.read()
