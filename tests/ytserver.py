"""A fake "video site" on 127.0.0.1 for running yt-dlp's real download path in tests.

No internet is needed: ``FakeVideoSite`` is a threaded ``http.server`` on a random loopback
port that serves small media files made with ffmpeg, subtitles, watch pages, playlists and
failure pages. yt-dlp's **generic extractor** handles every URL it serves (no site-specific
extractor matches ``http://127.0.0.1:<port>/...``).

How a watch page is turned into an info dict (yt-dlp 2026.10.26, read from
``yt_dlp/extractor/generic.py`` and ``common.py``)
-----------------------------------------------------------------------------------------
The generic extractor first asks every extractor's embed finder (this includes the
``html5`` embed finder that reads ``<video>/<audio>`` tags); only if none finds anything
does it look at JSON-LD, then at JW Player/OpenGraph/... patterns. So a page with a
``<video>`` tag never gets its JSON-LD read. The two page styles this module serves:

``page_style="jsonld"`` (default, the richest): the page carries OpenGraph tags and a JSON-LD
``VideoObject`` whose ``contentUrl`` points at a DASH manifest ``/manifest/<id>.mpd``; no
``<video>`` tag. yt-dlp returns a ``url_transparent`` result for the JSON-LD, then runs the
generic extractor on the manifest (keeping the page's id) and merges the two:

* ``id``: the last path segment of the watch URL (``/watch/vid00000001`` -> ``vid00000001``).
  ``_generic_id`` drops anything after a dot, so ids must not contain ``.``.
* ``title``, ``description``: JSON-LD ``name``/``description``.
* ``uploader``: JSON-LD ``author.name``. ``channel``, ``channel_id``, ``uploader_id`` and
  ``channel_url`` stay absent: no generic path ever sets them.
* ``timestamp`` / ``upload_date``: JSON-LD ``uploadDate`` (midnight UTC, so ``upload_date``
  is the given ``YYYYMMDD``).
* ``duration``: JSON-LD ISO-8601 ``duration`` (an int, the *advertised* length; the media
  file may be shorter, see ``audio_seconds``).
* ``subtitles``: from the manifest's ``text/vtt`` adaptation sets, keyed by their ``lang``;
  ``writesubtitles`` downloads them over plain HTTP as ``<outtmpl>.<lang>.vtt``.
  ``automatic_captions`` is always empty, so ``writeautomaticsub`` does nothing here.
* ``language``: not set on the info dict by the extractor, but the audio format carries
  ``language`` (the manifest ``lang``) and yt-dlp copies the chosen format's fields into the
  returned dict, so ``info["language"]`` is there after format selection.
* formats: one per representation, ``format_id`` is the representation id (``140`` m4a/AAC,
  ``251`` webm/Opus, ``160`` video-only mp4), ``vcodec == "none"`` for audio, ``container``
  ``m4a_dash`` (yt-dlp runs its ffmpeg ``FixupM4a`` after the download, as on YouTube).
* ``extractor == "generic"``; ``webpage_url`` and ``original_url`` are the watch URL.
* the download itself is in ``info["requested_downloads"][0]["filepath"]`` (the top-level
  ``filepath`` key is not set on the dict ``extract_info`` returns).

``page_style="html5"``: the same page plus ``<audio>``/``<video>`` with ``<source>`` and
``<track kind="subtitles">``. The ``html5`` embed finder wins and JSON-LD is ignored: the id
becomes ``<id>-1`` and the title ``<og:title> (1)``; there is no duration or uploader;
``upload_date`` comes only from the page's ``Last-Modified`` header (which this server
sets); subtitles come from the ``<track>`` tags, formats have no codec information.

Playlists
---------
``/playlist/<id>`` serves an RSS 2.0 feed (the generic extractor turns an ``<rss>``
document into a playlist, one ``url_transparent`` entry per ``<item><link>``). With
``extract_flat="in_playlist"`` the entries come back unresolved: ``url`` (the absolute
watch URL), ``title``, ``duration`` (``itunes:duration``), ``timestamp`` (``pubDate``) and
``description`` but **no ``id``** (derive it from the URL). The playlist's ``id`` is the
feed URL itself, its ``title`` the channel title. ``noplaylist`` has no effect on it.

Failures
--------
``/status/<code>`` answers with that status and the body a real site gives (403: the
YouTube "Sign in to confirm you’re not a bot" page, 429 with ``Retry-After``, 404/410:
"Video unavailable"), ``/private/<id>`` answers 403 "Private video". yt-dlp never shows the
body: every one of them raises ``yt_dlp.utils.DownloadError`` with the message
``ERROR: [generic] <last path segment>: Unable to download webpage: HTTP Error <code>:
<Reason> (caused by <HTTPError <code>: <Reason>>)``, see ``test_ytserver.py`` for the exact
texts. ``err.exc_info[1]`` is the ``yt_dlp.networking.exceptions.HTTPError`` itself
(``.status``, ``.response.headers``); its body is already consumed for 403. These are what
a *generic* site gives; real YouTube reports bot checks, private and removed videos with
HTTP 200 pages, which its own extractor turns into texts such as ``ERROR: [youtube] <id>:
Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies ...`` -- the
fake site cannot produce those (no site-specific extractor runs).
``fail(path, status, times=None)`` makes any path (e.g. ``media_path(id)``,
``subtitle_path(id, "vi")``) fail, to reach the download step's errors (``ERROR: unable to
download video data: HTTP Error 403: Forbidden``, ``ERROR: Unable to download video
subtitles for 'vi': HTTP Error 429: Too Many Requests``).

yt-dlp writes ``ERROR: ...`` to stderr even with ``quiet=True``; pass a ``logger`` to
silence it. Use ``ydl_options(outdir, **overrides)`` for local, quiet, no-retry options, the
``fake_site`` fixture for a started site and ``no_internet`` to fail any non-loopback
connection.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"

BOT_CHECK_TEXT = "Sign in to confirm you’re not a bot"
PRIVATE_TEXT = "Private video"

# What real sites answer (YouTube's own wording where YouTube has one).
STATUS_BODIES: dict[int, str] = {
    403: (f"{BOT_CHECK_TEXT}. This helps protect our community. Learn more"),
    404: "Video unavailable. This video has been removed by the uploader",
    410: "Gone. Video unavailable. This video is no longer available",
    429: (
        "Too Many Requests. We're sorry... but your computer or network may be sending "
        "automated queries. To protect our users, we can't process your request right now."
    ),
    500: "Internal Server Error",
    503: "Service Unavailable",
}

# format_id, mime type, codecs, media extension, ffmpeg codec arguments
AUDIO_KINDS: dict[str, tuple[str, str, str, list[str]]] = {
    "m4a": ("140", "audio/mp4", "mp4a.40.2", ["-c:a", "aac", "-b:a", "32k"]),
    "webm": ("251", "audio/webm", "opus", ["-c:a", "libopus", "-b:a", "24k"]),
}
VIDEO_ONLY = ("160", "video/mp4", "mp4v.20.9", ["-c:v", "mpeg4", "-an"])

CONTENT_TYPES = {
    ".m4a": "audio/mp4",
    ".webm": "audio/webm",
    ".mp4": "video/mp4",
    ".vtt": "text/vtt; charset=utf-8",
}

_ID_RE = re.compile(r"[A-Za-z0-9_-]+")


def sample_vtt(*lines: str, cue_seconds: float = 1.0) -> str:
    """A small valid WebVTT document, one cue per line."""
    out = ["WEBVTT", ""]
    for i, text in enumerate(lines):
        start, end = i * cue_seconds, (i + 1) * cue_seconds
        out += [f"{_vtt_ts(start)} --> {_vtt_ts(end)}", text, ""]
    return "\n".join(out)


def _vtt_ts(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def iso8601_duration(seconds: int) -> str:
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return "PT" + (f"{h}H" if h else "") + (f"{m}M" if m else "") + f"{s}S"


def write_netscape_cookie_file(
    path: Path, cookies: dict[str, str], domain: str = "127.0.0.1"
) -> Path:
    """Write a Netscape cookie file (what ``cookiefile`` / ``--cookies`` reads)."""
    subdomains = "TRUE" if domain.startswith(".") else "FALSE"  # must agree, or load fails
    lines = ["# Netscape HTTP Cookie File", ""]
    for name, value in cookies.items():
        lines.append("\t".join([domain, subdomains, "/", "FALSE", "0", name, value]))
    path.write_text("\n".join(lines) + "\n")
    return path


def ydl_options(outdir: Path, **overrides: Any) -> dict[str, Any]:
    """Options that keep yt-dlp quiet, local and fast; ``overrides`` win."""
    opts: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "socket_timeout": 5,
        "proxy": "",  # never use an environment proxy for 127.0.0.1
        "cachedir": False,  # no ~/.cache/yt-dlp
        "retries": 0,
        "fragment_retries": 0,
        "extractor_retries": 0,
        "format": "bestaudio/best",
        "outtmpl": str(Path(outdir) / "%(id)s.%(ext)s"),
        "ignoreerrors": False,
    }
    opts.update(overrides)
    return opts


@dataclass
class LoggedRequest:
    method: str
    path: str
    range: str | None
    cookie: str | None
    user_agent: str | None
    headers: dict[str, str]
    status: int | None = None

    @property
    def cookies(self) -> dict[str, str]:
        return parse_cookie_header(self.cookie)


@dataclass
class FakeVideo:
    video_id: str
    title: str
    channel: str
    upload_date: str
    duration_s: int
    language: str | None
    subtitles: dict[str, str]
    description: str
    media_file: Path
    format_id: str
    mime_type: str
    codecs: str
    with_audio: bool
    page_style: str
    require_cookie: tuple[str, str] | None

    @property
    def media_ext(self) -> str:
        return self.media_file.suffix.lstrip(".")


@dataclass
class _Failure:
    status: int
    remaining: int | None  # None: forever
    body: str
    headers: dict[str, str] = field(default_factory=dict)


class FakeVideoSite:
    """Threaded HTTP server on 127.0.0.1 with a random port; a context manager.

    Routes: ``/watch/<id>``, ``/manifest/<id>.mpd``, ``/media/<file>``, ``/subs/<file>``,
    ``/playlist/<id>``, ``/status/<code>``, ``/private/<id>``. Every request is appended to
    ``requests`` (method, path, Range and Cookie headers, status answered).
    """

    def __init__(self, root: Path | str | None = None) -> None:
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="fake-video-site-") if root is None else root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.videos: dict[str, FakeVideo] = {}
        self.playlists: dict[str, tuple[str, list[str]]] = {}
        self.requests: list[LoggedRequest] = []
        self._failures: dict[str, _Failure] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeVideoSite:
        if self._server is not None:
            return self
        site = self

        class Handler(_Handler):
            pass

        Handler.site = site
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-video-site", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> FakeVideoSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- URLs -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeVideoSite is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def watch_url(self, video_id: str) -> str:
        return self.url(f"/watch/{video_id}")

    def playlist_url(self, playlist_id: str) -> str:
        return self.url(f"/playlist/{playlist_id}")

    def status_url(self, code: int) -> str:
        return self.url(f"/status/{code}")

    def private_url(self, video_id: str) -> str:
        return self.url(f"/private/{video_id}")

    def media_path(self, video_id: str) -> str:
        return f"/media/{self.videos[video_id].media_file.name}"

    def manifest_path(self, video_id: str) -> str:
        return f"/manifest/{video_id}.mpd"

    def subtitle_path(self, video_id: str, lang: str) -> str:
        return f"/subs/{video_id}.{lang}.vtt"

    # -- content --------------------------------------------------------------------------
    def add_video(
        self,
        video_id: str,
        title: str,
        channel: str,
        upload_date: str = "20250102",
        duration_s: int = 2,
        language: str | None = "vi",
        subtitles: dict[str, str] | None = None,
        audio_seconds: float | None = None,
        with_audio: bool = True,
        *,
        description: str = "",
        audio_ext: str = "m4a",
        page_style: str = "jsonld",
        require_cookie: tuple[str, str] | None = None,
    ) -> FakeVideo:
        """Make the media file (``audio_seconds`` long, default ``duration_s``) with ffmpeg
        and serve ``/watch/<video_id>``. ``with_audio=False`` makes a video-only mp4.
        ``require_cookie=(name, value)``: without that cookie the watch page answers 403
        with the bot-check text."""
        if not _ID_RE.fullmatch(video_id):
            raise ValueError(f"video id {video_id!r}: use [A-Za-z0-9_-] only")
        if page_style not in ("jsonld", "html5"):
            raise ValueError(f"page_style {page_style!r}")
        datetime.strptime(upload_date, "%Y%m%d")  # validate
        seconds = float(duration_s if audio_seconds is None else audio_seconds)
        media_dir = self.root / "media"
        media_dir.mkdir(exist_ok=True)
        if with_audio:
            format_id, mime, codecs, codec_args = AUDIO_KINDS[audio_ext]
            media_file = media_dir / f"{video_id}.{audio_ext}"
            tone = f"sine=frequency=440:sample_rate=16000:duration={seconds}"
            source = ["-f", "lavfi", "-i", tone]
            codec_args = ["-ac", "1", *codec_args]
        else:
            format_id, mime, codecs, codec_args = VIDEO_ONLY
            media_file = media_dir / f"{video_id}.mp4"
            source = ["-f", "lavfi", "-i", f"color=c=black:size=64x64:rate=10:duration={seconds}"]
        subprocess.run(
            [
                FFMPEG,
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                *source,
                *codec_args,
                str(media_file),
            ],
            check=True,
            capture_output=True,
        )
        subs_dir = self.root / "subs"
        subs_dir.mkdir(exist_ok=True)
        for lang, text in (subtitles or {}).items():
            (subs_dir / f"{video_id}.{lang}.vtt").write_text(text, encoding="utf-8")
        video = FakeVideo(
            video_id=video_id,
            title=title,
            channel=channel,
            upload_date=upload_date,
            duration_s=int(duration_s),
            language=language,
            subtitles=dict(subtitles or {}),
            description=description or f"{title} by {channel}",
            media_file=media_file,
            format_id=format_id,
            mime_type=mime,
            codecs=codecs,
            with_audio=with_audio,
            page_style=page_style,
            require_cookie=require_cookie,
        )
        with self._lock:
            self.videos[video_id] = video
        return video

    def add_playlist(self, playlist_id: str, video_ids: list[str], title: str | None = None) -> str:
        """Serve ``/playlist/<playlist_id>`` (an RSS feed of the watch URLs); returns its URL
        once started, else its path."""
        with self._lock:
            self.playlists[playlist_id] = (title or f"Playlist {playlist_id}", list(video_ids))
        path = f"/playlist/{playlist_id}"
        return self.url(path) if self._server is not None else path

    def fail(
        self,
        path: str,
        status: int,
        times: int | None = None,
        body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer ``status`` for ``path`` (exact, query ignored): the next ``times``
        requests, or all of them when ``times`` is None."""
        with self._lock:
            self._failures[path] = _Failure(
                status,
                times,
                body if body is not None else STATUS_BODIES.get(status, ""),
                dict(headers or {}),
            )

    # -- request log ----------------------------------------------------------------------
    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    def requests_to(self, path: str) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- rendering ------------------------------------------------------------------------
    def _watch_page(self, v: FakeVideo) -> str:
        esc = html.escape
        page_url = self.watch_url(v.video_id)
        uploaded = datetime.strptime(v.upload_date, "%Y%m%d").date().isoformat()
        ld: dict[str, Any] = {
            "@context": "https://schema.org",
            "@type": "VideoObject",
            "name": v.title,
            "description": v.description,
            "uploadDate": uploaded,
            "duration": iso8601_duration(v.duration_s),
            "author": {"@type": "Person", "name": v.channel},
            "contentUrl": self.url(self.manifest_path(v.video_id)),
            "embedUrl": page_url,
        }
        if v.language:
            ld["inLanguage"] = v.language
        ld_json = json.dumps(ld, ensure_ascii=False).replace("</", "<\\/")
        media = ""
        if v.page_style == "html5":
            tag = "audio" if v.with_audio else "video"
            tracks = "".join(
                f'<track kind="subtitles" srclang="{esc(lang)}" label="{esc(lang)}" '
                f'src="{esc(self.subtitle_path(v.video_id, lang))}">'
                for lang in v.subtitles
            )
            media = (
                f'<{tag} controls preload="none"><source src="{esc(self.media_path(v.video_id))}"'
                f' type="{esc(v.mime_type)}">{tracks}</{tag}>'
            )
        return f"""<!DOCTYPE html>
<html lang="{esc(v.language or "und")}">
<head>
<meta charset="utf-8">
<title>{esc(v.title)} - FakeTube</title>
<meta property="og:site_name" content="FakeTube">
<meta property="og:type" content="video.other">
<meta property="og:url" content="{esc(page_url)}">
<meta property="og:title" content="{esc(v.title)}">
<meta property="og:description" content="{esc(v.description)}">
<meta name="author" content="{esc(v.channel)}">
<script type="application/ld+json">{ld_json}</script>
</head>
<body>
<h1>{esc(v.title)}</h1>
<p class="channel">{esc(v.channel)}</p>
{media}
</body>
</html>
"""

    def _manifest(self, v: FakeVideo) -> str:
        lang = f' lang="{v.language}"' if v.language else ""
        kind = "audio" if v.with_audio else "video"
        extra = ' audioSamplingRate="16000"' if v.with_audio else ' width="64" height="64"'
        sets = [
            f'<AdaptationSet contentType="{kind}" mimeType="{v.mime_type}"{lang}>'
            f'<Representation id="{v.format_id}" codecs="{v.codecs}" '
            f'bandwidth="{v.media_file.stat().st_size * 8 // max(v.duration_s, 1)}"{extra}>'
            f"<BaseURL>{html.escape(self.url(self.media_path(v.video_id)))}</BaseURL>"
            "</Representation></AdaptationSet>"
        ]
        for sub_lang in v.subtitles:
            sets.append(
                f'<AdaptationSet contentType="text" mimeType="text/vtt" lang="{sub_lang}">'
                f'<Representation id="sub-{sub_lang}" bandwidth="256">'
                f"<BaseURL>{html.escape(self.url(self.subtitle_path(v.video_id, sub_lang)))}"
                "</BaseURL></Representation></AdaptationSet>"
            )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
            'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011" minBufferTime="PT1.5S" '
            f'mediaPresentationDuration="{iso8601_duration(v.duration_s)}">'
            f"<Period>{''.join(sets)}</Period></MPD>\n"
        )

    def _rss(self, playlist_id: str) -> str:
        title, ids = self.playlists[playlist_id]
        esc = html.escape
        items = []
        for vid in ids:
            v = self.videos.get(vid)
            item_title = v.title if v else vid
            extra = ""
            if v:
                pub = datetime.strptime(v.upload_date, "%Y%m%d").replace(tzinfo=UTC)
                extra = (
                    f"<pubDate>{format_datetime(pub, usegmt=True)}</pubDate>"
                    f"<itunes:duration>{v.duration_s}</itunes:duration>"
                    f"<description>{esc(v.description)}</description>"
                )
            items.append(
                f"<item><title>{esc(item_title)}</title>"
                f"<link>{esc(self.watch_url(vid))}</link>{extra}</item>"
            )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
            f"<channel><title>{esc(title)}</title>"
            f"<link>{esc(self.playlist_url(playlist_id))}</link>"
            f"<description>{esc(title)}</description>{''.join(items)}</channel></rss>\n"
        )

    # -- dispatch -------------------------------------------------------------------------
    def _handle(self, h: _Handler, head: bool) -> None:
        raw_path = h.path
        path = raw_path.split("?", 1)[0]
        entry = LoggedRequest(
            method=h.command,
            path=raw_path,
            range=h.headers.get("Range"),
            cookie=h.headers.get("Cookie"),
            user_agent=h.headers.get("User-Agent"),
            headers=dict(h.headers.items()),
        )
        with self._lock:
            self.requests.append(entry)
            failure = self._failures.get(path)
            if failure is not None:
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        del self._failures[path]
        h.log_entry = entry  # _send() records the status before the client can see it
        try:
            if failure is not None:
                _send_error_page(h, failure.status, failure.body, failure.headers, head)
            else:
                self._route(h, path.strip("/").split("/"), head)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _route(self, h: _Handler, parts: list[str], head: bool) -> int:
        if len(parts) == 2 and parts[0] == "watch" and parts[1] in self.videos:
            v = self.videos[parts[1]]
            if v.require_cookie and not _has_cookie(h, *v.require_cookie):
                return _send_error_page(h, 403, STATUS_BODIES[403], {}, head)
            last_modified = format_datetime(
                datetime.strptime(v.upload_date, "%Y%m%d").replace(tzinfo=UTC), usegmt=True
            )
            return _send(
                h,
                200,
                self._watch_page(v).encode(),
                "text/html; charset=utf-8",
                head,
                {"Last-Modified": last_modified},
            )
        if len(parts) == 2 and parts[0] == "manifest" and parts[1].endswith(".mpd"):
            v = self.videos.get(parts[1][: -len(".mpd")])
            if v is not None:
                return _send(h, 200, self._manifest(v).encode(), "application/dash+xml", head)
        if len(parts) == 2 and parts[0] in ("media", "subs") and _safe_name(parts[1]):
            f = self.root / parts[0] / parts[1]
            if f.is_file():
                return _send_file(h, f, head)
        if len(parts) == 2 and parts[0] == "playlist" and parts[1] in self.playlists:
            return _send(
                h, 200, self._rss(parts[1]).encode(), "application/rss+xml; charset=utf-8", head
            )
        if len(parts) == 2 and parts[0] == "status" and parts[1].isdigit():
            code = int(parts[1])
            headers = {"Retry-After": "3600"} if code == 429 else {}
            return _send_error_page(h, code, STATUS_BODIES.get(code, ""), headers, head)
        if len(parts) == 2 and parts[0] == "private":
            body = f"{PRIVATE_TEXT}. Sign in if you've been granted access to this video"
            return _send_error_page(h, 403, body, {}, head)
        return _send_error_page(h, 404, STATUS_BODIES[404], {}, head)


