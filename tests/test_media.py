"""Tests for pipeline.media with the real ffmpeg; every input is generated here."""

from __future__ import annotations

import pickle
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline import media
from pipeline.media import convert
from pipeline.probe import MediaError, probe
from ra_app.core import peaks
from ra_app.core.peaks import DEFAULT_LEVELS, PeakLevel, PeaksBuilder, read_peaks, write_peaks

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="ffmpeg/ffprobe not installed",
)

OUTPUT_NAMES = {"master.wav", "audio.m4a", "peaks.bin"}


# ----------------------------------------------------------------------- helpers


def ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
    )


def ffprobe_json(path: Path) -> dict:
    import json

    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def top_level_boxes(path: Path) -> list[str]:
    """Names of the top-level MP4 boxes, in file order."""
    boxes = []
    with open(path, "rb") as fh:
        pos = 0
        while True:
            fh.seek(pos)
            head = fh.read(8)
            if len(head) < 8:
                break
            size, kind = struct.unpack(">I4s", head)
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0]
            boxes.append(kind.decode("latin-1"))
            if size == 0:
                break
            pos += size
    return boxes


def parse_peaks_file(path: Path) -> tuple[int, list[tuple[int, np.ndarray]]]:
    """Independent reader of the documented peaks.bin layout."""
    data = path.read_bytes()
    magic, version, sample_rate, n_levels = struct.unpack_from("<4sHIH", data, 0)
    assert magic == b"RAPK"
    assert version == 1
    pos = 12
    table = []
    for _ in range(n_levels):
        table.append(struct.unpack_from("<II", data, pos))
        pos += 8
    levels = []
    for spp, n in table:
        arr = np.frombuffer(data, dtype="<i2", count=2 * n, offset=pos).reshape(n, 2)
        levels.append((spp, arr))
        pos += 4 * n
    assert pos == len(data)
    return sample_rate, levels


def reference_peaks(samples: np.ndarray, spp: int) -> np.ndarray:
    """min/max per window of spp samples straight from the samples; the last,
    partial window (if the length is not a multiple of spp) is its own peak."""
    if samples.size == 0:
        return np.empty((0, 2), dtype=np.int16)
    starts = np.arange(0, samples.size, spp)
    return np.stack(
        [np.minimum.reduceat(samples, starts), np.maximum.reduceat(samples, starts)], axis=1
    )


def assert_outputs_ok(
    result: media.ConvertResult, source: Path, out_dir: Path, expected_s: float
) -> None:
    assert {p.name for p in out_dir.iterdir()} == OUTPUT_NAMES  # no .part leftovers

    info = sf.info(str(result.master_path))
    assert info.format == "WAV"
    assert info.subtype == "PCM_16"
    assert info.samplerate == 16000
    assert info.channels == 1
    assert abs(info.frames / 16000 - expected_s) < 0.05
    assert result.duration_s == pytest.approx(info.frames / 16000)
    assert abs(result.duration_s - expected_s) < 0.05

    rend = ffprobe_json(result.rendition_path)
    (stream,) = rend["streams"]
    assert stream["codec_name"] == "aac"
    assert stream["profile"] == "LC"
    assert stream["channels"] == 1
    assert "mp4" in rend["format"]["format_name"] and "m4a" in rend["format"]["format_name"]
    assert abs(float(rend["format"]["duration"]) - expected_s) < 0.1
    boxes = top_level_boxes(result.rendition_path)
    assert boxes.index("moov") < boxes.index("mdat"), boxes  # +faststart


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def stereo_mp3(media_dir: Path) -> Path:
    path = media_dir / "stereo48k.mp3"
    # Two different tones so a left/right mix-up would still give a real signal.
    ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3",
        "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000:duration=3",
        "-filter_complex", "[0][1]join=inputs=2:channel_layout=stereo",
        "-ar", "48000", "-c:a", "libmp3lame", "-b:a", "128k", str(path),
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def video_mp4(media_dir: Path) -> Path:
    path = media_dir / "video.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=duration=3:size=160x120:rate=10",
        "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=44100:duration=3",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path),
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def converted(stereo_mp3: Path, media_dir: Path) -> media.ConvertResult:
    return convert(stereo_mp3, media_dir / "out_mp3")


