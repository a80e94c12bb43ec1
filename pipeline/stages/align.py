"""Word timings for a reviewed transcript: WhisperX forced alignment (queue `gpu`).

WhisperX (`requirements-gpu-align.txt`, GPU hosts only) is imported lazily; a host without
it refuses with a TransientError, so the task goes back to the queue for a GPU worker instead
of being consumed. Its alignment models (wav2vec2, one per language) are loaded once per
worker process and kept in `_MODELS` for the life of the process, from ALIGN_MODEL_DIR on
ALIGN_DEVICE; weights are never fetched by a task (`requirements-gpu-align.txt` says how a
GPU host gets them beforehand).

Code-switched text: every sentence is aligned with the model of its majority language (the
per-word tags of `ra_app.core.text.word_languages`, which honour the reviewer's overrides;
a tie goes to Vietnamese, the matrix language). WhisperX aligns a sentence character by
character; words it cannot time (digits, symbols: no character in the model's alphabet) come
back without start/end/score. Those, and words WhisperX filled in itself (times but no
score), are placed between their timed neighbours in proportion to their length and stored
with `interpolated=True`.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from flask import current_app

from ra_app.core.flow import advance
from ra_app.core.models import Sample, TranscriptRevision, WordAlignment
from ra_app.core.revisions import latest_transcript
from ra_app.core.states import ProcessingState
from ra_app.core.text import tokenize, word_core, word_languages
from ra_app.core.wav import read_pcm
from ra_app.extensions import db

from ..errors import PermanentError, TransientError
from ..master import open_master
from .common import get_sample, outcome

S = ProcessingState
NEEDS_GPU = (
    "alignment needs a GPU worker with requirements-gpu-align.txt installed (WhisperX); "
    "this worker cannot import whisperx"
)
LATER = (S.SEGMENTED, S.SEGMENTS_REVIEWED, S.DENOISED, S.EXPORTED)

# (language, device, model_dir, model_name) -> (model, metadata): one load per process.
_MODELS: dict[tuple, tuple] = {}


def load_whisperx():
    """The whisperx module, or a TransientError that leaves the task for a GPU worker."""
    try:
        return importlib.import_module("whisperx")
    except ImportError as error:
        raise TransientError(
            NEEDS_GPU, "run `celery -A celery_worker worker -Q gpu -c 1` on a GPU host"
        ) from error


def align_model(whisperx, language: str, config) -> tuple:
    device = config["ALIGN_DEVICE"]
    model_dir = config["ALIGN_MODEL_DIR"]
    model_name = config["ALIGN_MODELS"].get(language)
    key = (language, device, model_dir, model_name)
    if key not in _MODELS:
        try:
            _MODELS[key] = whisperx.load_align_model(
                language_code=language, device=device, model_name=model_name, model_dir=model_dir
            )
        except (OSError, ValueError) as error:
            raise TransientError(
                f"the {language} alignment model could not be loaded: {error}",
                "put its weights under ALIGN_MODEL_DIR on this GPU host",
            ) from error
    return _MODELS[key]


def forget_models() -> None:
    """Drop the cached models (a forked worker process must load its own)."""
    _MODELS.clear()


def sentence_language(text: str, overrides: dict | None = None) -> tuple[str, list[str]]:
    """The sentence's majority language and the language of each of its tokens."""
    tags = [w["lang"] for w in word_languages(text, overrides)]
    counted = [
        tag
        for token, tag in zip(tokenize(text), tags, strict=True)
        if any(ch.isalpha() for ch in word_core(token))
    ]
    english = sum(tag == "en" for tag in counted)
    return ("en" if english * 2 > len(counted) else "vi"), tags


@dataclass
class TimedWord:
    word: str
    start: float | None
    end: float | None
    score: float | None
    interpolated: bool = False


def match_words(tokens: list[str], aligned: list[dict]) -> list[TimedWord]:
    """WhisperX's words (split on spaces, so normally one per token) onto our tokens."""

    def timed(item: dict, token: str) -> TimedWord:
        start, end, score = item.get("start"), item.get("end"), item.get("score")
        complete = all(v is not None and np.isfinite(v) for v in (start, end, score))
        if not complete:
            return TimedWord(token, None, None, None)
        return TimedWord(token, float(start), float(end), float(score))

    if len(aligned) == len(tokens):
        return [timed(item, token) for token, item in zip(tokens, aligned, strict=True)]
    result = [TimedWord(token, None, None, None) for token in tokens]
    matcher = difflib.SequenceMatcher(
        a=[t.lower() for t in tokens],
        b=[str(w.get("word", "")).strip().lower() for w in aligned],
        autojunk=False,
    )
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            result[a + k] = timed(aligned[b + k], tokens[a + k])
    return result


