"""A worker host's bounded cache of storage objects, for stages that need a local file
(ffmpeg reads files, not buckets).

`local_copy(key)` gives the object's file on this host: fetched once, checked against the
stored sha256, and held under a shared lock while the caller works, so eviction never
removes a file in use. Several worker processes on one host share the cache: a per-object
lock lets one of them fetch while the others wait and then use its copy. Past `max_bytes`
the least recently used objects that nobody holds are evicted. A cached copy is used
while the stored checksum still matches the one it was fetched with, so an object
replaced in storage (a stage run again) is fetched again.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .files import write_text_atomically


class MediaCache:
    def __init__(self, root: Path | str, max_bytes: int, storage):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.storage = storage
        for folder in ("objects", "locks"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    def _paths(self, key: str) -> tuple[Path, Path, Path]:
        name = hashlib.sha256(key.encode()).hexdigest()[:40]
        objects = self.root / "objects"
        return objects / name, objects / f"{name}.sha256", self.root / "locks" / f"{name}.lock"

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        data, recorded, lock_path = self._paths(key)
        expected = self.storage.checksum(key)
        with open(lock_path, "a+") as lock:
            fetched = False
            while True:
                fcntl.flock(lock, fcntl.LOCK_SH)  # users share; eviction needs it exclusive
                if _holds(data, recorded, expected):
                    break
                fcntl.flock(lock, fcntl.LOCK_UN)
                fcntl.flock(lock, fcntl.LOCK_EX)  # one fetcher per object on this host
                if not _holds(data, recorded, expected):  # else another fetched it meanwhile
                    self.storage.get_file(key, data, expected)  # verified against it
                    write_text_atomically(recorded, expected)
                    fetched = True
                fcntl.flock(lock, fcntl.LOCK_UN)
            os.utime(data)  # most recently used
            try:
                if fetched:
                    self.evict()
                yield data
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def evict(self) -> int:
        """Remove least recently used objects nobody holds until the cache fits; returns
        the bytes freed. One evictor at a time."""
        freed = 0
        with open(self.root / "evict.lock", "a+") as evicting:
            fcntl.flock(evicting, fcntl.LOCK_EX)
            files = [p for p in (self.root / "objects").iterdir() if p.suffix == "" and p.is_file()]
            stats = {p: p.stat() for p in files}
            total = sum(s.st_size for s in stats.values())
            for path in sorted(files, key=lambda p: stats[p].st_mtime):
                if total <= self.max_bytes:
                    break
                with open(self.root / "locks" / f"{path.name}.lock", "a+") as lock:
                    try:
                        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # in use (or being fetched): kept
                    path.unlink(missing_ok=True)
                    path.with_suffix(".sha256").unlink(missing_ok=True)
                total -= stats[path].st_size
                freed += stats[path].st_size
        return freed

    def size(self) -> int:
        return sum(p.stat().st_size for p in (self.root / "objects").iterdir() if p.suffix == "")


def _holds(data: Path, recorded: Path, expected: str) -> bool:
    try:
        return data.is_file() and recorded.read_text().strip() == expected
    except FileNotFoundError:
        return False