# ----------------------------------------------------------------- happy paths


def test_probe_reports_stream(stereo_mp3: Path) -> None:
    info = probe(stereo_mp3)
    assert info.has_audio
    assert info.codec == "mp3"
    assert info.sample_rate == 48000
    assert info.channels == 2
    assert info.format_name == "mp3"
    assert info.duration_s == pytest.approx(3.0, abs=0.05)


def test_convert_stereo_mp3(
    converted: media.ConvertResult, stereo_mp3: Path, media_dir: Path
) -> None:
    assert_outputs_ok(converted, stereo_mp3, media_dir / "out_mp3", 3.0)
    assert converted.source.codec == "mp3"
    samples, _ = sf.read(str(converted.master_path), dtype="int16")
    assert np.abs(samples).max() > 3000  # real audio, not silence


def test_convert_video_with_audio(video_mp4: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = convert(video_mp4, out)
    assert_outputs_ok(result, video_mp4, out, 3.0)
    assert result.source.codec == "aac"
    assert_peaks_match_master(result)


def test_convert_replaces_previous_outputs(stereo_mp3: Path, tmp_path: Path) -> None:
    for name in OUTPUT_NAMES:
        (tmp_path / name).write_bytes(b"old")
    result = convert(stereo_mp3, tmp_path)
    assert_outputs_ok(result, stereo_mp3, tmp_path, 3.0)


# ------------------------------------------------------------------------ peaks


def test_peaks_match_numpy_over_master(converted: media.ConvertResult) -> None:
    assert_peaks_match_master(converted)


def assert_peaks_match_master(converted: media.ConvertResult) -> None:
    samples, sr = sf.read(str(converted.master_path), dtype="int16")
    assert sr == 16000
    assert samples.size % DEFAULT_LEVELS[-1] != 0  # the coarser levels end in a partial window
    file_sr, levels = parse_peaks_file(converted.peaks_path)
    assert file_sr == 16000
    assert [spp for spp, _ in levels] == list(DEFAULT_LEVELS)
    for spp, arr in levels:
        expected = reference_peaks(samples, spp)
        assert arr.shape == (-(-samples.size // spp), 2)
        np.testing.assert_array_equal(arr, expected, err_msg=f"level {spp}")


def test_read_peaks_level_choice(converted: media.ConvertResult) -> None:
    path = converted.peaks_path
    spp_of = lambda **kw: read_peaks(path, **kw)["samples_per_peak"]  # noqa: E731
    assert spp_of() == 160
    assert spp_of(samples_per_peak=160) == 160
    assert spp_of(samples_per_peak=100) == 160  # finer than we have: finest
    assert spp_of(samples_per_peak=639) == 160
    assert spp_of(samples_per_peak=640) == 640
    assert spp_of(samples_per_peak=2000) == 640
    assert spp_of(samples_per_peak=20000) == 10240
    assert spp_of(samples_per_peak=10**6) == 40960
    # ~3 s of audio: 301 / 76 / 19 / 5 / 2 peaks per level.
    assert spp_of(max_points=1000) == 160
    assert spp_of(max_points=100) == 640
    assert spp_of(max_points=19) == 2560
    assert spp_of(max_points=18) == 10240
    assert spp_of(max_points=2) == 40960
    assert spp_of(max_points=1) == 40960  # nothing fits: coarsest
    # A 1 s range has 100 finest peaks, so 100 points fit at the finest level.
    assert spp_of(start_s=1.0, end_s=2.0, max_points=100) == 160
    assert spp_of(start_s=1.0, end_s=2.0, max_points=99) == 640
    # max_points caps a requested resolution.
    assert spp_of(samples_per_peak=160, max_points=100) == 640


def test_read_peaks_range_slicing(converted: media.ConvertResult) -> None:
    _, levels = parse_peaks_file(converted.peaks_path)
    fine = levels[0][1]
    whole = read_peaks(converted.peaks_path)
    assert whole["sample_rate"] == 16000
    assert whole["start_s"] == 0.0
    np.testing.assert_array_equal(np.array(whole["data"]) * 32768, fine.reshape(-1))
    assert all(-1.0 <= v < 1.0 for v in whole["data"])

    part = read_peaks(converted.peaks_path, start_s=1.0, end_s=1.5)
    assert part["samples_per_peak"] == 160
    assert part["start_s"] == 1.0
    np.testing.assert_array_equal(np.array(part["data"]) * 32768, fine[100:150].reshape(-1))

    # A start inside a window starts at that window; an end inside one includes it.
    part = read_peaks(converted.peaks_path, start_s=1.005, end_s=1.0151)
    assert part["start_s"] == 1.0
    np.testing.assert_array_equal(np.array(part["data"]) * 32768, fine[100:102].reshape(-1))

    # Float noise (0.1 * 100 = 10.000000000000002) must not add a peak.
    assert len(read_peaks(converted.peaks_path, start_s=0.0, end_s=0.1)["data"]) == 20

    coarse_spp, coarse = levels[2]
    part = read_peaks(converted.peaks_path, samples_per_peak=coarse_spp, start_s=0.5, end_s=100.0)
    first = int(0.5 * 16000 // coarse_spp)
    assert part["start_s"] == first * coarse_spp / 16000
    np.testing.assert_array_equal(np.array(part["data"]) * 32768, coarse[first:].reshape(-1))

    assert read_peaks(converted.peaks_path, start_s=50.0)["data"] == []
    with pytest.raises(ValueError):
        read_peaks(converted.peaks_path, start_s=2.0, end_s=1.0)


def test_read_peaks_reads_only_needed_bytes(
    converted: media.ConvertResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    real_open = open

    class Spy:
        def __init__(self, fh):
            self._fh = fh

        def read(self, n=-1):
            sizes.append(n)
            return self._fh.read(n)

        def __getattr__(self, name):
            return getattr(self._fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._fh.close()

    monkeypatch.setattr(peaks, "open", lambda *a, **k: Spy(real_open(*a, **k)), raising=False)
    read_peaks(converted.peaks_path, start_s=1.0, end_s=1.1)
    assert all(n >= 0 for n in sizes)  # never "read everything"
    assert sum(sizes) == 12 + 8 * len(DEFAULT_LEVELS) + 10 * 4


def test_peaks_builder_odd_byte_chunks() -> None:
    rng = np.random.default_rng(1234)
    n = 10240 * 3 + 2560 + 161  # partial windows at every level
    samples = rng.integers(-32768, 32767, size=n, endpoint=True, dtype=np.int16)
    raw = samples.astype("<i2").tobytes()

    one = PeaksBuilder()
    one.feed(raw)
    expected = one.finish()
    for (spp, arr), spp_ref in zip(
        ((lv.samples_per_peak, lv.peaks) for lv in expected), DEFAULT_LEVELS, strict=True
    ):
        assert spp == spp_ref
        np.testing.assert_array_equal(arr, reference_peaks(samples, spp))

    for sizes in ([1], [3], [7, 1], [159, 2, 321], [1001, 3333, 1], [65537]):
        builder = PeaksBuilder()
        pos = i = 0
        while pos < len(raw):
            step = sizes[i % len(sizes)]
            builder.feed(raw[pos : pos + step])
            pos += step
            i += 1
        assert builder.n_samples == n
        got = builder.finish()
        for a, b in zip(got, expected, strict=True):
            assert a.samples_per_peak == b.samples_per_peak
            np.testing.assert_array_equal(a.peaks, b.peaks)

    # int16 arrays in uneven pieces give the same result too.
    builder = PeaksBuilder()
    for piece in np.array_split(samples, [5, 170, 171, 9000, 20000]):
        builder.feed(piece)
    for a, b in zip(builder.finish(), expected, strict=True):
        np.testing.assert_array_equal(a.peaks, b.peaks)


def test_peaks_builder_edge_cases(tmp_path: Path) -> None:
    empty = PeaksBuilder().finish()
    assert [lv.peaks.shape for lv in empty] == [(0, 2)] * len(DEFAULT_LEVELS)

    builder = PeaksBuilder()
    builder.feed(b"\x01")
    with pytest.raises(ValueError):
        builder.feed(np.zeros(4, dtype=np.int16))  # half a sample still pending
    with pytest.raises(ValueError):
        builder.finish()  # stream ended mid-sample
    with pytest.raises(ValueError):
        PeaksBuilder().feed(np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError):
        PeaksBuilder(levels=(160, 500))  # not a multiple

    # Extreme values survive the round trip through the file.
    builder = PeaksBuilder(levels=(2, 4))
    builder.feed(np.array([-32768, 32767, 0, 5, 7], dtype=np.int16))
    path = tmp_path / "p.bin"
    write_peaks(path, builder.finish())
    got = read_peaks(path)
    assert got["samples_per_peak"] == 2
    assert got["data"] == [-1.0, 32767 / 32768, 0.0, 5 / 32768, 7 / 32768, 7 / 32768]
    assert read_peaks(path, samples_per_peak=4)["data"] == [
        -1.0,
        32767 / 32768,
        7 / 32768,
        7 / 32768,
    ]

    path.write_bytes(b"NOPE" + bytes(20))
    with pytest.raises(ValueError, match="not a peaks file"):
        read_peaks(path)


def test_write_peaks_layout(tmp_path: Path) -> None:
    levels = [
        PeakLevel(160, np.array([[-1, 2], [-3, 4], [-5, 6]], dtype=np.int16)),
        PeakLevel(640, np.array([[-5, 6]], dtype=np.int16)),
    ]
    path = tmp_path / "peaks.bin"
    write_peaks(path, levels, sample_rate=16000)
    expected = (
        b"RAPK" + struct.pack("<HIH", 1, 16000, 2) + struct.pack("<IIII", 160, 3, 640, 1)
        + struct.pack("<6h", -1, 2, -3, 4, -5, 6) + struct.pack("<2h", -5, 6)
    )  # fmt: skip
    assert path.read_bytes() == expected


# -------------------------------------------------------------------- bad input


def _make_empty(d: Path) -> Path:
    path = d / "empty.mp3"
    path.write_bytes(b"")
    return path


def _make_text(d: Path) -> Path:
    path = d / "notes.mp3"
    path.write_text("This is not audio.\n" * 50)
    return path


def _truncate(path: Path, share: float = 0.3) -> Path:
    data = path.read_bytes()
    out = path.with_name("cut_" + path.name)
    out.write_bytes(data[: int(len(data) * share)])
    return out


def _make_truncated_mp3(d: Path) -> Path:
    path = d / "long.mp3"
    ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=440:duration=5", "-ac", "2", "-ar", "48000", str(path)
    )
    return _truncate(path)


def _make_truncated_m4a_faststart(d: Path) -> Path:
    # moov first: the header survives and announces 5 s, the sample data does not.
    path = d / "long_fs.m4a"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=5",
        "-c:a",
        "aac",
        "-movflags",
        "+faststart",
        str(path),
    )
    return _truncate(path)


def _make_truncated_m4a(d: Path) -> Path:
    # moov last (ffmpeg's default): cutting the file loses the index entirely.
    path = d / "long.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=5", "-c:a", "aac", str(path))
    return _truncate(path)


def _make_corrupt_tail_m4a(d: Path) -> Path:
    # Garbage over the last 5% of the samples: decodes > 90%, then hits an error.
    path = d / "tail.m4a"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=5",
        "-c:a",
        "aac",
        "-movflags",
        "+faststart",
        str(path),
    )
    data = bytearray(path.read_bytes())
    for i in range(int(len(data) * 0.95), len(data) - 16):
        data[i] = (i * 7919) & 0xFF
    path.write_bytes(bytes(data))
    return path


def _make_video_no_audio(d: Path) -> Path:
    path = d / "silent_video.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=duration=2:size=160x120:rate=10",
        "-an",
        "-c:v",
        "libx264",
        str(path),
    )
    return path


def _make_short_clip(d: Path) -> Path:
    path = d / "short.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=0.4", str(path))
    return path