def interpolate(words: list[TimedWord], start: float, end: float) -> list[TimedWord]:
    """Give untimed words the stretch between their timed neighbours (the sentence's edges
    at its ends), shared in proportion to their length."""
    i = 0
    while i < len(words):
        if words[i].start is not None:
            i += 1
            continue
        j = i
        while j < len(words) and words[j].start is None:
            j += 1
        lo = words[i - 1].end if i > 0 else start
        hi = words[j].start if j < len(words) else end
        hi = max(hi, lo)
        weights = np.array([len(w.word) for w in words[i:j]], dtype=np.float64)
        edges = lo + (hi - lo) * np.concatenate(([0.0], np.cumsum(weights))) / weights.sum()
        for k, w in enumerate(words[i:j]):
            w.start, w.end = round(float(edges[k]), 3), round(float(edges[k + 1]), 3)
            w.score, w.interpolated = None, True
        i = j
    return words


def master_audio(sample: Sample) -> np.ndarray:
    """The master as float32 in [-1, 1): what whisperx.load_audio returns, without ffmpeg."""
    with open_master(sample) as info:
        pcm = read_pcm(info)
        return pcm[0 : len(pcm)].astype(np.float32) / 32768.0


def align_sentence(whisperx, audio, sentence: dict, language: str, config) -> list[dict]:
    model, metadata = align_model(whisperx, language, config)
    result = whisperx.align(
        [{"start": sentence["start"], "end": sentence["end"], "text": sentence["text"]}],
        model,
        metadata,
        audio,
        config["ALIGN_DEVICE"],
        return_char_alignments=False,
    )
    return [word for segment in result["segments"] for word in segment.get("words", [])]


def is_aligned(transcript: TranscriptRevision) -> bool:
    return bool(
        db.session.scalar(
            sa.select(sa.func.count()).where(WordAlignment.transcript_revision_id == transcript.id)
        )
    )


def run(sample_id, *, dry_run: bool = False) -> dict:
    """Align one reviewed sample; a sample already aligned is left as it is."""
    sample = get_sample(sample_id)
    state = sample.processing_state
    if state in LATER:
        return outcome("skipped", sample.id, f"is {state.value}: past alignment")
    if state not in (S.REVIEWED, S.ALIGNED):
        return outcome("skipped", sample.id, f"is {state.value}; alignment follows review")
    transcript = latest_transcript(sample.id)
    if transcript is None or not transcript.sentences:
        raise PermanentError(f"sample {sample.id} has no transcript to align", code="no_text")
    if state is S.ALIGNED and is_aligned(transcript):
        return outcome("already_aligned", sample.id, "word timings exist")
    plan = []
    for sentence in transcript.sentences:
        text = " ".join(tokenize(sentence["text"]))
        language, tags = sentence_language(text, sentence.get("lang_overrides"))
        plan.append((dict(sentence, text=text), language, tags))
    languages = sorted({language for _, language, _ in plan})
    words_total = sum(len(tags) for _, _, tags in plan)
    if dry_run:
        return outcome(
            "would_align",
            sample.id,
            f"{len(plan)} sentences, {words_total} words ({', '.join(languages)} models)",
        )

    whisperx = load_whisperx()
    config = current_app.config
    audio = master_audio(sample)
    db.session.execute(
        sa.delete(WordAlignment).where(WordAlignment.transcript_revision_id == transcript.id)
    )
    interpolated = 0
    for index, (sentence, language, tags) in enumerate(plan):
        tokens = tokenize(sentence["text"])
        if not tokens:
            continue
        found = align_sentence(whisperx, audio, sentence, language, config)
        timed = interpolate(match_words(tokens, found), sentence["start"], sentence["end"])
        interpolated += sum(w.interpolated for w in timed)
        db.session.add_all(
            WordAlignment(
                sample_id=sample.id,
                transcript_revision_id=transcript.id,
                sentence_index=index,
                word_index=k,
                word=w.word,
                start_s=w.start,
                end_s=w.end,
                score=w.score,
                language=tags[k],
                interpolated=w.interpolated,
            )
            for k, w in enumerate(timed)
        )
    if state is S.REVIEWED:
        advance(sample, S.ALIGNED)
    db.session.commit()
    return outcome(
        "aligned",
        sample.id,
        f"{words_total} words in {len(plan)} sentences, {interpolated} interpolated",
        words=words_total,
        interpolated=interpolated,
        languages=languages,
        transcript_revision_id=str(transcript.id),
    )
