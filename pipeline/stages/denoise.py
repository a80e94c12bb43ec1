"""Denoise a sample's audio into `samples/<id>/denoised.wav`, beside the master, never over it.

The methods (DENOISE_METHOD) are in pipeline/denoisers.py: `spectral_gating` (default, queue
`cpu`) and `deepfilternet` (queue `gpu_denoise`).

Either way the result is normalised to DENOISE_TARGET_DBFS: the gated mean-square level of
400 ms blocks (an absolute gate at -70 dBFS and a relative gate 10 dB below, as in EBU R128,
without the K-weighting: "LUFS-approx" in dBFS), never pushing a peak above -1 dBFS. The
float result goes to a scratch file first and is written as 16-bit PCM once the gain is
known, so a killed run leaves only scratch files, which the next run clears.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
from flask import current_app

from ra_app.core.files import replaced_atomically
from ra_app.core.flow import advance
from ra_app.core.media_store import (
    drop_work_dir,
    has_object,
    media_storage,
    publish_file,
    work_dir,
)
from ra_app.core.states import ProcessingState
from ra_app.core.wav import WavWriter, frame_levels_db, read_pcm
from ra_app.extensions import db

from ..denoisers import GateParams, Pcm, deepfilternet, load_deepfilternet, spectral_gate
from ..master import open_master
from .common import get_sample, outcome

S = ProcessingState
DENOISED_NAME = "denoised.wav"
METHODS = ("spectral_gating", "deepfilternet")
WAITING = (S.SEGMENTS_REVIEWED,)
PEAK_CEILING_DBFS = -1.0
ABSOLUTE_GATE_DBFS = -70.0
RELATIVE_GATE_DB = -10.0


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
        has_object(sample.denoised_path)
        and {k: (sample.denoise_info or {}).get(k) for k in wanted} == wanted
    )
    if done:
        if state in WAITING:
            advance(sample, S.DENOISED)
            db.session.commit()
        return outcome("already_denoised", sample.id, f"denoised with {method}")
    key = f"{Path(sample.master_path).parent.as_posix()}/{DENOISED_NAME}"
    if key == sample.master_path:
        raise RuntimeError("the denoised file would replace the master")
    with open_master(sample) as info:
        if dry_run:
            return outcome("would_denoise", sample.id, f"{info.duration_s:.1f} s with {method}")
        if method == "deepfilternet":
            load_deepfilternet(config)  # refuse before any work on a host without it
        store = media_storage()
        scratch = work_dir(f"denoise-{sample.id}", store)
        try:
            made = scratch / DENOISED_NAME
            facts = denoise_file(read_pcm(info), info.sample_rate, method, config, scratch, made)
            publish_file(store, made, key)
            sample.denoised_path = key
            sample.denoise_info = {**wanted, **facts}
            if state in WAITING:
                advance(sample, S.DENOISED)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        finally:
            drop_work_dir(f"denoise-{sample.id}", store)
    loud = sample.denoise_info["loudness"]
    return outcome(
        "denoised",
        sample.id,
        f"{info.duration_s:.1f} s with {method}, gain {loud['gain_db']:+.1f} dB",
        method=method,
    )
