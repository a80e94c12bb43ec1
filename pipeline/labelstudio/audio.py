"""Finding a Label Studio task's audio: under `--audio-root`, or fetched from its URL.

A task's `audio` is one of
- a URL of the audio server the project used, `http(s)://host/<path>`;
- a file served by Label Studio's local-files storage, `/data/local-files/?d=<path>` (the
  path relative to its LOCAL_FILES_DOCUMENT_ROOT);
- a file uploaded into Label Studio, `/data/upload/<project>/<8 hex>-<name>` (Label Studio
  put the prefix in front of the uploaded file's name).

Under the audio root the path is looked for as it is, then by its bare name (and an upload
without its prefix). Nothing outside the root is ever read. An http(s) URL not found under
the root is downloaded, size-limited, into the scratch folder.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

from ..fetch import FetchError, fetch

UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


class AudioNotFound(LookupError):
    pass


def candidates(audio: str) -> list[str]:
    """Relative paths to look for under the audio root, best first."""
    parts = urlsplit(audio)
    if parts.path.startswith("/data/local-files/"):
        relative = parse_qs(parts.query).get("d", [""])[0]
    else:
        relative = unquote(parts.path).lstrip("/")
        if relative.startswith("data/upload/"):
            relative = relative[len("data/") :]
    name = PurePosixPath(relative).name
    found = [relative, name, UPLOAD_PREFIX.sub("", name)]
    return [c for i, c in enumerate(found) if c and c not in found[:i]]


def under_root(root: Path, relative: str) -> Path | None:
    """`root/relative` if it is a file inside the root (no `..`, no link out of it)."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        return None
    return path


def locate(audio: str, root: Path | None, scratch: Path) -> Path:
    """The task's audio as a local file; raises AudioNotFound saying where it looked."""
    if root is not None:
        for relative in candidates(audio):
            path = under_root(root, relative)
            if path is not None:
                return path
    if urlsplit(audio).scheme in ("http", "https"):
        try:
            return fetch(audio, scratch / f"task-{len(list(scratch.iterdir()))}")
        except FetchError as error:
            raise AudioNotFound(str(error)) from None
    where = f"under {root}" if root else "without --audio-root"
    raise AudioNotFound(f"{audio}: not found {where} (looked for {', '.join(candidates(audio))})")