BAD_INPUTS = [
    (_make_empty, "empty", "file is empty"),
    (_make_text, "unreadable", "not an audio or video file ffmpeg can read: "),
    (_make_truncated_mp3, "truncated", "truncated"),
    (_make_truncated_m4a_faststart, "truncated", "truncated"),
    (_make_truncated_m4a, "unreadable", "moov atom not found"),
    (_make_corrupt_tail_m4a, "ffmpeg_failed", "conversion failed"),
    (_make_video_no_audio, "no_audio", "has no audio stream"),
    (_make_short_clip, "too_short", "clip is 0.4 s long; the minimum is 1.0 s"),
]


@pytest.mark.parametrize(
    ("make", "code", "message"), BAD_INPUTS, ids=[b[0].__name__[1:] for b in BAD_INPUTS]
)
def test_bad_input_rejected_and_nothing_left(make, code: str, message: str, tmp_path: Path) -> None:
    src_dir = tmp_path / "src"
    src_dir.mkdir()
    source = make(src_dir)

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("unrelated file")
    with pytest.raises(MediaError) as excinfo:
        convert(source, out)
    assert excinfo.value.code == code
    assert message in str(excinfo.value)
    assert str(tmp_path) not in str(excinfo.value)  # no storage paths shown to uploaders
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]

    # A directory that convert had to create is removed again.
    fresh = tmp_path / "fresh" / "sample"
    with pytest.raises(MediaError):
        convert(source, fresh)
    assert not fresh.exists()


