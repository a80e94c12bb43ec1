"""Denoise a sample's audio into `samples/<id>/denoised.wav`, beside the master, never over it.

Methods (DENOISE_METHOD):

* ``spectral_gating`` (default, queue `cpu`): stationary spectral gating with numpy, in the
  manner of the noisereduce package. A noise profile (mean and spread of each frequency bin's
  level in dB) is taken from the quietest tenth of the recording's 32 ms frames; a
  time-frequency bin counts as signal when its level is more than `n_std` spreads above the
  noise mean; that 0/1 mask is smoothed over `smooth_hz` and `smooth_ms` and turned into a
  gain between 1 and -`reduction_db` dB. The STFT (512-point periodic Hann, hop 128, 4x
  overlap-add) runs over blocks of frames with enough neighbouring frames for the smoothing,
  so the result does not depend on the block size and memory stays flat however long the
  file is.
* ``deepfilternet`` (queue `gpu`, task `pipeline.denoise_gpu`): DeepFilterNet3 from
  `requirements-gpu-denoise.txt`, in its own environment (it pins numpy<2, which WhisperX's
  environment cannot have). Imported lazily, loaded once per worker process from
  DENOISE_MODEL_DIR; a host without it refuses with a TransientError. The master is
  resampled to the model's 48 kHz in one-minute chunks with a one-second crossfade, and back.

Either way the result is normalised to DENOISE_TARGET_DBFS: the gated mean-square level of
400 ms blocks (an absolute gate at -70 dBFS and a relative gate 10 dB below, as in EBU R128,
without the K-weighting: "LUFS-approx" in dBFS), never pushing a peak above -1 dBFS. The
float result goes to a scratch file first and is written as 16-bit PCM once the gain is
known, so a killed run leaves only scratch files, which the next run clears.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from flask import current_app
from numpy.lib.stride_tricks import sliding_window_view

from ra_app.core.files import replaced_atomically
from ra_app.core.flow import advance
from ra_app.core.models import Sample
from ra_app.core.states import ProcessingState
from ra_app.core.storage import local_storage
from ra_app.core.wav import PcmFile, WavWriter, frame_levels_db, read_pcm
from ra_app.extensions import db

from ..errors import TransientError
from ..master import open_master
from .common import get_sample, outcome

S = ProcessingState
DENOISED_NAME = "denoised.wav"
METHODS = ("spectral_gating", "deepfilternet")
WAITING = (S.SEGMENTS_REVIEWED,)
PEAK_CEILING_DBFS = -1.0
ABSOLUTE_GATE_DBFS = -70.0
RELATIVE_GATE_DB = -10.0
NEEDS_GPU = (
    "DeepFilterNet denoising needs a GPU worker with requirements-gpu-denoise.txt installed; "
    "this worker cannot import df (DeepFilterNet) and torch"
)

Emit = Callable[[np.ndarray], None]
Pcm = np.ndarray | PcmFile  # int16 samples, sliced span by span


@dataclass(frozen=True)
class GateParams:
    n_fft: int = 512
    hop: int = 128  # n_fft / 4: the overlap-add below relies on it
    n_std: float = 1.5
    reduction_db: float = 18.0
    smooth_hz: float = 500.0
    smooth_ms: float = 64.0
    quiet_fraction: float = 0.1
    max_profile_frames: int = 4000  # ~2 min of the quietest audio: enough for the statistics
    block_frames: int = 4096  # ~33 s of audio per block at 16 kHz


def denoised_audio_path(sample: Sample) -> Path | None:
    """The denoised rendition the review player can switch to, if the sample has one."""
    if not sample.denoised_path:
        return None
    path = local_storage(current_app.config).path(sample.denoised_path)
    return path if path.is_file() else None


# ------------------------------------------------------------------------ spectral gating


def hann(n: int) -> np.ndarray:
    """Periodic Hann: with hop n/4 its squares add up to exactly 1.5 everywhere."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def read_span(pcm: Pcm, start: int, end: int) -> np.ndarray:
    """pcm[start:end] as float32 in [-1, 1), zeros where the span leaves the recording."""
    out = np.zeros(end - start, dtype=np.float32)
    lo, hi = max(start, 0), min(end, len(pcm))
    if hi > lo:
        out[lo - start : hi - start] = np.asarray(pcm[lo:hi], dtype=np.float32) / 32768.0
    return out