class _Handler(BaseHTTPRequestHandler):
    site: FakeVideoSite
    log_entry: LoggedRequest | None = None
    server_version = "FakeTube/1.0"

    def do_GET(self) -> None:  # noqa: N802
        self.site._handle(self, head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self.site._handle(self, head=True)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def _safe_name(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_.-]+", name)) and not name.startswith(".")


def parse_cookie_header(header: str | None) -> dict[str, str]:
    """``a=1; b=x y`` -> ``{"a": "1", "b": "x y"}`` (lenient, unlike ``SimpleCookie``)."""
    pairs = (part.split("=", 1) for part in (header or "").split(";") if "=" in part)
    return {k.strip(): v.strip() for k, v in pairs}


def _has_cookie(h: BaseHTTPRequestHandler, name: str, value: str) -> bool:
    return parse_cookie_header(h.headers.get("Cookie")).get(name) == value


def _send(
    h: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str,
    head: bool,
    headers: dict[str, str] | None = None,
) -> int:
    entry = getattr(h, "log_entry", None)
    if entry is not None:
        entry.status = status
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body)))
    for k, val in (headers or {}).items():
        h.send_header(k, val)
    h.end_headers()
    if not head:
        h.wfile.write(body)
    return status


def _send_error_page(
    h: BaseHTTPRequestHandler, status: int, text: str, headers: dict[str, str], head: bool
) -> int:
    page = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{status} - FakeTube</title></head><body><p>{html.escape(text)}</p>"
        "</body></html>"
    )
    return _send(h, status, page.encode(), "text/html; charset=utf-8", head, headers)


