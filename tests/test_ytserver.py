"""What yt-dlp's Python API does against the local fake video site (tests/ytserver.py).

Every test runs the real ``YoutubeDL.extract_info(url, download=True)`` path against
127.0.0.1; the ``no_internet`` guard makes any other connection fail.
"""

from __future__ import annotations

import re
import socket
import subprocess

import pytest
import yt_dlp
from yt_dlp.networking.exceptions import HTTPError
from yt_dlp.utils import DownloadError

from tests.ytserver import (
    BOT_CHECK_TEXT,
    FakeVideoSite,
    sample_vtt,
    write_netscape_cookie_file,
    ydl_options,
)
from tests.ytserver import fake_site as fake_site  # noqa: F401  (fixture)
from tests.ytserver import no_internet as no_internet  # noqa: F401  (fixture)

VI_VTT = sample_vtt("Xin chào các bạn.", "Hôm nay chúng ta học tiếng Việt.")
EN_VTT = sample_vtt("Hello everyone.", "Today we learn Vietnamese.")

SUB_OPTS = {
    "writesubtitles": True,
    "writeautomaticsub": True,
    "subtitleslangs": ["vi", "en"],
    "subtitlesformat": "vtt",
}


@pytest.fixture(autouse=True)
def _offline(no_internet):
    yield


@pytest.fixture
def site(fake_site):
    return fake_site


def run(url: str, opts: dict, download: bool = True) -> dict:
    with yt_dlp.YoutubeDL(opts) as ydl:
        return ydl.sanitize_info(ydl.extract_info(url, download=download))


def expect_error(url: str, opts: dict) -> DownloadError:
    with pytest.raises(DownloadError) as excinfo:
        run(url, opts)
    return excinfo.value


def ffprobe_streams(path) -> list[str]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type",
            "-of",
            "csv=p=0",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


# -- a watch page -------------------------------------------------------------------------
def test_video_download_metadata_and_subtitles(site: FakeVideoSite, tmp_path):
    site.add_video(
        "vid00000001",
        "Bài học số 1",
        "Kênh Tiếng Việt",
        upload_date="20250102",
        duration_s=3,
        language="vi",
        subtitles={"vi": VI_VTT, "en": EN_VTT},
        description="Một bài học ngắn",
    )
    info = run(site.watch_url("vid00000001"), ydl_options(tmp_path, **SUB_OPTS))

    # metadata
    assert info["id"] == "vid00000001"
    assert info["title"] == "Bài học số 1"
    assert info["uploader"] == "Kênh Tiếng Việt"
    assert "channel" not in info and "channel_id" not in info and "uploader_id" not in info
    assert info["upload_date"] == "20250102"
    assert info["timestamp"] == 1735776000
    assert info["duration"] == 3
    assert info["language"] == "vi"
    assert info["description"] == "Một bài học ngắn"
    assert info["extractor"] == "generic"
    assert info["webpage_url"] == info["original_url"] == site.watch_url("vid00000001")
    # the chosen format (fields copied onto the info dict)
    assert info["format_id"] == "140"
    assert info["ext"] == "m4a"
    assert info["vcodec"] == "none" and info["acodec"] == "mp4a.40.2"
    assert info["protocol"] == "http"
    assert info["url"] == site.url(site.media_path("vid00000001"))

    # the audio file
    [dl] = info["requested_downloads"]
    audio = tmp_path / "vid00000001.m4a"
    assert dl["filepath"] == str(audio)
    assert audio.stat().st_size > 1000
    assert ffprobe_streams(audio) == ["audio"]

    # subtitles, next to the audio
    assert set(info["subtitles"]) == {"vi", "en"}
    assert not info.get("automatic_captions")
    assert set(info["requested_subtitles"]) == {"vi", "en"}
    for lang, text in (("vi", VI_VTT), ("en", EN_VTT)):
        sub = info["requested_subtitles"][lang]
        assert sub["ext"] == "vtt"
        assert sub["url"] == site.url(site.subtitle_path("vid00000001", lang))
        assert sub["filepath"] == str(tmp_path / f"vid00000001.{lang}.vtt")
        assert (tmp_path / f"vid00000001.{lang}.vtt").read_text(encoding="utf-8") == text
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "vid00000001.en.vtt",
        "vid00000001.m4a",
        "vid00000001.vi.vtt",
    ]

    # what was fetched, in order; the media in one plain GET (no Range header)
    assert site.paths() == [
        "/watch/vid00000001",
        "/manifest/vid00000001.mpd",
        "/subs/vid00000001.vi.vtt",
        "/subs/vid00000001.en.vtt",
        "/media/vid00000001.m4a",
    ]
    [media_req] = site.requests_to("/media/vid00000001.m4a")
    assert media_req.range is None and media_req.status == 200
    assert "Mozilla" in media_req.user_agent