def noise_profile(pcm: Pcm, params: GateParams) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean and spread (dB) of each bin over the quietest frames, and their level (dBFS)."""
    n = params.n_fft
    levels = frame_levels_db(pcm, n)
    count = max(1, int(len(levels) * params.quiet_fraction))
    quiet = np.sort(np.argpartition(levels, count - 1)[:count])
    if len(quiet) > params.max_profile_frames:
        quiet = quiet[np.linspace(0, len(quiet) - 1, params.max_profile_frames).astype(int)]
    frames = np.stack([read_span(pcm, i * n, (i + 1) * n) for i in quiet]) * hann(n)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    spectrum_db = 10 * np.log10(power + 1e-20)
    return spectrum_db.mean(axis=0), spectrum_db.std(axis=0), float(np.mean(levels[quiet]))


def box_mean(values: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Mean over [i - radius, i + radius] along `axis`, clipped to the array's edges."""
    length = values.shape[axis]
    shape = list(values.shape)
    shape[axis] = 1
    sums = np.concatenate(
        [np.zeros(shape), np.cumsum(values, axis=axis, dtype=np.float64)], axis=axis
    )
    idx = np.arange(length)
    hi, lo = np.minimum(idx + radius + 1, length), np.maximum(idx - radius, 0)
    counts = (hi - lo).astype(np.float64)
    if axis == 0:
        return ((sums[hi] - sums[lo]) / counts[:, None]).astype(np.float32)
    return ((sums[:, hi] - sums[:, lo]) / counts[None, :]).astype(np.float32)


def spectral_gate(pcm: Pcm, sample_rate: int, params: GateParams, emit: Emit) -> dict:
    """Denoise `pcm` (int16), handing the result to `emit` in order, block by block."""
    n, hop = params.n_fft, params.hop
    if hop * 4 != n:
        raise ValueError("spectral gating needs hop = n_fft / 4")
    total = len(pcm)
    if total == 0:
        return {"noise_floor_dbfs": None}
    mean_db, std_db, floor_dbfs = noise_profile(pcm, params)
    threshold = (mean_db + params.n_std * std_db).astype(np.float32)
    floor_gain = np.float32(10 ** (-params.reduction_db / 20))
    t_radius = max(1, round(params.smooth_ms / 1000 * sample_rate / hop / 2))
    f_radius = max(1, round(params.smooth_hz / (sample_rate / n) / 2))
    window = hann(n)
    pad = n - hop  # frame t covers samples [t * hop - pad, t * hop - pad + n)
    frames_total = (total - 1 + pad) // hop + 1
    carry = np.zeros(n - hop, dtype=np.float32)
    for t0 in range(0, frames_total, params.block_frames):
        t1 = min(frames_total, t0 + params.block_frames)
        c0, c1 = max(0, t0 - t_radius), min(frames_total, t1 + t_radius)
        x = read_span(pcm, c0 * hop - pad, (c1 - 1) * hop - pad + n)
        spec = np.fft.rfft(sliding_window_view(x, n)[::hop] * window, axis=1)
        level_db = 10 * np.log10(spec.real**2 + spec.imag**2 + 1e-20)
        mask = (level_db > threshold).astype(np.float32)
        mask = box_mean(box_mean(mask, t_radius, 0), f_radius, 1)
        keep = slice(t0 - c0, t1 - c0)
        gain = floor_gain + (1 - floor_gain) * mask[keep]
        out = np.fft.irfft(spec[keep] * gain, n=n, axis=1).astype(np.float32) * window
        count = t1 - t0
        parts = out.reshape(count, 4, hop)
        acc = np.zeros((count + 3, hop), dtype=np.float32)
        for k in range(4):
            acc[k : k + count] += parts[:, k, :]
        y = acc.reshape(-1)
        y[: n - hop] += carry
        done, carry = y[: count * hop] / np.float32(1.5), y[count * hop :].copy()
        first = t0 * hop - pad  # the recording sample `done` starts at
        lo, hi = max(0, -first), min(len(done), total - first)
        if hi > lo:
            emit(done[lo:hi])
    return {"noise_floor_dbfs": round(floor_dbfs, 1)}


# -------------------------------------------------------------------------- DeepFilterNet

_DF: dict[tuple, tuple] = {}


def load_deepfilternet(config) -> tuple:
    try:
        import torch
        import torchaudio
        from df.enhance import enhance, init_df
    except ImportError as error:
        raise TransientError(
            NEEDS_GPU, "run `celery -A celery_worker worker -Q gpu -c 1` in that environment"
        ) from error
    model_dir = config["DENOISE_MODEL_DIR"]
    if not model_dir:
        raise TransientError(
            "DeepFilterNet needs DENOISE_MODEL_DIR (the unpacked DeepFilterNet3 model folder); "
            "weights are never downloaded by a task",
            "set DENOISE_MODEL_DIR on the GPU host",
        )
    key = (model_dir, config["DENOISE_DEVICE"])
    if key not in _DF:
        try:  # a local folder: init_df only downloads for a model *name* or None
            loaded = init_df(model_base_dir=model_dir, log_level="ERROR", log_file=None)
        except (OSError, ValueError) as error:  # NotADirectoryError, a missing checkpoint
            raise TransientError(
                f"DeepFilterNet could not load its model from {model_dir}: {error}",
                "unpack the DeepFilterNet3 model (config.ini, checkpoints/) there",
            ) from error
        model, state = loaded[0], loaded[1]  # 0.5.6 returns 3 items, later releases 4
        model = model.to(config["DENOISE_DEVICE"]).eval()
        _DF[key] = (model, state, enhance, torch, torchaudio)
    return _DF[key]


