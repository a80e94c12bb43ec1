"""Check an upload with ffprobe before converting it, and say what is wrong with it.

``probe`` answers what an upload holds (first audio stream, announced duration) or
raises ``MediaError`` with a sentence the uploader understands; conversion
(pipeline/media.py) raises the same error for what only decoding finds out. Every
ffmpeg/ffprobe call names its input with ``input_url`` and reads no other file.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ra_app.core.audio import FFPROBE

PROBE_TIMEOUT_S = 60.0

# Demuxers that open *other* files or URLs named inside the upload (playlists,
# concat lists, SDP): an untrusted upload must never make ffmpeg read elsewhere.
_INDIRECT_FORMATS = frozenset({"hls", "concat", "sdp", "dash"})

_LOG_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*")

MediaErrorCode = Literal[
    "empty", "unreadable", "no_audio", "too_short", "truncated", "ffmpeg_failed"
]


class MediaError(ValueError):
    """An upload that cannot become a usable recording.

    ``str(err)`` is a sentence fit to show the uploader; ``err.code`` is a short
    stable token for the database/UI logic; ``err.detail`` holds ffmpeg's own words
    (possibly empty) for the logs.
    """

    def __init__(self, code: MediaErrorCode, message: str, detail: str = "") -> None:
        # All in args, in __init__'s order: pickle and Celery rebuild exceptions
        # as ``cls(*args)``, so code and detail survive the trip to the caller.
        super().__init__(code, message, detail)
        self.code: MediaErrorCode = code
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ProbeResult:
    """What ffprobe says about an upload (first audio stream).

    ``duration_s`` is ``None`` when the container does not announce one (for example
    WebM straight from a browser's MediaRecorder); ``convert`` then relies on the
    decoded sample count instead.
    """

    duration_s: float | None
    has_audio: bool
    codec: str | None
    sample_rate: int | None
    channels: int | None
    format_name: str


def first_error_line(stderr: str) -> str:
    """ffmpeg's first complaint, without the ``[demuxer @ 0x...]`` noise."""
    for line in stderr.splitlines():
        line = _LOG_PREFIX.sub("", line.strip())
        if line:
            return line
    return "no details"


def last_lines(stderr: str, n: int = 5) -> str:
    lines = [_LOG_PREFIX.sub("", ln.strip()) for ln in stderr.splitlines()]
    return "\n".join([ln for ln in lines if ln][-n:])


def _float_or_none(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) and result >= 0 else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _fmt_seconds(value: float, other: float) -> str:
    """One decimal, unless that would make the two numbers look the same."""
    text = f"{value:.1f}"
    return text if text != f"{other:.1f}" else f"{value:.3f}"


def too_short(duration_s: float, min_duration_s: float) -> MediaError:
    return MediaError(
        "too_short",
        f"clip is {_fmt_seconds(duration_s, min_duration_s)} s long; "
        f"the minimum is {_fmt_seconds(min_duration_s, duration_s)} s",
    )


def input_url(path: Path) -> str:
    """``file:`` + absolute path, so names with ``:`` or a leading ``-`` stay file names."""
    return "file:" + str(path.resolve())


def probe(
    path: str | os.PathLike[str],
    min_duration_s: float = 1.0,
    *,
    require_audio: bool = True,
) -> ProbeResult:
    """Check an upload with ffprobe before spending time converting it.

    Raises ``MediaError`` (codes ``empty``, ``unreadable``, ``no_audio``,
    ``too_short``) so a bad upload is rejected with a message the uploader
    understands. ``FileNotFoundError`` is left alone: a missing file is our bug,
    not the uploader's.
    """
    src = Path(path)
    if src.stat().st_size == 0:
        raise MediaError("empty", "file is empty")
    cmd = [
        FFPROBE, "-v", "error", "-protocol_whitelist", "file",
        "-print_format", "json", "-show_format", "-show_streams",
        input_url(src),
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, errors="replace",
            timeout=PROBE_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise MediaError(
            "unreadable", "not an audio or video file ffmpeg can read: ffprobe timed out"
        ) from exc
    if proc.returncode != 0:
        # Name the upload as the uploader knows it, not by our storage path.
        first = first_error_line(proc.stderr.replace(input_url(src), src.name))
        raise MediaError(
            "unreadable", f"not an audio or video file ffmpeg can read: {first}", proc.stderr
        )
    try:
        info = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise MediaError(
            "unreadable", "not an audio or video file ffmpeg can read: bad ffprobe output"
        ) from exc

    fmt = info.get("format") or {}
    format_name = str(fmt.get("format_name") or "")
    streams = info.get("streams") or []
    if not streams or not format_name:
        raise MediaError(
            "unreadable", "not an audio or video file ffmpeg can read: no streams found"
        )
    if set(format_name.split(",")) & _INDIRECT_FORMATS:
        raise MediaError(
            "unreadable",
            f"not an audio or video file ffmpeg can read: {format_name} is not accepted",
        )

    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if audio is None:
        if require_audio:
            raise MediaError("no_audio", "has no audio stream")
        return ProbeResult(
            _float_or_none(fmt.get("duration")), False, None, None, None, format_name
        )

    duration = _float_or_none(audio.get("duration"))
    if duration is None:
        duration = _float_or_none(fmt.get("duration"))
    if duration is not None and duration < min_duration_s:
        raise too_short(duration, min_duration_s)
    return ProbeResult(
        duration_s=duration,
        has_audio=True,
        codec=audio.get("codec_name"),
        sample_rate=_int_or_none(audio.get("sample_rate")),
        channels=_int_or_none(audio.get("channels")),
        format_name=format_name,
    )
