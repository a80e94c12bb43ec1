"""A sample's processing master, opened by every stage that reads it, and checked against
what ingestion recorded: a file that is not a 16-bit WAV, or that lasts other than the
sample says (cut short, replaced), is a permanent failure that names the problem, never
a retry that can only fail again, nor a stage that quietly works on the wrong audio.

`open_master` is a context: with S3 storage the master is a cached local copy, held (never
evicted) while the block runs."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager

from ra_app.core.audio import SAMPLE_RATE
from ra_app.core.media_store import local_file
from ra_app.core.models import Sample
from ra_app.core.wav import WavInfo, wav_info

from .errors import PermanentError

LENGTH_TOLERANCE_S = 0.5


@contextmanager
def open_master(sample: Sample) -> Iterator[WavInfo]:
    with local_file(sample.master_path) as path:
        yield checked(sample, path)


def checked(sample: Sample, path) -> WavInfo:
    try:
        info = wav_info(path)
    except (ValueError, struct.error) as error:
        raise PermanentError(
            f"the master of sample {sample.id} is not a 16-bit WAV ({error}); ingest the "
            "recording again",
            code="bad_master",
        ) from error
    if info.sample_rate != SAMPLE_RATE or info.channels != 1:
        raise PermanentError(
            f"the master of sample {sample.id} is {info.sample_rate} Hz with "
            f"{info.channels} channel(s), not {SAMPLE_RATE} Hz mono; ingest it again",
            code="bad_master",
        )
    tolerance = max(LENGTH_TOLERANCE_S, 0.01 * sample.duration_s)
    if abs(info.duration_s - sample.duration_s) > tolerance:
        raise PermanentError(
            f"the master of sample {sample.id} lasts {info.duration_s:.1f} s, but ingestion "
            f"recorded {sample.duration_s:.1f} s: the file was cut short or replaced; "
            "ingest the recording again",
            code="master_mismatch",
        )
    return info