def forget_models() -> None:
    _DF.clear()


def in_chunks(
    pcm: Pcm,
    sample_rate: int,
    process: Callable[[np.ndarray], np.ndarray],
    emit: Emit,
    chunk_s: float = 60.0,
    overlap_s: float = 1.0,
) -> None:
    """Run `process` (float32 in, as many samples out) over overlapping chunks, crossfading
    each overlap linearly, so a model's memory does not grow with the recording."""
    total = len(pcm)
    chunk, overlap = int(chunk_s * sample_rate), int(overlap_s * sample_rate)
    step = chunk - overlap
    tail = None
    start = 0
    while start < total:
        end = min(total, start + chunk)
        y = np.asarray(process(read_span(pcm, start, end)), dtype=np.float32)
        if len(y) != end - start:
            raise ValueError("the denoiser changed the length of a chunk")
        if tail is not None:
            fade = (np.arange(len(tail), dtype=np.float32) + 0.5) / len(tail)
            y[: len(tail)] = tail * (1 - fade) + y[: len(tail)] * fade
        if end == total:
            emit(y)
            return
        emit(y[: len(y) - overlap])
        tail = y[len(y) - overlap :].copy()
        start += step


def deepfilternet(pcm: Pcm, sample_rate: int, config, emit: Emit) -> dict:
    model, state, enhance, torch, torchaudio = load_deepfilternet(config)
    model_rate = state.sr()

    def process(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            audio = torch.from_numpy(x).unsqueeze(0)
            up = torchaudio.functional.resample(audio, sample_rate, model_rate)
            enhanced = enhance(model, state, up)
            down = torchaudio.functional.resample(enhanced.cpu(), model_rate, sample_rate)
        y = down.squeeze(0).numpy()
        y = y[: len(x)] if len(y) >= len(x) else np.pad(y, (0, len(x) - len(y)))
        return y

    in_chunks(pcm, sample_rate, process, emit)
    return {"model": "DeepFilterNet3", "model_sample_rate": model_rate}


# ------------------------------------------------------------------- loudness and output


def gated_level_db(block_power: np.ndarray) -> float | None:
    """EBU R128-style gated level of 100 ms block powers (full scale = 1), in dBFS."""
    if len(block_power) == 0:
        return None
    power = (
        np.convolve(block_power, np.full(4, 0.25), "valid")
        if len(block_power) >= 4
        else block_power
    )
    power = power[10 * np.log10(power + 1e-20) > ABSOLUTE_GATE_DBFS]
    if len(power) == 0:
        return None
    relative = 10 * np.log10(power.mean()) + RELATIVE_GATE_DB
    power = power[10 * np.log10(power) > relative]
    return float(10 * np.log10(power.mean()))


class FloatSpool:
    """Collects the denoised float samples in a scratch file, with the 100 ms block powers
    and the peak that the loudness normalisation needs."""

    def __init__(self, path: Path, sample_rate: int):
        self.path = path
        self.block = sample_rate // 10
        self.fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.count = 0
        self.peak = 0.0
        self.powers: list[np.ndarray] = []
        self.rest = np.zeros(0, dtype=np.float32)

    def __call__(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32)
        self.fh.write(samples.tobytes())
        self.count += len(samples)
        if len(samples):
            self.peak = max(self.peak, float(np.abs(samples).max()))
        joined = np.concatenate((self.rest, samples))
        whole = len(joined) // self.block * self.block
        if whole:
            blocks = joined[:whole].reshape(-1, self.block).astype(np.float64)
            self.powers.append(np.einsum("ij,ij->i", blocks, blocks) / self.block)
        self.rest = joined[whole:]

    def close(self) -> None:
        self.fh.close()

    def level_db(self) -> float | None:
        powers = np.concatenate(self.powers) if self.powers else np.zeros(0)
        if len(self.rest) and not len(powers):
            powers = np.array([float(np.mean(self.rest.astype(np.float64) ** 2))])
        return gated_level_db(powers)


def normalising_gain_db(level_db: float | None, peak: float, target_dbfs: float) -> float:
    gain = 0.0 if level_db is None else target_dbfs - level_db
    if peak > 0:
        gain = min(gain, PEAK_CEILING_DBFS - 20 * math.log10(peak))
    return gain


def write_levelled(spool: FloatSpool, dest: Path, sample_rate: int, gain_db: float) -> None:
    """The spooled floats times the gain, as 16-bit PCM."""
    scale = np.float32(10 ** (gain_db / 20) * 32768.0)
    chunk = 1 << 20
    with open(spool.path, "rb") as src, WavWriter(dest, sample_rate) as wav:
        while data := src.read(chunk * 4):
            y = np.frombuffer(data, dtype=np.float32) * scale
            wav.write(np.clip(np.rint(y), -32768, 32767).astype(np.int16))


def input_level_db(pcm: Pcm, sample_rate: int) -> float | None:
    levels = frame_levels_db(pcm, sample_rate // 10)
    return gated_level_db(10 ** (levels / 10))


# ------------------------------------------------------------------------------ the stage


def settings(config, method: str) -> dict:
    """What decides the output: a sample denoised with the same settings is left alone."""
    params = asdict(GateParams()) if method == "spectral_gating" else {}
    params.pop("block_frames", None)  # how the work is split, not what comes out
    return {"method": method, "params": params, "target_dbfs": config["DENOISE_TARGET_DBFS"]}


def denoise_file(pcm, sample_rate, method, config, scratch: Path, dest: Path) -> dict:
    """Denoise `pcm` into `dest` (through scratch files); the facts for `denoise_info`."""
    spool = FloatSpool(scratch / "denoised.f32.part", sample_rate)
    try:
        if method == "deepfilternet":
            facts = deepfilternet(pcm, sample_rate, config, spool)
        else:
            facts = spectral_gate(pcm, sample_rate, GateParams(), spool)
    finally:
        spool.close()
    if spool.count != len(pcm):
        raise RuntimeError(f"denoiser wrote {spool.count} samples for {len(pcm)}")
    level = spool.level_db()
    target = config["DENOISE_TARGET_DBFS"]
    gain = normalising_gain_db(level, spool.peak, target)
    with replaced_atomically(dest) as partial:
        write_levelled(spool, partial, sample_rate, gain)
    before = input_level_db(pcm, sample_rate)
    return {
        **facts,
        "loudness": {
            "measure": "gated mean square of 400 ms blocks, dBFS (LUFS-approx, no K-weighting)",
            "target_dbfs": target,
            "input_dbfs": None if before is None else round(before, 2),
            "denoised_dbfs": None if level is None else round(level, 2),
            "gain_db": round(gain, 2),
            "peak_limited": level is not None and gain < target - level - 1e-9,
        },
        "sample_rate": sample_rate,
        "samples": len(pcm),
    }


def run(sample_id, *, dry_run: bool = False, method: str | None = None) -> dict:
    """Denoise one sample; a sample already denoised with the same settings is left alone.
    A sample waiting for it (segments reviewed) moves on to `denoised`."""
    config = current_app.config
    method = method or config["DENOISE_METHOD"]
    if method not in METHODS:
        raise ValueError(f"unknown denoise method {method!r} (one of {', '.join(METHODS)})")
    sample = get_sample(sample_id)
    state = sample.processing_state
    if state is S.DISCARDED:
        return outcome("skipped", sample.id, "is discarded")
    wanted = settings(config, method)
    done = (
        denoised_audio_path(sample) is not None
        and {k: (sample.denoise_info or {}).get(k) for k in wanted} == wanted
    )
    if done:
        if state in WAITING:
            advance(sample, S.DENOISED)
            db.session.commit()
        return outcome("already_denoised", sample.id, f"denoised with {method}")
    storage = local_storage(config)
    info = open_master(sample)
    master = info.path
    if dry_run:
        return outcome("would_denoise", sample.id, f"{info.duration_s:.1f} s with {method}")
    if method == "deepfilternet":
        load_deepfilternet(config)  # refuse before any work on a host without it
    key = str(Path(sample.master_path).parent / DENOISED_NAME)
    dest = storage.path(key)
    if dest == master:
        raise RuntimeError("the denoised file would replace the master")
    scratch = storage.scratch_dir(f"denoise-{sample.id}")
    try:
        facts = denoise_file(read_pcm(info), info.sample_rate, method, config, scratch, dest)
        sample.denoised_path = key
        sample.denoise_info = {**wanted, **facts}
        if state in WAITING:
            advance(sample, S.DENOISED)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        storage.delete_tree(f"tmp/denoise-{sample.id}")
    loud = sample.denoise_info["loudness"]
    return outcome(
        "denoised",
        sample.id,
        f"{info.duration_s:.1f} s with {method}, gain {loud['gain_db']:+.1f} dB",
        method=method,
    )
