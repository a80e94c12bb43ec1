"""YouTube videos, playlists and channels through yt-dlp's Python API.

A URL is first expanded (playlists and channels flat, without downloading) into videos. Each
video is then one task: read its metadata, pick subtitles (manual first, automatic captions
second; Vietnamese, then English), download the best audio and those subtitles into
`DATA_ROOT/downloads/youtube/`, append a line to `metadata.jsonl` there (so a later run can
re-import with `--skip-download`), and hand the files to the ingest stage.

yt-dlp failures are classified: a 403 or a bot check is transient (use cookies), a 429 is
transient (back off), a removed, private or gone (404/410) video is permanent.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app

from ra_app.core.models import Origin, SourceKind

from ..errors import PermanentError, StageError, TransientError
from .ingest import Recording

SUBTITLE_LANGUAGES = ("vi", "en")
METADATA_FILE = "metadata.jsonl"
COOKIES_ADVICE = "export your browser's cookies to a file and pass --cookies FILE"
BACKOFF_ADVICE = "rate limited: back off and retry later"
PERMANENT_MARKERS = (
    "private video",
    "video unavailable",
    "has been removed",
    "account associated with this video has been terminated",
    "no longer available",
    "this video is not available",
    "members-only",
    "join this channel",
)

log = logging.getLogger(__name__)


class NoTranscript(StageError):
    """The video has no Vietnamese or English subtitles and a transcript is required."""


@dataclass
class VideoRef:
    video_id: str
    url: str
    title: str | None = None


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PermanentError(f"not a web address: {url}", code="bad_url")
    return url


class _Logger:
    """yt-dlp prints errors to stderr even when quiet; keep them in our log instead."""

    def debug(self, msg):
        if not msg.startswith("[debug] "):
            log.debug(msg)

    def info(self, msg):
        log.debug(msg)

    def warning(self, msg):
        log.info(msg)

    def error(self, msg):
        log.info(msg)


def ydl_options(download_dir: Path | None, cookies: str | None, **extra) -> dict:
    config = current_app.config
    options = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _Logger(),
        "format": "bestaudio/best",
        "socket_timeout": config["YTDLP_SOCKET_TIMEOUT"],
        "retries": config["YTDLP_RETRIES"],
        "fragment_retries": config["YTDLP_RETRIES"],
        "cachedir": False,
        "ignoreerrors": False,
        "noplaylist": True,
    }
    if download_dir is not None:
        options["outtmpl"] = str(download_dir / "%(id)s.%(ext)s")
        options["paths"] = {"home": str(download_dir)}
    if cookies:
        options["cookiefile"] = cookies
    options.update(extra)
    return options


def classify(error: Exception) -> StageError:
    """Turn a yt-dlp error into a transient or permanent stage error."""
    message = str(error).removeprefix("ERROR: ")
    cause = getattr(error, "exc_info", None)
    status = getattr(cause[1], "status", None) if cause else None
    lowered = message.lower()
    if any(marker in lowered for marker in PERMANENT_MARKERS) or status in (404, 410):
        return PermanentError(message, code="unavailable")
    if "not a bot" in lowered or "sign in to confirm" in lowered or status == 403:
        return TransientError(message, advice=COOKIES_ADVICE)
    if status == 429 or "too many requests" in lowered:
        return TransientError(message, advice=BACKOFF_ADVICE)
    return TransientError(message)


def _language_key(available: dict, language: str) -> str | None:
    """'vi' matches 'vi', 'vi-VN' …; YouTube's 'en-orig' style keys included."""
    if language in available:
        return language
    return next((key for key in sorted(available) if key.split("-")[0] == language), None)


def choose_subtitles(info: dict) -> tuple[str, str] | None:
    """(language key, 'manual' | 'automatic'): manual subtitles first, then automatic
    captions, each in Vietnamese before English."""
    for kind, field in (("manual", "subtitles"), ("automatic", "automatic_captions")):
        available = info.get(field) or {}
        for language in SUBTITLE_LANGUAGES:
            key = _language_key(available, language)
            if key is not None:
                return key, kind
    return None


