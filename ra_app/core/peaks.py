"""Waveform peaks: computed while ingestion decodes a recording, stored in `peaks.bin`,
read back by byte range for the player (an hour-long waveform without decoding audio in the
browser).

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

import math
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from .audio import SAMPLE_RATE

DEFAULT_LEVELS: tuple[int, ...] = (160, 640, 2560, 10240, 40960)
"""Samples per peak, each level 4x coarser: from 100 peaks/s (a sentence fills the
screen) to 2.56 s per peak (an hour is ~1400 peaks, one screen-wide overview)."""

PEAKS_MAGIC = b"RAPK"
PEAKS_VERSION = 1
_HEADER = struct.Struct("<4sHIH")
_LEVEL_ENTRY = struct.Struct("<II")
_PEAK_BYTES = 4  # one int16 min + one int16 max


@dataclass(frozen=True)
class PeakLevel:
    """One resolution: ``peaks`` is an (n, 2) int16 array of (min, max) rows."""

    samples_per_peak: int
    peaks: np.ndarray


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