def test_product_like_options_on_a_watch_url(site, tmp_path):
    """extract_flat="in_playlist" and noplaylist leave a single watch URL fully resolved."""
    site.add_video("vid00000014", "Tùy chọn", "Kênh", subtitles={"vi": VI_VTT})
    opts = ydl_options(
        tmp_path,
        **SUB_OPTS,
        extract_flat="in_playlist",
        noplaylist=True,
        outtmpl=str(tmp_path / "%(id)s" / "audio.%(ext)s"),
    )
    info = run(site.watch_url("vid00000014"), opts)
    assert info["_type"] == "video"
    assert (tmp_path / "vid00000014" / "audio.m4a").exists()
    assert (tmp_path / "vid00000014" / "audio.vi.vtt").exists()
    assert info["requested_subtitles"]["vi"]["filepath"] == str(
        tmp_path / "vid00000014" / "audio.vi.vtt"
    )


def test_subtitleslangs_filters_and_missing_language_is_skipped(site, tmp_path):
    site.add_video("vid00000002", "Chỉ có phụ đề Việt", "Kênh", subtitles={"vi": VI_VTT})
    info = run(site.watch_url("vid00000002"), ydl_options(tmp_path, **SUB_OPTS))
    assert set(info["requested_subtitles"]) == {"vi"}  # "en" asked for, silently absent
    assert (tmp_path / "vid00000002.vi.vtt").exists()

    site.clear_log()
    site.add_video("vid00000003", "Hai thứ tiếng", "Kênh", subtitles={"vi": VI_VTT, "en": EN_VTT})
    info = run(
        site.watch_url("vid00000003"),
        ydl_options(tmp_path, **{**SUB_OPTS, "subtitleslangs": ["en"]}),
    )
    assert set(info["requested_subtitles"]) == {"en"}
    assert "/subs/vid00000003.vi.vtt" not in site.paths()


def test_video_without_subtitles(site, tmp_path):
    site.add_video("vid00000004", "Không phụ đề", "Kênh", subtitles=None)
    info = run(site.watch_url("vid00000004"), ydl_options(tmp_path, **SUB_OPTS))
    assert info["requested_subtitles"] is None
    assert not info.get("subtitles")
    assert [p.name for p in tmp_path.iterdir()] == ["vid00000004.m4a"]


def test_advertised_duration_is_metadata_only(site, tmp_path):
    site.add_video("vid00000005", "Dài", "Kênh", duration_s=3600, audio_seconds=1)
    info = run(site.watch_url("vid00000005"), ydl_options(tmp_path))
    assert info["duration"] == 3600
    assert info["duration_string"] == "1:00:00"
    assert (tmp_path / "vid00000005.m4a").stat().st_size < 100_000


def test_webm_opus_audio(site, tmp_path):
    site.add_video("vid00000006", "Opus", "Kênh", audio_ext="webm")
    info = run(site.watch_url("vid00000006"), ydl_options(tmp_path))
    assert (info["format_id"], info["ext"], info["acodec"]) == ("251", "webm", "opus")
    assert ffprobe_streams(tmp_path / "vid00000006.webm") == ["audio"]


def test_video_without_audio_stream(site, tmp_path):
    site.add_video("vid00000007", "Câm", "Kênh", with_audio=False)
    # bestaudio/best falls back to the only (video-only) format and downloads it
    info = run(site.watch_url("vid00000007"), ydl_options(tmp_path))
    assert (info["format_id"], info["ext"], info["acodec"]) == ("160", "mp4", "none")
    assert ffprobe_streams(tmp_path / "vid00000007.mp4") == ["video"]
    # bestaudio alone refuses
    err = expect_error(
        site.watch_url("vid00000007"), ydl_options(tmp_path / "strict", format="bestaudio")
    )
    assert str(err) == (
        "ERROR: [generic] vid00000007: Requested format is not available. "
        "Use --list-formats for a list of available formats"
    )


def test_html5_page_style_quirks(site, tmp_path):
    """With a <video>/<audio> tag the html5 embed wins and JSON-LD is never read."""
    site.add_video(
        "vid00000008",
        "Trang HTML5",
        "Kênh",
        duration_s=2,
        subtitles={"vi": VI_VTT},
        page_style="html5",
    )
    info = run(site.watch_url("vid00000008"), ydl_options(tmp_path, **SUB_OPTS))
    assert info["id"] == "vid00000008-1"
    assert info["title"] == "Trang HTML5 (1)"
    assert info["extractor"] == "html5"
    assert info.get("duration") is None
    assert info.get("uploader") is None
    assert info.get("language") is None
    assert info["upload_date"] == "20250102"  # from the Last-Modified header only
    assert set(info["requested_subtitles"]) == {"vi"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "vid00000008-1.m4a",
        "vid00000008-1.vi.vtt",
    ]


