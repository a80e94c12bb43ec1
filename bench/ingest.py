"""Ingestion speed and memory: master + rendition + peaks from a 60-minute source.

    .venv/bin/python -m bench.ingest [--minutes 60]

Target (issue: ingestion): 100x real time or better (36 s or less for an hour) and peak
memory under 300 MB, on a 2-core machine. Memory is the peak RSS of this process (which
computes the peaks) plus that of ffmpeg (the largest child), both from getrusage.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from pipeline import media

from .common import write_results


def make_source(path: Path, minutes: float) -> None:
    """48 kHz stereo MP3 at 128 kb/s: what a YouTube audio download decodes like."""
    expr = r"0.3*sin(2*PI*(180+60*sin(0.5*t))*t)*lt(mod(t\,5)\,3.5)+0.02*(random(0)-0.5)"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"aevalsrc={expr}|{expr}:s=48000:d={minutes * 60}",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "128k",
            str(path),
        ],
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source.mp3"
        print(f"making a {args.minutes:g}-minute source …")
        make_source(source, args.minutes)
        started = time.perf_counter()
        result = media.convert(source, Path(tmp) / "out")
        elapsed = time.perf_counter() - started
        own_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        sizes = {
            p.name: p.stat().st_size
            for p in (result.master_path, result.rendition_path, result.peaks_path)
        }
    audio_s = args.minutes * 60
    write_results(
        "ingest",
        {
            "source": f"{args.minutes:g} min, 48 kHz stereo MP3 128 kb/s",
            "wall_s": round(elapsed, 2),
            "real_time_factor": round(audio_s / elapsed, 1),
            "target": "≥100x real time, peak memory < 300 MB",
            "peak_rss_mb": {
                "python_peaks": round(own_mb, 1),
                "ffmpeg": round(child_mb, 1),
                "sum": round(own_mb + child_mb, 1),
            },
            "output_bytes": sizes,
        },
    )


if __name__ == "__main__":
    main()