def _send_file(h: BaseHTTPRequestHandler, f: Path, head: bool) -> int:
    data = f.read_bytes()
    size = len(data)
    ctype = CONTENT_TYPES.get(f.suffix, "application/octet-stream")
    rng = h.headers.get("Range")
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", rng or "")
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return _send(h, 200, data, ctype, head, {"Accept-Ranges": "bytes"})
    if m.group(1) == "":  # suffix range: last N bytes
        start, end = max(size - int(m.group(2)), 0), size - 1
    else:
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if start >= size or start > end:
        return _send(h, 416, b"", ctype, head, {"Content-Range": f"bytes */{size}"})
    return _send(
        h,
        206,
        data[start : end + 1],
        ctype,
        head,
        {
            "Accept-Ranges": "bytes",
            "Content-Range": f"bytes {start}-{end}/{size}",
        },
    )


# -- pytest fixtures -------------------------------------------------------------------------
@pytest.fixture
def fake_site(tmp_path_factory: pytest.TempPathFactory):
    """A started ``FakeVideoSite`` (stopped after the test)."""
    with FakeVideoSite(tmp_path_factory.mktemp("fake-site")) as site:
        yield site


@pytest.fixture
def no_internet(monkeypatch: pytest.MonkeyPatch):
    """Make any socket connection to a non-loopback address fail loudly."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def is_local(host: object) -> bool:
        return isinstance(host, str) and (host in ("localhost", "::1") or host.startswith("127."))

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_local(address[0]):
            raise OSError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not is_local(host.decode() if isinstance(host, bytes) else host):
            raise OSError(f"test tried to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    yield
