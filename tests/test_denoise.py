"""Denoising: output beside the master with its length and rate, SNR improved on speech with
added noise, loudness normalised, independent of the block size; DeepFilterNet refuses
clearly where it is not installed; a worker killed mid-run leaves nothing half-made."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from flask import current_app

from pipeline.denoisers import GateParams, in_chunks, spectral_gate
from pipeline.errors import TransientError
from pipeline.stages import denoise
from pipeline.tasks import denoise_sample
from ra_app.core.files import sha256_file
from ra_app.core.models import JobRun, JobStatus, Sample
from ra_app.core.states import ProcessingState as S
from ra_app.core.storage import local_storage
from ra_app.core.wav import read_pcm, wav_info
from ra_app.extensions import db

from .conftest import REDIS_URL
from .test_segment import RATE, stored_sample
from .workers import kill_hard, wait_for, worker_process


def denoised_audio_path(sample) -> Path | None:
    """The sample's denoised file under DATA_ROOT, if it has one."""
    if not sample.denoised_path:
        return None
    path = local_storage(current_app.config).path(sample.denoised_path)
    return path if path.is_file() else None


def voiced(seconds: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like audio (a gliding harmonic voice, 1.5 s on, 1 s off) and where it speaks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 25))
    on = (np.mod(t, 2.5) < 1.5).astype(float)
    envelope = np.convolve(on, np.ones(160) / 160, mode="same")
    return 0.15 * voice * envelope, on > 0.5


def as_pcm(signal: np.ndarray) -> np.ndarray:
    return np.clip(np.round(signal * 32768), -32768, 32767).astype(np.int16)


