"""The installation's media storage, chosen by STORAGE_BACKEND, and the few ways stages and
the web app use it. Nothing else builds a media path.

- `local` (the embedded default): objects are files under DATA_ROOT, read where they lie.
- `s3`: objects live in an S3-compatible bucket (S3_* settings); a host that needs a local
  file (ffmpeg reads files) takes it through its bounded cache (MEDIA_CACHE_DIR), and
  DATA_ROOT holds only that host's work in progress. No two hosts share a disk.

    media_storage()            the configured backend (the contract of core/storage.py)
    local_file(key)            a local file of the object, held while the block runs
    work_dir(name, store)      an empty local scratch folder on this host (drop_work_dir)
    publish_file(store, src, key)         a finished local file made the object `key`
    publish_dir(store, src, key, last=)   a finished folder made the objects under `key`
    fetch_dir(store, key, dest)           the objects under `key` as local files
    delete_tree(store, key)    every object under `key`
    label(store)               where a store is, for results and messages
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import current_app

from .files import link_or_copy
from .media_cache import MediaCache
from .storage import LocalStorage, local_storage, s3_storage

BACKENDS = ("local", "s3")
_opened: dict = {}  # per process: a boto3 client is not shared across a fork


def media_storage(config=None):
    config = config or current_app.config
    backend = config.get("STORAGE_BACKEND") or "local"
    if backend == "local":
        return local_storage(config)
    if backend != "s3":
        raise RuntimeError(f"STORAGE_BACKEND is {backend!r}; it must be one of {BACKENDS}")
    return _bucket(config)


def _bucket(config):
    names = ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET", "S3_PREFIX")
    memo = (os.getpid(), *(config.get(name) for name in names))
    if memo not in _opened:
        store = s3_storage(config)
        if store is None:
            raise RuntimeError(
                "STORAGE_BACKEND=s3 needs S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY and S3_BUCKET"
            )
        _opened[memo] = store
    return _opened[memo]


def is_local(store) -> bool:
    return isinstance(store, LocalStorage)


def media_cache(config=None) -> MediaCache:
    config = config or current_app.config
    root = config.get("MEDIA_CACHE_DIR") or Path(config["DATA_ROOT"]) / "cache"
    max_bytes = int(config["MEDIA_CACHE_MAX_GB"] * 1024**3)
    return MediaCache(root, max_bytes, media_storage(config))


@contextmanager
def local_file(key: str, config=None) -> Iterator[Path]:
    """The object's bytes as a local file while the block runs: the file itself with the
    local backend, a verified cached copy (never evicted while held) with S3."""
    store = media_storage(config)
    if is_local(store):
        yield store.existing(key)
        return
    with media_cache(config).local_copy(key) as path:
        yield path


def work_dir(name: str, store=None, config=None) -> Path:
    """An empty scratch folder (an earlier attempt's leftovers cleared): under a local
    `store`'s root, so placing the result there is a rename; otherwise under this host's
    DATA_ROOT/tmp, which with S3 holds only this host's work in progress."""
    config = config or current_app.config
    return (store if is_local(store) else local_storage(config)).scratch_dir(name)


def drop_work_dir(name: str, store=None, config=None) -> None:
    config = config or current_app.config
    (store if is_local(store) else local_storage(config)).delete_tree(f"tmp/{name}")


def publish_file(store, src: Path, key: str) -> None:
    """Make the finished file `src` (in the store's work dir) the object `key`, whole."""
    if is_local(store):
        dest = store.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)  # one file system (see work_dir): one rename
        return
    store.put_file(src, key)
    src.unlink(missing_ok=True)


def has_object(key: str | None, config=None) -> bool:
    return bool(key) and media_storage(config).exists(key)


def publish_dir(store, src: Path, key: str, last: str | None = None) -> None:
    """Make the finished folder `src` the objects under `key`, replacing an earlier set.

    Local: one rename (readers see the old folder or the new). S3: each object is uploaded
    whole. `last` (a file name in `src`) marks a complete set: an earlier set's is removed
    first and the new one goes up after everything else, objects of the earlier set that
    the new one lacks removed before it, so a reader that finds `last` reads one whole set."""
    if is_local(store):
        store.place_dir(src, key)
        return
    names = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    if last in names:
        store.delete(f"{key}/{last}")
        names.remove(last)
    for name in names:
        store.put_file(src / name, f"{key}/{name}")
    wanted = {f"{key}/{name}" for name in [*names, last] if name}
    for old in list(store.keys(key)):
        if old not in wanted:
            store.delete(old)
    if last and (src / last).is_file():
        store.put_file(src / last, f"{key}/{last}")
    shutil.rmtree(src, ignore_errors=True)


def fetch_dir(store, key: str, dest: Path) -> Path:
    """The objects under `key` as files under `dest` (hard links where the store is local:
    writers replace files, never rewrite them, so a link stays as it was)."""
    if is_local(store):
        shutil.copytree(store.path(key), dest, copy_function=link_or_copy)
        return dest
    for name in store.keys(key):
        target = dest / name.removeprefix(key + "/")
        target.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(name, target)
    return dest


def delete_tree(store, key: str) -> None:
    if is_local(store):
        store.delete_tree(key)
        return
    for name in list(store.keys(key)):
        store.delete(name)


def label(store) -> str:
    if is_local(store):
        return str(store.root)
    return f"s3://{store.bucket}/{store.prefix}".rstrip("/")