# -- playlists ----------------------------------------------------------------------------
def test_playlist_extract_flat_lists_entry_urls(site, tmp_path):
    site.add_video("vidA0000001", "Bài A", "Kênh", duration_s=2, upload_date="20250102")
    site.add_video("vidB0000002", "Bài B", "Kênh", duration_s=3, upload_date="20240315")
    site.add_playlist("PL0001", ["vidA0000001", "vidB0000002"], title="Khóa học")
    url = site.playlist_url("PL0001")

    info = run(url, ydl_options(tmp_path, extract_flat="in_playlist"), download=False)
    assert info["_type"] == "playlist"
    assert info["id"] == url  # the feed URL, not "PL0001"
    assert info["title"] == "Khóa học"
    assert info["playlist_count"] == 2
    assert [e["url"] for e in info["entries"]] == [
        site.watch_url("vidA0000001"),
        site.watch_url("vidB0000002"),
    ]
    first = info["entries"][0]
    assert first["_type"] == "url_transparent"
    assert (first["title"], first["duration"], first["timestamp"]) == ("Bài A", 2, 1735776000)
    assert "id" not in first  # flat RSS entries carry no id
    assert site.paths() == ["/playlist/PL0001"]  # nothing resolved, nothing downloaded
    assert list(tmp_path.iterdir()) == []

    # noplaylist does not apply to a feed
    info = run(
        url, ydl_options(tmp_path, extract_flat="in_playlist", noplaylist=True), download=False
    )
    assert len(info["entries"]) == 2


def test_playlist_full_download(site, tmp_path):
    site.add_video("vidA0000001", "Bài A", "Kênh", subtitles={"vi": VI_VTT})
    site.add_video("vidB0000002", "Bài B", "Kênh")
    site.add_playlist("PL0002", ["vidA0000001", "vidB0000002"])
    info = run(site.playlist_url("PL0002"), ydl_options(tmp_path, **SUB_OPTS))
    assert [(e["id"], e["title"], e["playlist_index"]) for e in info["entries"]] == [
        ("vidA0000001", "Bài A", 1),
        ("vidB0000002", "Bài B", 2),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "vidA0000001.m4a",
        "vidA0000001.vi.vtt",
        "vidB0000002.m4a",
    ]


# -- failures -----------------------------------------------------------------------------
FAILURES = [
    (
        "/status/403",
        403,
        "ERROR: [generic] 403: Unable to download webpage: "
        "HTTP Error 403: Forbidden (caused by <HTTPError 403: Forbidden>)",
    ),
    (
        "/status/429",
        429,
        "ERROR: [generic] 429: Unable to download webpage: "
        "HTTP Error 429: Too Many Requests (caused by <HTTPError 429: Too Many Requests>)",
    ),
    (
        "/status/410",
        410,
        "ERROR: [generic] 410: Unable to download webpage: "
        "HTTP Error 410: Gone (caused by <HTTPError 410: Gone>)",
    ),
    (
        "/status/404",
        404,
        "ERROR: [generic] 404: Unable to download webpage: "
        "HTTP Error 404: Not Found (caused by <HTTPError 404: Not Found>)",
    ),
    (
        "/private/vidP0000001",
        403,
        "ERROR: [generic] vidP0000001: Unable to download webpage: "
        "HTTP Error 403: Forbidden (caused by <HTTPError 403: Forbidden>)",
    ),
    (
        "/status/503",
        503,
        "ERROR: [generic] 503: Unable to download webpage: "
        "HTTP Error 503: Service Unavailable (caused by <HTTPError 503: Service Unavailable>)",
    ),
]


@pytest.mark.parametrize(("path", "status", "message"), FAILURES)
def test_failure_endpoints(site, tmp_path, path, status, message):
    err = expect_error(site.url(path), ydl_options(tmp_path))
    assert str(err) == message
    assert err.msg == message
    # exc_info[1] is the network error itself (not the ExtractorError)
    exc = err.exc_info[1]
    assert isinstance(exc, HTTPError)
    assert exc.status == status
    assert site.paths() == [path]  # extraction is not retried
    assert site.requests[0].status == status
    assert list(tmp_path.iterdir()) == []


