"""Turn an uploaded audio/video file into the files the rest of the pipeline uses.

One upload becomes, in one directory:

* ``master.wav`` -- 16 kHz mono 16-bit PCM, the input of every processing stage
  (ASR, alignment, ...), so that all stages see exactly the same samples;
* ``audio.m4a`` -- AAC-LC mono for the browser, ``+faststart`` so the player can
  seek with HTTP Range requests before the whole file has been downloaded;
* ``peaks.bin`` -- min/max waveform peaks at several resolutions, so the review
  page can draw an hour-long waveform without decoding any audio in the browser.

Everything is made by a single ffmpeg process that decodes the source once; the
peaks are computed in Python from a third, raw PCM output that ffmpeg writes to a
pipe, in fixed-size chunks, so memory stays flat however long the recording is.

``peaks.bin`` layout (all integers little-endian)::

    magic            4 bytes   b"RAPK"
    version          uint16    1
    sample_rate      uint32    sample rate the peaks were computed at (16000)
    n_levels         uint16
    n_levels times:
        samples_per_peak  uint32   finest level first, each a multiple of the previous
        n_peaks           uint32
    then, for each level in the same order:
        n_peaks times (min int16, max int16)

Peak ``i`` of a level covers samples ``[i * spp, (i + 1) * spp)``; the last peak of a
level covers whatever samples are left (a partial window), so
``n_peaks == ceil(n_samples / spp)`` and no sample is dropped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

import numpy as np

__all__ = [
    "DEFAULT_LEVELS",
    "MASTER_NAME",
    "PEAKS_NAME",
    "RENDITION_NAME",
    "SAMPLE_RATE",
    "ConvertResult",
    "MediaError",
    "MediaErrorCode",
    "PeakLevel",
    "PeaksBuilder",
    "ProbeResult",
    "convert",
    "probe",
    "read_peaks",
    "sha256_file",
    "write_peaks",
]

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"

SAMPLE_RATE = 16_000
"""Sample rate of the master, the pipe and the peaks (what the ASR models expect)."""

MASTER_NAME = "master.wav"
RENDITION_NAME = "audio.m4a"
PEAKS_NAME = "peaks.bin"

RENDITION_BITRATE = "64k"

DEFAULT_LEVELS: tuple[int, ...] = (160, 640, 2560, 10240, 40960)
"""Samples per peak, each level 4x coarser: from 100 peaks/s (a sentence fills the
screen) to 2.56 s per peak (an hour is ~1400 peaks, one screen-wide overview)."""

CHUNK_BYTES = 1 << 20
"""Read size for the PCM pipe: 1 MiB is ~33 s of audio; big enough that numpy
overhead is negligible, small enough that memory does not depend on file length."""

TRUNCATED_RATIO = 0.9
"""Decoding less than this share of the duration the container announces means
the file was cut short (an interrupted upload), not that the header is a bit off."""

PROBE_TIMEOUT_S = 60.0

PEAKS_MAGIC = b"RAPK"
PEAKS_VERSION = 1
_HEADER = struct.Struct("<4sHIH")
_LEVEL_ENTRY = struct.Struct("<II")
_PEAK_BYTES = 4  # one int16 min + one int16 max

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


@dataclass(frozen=True)
class ConvertResult:
    """Where ``convert`` put its outputs; ``duration_s`` is counted from decoded samples."""

    master_path: Path
    rendition_path: Path
    peaks_path: Path
    duration_s: float
    sha256: str
    source: ProbeResult


@dataclass(frozen=True)
class PeakLevel:
    """One resolution: ``peaks`` is an (n, 2) int16 array of (min, max) rows."""

    samples_per_peak: int
    peaks: np.ndarray


# --------------------------------------------------------------------------- probe


def _first_error_line(stderr: str) -> str:
    """ffmpeg's first complaint, without the ``[demuxer @ 0x...]`` noise."""
    for line in stderr.splitlines():
        line = _LOG_PREFIX.sub("", line.strip())
        if line:
            return line
    return "no details"


def _last_lines(stderr: str, n: int = 5) -> str:
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


