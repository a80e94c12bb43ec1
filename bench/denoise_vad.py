"""Hand-written or library: the denoiser and the voice-activity detector, measured on the
same recordings.

    .venv/bin/python -m bench.denoise_vad [--recordings 3]

Recordings: code-switched sentences spoken by espeak-ng (the demo's lines, in a different
order each time), joined with pauses of 0.25–0.8 s, about 70 s each; mixed with noise at
0, 5 and 10 dB SNR, stationary (pink) and not (pink with a slow swell, like a fan or
traffic), so the true speech and the true noise are known.

Denoising: the stage's spectral gating (pipeline/stages/denoise.py) against noisereduce
(stationary and non-stationary modes; `pip install -r requirements-bench.txt`), each on the
whole recording. Quality is the SI-SDR
improvement over the noisy input (dB, higher is better); speed is audio seconds per second
of processing on one core.

Voice activity: the segmenter's former energy detector (kept here as the baseline) against
webrtcvad (aggressiveness 0–3), which pipeline/vad.py now uses. Each cuts the recordings
into 10–30 s segments the way the segment stage does, from sentence times made loose the
way subtitles are (±0.4 s); a cut inside speech (clean-speech energy within 20 ms of the
cut) is a word cut in two. Lower is better; also the share of speech frames the detector
calls silent.

Figures go to bench/results/denoise_vad.json.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import write_results

RATE = 16000
FRAME = 160  # 10 ms
SNRS = (0, 5, 10)


# --- recordings ------------------------------------------------------------------------------


def speak_lines(folder: Path) -> list[np.ndarray]:
    """Every demo line spoken on its own, as float32 in [-1, 1)."""
    from pipeline.demo import LAPTOP, MEETING, PODCAST, speak
    from ra_app.core.wav import read_pcm, wav_info

    clips = []
    for i, line in enumerate(LAPTOP + MEETING + PODCAST):
        work = folder / f"line{i}"
        work.mkdir()
        path, _times = speak([line], work)
        pcm = np.asarray(read_pcm(wav_info(path)), dtype=np.float32) / 32768
        clips.append(pcm[int(0.3 * RATE) :])  # speak() leads with 0.3 s of silence
    return clips


def recording(clips: list[np.ndarray], rng: random.Random) -> tuple[np.ndarray, list[dict]]:
    """The lines in a random order with random pauses; their exact times."""
    order = list(range(len(clips)))
    rng.shuffle(order)
    parts, rows, clock = [np.zeros(int(0.5 * RATE), np.float32)], [], 0.5
    for index in order:
        clip = clips[index]
        rows.append({"start": clock, "end": clock + len(clip) / RATE})
        pause = rng.uniform(0.25, 0.8)
        parts += [clip, np.zeros(int(pause * RATE), np.float32)]
        clock += len(clip) / RATE + int(pause * RATE) / RATE
    return np.concatenate(parts), rows


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.normal(size=n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n)
    return (noise / np.std(noise)).astype(np.float32)


def noise_of(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    noise = pink(n, rng)
    if kind == "swelling":  # a slow swell between 0.3x and 1.7x
        t = np.arange(n) / RATE
        noise *= (1 + 0.7 * np.sin(2 * np.pi * t / 9.0)).astype(np.float32)
    return noise


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    gain = np.sqrt(np.mean(clean**2) / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    noisy = clean + gain * noise
    return (noisy / max(1.0, float(np.max(np.abs(noisy))) / 0.99)).astype(np.float32)


def as_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


# --- denoising ---------------------------------------------------------------------------------


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    reference = reference.astype(np.float64) - reference.mean()
    estimate = estimate.astype(np.float64) - estimate.mean()
    target = np.dot(estimate, reference) / np.dot(reference, reference) * reference
    return float(10 * np.log10(np.sum(target**2) / np.sum((estimate - target) ** 2)))


def ours(noisy: np.ndarray) -> np.ndarray:
    from pipeline.denoisers import GateParams, spectral_gate

    out: list[np.ndarray] = []
    spectral_gate(as_int16(noisy), RATE, GateParams(), out.append)
    return np.concatenate(out)


def noisereduce_with(stationary: bool):
    def run(noisy: np.ndarray) -> np.ndarray:
        import noisereduce

        return noisereduce.reduce_noise(y=noisy, sr=RATE, stationary=stationary, n_jobs=1)

    return run


DENOISERS = {
    "spectral_gating (ours)": ours,
    "noisereduce stationary": noisereduce_with(True),
    "noisereduce non-stationary": noisereduce_with(False),
}


def measure_denoisers(items) -> dict:
    results = {}
    for name, denoise in DENOISERS.items():
        gains: dict[str, list[float]] = {}
        seconds = audio = 0.0
        for clean, noisy, label in items:
            began = time.perf_counter()
            out = denoise(noisy)
            seconds += time.perf_counter() - began
            audio += len(noisy) / RATE
            gains.setdefault(label, []).append(si_sdr(clean, out) - si_sdr(clean, noisy))
        results[name] = {
            "si_sdr_improvement_db": {k: round(float(np.mean(v)), 2) for k, v in gains.items()},
            "mean_improvement_db": round(float(np.mean([x for v in gains.values() for x in v])), 2),
            "x_real_time": round(audio / seconds, 1),
        }
    return results


# --- voice activity --------------------------------------------------------------------------


def levels_db(x: np.ndarray) -> np.ndarray:
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def speech_frames(clean: np.ndarray) -> np.ndarray:
    level = levels_db(clean)
    return level > level.max() - 40


def energy_vad(noisy: np.ndarray):
    """The segmenter's former detector: 10 ms frame levels, silent below a threshold a third
    of the way from the noise floor (5th percentile) to the speech level (95th), at least
    6 dB above the floor."""
    from pipeline.vad import Vad
    from ra_app.core.wav import frame_levels_db

    levels = frame_levels_db(as_int16(noisy), FRAME)
    floor, speech = float(np.percentile(levels, 5)), float(np.percentile(levels, 95))
    threshold = floor + max(6.0, (speech - floor) / 3)
    return Vad.from_silent_frames(levels < threshold)


def webrtc_vad_with(aggressiveness: int):
    def run(noisy: np.ndarray):
        from pipeline.vad import Vad, silent_frames

        silent = silent_frames(as_int16(noisy), RATE, aggressiveness)
        return Vad.from_silent_frames(silent)

    return run


def loose(rows: list[dict], rng: random.Random) -> list[dict]:
    """Sentence times as subtitles give them: starts and ends off by up to 0.4 s."""
    return [
        {"start": r["start"] + rng.uniform(-0.4, 0.4), "end": r["end"] + rng.uniform(-0.4, 0.4)}
        for r in rows
    ]


def cuts_inside_speech(vad, rows: list[dict], speech: np.ndarray, duration: float) -> tuple:
    from pipeline.cuts import Unit, plan_segments

    units = [Unit(i, r["start"], r["end"], "a b c", "", []) for i, r in enumerate(rows)]
    planned = plan_segments(units, vad, duration, 10.0, 30.0, aligned=False)
    cuts = [t for seg in planned[1:] for t in (seg.start,)] + [s.end for s in planned[:-1]]
    inside = 0
    for t in cuts:
        frame = int(t * RATE) // FRAME
        if speech[max(frame - 2, 0) : frame + 3].any():
            inside += 1
    return inside, len(cuts)


VADS = {"energy (former)": energy_vad} | {f"webrtcvad {a}": webrtc_vad_with(a) for a in range(4)}


def measure_vads(items) -> dict:
    results = {}
    for name, make in VADS.items():
        inside = total = missed = speech_total = 0
        seconds = audio = 0.0
        for clean, noisy, _rows, loose_rows in items:
            began = time.perf_counter()
            vad = make(noisy)
            seconds += time.perf_counter() - began
            audio += len(noisy) / RATE
            speech = speech_frames(clean)
            got, cuts = cuts_inside_speech(vad, loose_rows, speech, len(noisy) / RATE)
            inside, total = inside + got, total + cuts
            silent = np.zeros(len(speech), bool)
            for a, b in vad.silences(0, len(noisy) / RATE):
                silent[int(a * 100) : int(b * 100)] = True
            missed += int((speech & silent).sum())
            speech_total += int(speech.sum())
        results[name] = {
            "cuts": total,
            "cuts_inside_speech": inside,
            "speech_frames_called_silent": round(missed / speech_total, 4),
            "x_real_time": round(audio / seconds, 1),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recordings", type=int, default=3)
    args = parser.parse_args()
    rng, nrng = random.Random(5), np.random.default_rng(5)
    with tempfile.TemporaryDirectory() as tmp:
        clips = speak_lines(Path(tmp))
    denoise_items, vad_items = [], []
    for _ in range(args.recordings):
        clean, rows = recording(clips, rng)
        for kind in ("pink", "swelling"):
            noise = noise_of(kind, len(clean), nrng)
            for snr in SNRS:
                noisy = mix(clean, noise, snr)
                denoise_items.append((clean, noisy, f"{kind} {snr} dB"))
                vad_items.append((clean, noisy, rows, loose(rows, rng)))
    seconds = sum(len(c) for c, *_ in denoise_items) / RATE
    write_results(
        "denoise_vad",
        {
            "recordings": args.recordings,
            "mixtures": len(denoise_items),
            "audio_seconds": round(seconds, 1),
            "denoisers": measure_denoisers(denoise_items),
            "vads": measure_vads(vad_items),
        },
    )


if __name__ == "__main__":
    main()
