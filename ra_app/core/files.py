"""Files written whole or not at all, and their checksums: one place for each.

A reader (the web app serving audio, an export snapshot linking a file, a restore) must
never see half a file: writers write under a temporary name beside the destination and
rename over it when done (`replaced_atomically`); a rename within one file system is
atomic. Directories are placed the same way by `LocalStorage.place_dir`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large files never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def replaced_atomically(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside `dest` to write to; renamed over `dest` when the block ends
    without an error, removed when it raises (a kill leaves only a hidden `.part` file)."""
    dest = Path(dest)
    partial = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    try:
        yield partial
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)


def write_text_atomically(dest: str | os.PathLike[str], text: str) -> None:
    with replaced_atomically(dest) as partial:
        partial.write_text(text, encoding="utf-8")


def link_or_copy(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """A hard link (instant, and frozen: our writers replace files, never rewrite them in
    place), or a copy where the two paths are on different file systems."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)