def _too_short(duration_s: float, min_duration_s: float) -> MediaError:
    return MediaError(
        "too_short",
        f"clip is {_fmt_seconds(duration_s, min_duration_s)} s long; "
        f"the minimum is {_fmt_seconds(min_duration_s, duration_s)} s",
    )


def _input_url(path: Path) -> str:
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
        _input_url(src),
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
        first = _first_error_line(proc.stderr.replace(_input_url(src), src.name))
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
        raise _too_short(duration, min_duration_s)
    return ProbeResult(
        duration_s=duration,
        has_audio=True,
        codec=audio.get("codec_name"),
        sample_rate=_int_or_none(audio.get("sample_rate")),
        channels=_int_or_none(audio.get("channels")),
        format_name=format_name,
    )


# ------------------------------------------------------------------------- sha256


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large uploads never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


# -------------------------------------------------------------------------- peaks


def _validate_levels(levels: Sequence[int]) -> tuple[int, ...]:
    result = tuple(int(x) for x in levels)
    if not result or result[0] <= 0:
        raise ValueError("levels must be a non-empty list of positive samples-per-peak")
    for finer, coarser in zip(result, result[1:], strict=False):
        if coarser <= finer or coarser % finer:
            raise ValueError(
                "each level's samples_per_peak must be a larger multiple of the previous one"
            )
    return result


def _minmax_rows(block: np.ndarray) -> np.ndarray:
    """(rows, k) samples -> (rows, 2) int16 of (min, max)."""
    out = np.empty((block.shape[0], 2), dtype=np.int16)
    np.min(block, axis=1, out=out[:, 0])
    np.max(block, axis=1, out=out[:, 1])
    return out


def _merge_peaks(groups: np.ndarray) -> np.ndarray:
    """(rows, k, 2) finer peaks -> (rows, 2) coarser peaks."""
    out = np.empty((groups.shape[0], 2), dtype=np.int16)
    np.min(groups[:, :, 0], axis=1, out=out[:, 0])
    np.max(groups[:, :, 1], axis=1, out=out[:, 1])
    return out


class PeaksBuilder:
    """Waveform peaks computed incrementally from a stream of 16-bit samples.

    ``feed`` takes either an int16 ndarray or raw little-endian s16 bytes exactly as
    they come off a pipe: a byte chunk may end mid-sample and any chunk may end
    mid-window; the remainder is carried into the next call. Only the finest level
    is computed from samples; each coarser level is merged from the one below
    (min of mins, max of maxes), which gives exactly the same values as computing
    it from the samples directly. ``finish`` turns the last partial windows into
    one final peak per level (see the module docstring).
    """

    def __init__(
        self, sample_rate: int = SAMPLE_RATE, levels: Sequence[int] = DEFAULT_LEVELS
    ) -> None:
        self.sample_rate = int(sample_rate)
        self.levels = _validate_levels(levels)
        self.n_samples = 0
        self._byte_carry = b""
        self._sample_carry = np.empty(0, dtype=np.int16)
        # _pending[k]: peaks of level k-1 not yet merged into a level-k peak.
        self._pending: list[np.ndarray] = [np.empty((0, 2), dtype=np.int16) for _ in self.levels]
        self._out: list[list[np.ndarray]] = [[] for _ in self.levels]
        self._finished = False

    def feed(self, chunk: np.ndarray | bytes | bytearray | memoryview) -> None:
        """Add the next samples (int16 array, or s16le bytes of any length)."""
        if self._finished:
            raise ValueError("PeaksBuilder.feed() after finish()")
        if isinstance(chunk, np.ndarray):
            if chunk.dtype != np.int16 or chunk.ndim != 1:
                raise ValueError("expected a 1-D int16 array")
            if self._byte_carry:
                raise ValueError(
                    "cannot feed an array while half a sample from a byte chunk is pending"
                )
            samples = chunk
        else:
            buf = memoryview(chunk).cast("B")
            if self._byte_carry:
                buf = memoryview(self._byte_carry + bytes(buf))
            usable = len(buf) - (len(buf) & 1)
            samples = np.frombuffer(buf[:usable], dtype="<i2")
            self._byte_carry = bytes(buf[usable:])
        if samples.size:
            self.n_samples += int(samples.size)
            self._push_samples(samples)

    def _push_samples(self, samples: np.ndarray) -> None:
        spp = self.levels[0]
        if self._sample_carry.size:
            samples = np.concatenate((self._sample_carry, samples))
        n_full = samples.size - samples.size % spp
        if n_full:
            self._push_peaks(0, _minmax_rows(samples[:n_full].reshape(-1, spp)))
        # Copy: never keep a view that pins the caller's (possibly large) buffer.
        self._sample_carry = np.array(samples[n_full:], dtype=np.int16)

    def _push_peaks(self, level: int, peaks: np.ndarray) -> None:
        self._out[level].append(peaks)
        nxt = level + 1
        if nxt == len(self.levels):
            return
        factor = self.levels[nxt] // self.levels[level]
        pending = np.concatenate((self._pending[nxt], peaks)) if self._pending[nxt].size else peaks
        n_full = len(pending) - len(pending) % factor
        if n_full:
            self._push_peaks(nxt, _merge_peaks(pending[:n_full].reshape(-1, factor, 2)))
        self._pending[nxt] = np.array(pending[n_full:], dtype=np.int16)

    def finish(self) -> list[PeakLevel]:
        """Close the last partial windows and return every level, finest first."""
        if self._finished:
            raise ValueError("PeaksBuilder.finish() called twice")
        if self._byte_carry:
            raise ValueError("sample stream ended in the middle of a sample (odd byte count)")
        self._finished = True
        tail: np.ndarray | None = None  # the final partial peak of the level below
        for level in range(len(self.levels)):
            if level == 0:
                rest = self._sample_carry
                tail = _minmax_rows(rest.reshape(1, -1)) if rest.size else None
            else:
                rest = self._pending[level]
                if tail is not None:
                    rest = np.concatenate((rest, tail))
                tail = _merge_peaks(rest.reshape(1, -1, 2)) if rest.size else None
            if tail is not None:
                self._out[level].append(tail)
        result = []
        for spp, parts in zip(self.levels, self._out, strict=True):
            peaks = np.concatenate(parts) if parts else np.empty((0, 2), dtype=np.int16)
            result.append(PeakLevel(spp, peaks))
        return result