def test_failure_bodies_are_not_in_the_message(site, tmp_path):
    err = expect_error(site.status_url(403), ydl_options(tmp_path))
    assert BOT_CHECK_TEXT not in str(err)
    assert err.exc_info[1].response.read() == b""  # the generic extractor consumed it

    err = expect_error(site.status_url(429), ydl_options(tmp_path))
    response = err.exc_info[1].response
    assert response.headers["Retry-After"] == "3600"
    assert b"Too Many Requests" in response.read()

    err = expect_error(site.private_url("vidP0000001"), ydl_options(tmp_path))
    assert "Private video" not in str(err)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (403, "Forbidden"),
        (404, "Not Found"),
        (410, "Gone"),
        (429, "Too Many Requests"),
    ],
)
def test_download_step_errors(site, tmp_path, status, reason):
    site.add_video("vid00000009", "Hỏng", "Kênh")
    site.fail(site.media_path("vid00000009"), status)
    err = expect_error(site.watch_url("vid00000009"), ydl_options(tmp_path))
    assert str(err) == f"ERROR: unable to download video data: HTTP Error {status}: {reason}"
    assert isinstance(err.exc_info[1], HTTPError) and err.exc_info[1].status == status
    assert [(r.path, r.status) for r in site.requests] == [
        ("/watch/vid00000009", 200),
        ("/manifest/vid00000009.mpd", 200),
        ("/media/vid00000009.m4a", status),
    ]
    assert list(tmp_path.iterdir()) == []  # no .part left behind


def test_subtitle_download_error_fails_the_whole_call(site, tmp_path):
    site.add_video("vid00000010", "Phụ đề lỗi", "Kênh", subtitles={"vi": VI_VTT})
    site.fail(site.subtitle_path("vid00000010", "vi"), 429)
    err = expect_error(site.watch_url("vid00000010"), ydl_options(tmp_path, **SUB_OPTS))
    assert str(err) == (
        "ERROR: Unable to download video subtitles for 'vi': HTTP Error 429: Too Many Requests"
    )
    assert "/media/vid00000010.m4a" not in site.paths()  # subtitles come first


def test_transient_media_failure_is_retried_by_yt_dlp(site, tmp_path):
    site.add_video("vid00000011", "Thử lại", "Kênh")
    site.fail(site.media_path("vid00000011"), 503, times=1)
    run(site.watch_url("vid00000011"), ydl_options(tmp_path, retries=2))
    assert [r.status for r in site.requests_to("/media/vid00000011.m4a")] == [503, 200]
    assert (tmp_path / "vid00000011.m4a").exists()


# -- cookies, ranges ----------------------------------------------------------------------
def test_cookiefile_sends_cookies(site, tmp_path):
    site.add_video("vid00000012", "Cần cookie", "Kênh", require_cookie=("SID", "s3cr3t"))
    err = expect_error(site.watch_url("vid00000012"), ydl_options(tmp_path / "a"))
    assert "HTTP Error 403: Forbidden" in str(err)
    assert site.requests[0].cookie is None

    site.clear_log()
    cookies = write_netscape_cookie_file(
        tmp_path / "cookies.txt", {"SID": "s3cr3t", "PREF": "hl=vi"}
    )
    info = run(site.watch_url("vid00000012"), ydl_options(tmp_path / "b", cookiefile=str(cookies)))
    assert info["id"] == "vid00000012"
    assert [(r.path, r.cookies) for r in site.requests] == [
        (path, {"SID": "s3cr3t", "PREF": "hl=vi"})
        for path in ("/watch/vid00000012", "/manifest/vid00000012.mpd", "/media/vid00000012.m4a")
    ]


def test_chunked_download_uses_range_requests(site, tmp_path):
    video = site.add_video("vid00000013", "Từng đoạn", "Kênh", audio_seconds=4)
    size = video.media_file.stat().st_size
    run(site.watch_url("vid00000013"), ydl_options(tmp_path, http_chunk_size=4096))
    media = site.requests_to("/media/vid00000013.m4a")
    assert len(media) > 1
    assert {r.status for r in media} == {206}
    spans = [tuple(map(int, re.fullmatch(r"bytes=(\d+)-(\d+)", r.range).groups())) for r in media]
    # yt-dlp draws each chunk at 95-100 % of http_chunk_size; the chunks are contiguous
    assert spans[0][0] == 0 and 3890 <= spans[0][1] < 4096
    assert all(b[0] == a[1] + 1 for a, b in zip(spans, spans[1:], strict=False))
    assert spans[-1][1] >= size - 1
    # FixupM4a rewrites the container, so compare the decoded length rather than bytes
    assert (tmp_path / "vid00000013.m4a").stat().st_size > size // 2


def test_network_guard_blocks_other_hosts():
    with pytest.raises(OSError, match="tried to"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
