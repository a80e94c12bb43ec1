"""S3-compatible object storage (AWS, MinIO, Ceph, Backblaze B2) through boto3, keeping the
storage contract of ra_app/core/storage.py.

Keys live under an optional prefix in the bucket. An object appears whole or not at all:
S3 shows an upload (a multipart one included, for large files) only once it completes.
Its sha256 is computed before the upload and kept in the object's metadata, so a reader
can verify what it fetched without reading the object twice.

A large file goes up in parts. For keys that name their content (uploads), an upload cut
off (a killed command, a lost network) is resumed by the next `put_file` of that key: the
parts already in the bucket whose MD5 (their ETag) matches the file's are kept, the rest are
sent. Elsewhere an unfinished upload is aborted and the file sent again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

from .files import replaced_atomically, sha256_file
from .storage import ChecksumMismatch, MissingObject, safe_key

SHA256 = "sha256"  # the metadata field (x-amz-meta-sha256)
MISSING = ("404", "NoSuchKey", "NotFound")


class S3Storage:
    def __init__(
        self,
        endpoint,
        access_key,
        secret_key,
        bucket,
        prefix: str = "",
        part_bytes: int = 16 * 1024 * 1024,
        public_endpoint: str | None = None,
    ):
        import boto3  # only hosts that use S3 pay for the import
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

        def client(url):
            return boto3.client(
                "s3",
                endpoint_url=url,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                region_name="us-east-1",  # what S3-compatible stores accept when they ignore it
                # A store that does not answer fails a check in seconds, not minutes.
                config=Config(
                    connect_timeout=5,
                    read_timeout=60,
                    retries={"max_attempts": 3, "mode": "standard"},
                ),
            )

        self.client = client(endpoint)
        # Presigned URLs are signed for the address browsers use (the signature covers it).
        self.presigner = client(public_endpoint) if public_endpoint else self.client
        # Parts of 16 MiB from 64 MiB on: an hour of master WAV goes up in a few dozen parts.
        self.part_bytes = part_bytes
        self.multipart_bytes = 4 * part_bytes
        self.transfer = TransferConfig(
            multipart_threshold=self.multipart_bytes, multipart_chunksize=part_bytes
        )

    def name(self, key: str) -> str:
        return self.prefix + safe_key(key)

    def put_file(
        self,
        src: Path,
        key: str,
        on_part: Callable[[int], None] | None = None,
        resume: bool = False,
        digest: str | None = None,
    ) -> str:
        """Upload `src` as `key`; `on_part(bytes)` is called after each part sent. `resume`
        takes up an unfinished upload of the key: only for keys that name their bytes
        (pipeline/uploads.py), so the metadata's sha256 set when it began is this file's.
        `digest`: the file's sha256 when the caller has it already (a large file is read
        once less)."""
        digest = digest or sha256_file(src)
        if Path(src).stat().st_size < self.multipart_bytes:
            self.client.upload_file(
                str(src), self.bucket, self.name(key), ExtraArgs={"Metadata": {SHA256: digest}}
            )
        else:
            self._put_in_parts(Path(src), key, digest, on_part, resume)
        return digest

    def _put_in_parts(self, src: Path, key: str, digest: str, on_part, resume: bool) -> None:
        name = self.name(key)
        upload_id, there = self._earlier_upload(name, src, resume)
        if upload_id is None:
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=name, Metadata={SHA256: digest}
            )["UploadId"]
        parts = []
        with open(src, "rb") as fh:
            number = 0
            while data := fh.read(self.part_bytes):
                number += 1
                etag = there.get(number)
                if etag != hashlib.md5(data).hexdigest():  # noqa: S324 - S3's ETag is MD5
                    etag = self.client.upload_part(
                        Bucket=self.bucket,
                        Key=name,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                    )["ETag"].strip('"')
                    if on_part:
                        on_part(len(data))
                parts.append({"PartNumber": number, "ETag": f'"{etag}"'})
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    def _earlier_upload(
        self, name: str, src: Path, resume: bool
    ) -> tuple[str | None, dict[int, str]]:
        """With `resume`, an unfinished upload of `name` whose parts all match `src` (its id
        and the parts' MD5s); every other unfinished upload of `name` is aborted."""
        listing = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=name)
        found: tuple[str | None, dict[int, str]] = (None, {})
        for upload in listing.get("Uploads", []):
            if upload["Key"] != name:
                continue
            upload_id = upload["UploadId"]
            listed = self.client.list_parts(Bucket=self.bucket, Key=name, UploadId=upload_id)
            there = {p["PartNumber"]: p["ETag"].strip('"') for p in listed.get("Parts", [])}
            if resume and found[0] is None and self._parts_match(src, there):
                found = (upload_id, there)
            else:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
        return found

    def _parts_match(self, src: Path, there: dict[int, str]) -> bool:
        with open(src, "rb") as fh:
            for number, etag in there.items():
                fh.seek((number - 1) * self.part_bytes)
                if hashlib.md5(fh.read(self.part_bytes)).hexdigest() != etag:  # noqa: S324
                    return False
        return True

    def get_file(self, key: str, dest: Path, expected: str | None = None) -> Path:
        """The object into `dest` (whole or not at all), checked against its checksum
        (`expected`, when the caller already asked for it)."""
        expected = expected or self.checksum(key)
        with replaced_atomically(dest) as partial:
            self.client.download_file(
                self.bucket, self.name(key), str(partial), Config=self.transfer
            )
            got = sha256_file(partial)
            if got != expected:
                raise ChecksumMismatch(
                    f"{key}: fetched sha256 {got[:12]}…, stored {expected[:12]}…"
                )
        return Path(dest)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        from botocore.exceptions import ClientError

        try:
            answer = self._call("get_object", key, Range=f"bytes={start}-{start + length - 1}")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""  # from the end on: nothing, as a file read there gives
            raise
        return answer["Body"].read()

    def stream(self, key: str, start: int, length: int, chunk: int = 1 << 16) -> Iterator[bytes]:
        """[start, start + length) of the object, in chunks, without holding it in memory.
        Asked for only when first read (a HEAD request reads nothing), and the connection is
        given back when the reader stops, also early (a seek)."""
        if length <= 0:
            return
        body = self._call("get_object", key, Range=f"bytes={start}-{start + length - 1}")["Body"]
        try:
            yield from body.iter_chunks(chunk)
        finally:
            body.close()

    def head(self, key: str) -> dict:
        return self._call("head_object", key)

    def size(self, key: str) -> int:
        return int(self.head(key)["ContentLength"])

    def checksum(self, key: str) -> str:
        stored = self.head(key).get("Metadata", {}).get(SHA256)
        if stored:
            return stored
        # Put there by something else: read it through once.
        digest = hashlib.sha256()
        for chunk in self._call("get_object", key)["Body"].iter_chunks(1 << 20):
            digest.update(chunk)
        return digest.hexdigest()

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except MissingObject:
            return False
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.name(key))

    def keys(self, prefix: str = "") -> Iterator[str]:
        start = self.prefix + (safe_key(prefix) + "/" if prefix else "")
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"].removeprefix(self.prefix)

    def presigned_url(self, key: str, expires_s: int = 300) -> str:
        """A short-lived URL the browser fetches the object from (with Range) directly."""
        return self.presigner.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.name(key)}, ExpiresIn=expires_s
        )

    # What ingesting an archive from the bucket uses.

    def download(self, key: str, dest: Path) -> Path:
        return self.get_file(key, dest)

    def upload(self, src: Path, key: str) -> None:
        self.put_file(src, key)

    def _call(self, operation: str, key: str, **extra) -> dict:
        from botocore.exceptions import ClientError

        try:
            return getattr(self.client, operation)(Bucket=self.bucket, Key=self.name(key), **extra)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in MISSING:
                raise MissingObject(key) from None
            raise
