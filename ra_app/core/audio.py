"""A sample's audio files: their names and formats, and clips cut from the master.

Ingestion (pipeline/media.py) makes, per sample, `master.wav` (16 kHz mono 16-bit PCM, what
every stage reads), `audio.m4a` (AAC-LC for the browser, seekable by Range) and
`peaks.bin` (core/peaks.py). A clip of the master (a review window, a chunk for Gemini) is
cut here, in the rendition's format.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .files import replaced_atomically

SAMPLE_RATE = 16_000
"""Sample rate of the master, the peaks and every stage (what the ASR models expect)."""

MASTER_NAME = "master.wav"
RENDITION_NAME = "audio.m4a"
PEAKS_NAME = "peaks.bin"
RENDITION_BITRATE = "64k"

# What ingestion takes as audio (or video with an audio track), by file name.
MEDIA_EXTENSIONS = {
    ".aac",
    ".aif",
    ".aiff",
    ".amr",
    ".flac",
    ".m4a",
    ".mka",
    ".mkv",
    ".mov",
    ".mp3",
    ".mp4",
    ".oga",
    ".ogg",
    ".opus",
    ".wav",
    ".webm",
    ".wma",
}

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"


def cut_clip(master: Path, clip: Path, start: float, end: float, timeout: float = 600) -> Path:
    """[start, end) of the WAV master (seeking in PCM is sample-exact) as AAC in MP4 with
    faststart, written atomically; raises CalledProcessError with ffmpeg's message."""
    clip.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(clip) as partial:
        subprocess.run(
            [
                FFMPEG, "-v", "error", "-nostdin", "-y", "-protocol_whitelist", "file",
                "-ss", f"{start:.3f}", "-t", f"{end - start:.3f}",
                "-i", "file:" + str(master.resolve()),
                "-ac", "1", "-c:a", "aac", "-b:a", RENDITION_BITRATE,
                "-aac_coder", "fast",  # 4x faster than the default coder; someone waits
                "-movflags", "+faststart", "-f", "mp4", "file:" + str(partial),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        )  # fmt: skip
    return clip
