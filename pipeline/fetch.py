"""Downloading one file from an http(s) address, size-limited, into a folder: the audio of
a Label Studio task, a recording sent to the API by URL."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from ra_app.core.storage import safe_name

FETCH_TIMEOUT_S = 60
MAX_FETCH_BYTES = 8 * 1024**3


class FetchError(OSError):
    """The file could not be downloaded; `permanent` when asking again cannot help (the
    server said the file is not there, or it is too large)."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def fetch(url: str, folder: Path, max_bytes: int = MAX_FETCH_BYTES) -> Path:
    if urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"{url}: only http(s) addresses are fetched", permanent=True)
    name = safe_name(PurePosixPath(urlsplit(url).path).name or "download")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    try:
        # The scheme is checked above: never file:// or another opener.
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as answer:  # noqa: S310
            length = int(answer.headers.get("Content-Length") or 0)
            if length > max_bytes:
                raise FetchError(f"{url}: {length} bytes, over {max_bytes}", permanent=True)
            with target.open("wb") as out:
                copied = 0
                while chunk := answer.read(1024 * 1024):
                    copied += len(chunk)
                    if copied > max_bytes:
                        raise FetchError(f"{url}: over {max_bytes} bytes", permanent=True)
                    out.write(chunk)
    except urllib.error.HTTPError as error:
        target.unlink(missing_ok=True)
        gone = error.code in (401, 403, 404, 410)
        raise FetchError(f"{url}: the server answered {error.code}", permanent=gone) from None
    except FetchError:
        target.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, OSError, ValueError) as error:
        target.unlink(missing_ok=True)
        raise FetchError(f"{url}: cannot be fetched ({error})") from None
    return target
