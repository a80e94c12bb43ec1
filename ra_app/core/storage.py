"""Where the product keeps files: a local directory under DATA_ROOT (the default, and where
sample audio lives so ffmpeg and HTTP Range serving read it directly) and S3-compatible
object storage (archives to ingest, via boto3).

Keys are relative, slash-separated names built by the product. Any key that could step
outside the storage root — absolute, `..`, odd characters — is refused, so no path is ever
built from user input unchecked.
"""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path

KEY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class StorageError(ValueError):
    permanent = True  # a bad key stays bad: never retried (see pipeline.errors)


def safe_key(key: str) -> str:
    """Return `key` if every part is a plain name; raise StorageError otherwise."""
    if not isinstance(key, str) or not key or len(key) > 1024:
        raise StorageError("a storage key must be a non-empty string of at most 1024 characters")
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", "..") or not KEY_PART.match(part):
            raise StorageError(f"unsafe storage key {key!r}")
    return key


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


class S3Storage:
    """S3-compatible object storage (AWS, MinIO, Ceph …) through boto3."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str):
        import boto3  # only hosts that use S3 pay for the import

        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
        )

    def download(self, key: str, dest: Path) -> Path:
        self.client.download_file(self.bucket, safe_key(key), str(dest))
        return dest

    def upload(self, src: Path, key: str) -> None:
        self.client.upload_file(str(src), self.bucket, safe_key(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=safe_key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True


def local_storage(config) -> LocalStorage:
    return LocalStorage(config["DATA_ROOT"])


def s3_storage(config) -> S3Storage | None:
    """The S3 backend when all four S3_* settings are present, else None."""
    settings = [
        config.get(name) for name in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET")
    ]
    return S3Storage(*settings) if all(settings) else None
