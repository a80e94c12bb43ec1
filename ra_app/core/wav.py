"""16-bit PCM WAV files, the masters' format: where the samples lie (read from the RIFF
chunks, so a header written before the length was known still reads), spans read on demand
with pread, and files written under a temporary name and renamed when complete."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE
from .files import replaced_atomically


@dataclass(frozen=True)
class WavInfo:
    """Where the PCM of a 16-bit WAV file lies, read from its RIFF chunks."""

    path: Path
    sample_rate: int
    channels: int
    data_offset: int
    n_frames: int

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.sample_rate


def wav_info(path: str | os.PathLike[str]) -> WavInfo:
    """Parse the header of a 16-bit PCM WAV (what ffmpeg writes for the master)."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ValueError(f"{path.name} is not a WAV file")
        fmt = None
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                raise ValueError(f"{path.name} has no data chunk")
            chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"fmt ":
                body = fh.read(size + (size & 1))
                fmt = struct.unpack("<HHIIHH", body[:16])
            elif chunk_id == b"data":
                offset = fh.tell()
                file_size = os.fstat(fh.fileno()).st_size
                if size in (0, 0xFFFFFFFF) or offset + size > file_size:
                    size = file_size - offset  # a header written before the length was known
                break
            else:
                fh.seek(size + (size & 1), os.SEEK_CUR)
    if fmt is None:
        raise ValueError(f"{path.name} has no fmt chunk")
    audio_format, channels, rate, _, block_align, bits = fmt
    if audio_format not in (1, 0xFFFE) or bits != 16:
        raise ValueError(f"{path.name} is not 16-bit PCM")
    return WavInfo(path, rate, channels, offset, size // block_align)


class PcmFile:
    """The samples of a 16-bit WAV, read on demand: `pcm[a:b]` reads just that span with
    pread (an int16 array, (n,) for mono, (n, channels) otherwise). Nothing stays mapped, so
    going through an hour-long master in chunks keeps memory flat."""

    def __init__(self, info: WavInfo):
        self.info = info
        self.frame_bytes = 2 * info.channels
        self.fd = os.open(info.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.info.n_frames

    @property
    def ndim(self) -> int:
        return 1 if self.info.channels == 1 else 2

    def __getitem__(self, span: slice) -> np.ndarray:
        if not isinstance(span, slice) or span.step not in (None, 1):
            raise TypeError("PcmFile reads contiguous spans: pcm[start:end]")
        start, end, _ = span.indices(len(self))
        count = max(end - start, 0)
        data = os.pread(
            self.fd, count * self.frame_bytes, self.info.data_offset + start * self.frame_bytes
        )
        samples = np.frombuffer(data, dtype="<i2")
        return samples if self.info.channels == 1 else samples.reshape(-1, self.info.channels)

    def __array__(self, dtype=None, copy=None):
        whole = self[0 : len(self)]
        return whole if dtype is None else whole.astype(dtype)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self):
        self.close()


def read_pcm(info: WavInfo) -> PcmFile:
    return PcmFile(info)


class WavWriter:
    """A 16-bit PCM WAV written chunk by chunk; the sizes are filled in on close."""

    def __init__(self, path: str | os.PathLike[str], sample_rate: int, channels: int = 1):
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.channels = channels
        self.n_bytes = 0
        self.fh = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self.fh.write(self._header(0))

    def _header(self, data_bytes: int) -> bytes:
        block = 2 * self.channels
        return b"".join(
            [
                b"RIFF",
                struct.pack("<I", 36 + data_bytes),
                b"WAVE",
                b"fmt ",
                struct.pack(
                    "<IHHIIHH",
                    16,
                    1,
                    self.channels,
                    self.sample_rate,
                    self.sample_rate * block,
                    block,
                    16,
                ),
                b"data",
                struct.pack("<I", data_bytes),
            ]
        )

    def write(self, samples: np.ndarray) -> None:
        data = np.ascontiguousarray(samples, dtype="<i2").tobytes()
        self.fh.write(data)
        self.n_bytes += len(data)

    def close(self) -> None:
        if self.fh.closed:
            return
        self.fh.seek(0)
        self.fh.write(self._header(self.n_bytes))
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write `samples` (int16) to `path` under a temporary name, renamed when complete."""
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    with replaced_atomically(path) as partial, WavWriter(partial, sample_rate, channels) as w:
        for start in range(0, len(samples), 1 << 20):
            w.write(samples[start : start + (1 << 20)])


def sample_index(seconds: float, sample_rate: int = SAMPLE_RATE) -> int:
    return int(round(seconds * sample_rate))


def frame_levels_db(pcm, frame: int, chunk_frames: int = 6000) -> np.ndarray:
    """Mean-square level of every `frame` samples in dBFS, read in chunks (flat memory)."""
    n_full = len(pcm) // frame
    tail = len(pcm) - n_full * frame
    power = np.empty(n_full + (1 if tail else 0), dtype=np.float64)
    for first in range(0, n_full, chunk_frames):
        count = min(chunk_frames, n_full - first)
        block = np.asarray(pcm[first * frame : (first + count) * frame], dtype=np.float32)
        block = block.reshape(count, frame)
        power[first : first + count] = np.einsum("ij,ij->i", block, block) / frame
    if tail:
        block = np.asarray(pcm[n_full * frame :], dtype=np.float32)
        power[-1] = float(np.dot(block, block)) / tail
    return 10.0 * np.log10(power / (32768.0**2) + 1e-12)
