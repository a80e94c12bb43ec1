"""Test audio made on the spot with ffmpeg (no audio files are committed)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def tone(path: Path, seconds: float = 3.0, freq: int = 440, channels: int = 2) -> Path:
    """A sine tone (different frequencies give different checksums)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={freq}:duration={seconds}",
        "-ac",
        str(channels),
        "-ar",
        "44100",
        str(path),
    )
    return path


def speechlike(path: Path, seconds: float, freq: int = 220) -> Path:
    """Tone bursts separated by silences, shaped roughly like speech with pauses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    expr = rf"0.5*sin(2*PI*{freq}*t)*lt(mod(t\,4)\,3)"
    ffmpeg("-f", "lavfi", "-i", f"aevalsrc={expr}:s=16000:d={seconds}", str(path))
    return path


def video_without_audio(path: Path, seconds: float = 2.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"testsrc=duration={seconds}:size=64x48:rate=10",
        "-an",
        "-pix_fmt",
        "yuv420p",
        str(path),
    )
    return path


def video_with_audio(path: Path, seconds: float = 2.0, freq: int = 660) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"testsrc=duration={seconds}:size=64x48:rate=10",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={freq}:duration={seconds}",
        "-pix_fmt",
        "yuv420p",
        "-shortest",
        str(path),
    )
    return path


def truncated(src: Path, dest: Path, keep: float = 0.3) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: int(len(data) * keep)])
    return dest