def write_peaks(
    path: str | os.PathLike[str],
    levels: Iterable[PeakLevel],
    sample_rate: int = SAMPLE_RATE,
) -> None:
    """Write ``peaks.bin`` (layout in the module docstring)."""
    levels = list(levels)
    _validate_levels([lv.samples_per_peak for lv in levels])
    arrays = []
    for lv in levels:
        arr = np.asarray(lv.peaks)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError("peaks must be an (n, 2) array of (min, max)")
        arrays.append(np.ascontiguousarray(arr, dtype="<i2"))
    with open(path, "wb") as fh:
        fh.write(_HEADER.pack(PEAKS_MAGIC, PEAKS_VERSION, int(sample_rate), len(levels)))
        for lv, arr in zip(levels, arrays, strict=True):
            fh.write(_LEVEL_ENTRY.pack(lv.samples_per_peak, len(arr)))
        for arr in arrays:
            fh.write(arr.tobytes())


def _read_header(fh: BinaryIO) -> tuple[int, list[tuple[int, int, int]]]:
    """-> (sample_rate, [(samples_per_peak, n_peaks, byte offset of data)])."""
    head = fh.read(_HEADER.size)
    if len(head) != _HEADER.size:
        raise ValueError("not a peaks file: too short")
    magic, version, sample_rate, n_levels = _HEADER.unpack(head)
    if magic != PEAKS_MAGIC:
        raise ValueError("not a peaks file: bad magic")
    if version != PEAKS_VERSION:
        raise ValueError(f"unsupported peaks file version {version}")
    table = fh.read(_LEVEL_ENTRY.size * n_levels)
    if len(table) != _LEVEL_ENTRY.size * n_levels:
        raise ValueError("peaks file header is truncated")
    offset = _HEADER.size + len(table)
    levels = []
    for spp, n_peaks in _LEVEL_ENTRY.iter_unpack(table):
        levels.append((spp, n_peaks, offset))
        offset += n_peaks * _PEAK_BYTES
    return sample_rate, levels