def expand(
    url: str, *, cookies: str | None = None, max_videos: int | None = None
) -> list[VideoRef]:
    """The videos behind a video, playlist or channel URL, without downloading."""
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import DownloadError

    options = ydl_options(None, cookies, extract_flat="in_playlist", noplaylist=False)
    if max_videos:
        options["playlistend"] = max_videos
    try:
        with YoutubeDL(options) as ydl:
            info = ydl.extract_info(check_url(url), download=False)
    except DownloadError as error:
        raise classify(error) from error
    if info.get("_type") not in ("playlist", "multi_video"):
        return [VideoRef(info["id"], info.get("webpage_url") or url, info.get("title"))]
    refs = []
    for entry in info.get("entries") or []:
        if not entry:
            continue
        entry_url = entry.get("url") or entry.get("webpage_url")
        video_id = entry.get("id") or urlsplit(entry_url).path.rstrip("/").rsplit("/", 1)[-1]
        refs.append(VideoRef(video_id, entry_url, entry.get("title")))
    return refs[:max_videos] if max_videos else refs


def metadata_line(info: dict, audio: Path, subtitles: Path | None, subtitle_kind: str | None):
    return {
        "id": info["id"],
        "title": info.get("title"),
        "channel": info.get("channel") or info.get("uploader"),
        "channel_id": info.get("channel_id") or info.get("uploader_id"),
        "upload_date": info.get("upload_date"),
        "duration": info.get("duration"),
        "language": info.get("language"),
        "url": info.get("webpage_url") or info.get("original_url"),
        "audio_file": audio.name,
        "subtitle_file": subtitles.name if subtitles else None,
        "subtitle_kind": subtitle_kind,
    }


def recording_from_metadata(line: dict, download_dir: Path) -> Recording:
    subtitles = line.get("subtitle_file")
    return Recording(
        path=str(download_dir / line["audio_file"]),
        kind=SourceKind.YOUTUBE,
        external_id=line["id"],
        title=line.get("title"),
        url=line.get("url"),
        channel=line.get("channel"),
        language=line.get("language"),
        info=line,
        subtitles_path=str(download_dir / subtitles) if subtitles else None,
        subtitles_origin=Origin.YOUTUBE_SUBTITLES if subtitles else None,
    )


def read_metadata(download_dir: Path) -> list[dict]:
    """The lines of earlier runs, the latest line per video id."""
    path = download_dir / METADATA_FILE
    if not path.exists():
        return []
    latest: dict[str, dict] = {}
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            latest[line["id"]] = line
        except (json.JSONDecodeError, KeyError, TypeError):
            log.warning("%s line %d is not a metadata record; skipped", path, number)
    return list(latest.values())


def inspect(ref: VideoRef, *, cookies: str | None, require_transcript: bool) -> dict:
    """Metadata and the subtitle choice, without downloading; raises NoTranscript."""
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import DownloadError

    try:
        with YoutubeDL(ydl_options(None, cookies)) as ydl:
            info = ydl.extract_info(check_url(ref.url), download=False)
    except DownloadError as error:
        raise classify(error) from error
    if require_transcript and choose_subtitles(info) is None:
        raise NoTranscript(
            "no Vietnamese or English subtitles (use --no-require-transcript to keep it)"
        )
    return info


def download(
    ref: VideoRef, download_dir: Path, *, cookies: str | None, require_transcript: bool
) -> Recording:
    """Download the audio and chosen subtitles of one video and record its metadata line."""
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import DownloadError

    info = inspect(ref, cookies=cookies, require_transcript=require_transcript)
    choice = choose_subtitles(info)
    extra = {}
    if choice is not None:
        language, kind = choice
        extra = {
            "writesubtitles": kind == "manual",
            "writeautomaticsub": kind == "automatic",
            "subtitleslangs": [language],
            "subtitlesformat": "vtt/srt/best",
        }
    download_dir.mkdir(parents=True, exist_ok=True)
    try:
        with YoutubeDL(ydl_options(download_dir, cookies, **extra)) as ydl:
            result = ydl.process_ie_result(info, download=True)
    except DownloadError as error:
        raise classify(error) from error
    audio = Path(result["requested_downloads"][0]["filepath"])
    subtitles = None
    if choice is not None:
        requested = (result.get("requested_subtitles") or {}).get(choice[0]) or {}
        subtitles = Path(requested["filepath"]) if requested.get("filepath") else None
    line = metadata_line(result, audio, subtitles, choice[1] if subtitles else None)
    with open(download_dir / METADATA_FILE, "a", encoding="utf-8") as out:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return recording_from_metadata(line, download_dir)
