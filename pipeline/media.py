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
pipe, in fixed-size chunks, so memory stays flat however long the recording is. The
names, formats and the peaks file layout are the core's (ra_app/core/audio.py, peaks.py);
the check before converting and its errors are pipeline/probe.py's.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from pipeline.probe import (
    MediaError,
    ProbeResult,
    first_error_line,
    input_url,
    last_lines,
    probe,
    too_short,
)
from ra_app.core.audio import (
    FFMPEG,
    MASTER_NAME,
    PEAKS_NAME,
    RENDITION_BITRATE,
    RENDITION_NAME,
    SAMPLE_RATE,
)
from ra_app.core.peaks import DEFAULT_LEVELS, PeaksBuilder, write_peaks

CHUNK_BYTES = 1 << 20
"""Read size for the PCM pipe: 1 MiB is ~33 s of audio; big enough that numpy
overhead is negligible, small enough that memory does not depend on file length."""

TRUNCATED_RATIO = 0.9
"""Decoding less than this share of the duration the container announces means
the file was cut short (an interrupted upload), not that the header is a bit off."""


@dataclass(frozen=True)
class ConvertResult:
    """Where ``convert`` put its outputs; ``duration_s`` is counted from decoded samples."""

    master_path: Path
    rendition_path: Path
    peaks_path: Path
    duration_s: float
    source: ProbeResult


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
        "-i", input_url(source),
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
        returncode, stderr = _run_ffmpeg(
            _ffmpeg_command(source, tmp[MASTER_NAME], tmp[RENDITION_NAME]), builder, chunk_bytes
        )
        decoded_s = builder.n_samples / SAMPLE_RATE
        shown = stderr.replace(input_url(source), source.name)  # no storage paths in messages
        expected_s = info.duration_s
        if expected_s is not None and decoded_s < TRUNCATED_RATIO * expected_s:
            why = f" ({first_error_line(shown)})" if shown.strip() else ""
            raise MediaError(
                "truncated",
                f"file is truncated or damaged: only {decoded_s:.1f} s of the announced "
                f"{expected_s:.1f} s could be decoded{why}",
                stderr,
            )
        if returncode != 0:
            tail = last_lines(shown) or f"exit status {returncode}"
            raise MediaError("ffmpeg_failed", f"conversion failed: {tail}", stderr)
        if decoded_s < min_duration_s:
            raise too_short(decoded_s, min_duration_s)

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