def si_snr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SNR (dB): the output is loudness-normalised, so scale must not count."""
    alpha = np.dot(estimate, reference) / np.dot(reference, reference)
    target = alpha * reference
    return 10 * np.log10(np.sum(target**2) / np.sum((estimate - target) ** 2))


def read_float(path) -> np.ndarray:
    return np.asarray(read_pcm(wav_info(path)), dtype=np.float64) / 32768


def test_denoised_audio_is_cleaner_beside_the_master(app):
    clean, speaking = voiced(20)
    noise = np.random.default_rng(1).normal(0, 1, len(clean))
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (5 / 10))  # 5 dB SNR
    noisy = as_pcm(clean + noise)
    with app.app_context():
        sample = stored_sample(app, noisy, state=S.SEGMENTS_REVIEWED)
        storage = local_storage(app.config)
        master = storage.path(sample.master_path)
        checksum = sha256_file(master)
        result = denoise.run(sample.id)
        assert result["status"] == "denoised", result
        sample = db.session.get(Sample, sample.id)
        assert sample.processing_state is S.DENOISED
        assert sample.denoised_path == f"samples/{sample.id}/denoised.wav"
        out = denoised_audio_path(sample)
        assert out == storage.path(sample.denoised_path) and out.parent == master.parent
        assert sha256_file(master) == checksum  # the original is untouched
        info = wav_info(out)
        assert (info.sample_rate, info.channels, info.n_frames) == (RATE, 1, len(noisy))
        denoised = read_float(out)
        before, after = si_snr(clean, noisy / 32768), si_snr(clean, denoised)
        assert after > before + 3, (before, after)
        # In the pauses the noise is down by far more than in the speech.
        pause_drop = 10 * np.log10(np.mean((noisy[~speaking] / 32768) ** 2)) - 10 * np.log10(
            np.mean(denoised[~speaking] ** 2)
        )
        speech_drop = 10 * np.log10(np.mean((noisy[speaking] / 32768) ** 2)) - 10 * np.log10(
            np.mean(denoised[speaking] ** 2)
        )
        assert pause_drop - speech_drop > 10, (pause_drop, speech_drop)
        info = sample.denoise_info
        assert info["method"] == "spectral_gating" and info["params"]["n_fft"] == 512
        loud = info["loudness"]
        assert loud["target_dbfs"] == app.config["DENOISE_TARGET_DBFS"]
        assert abs(denoise.gated_level_db(block_powers(denoised)) - loud["target_dbfs"]) < 0.5


def block_powers(x: np.ndarray) -> np.ndarray:
    block = RATE // 10
    whole = len(x) // block * block
    return np.mean(x[:whole].reshape(-1, block) ** 2, axis=1)


def test_the_result_does_not_depend_on_the_block_size():
    clean, _ = voiced(6, seed=2)
    pcm = as_pcm(clean + np.random.default_rng(3).normal(0, 0.02, len(clean)))

    def gate(params):
        parts = []
        spectral_gate(pcm, RATE, params, parts.append)
        return np.concatenate(parts)

    whole, blocky = gate(GateParams()), gate(replace(GateParams(), block_frames=37))
    assert len(whole) == len(blocky) == len(pcm)
    assert np.max(np.abs(whole - blocky)) < 1e-5
    untouched = gate(replace(GateParams(), reduction_db=0.0))  # no gating: the input back
    assert np.max(np.abs(untouched - pcm / 32768)) < 1e-5


def test_chunks_for_a_model_are_crossfaded_seamlessly():
    pcm = as_pcm(voiced(7, seed=4)[0])
    parts = []
    in_chunks(pcm, RATE, lambda x: x * 0.5, parts.append, chunk_s=2.0, overlap_s=0.25)
    out = np.concatenate(parts)
    assert len(out) == len(pcm)
    assert np.max(np.abs(out - pcm / 32768 * 0.5)) < 1e-6


def test_rerun_changes_nothing(app):
    with app.app_context():
        sample = stored_sample(app, as_pcm(voiced(5)[0]), state=S.SEGMENTS_REVIEWED)
        assert denoise.run(sample.id, dry_run=True)["status"] == "would_denoise"
        assert denoised_audio_path(db.session.get(Sample, sample.id)) is None
        denoise.run(sample.id)
        out = denoised_audio_path(db.session.get(Sample, sample.id))
        stamp = out.stat().st_mtime_ns
        assert denoise.run(sample.id)["status"] == "already_denoised"
        assert out.stat().st_mtime_ns == stamp
    assert not any((app.config["DATA_ROOT"] / "tmp").iterdir())


def test_deepfilternet_refuses_clearly_without_its_environment(app, monkeypatch):
    monkeypatch.setitem(sys.modules, "df", None)
    monkeypatch.setitem(sys.modules, "df.enhance", None)
    with app.app_context():
        sample = stored_sample(app, as_pcm(voiced(3)[0]), state=S.SEGMENTS_REVIEWED)
        with pytest.raises(TransientError) as refused:
            denoise.run(sample.id, method="deepfilternet")
        assert "requirements-gpu-denoise.txt" in str(refused.value)
        sample = db.session.get(Sample, sample.id)
        assert sample.denoised_path is None and sample.processing_state is S.SEGMENTS_REVIEWED


def test_killed_denoise_is_finished_by_the_next_run(app, celery_app, tmp_path):
    data_root = app.config["DATA_ROOT"]
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    clean = np.tile(voiced(10, seed=5)[0], 60)  # ten minutes
    with app.app_context():
        pcm = as_pcm(clean + np.random.default_rng(6).normal(0, 0.01, len(clean)))
        sample_id = stored_sample(app, pcm, state=S.SEGMENTS_REVIEWED).id
    final = data_root / f"samples/{sample_id}/denoised.wav"
    spool = data_root / f"tmp/denoise-{sample_id}/denoised.f32.part"

    def runs():
        with app.app_context():
            return db.session.scalars(sa.select(JobRun).order_by(JobRun.id)).all()

    with worker_process(
        celery_app,
        url,
        REDIS_URL,
        data_root,
        queues=("cpu",),
        JOB_LEASE_SECONDS="2",
        log_path=tmp_path / "worker.log",
    ) as worker:
        denoise_sample.delay(str(sample_id))
        wait_for(lambda: spool.exists() and spool.stat().st_size > 1_000_000)  # mid-run
        kill_hard(worker)

    assert not final.exists()
    with app.app_context():
        sample = db.session.get(Sample, sample_id)
        assert sample.denoised_path is None and sample.processing_state is S.SEGMENTS_REVIEWED

    time.sleep(2.5)  # the dead worker's lease runs out
    with worker_process(
        celery_app,
        url,
        REDIS_URL,
        data_root,
        queues=("cpu",),
        JOB_LEASE_SECONDS="2",
        log_path=tmp_path / "worker2.log",
    ):
        outcome = denoise_sample.delay(str(sample_id)).get(timeout=120)
    assert outcome["status"] == "denoised", outcome
    assert [r.status for r in runs()] == [JobStatus.EXPIRED, JobStatus.SUCCEEDED]
    assert wav_info(final).n_frames == len(pcm)
    with app.app_context():
        assert db.session.get(Sample, sample_id).processing_state is S.DENOISED
    assert not any((data_root / "tmp").rglob("*"))