def _peak_range(
    spp: int, n_peaks: int, sample_rate: int, start_s: float | None, end_s: float | None
) -> tuple[int, int]:
    """Indices of the peaks that overlap [start_s, end_s)."""
    per_s = sample_rate / spp
    # round() first so that 0.1 s * 100 peaks/s is 10, not 10.000000000000002.
    first = 0 if start_s is None else math.floor(round(max(start_s, 0.0) * per_s, 6))
    last = n_peaks if end_s is None else math.ceil(round(max(end_s, 0.0) * per_s, 6))
    first = min(first, n_peaks)
    return first, max(first, min(last, n_peaks))


def read_peaks(
    path: str | os.PathLike[str],
    samples_per_peak: int | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    max_points: int | None = None,
) -> dict[str, Any]:
    """The peaks the web app serves to wavesurfer.js, reading only the bytes needed.

    Level choice: with ``samples_per_peak``, the coarsest level that is at least
    that fine (the finest level if none is); otherwise the finest level. Then, with
    ``max_points`` (counted in peaks, i.e. min/max pairs, for the requested range),
    the level moves coarser until it fits; if none fits, the coarsest is used.

    ``start_s``/``end_s`` select the peaks overlapping that span; the returned
    ``start_s`` is the time of the first returned peak (a window boundary, so it
    can be a little before the one asked for). ``data`` is
    ``[min0, max0, min1, max1, ...]`` as int16 / 32768, i.e. in [-1, 1).
    """
    if samples_per_peak is not None and samples_per_peak <= 0:
        raise ValueError("samples_per_peak must be positive")
    if max_points is not None and max_points <= 0:
        raise ValueError("max_points must be positive")
    if start_s is not None and end_s is not None and end_s < start_s:
        raise ValueError("end_s is before start_s")
    with open(path, "rb") as fh:
        sample_rate, levels = _read_header(fh)
        if not levels:
            raise ValueError("peaks file has no levels")
        idx = 0
        if samples_per_peak is not None:
            fitting = [i for i, (spp, _, _) in enumerate(levels) if spp <= samples_per_peak]
            idx = fitting[-1] if fitting else 0
        if max_points is not None:
            while idx < len(levels) - 1:
                first, last = _peak_range(
                    levels[idx][0], levels[idx][1], sample_rate, start_s, end_s
                )
                if last - first <= max_points:
                    break
                idx += 1
        spp, n_peaks, offset = levels[idx]
        first, last = _peak_range(spp, n_peaks, sample_rate, start_s, end_s)
        fh.seek(offset + first * _PEAK_BYTES)
        raw = fh.read((last - first) * _PEAK_BYTES)
    if len(raw) != (last - first) * _PEAK_BYTES:
        raise ValueError("peaks file is truncated")
    values = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    return {
        "sample_rate": sample_rate,
        "samples_per_peak": spp,
        "start_s": first * spp / sample_rate,
        "data": values.tolist(),
    }


# ------------------------------------------------------------------------ convert


def _output_args(*args: str) -> list[str]:
    # No tags/chapters from the upload in what we serve or process (they may
    # carry personal data, and they are never needed downstream).
    return ["-map_metadata", "-1", "-map_chapters", "-1", *args]