def test_probe_codes(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as excinfo:
        probe(_make_short_clip(tmp_path))
    assert excinfo.value.code == "too_short"
    assert probe(_make_short_clip(tmp_path), min_duration_s=0.1).duration_s == pytest.approx(
        0.4, abs=0.01
    )
    info = probe(_make_video_no_audio(tmp_path), require_audio=False)
    assert not info.has_audio and info.codec is None
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "missing.mp3")


def test_media_error_pickles() -> None:
    err = pickle.loads(pickle.dumps(MediaError("truncated", "file is truncated", "details")))
    assert isinstance(err, ValueError)
    assert (err.code, str(err), err.detail) == ("truncated", "file is truncated", "details")
    rebuilt = MediaError(*err.args)  # how Celery rebuilds a task's exception
    assert (rebuilt.code, str(rebuilt)) == ("truncated", "file is truncated")


def test_interrupted_conversion_cleans_up(
    stereo_mp3: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # E.g. a Celery soft time limit firing while we read the pipe.
    calls = {"n": 0}
    real_feed = PeaksBuilder.feed

    def failing_feed(self, chunk):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real_feed(self, chunk)

    monkeypatch.setattr(PeaksBuilder, "feed", failing_feed)
    (tmp_path / "master.wav").write_bytes(b"previous run")
    with pytest.raises(KeyboardInterrupt):
        convert(stereo_mp3, tmp_path, chunk_bytes=4096)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master.wav"]
    assert (tmp_path / "master.wav").read_bytes() == b"previous run"
