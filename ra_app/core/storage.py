"""The two storage backends: a local directory under DATA_ROOT (the default) and
S3-compatible object storage (ra_app/core/s3.py).

Both backends keep one contract, tested for each in tests/test_storage.py: `put_file` (the
object appears whole or not at all, and its sha256 is returned and kept), `get_file`,
`read_range`, `stream`, `size`, `checksum`, `exists`, `delete`, `keys`. Which backend holds
the media, and how a stage gets a local file of an object, is ra_app/core/media_store.py.

Keys are relative, slash-separated names built by the product. Any key that could step
outside the storage root — absolute, `..`, odd characters — is refused, so no path is ever
built from user input unchecked.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from .files import replaced_atomically, sha256_file

KEY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class StorageError(ValueError):
    permanent = True  # a bad key stays bad: never retried (see pipeline.errors)


class MissingObject(StorageError):
    def __init__(self, key: str):
        super().__init__(f"no object {key!r} in storage")


class ChecksumMismatch(StorageError):
    """What arrived is not what was stored: a broken transfer, worth another try."""

    permanent = False


def safe_key(key: str) -> str:
    """Return `key` if every part is a plain name; raise StorageError otherwise."""
    if not isinstance(key, str) or not key or len(key) > 1024:
        raise StorageError("a storage key must be a non-empty string of at most 1024 characters")
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", "..") or not KEY_PART.match(part):
            raise StorageError(f"unsafe storage key {key!r}")
    return key


def safe_name(name: str) -> str:
    """A file's name made a safe key part (what is not a plain character becomes `_`); a
    long stem is shortened, its extension kept."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip("._-")
    stem, dot, suffix = clean.rpartition(".")
    if not dot or not stem or len(suffix) > 20:
        return clean[:120] or "file"
    return f"{stem[:100]}.{suffix}"


class LocalStorage:
    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()

    def path(self, key: str) -> Path:
        path = (self.root / safe_key(key)).resolve()
        if not path.is_relative_to(self.root):  # a symlink inside the root pointing out
            raise StorageError(f"storage key {key!r} resolves outside the storage root")
        return path

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def scratch_dir(self, name: str) -> Path:
        """An empty working folder under `tmp/`, cleared of any earlier attempt's leftovers."""
        path = self.path(f"tmp/{name}")
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def place_dir(self, src: Path, key: str) -> Path:
        """Move a finished folder to `key`, replacing what an earlier attempt left there.
        Renames on one filesystem: readers see the old folder or the new one, never half of
        one (the old is moved aside first and removed once the new is in place)."""
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        old = dest.with_name(f".{dest.name}.old-{secrets.token_hex(4)}")
        try:
            dest.rename(old)
        except FileNotFoundError:
            old = None
        src.rename(dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return dest

    def delete_tree(self, key: str) -> None:
        shutil.rmtree(self.path(key), ignore_errors=True)

    # The object contract (see the module docstring).

    def put_file(self, src: Path, key: str, on_part=None, resume=False, digest=None) -> str:
        """`on_part`, `resume` and `digest` matter to the S3 backend only: a local copy is
        one step, hashed once written."""
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with replaced_atomically(dest) as partial:
            shutil.copyfile(src, partial)
        return sha256_file(dest)

    def get_file(self, key: str, dest: Path, expected: str | None = None) -> Path:
        with replaced_atomically(dest) as partial:
            shutil.copyfile(self.existing(key), partial)
            if expected and sha256_file(partial) != expected:
                raise ChecksumMismatch(f"{key}: the copy does not match sha256 {expected[:12]}…")
        return Path(dest)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        with open(self.existing(key), "rb") as fh:
            fh.seek(start)
            return fh.read(length)

    def stream(self, key: str, start: int, length: int, chunk: int = 1 << 16) -> Iterator[bytes]:
        with open(self.existing(key), "rb") as fh:
            fh.seek(start)
            while length > 0 and (block := fh.read(min(chunk, length))):
                length -= len(block)
                yield block

    def size(self, key: str) -> int:
        return self.existing(key).stat().st_size

    def checksum(self, key: str) -> str:
        return sha256_file(self.existing(key))

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every object's key under `prefix` (a folder's), in key order; work in progress
        (hidden `.part` and `.old` names, tmp/) is not an object."""
        base = self.path(prefix) if prefix else self.root
        for path in sorted(base.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if (
                path.is_file()
                and not key.startswith("tmp/")
                and not any(part.startswith(".") for part in key.split("/"))
            ):
                yield key

    def existing(self, key: str) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise MissingObject(key)
        return path


def local_storage(config) -> LocalStorage:
    return LocalStorage(config["DATA_ROOT"])


def s3_storage(config):
    """The S3 backend when all four S3_* settings are present, else None."""
    from .s3 import S3Storage

    names = ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET")
    settings = [config.get(name) for name in names]
    if not all(settings):
        return None
    return S3Storage(
        *settings,
        prefix=config.get("S3_PREFIX") or "",
        public_endpoint=config.get("S3_PUBLIC_ENDPOINT"),
    )