def _ffmpeg_command(source: Path, master_tmp: Path, rendition_tmp: Path) -> list[str]:
    """One decode, resampled once, split three ways: master, rendition, pipe."""
    graph = (
        f"[0:a:0]aresample={SAMPLE_RATE},"
        "aformat=sample_fmts=s16:channel_layouts=mono,"
        "asplit=3[master][rendition][pipe]"
    )
    return [
        FFMPEG, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
        # Stop at the first decode/demux error instead of skipping the damage:
        # a corrupt or cut-off upload must fail, not become silently shorter.
        "-xerror",
        "-protocol_whitelist", "file",
        "-i", _input_url(source),
        "-filter_complex", graph,
        *_output_args(
            "-map", "[master]", "-c:a", "pcm_s16le", "-fflags", "+bitexact",
            "-f", "wav", "-y", "file:" + str(master_tmp),
        ),
        # The rendition is the same 16 kHz signal the models hear (and the peaks
        # show); 64 kb/s AAC-LC is transparent for that. The "fast" coder halves
        # encode time, which dominates the whole conversion.
        *_output_args(
            "-map", "[rendition]", "-c:a", "aac", "-profile:a", "aac_low",
            "-b:a", RENDITION_BITRATE, "-aac_coder", "fast",
            "-movflags", "+faststart", "-f", "mp4", "-y", "file:" + str(rendition_tmp),
        ),
        *_output_args("-map", "[pipe]", "-c:a", "pcm_s16le", "-f", "s16le", "pipe:1"),
    ]  # fmt: skip


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def convert(
    source_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    min_duration_s: float = 1.0,
    levels: Sequence[int] = DEFAULT_LEVELS,
    chunk_bytes: int = CHUNK_BYTES,
) -> ConvertResult:
    """Make master.wav, audio.m4a and peaks.bin in ``out_dir`` from one upload.

    All-or-nothing: outputs are written under temporary names and renamed into
    place only once everything succeeded; on any failure (including an exception
    raised into us, such as a Celery time limit) everything written is removed
    and ffmpeg is killed. Raises ``MediaError`` for bad input (see ``probe``, plus
    ``truncated`` and ``ffmpeg_failed``). Existing outputs from an earlier run are
    replaced only on success.
    """
    source = Path(source_path)
    out = Path(out_dir)
    if chunk_bytes <= 0:
        raise ValueError("chunk_bytes must be positive")
    info = probe(source, min_duration_s=min_duration_s)
    builder = PeaksBuilder(SAMPLE_RATE, levels)

    created_dir = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(6)
    names = (MASTER_NAME, RENDITION_NAME, PEAKS_NAME)
    tmp = {name: out / f".{name}.{token}.part" for name in names}
    final = {name: out / name for name in names}
    renamed: list[Path] = []
    try:
        digest = sha256_file(source)
        returncode, stderr = _run_ffmpeg(
            _ffmpeg_command(source, tmp[MASTER_NAME], tmp[RENDITION_NAME]), builder, chunk_bytes
        )
        decoded_s = builder.n_samples / SAMPLE_RATE
        shown = stderr.replace(_input_url(source), source.name)  # no storage paths in messages
        expected_s = info.duration_s
        if expected_s is not None and decoded_s < TRUNCATED_RATIO * expected_s:
            why = f" ({_first_error_line(shown)})" if shown.strip() else ""
            raise MediaError(
                "truncated",
                f"file is truncated or damaged: only {decoded_s:.1f} s of the announced "
                f"{expected_s:.1f} s could be decoded{why}",
                stderr,
            )
        if returncode != 0:
            tail = _last_lines(shown) or f"exit status {returncode}"
            raise MediaError("ffmpeg_failed", f"conversion failed: {tail}", stderr)
        if decoded_s < min_duration_s:
            raise _too_short(decoded_s, min_duration_s)

        write_peaks(tmp[PEAKS_NAME], builder.finish(), SAMPLE_RATE)
        for name in names:
            _fsync(tmp[name])
        for name in names:
            os.replace(tmp[name], final[name])
            renamed.append(final[name])
    except BaseException:
        for path in [*tmp.values(), *renamed]:
            _unlink_quietly(path)
        if created_dir:
            try:
                out.rmdir()
            except OSError:
                pass
        raise
    return ConvertResult(
        master_path=final[MASTER_NAME],
        rendition_path=final[RENDITION_NAME],
        peaks_path=final[PEAKS_NAME],
        duration_s=decoded_s,
        sha256=digest,
        source=info,
    )


def _run_ffmpeg(cmd: list[str], builder: PeaksBuilder, chunk_bytes: int) -> tuple[int, str]:
    """Run ffmpeg, feeding its PCM pipe to ``builder`` chunk by chunk; -> (rc, stderr).

    stderr goes to a temporary file rather than a second pipe, so a chatty ffmpeg
    can never block on a full stderr pipe while we are reading stdout.
    """
    with tempfile.TemporaryFile() as errfile:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errfile
        )
        stdout = cast(BinaryIO, proc.stdout)
        try:
            while chunk := stdout.read(chunk_bytes):
                builder.feed(chunk)
            returncode = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            stdout.close()
        errfile.seek(0)
        stderr = errfile.read().decode("utf-8", errors="replace")
    return returncode, stderr
