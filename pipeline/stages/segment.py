"""Cut a reviewed sample into 10–30 s training segments at natural pauses.

How the cuts are chosen
-----------------------
1. Units are the sentences of the newest transcript. When the transcript has word timings
   (`word_alignments`, written by the align stage) a sentence spans its first to its last
   word; otherwise it spans the sentence's own start and end.
2. A candidate cut sits between every two consecutive sentences. When aligned, it lies in
   the word gap between the last word of one sentence and the first word of the next (never
   inside a word), and the gap's width is the pause's weight. Otherwise it lies around the
   sentence boundary (the gap between the two sentences, widened by `BOUNDARY_SLACK_S` on each
   side, never past either sentence's middle: subtitle times are loose).
3. A voice-activity detector refines each candidate: the cut goes to the middle of the
   longest silence inside the candidate's window. The detector is energy-based and runs on
   the 16 kHz master with numpy, nothing to download: the level of every 10 ms frame, a
   threshold a third of the way from the noise floor (5th percentile of frame levels) to the
   speech level (95th percentile), at least 6 dB above the floor; frames below it are silent.
   Without alignment the silence's length is the pause's weight.
4. A sentence longer than the maximum also gets candidates inside it: its word gaps when
   aligned, else the detector's silences inside it. Cutting there costs much more than
   cutting between sentences, so a sentence is only split when it cannot fit otherwise; the
   pieces of a split sentence are flagged `too_long` for the segment reviewer.
5. Dynamic programming picks the cuts: every segment within [SEGMENT_MIN_SECONDS,
   SEGMENT_MAX_SECONDS] if at all possible (a segment outside costs more than any other
   choice), and among those the cuts at the widest pauses: a cut earns its pause's width
   less the bar, the recording's median pause between sentences (at least `CUT_COST_S`), so
   pauses wider than usual are preferred and the others are used only when needed.
6. A segment runs from `EDGE_PAD_S` before its first speech to `EDGE_PAD_S` after its last
   (never past the cut), so a long silence or music between sentences stays out of it.

Each segment carries the text of the sentences whose middle falls in it (for a split
sentence: its words, by their times, and the translation goes with its middle), like the
segment review form does. Segments are rows; their clips are cut sample-exact from the
master when exported (pipeline/stages/export.py), the one place a clip is made.
"""

from __future__ import annotations

import bisect
import math
import uuid
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa
from flask import current_app

from ra_app.core.clock import db_now
from ra_app.core.models import (
    Assignment,
    AssignmentStatus,
    JobRun,
    JobStatus,
    Sample,
    Segment,
    TaskType,
    WordAlignment,
)
from ra_app.core.revisions import latest_transcript, latest_translation, rows_of
from ra_app.core.states import ProcessingState, transition
from ra_app.core.tasks import create_tasks
from ra_app.core.text import tokenize
from ra_app.core.wav import read_pcm
from ra_app.extensions import db

from ..errors import PermanentError, TransientError
from ..master import open_master
from ..media import SAMPLE_RATE

S = ProcessingState

# -------------------------------------------------------------------------------------- VAD

FRAME_S = 0.01
VAD_FLOOR_PERCENTILE = 5
VAD_SPEECH_PERCENTILE = 95
VAD_THRESHOLD_SHARE = 1 / 3  # of the way from the noise floor to the speech level
VAD_MIN_MARGIN_DB = 6.0
MIN_SILENCE_S = 0.05  # shorter silent stretches do not count as pauses


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


@dataclass
class Vad:
    """Energy-based voice activity: silent runs of 10 ms frames, searched by time."""

    starts: np.ndarray  # frame index where a silent run starts
    ends: np.ndarray  # frame index one past its end
    threshold_db: float
    floor_db: float
    speech_db: float

    @classmethod
    def from_pcm(cls, pcm, sample_rate: int = SAMPLE_RATE) -> Vad:
        frame = int(round(FRAME_S * sample_rate))
        levels = frame_levels_db(pcm, frame)
        if len(levels) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, 0.0, 0.0, 0.0)
        floor = float(np.percentile(levels, VAD_FLOOR_PERCENTILE))
        speech = float(np.percentile(levels, VAD_SPEECH_PERCENTILE))
        threshold = floor + max(VAD_MIN_MARGIN_DB, VAD_THRESHOLD_SHARE * (speech - floor))
        silent = (levels < threshold).astype(np.int8)
        edges = np.diff(np.concatenate(([0], silent, [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        keep = (ends - starts) * FRAME_S >= MIN_SILENCE_S
        return cls(starts[keep], ends[keep], threshold, floor, speech)

    def silences(self, t0: float, t1: float) -> list[tuple[float, float]]:
        """Silent runs overlapping [t0, t1], clipped to it, in seconds."""
        if t1 <= t0 or len(self.starts) == 0:
            return []
        f0, f1 = t0 / FRAME_S, t1 / FRAME_S
        first = int(np.searchsorted(self.ends, f0, side="right"))
        last = int(np.searchsorted(self.starts, f1, side="left"))
        return [
            (max(float(self.starts[i]) * FRAME_S, t0), min(float(self.ends[i]) * FRAME_S, t1))
            for i in range(first, last)
        ]

    def longest_silence(self, t0: float, t1: float) -> tuple[float, float] | None:
        runs = [(a, b) for a, b in self.silences(t0, t1) if b - a >= MIN_SILENCE_S]
        return max(runs, key=lambda run: run[1] - run[0]) if runs else None


# ----------------------------------------------------------------------------- the planning

BOUNDARY_SLACK_S = 0.5  # how far around a sentence boundary (no word times) a pause is sought
EDGE_PAD_S = 0.2  # silence kept before a segment's first and after its last speech
CUT_COST_S = 0.25  # a cut must be worth a pause this wide
MAX_PAUSE_REWARD_S = 2.0
INTERNAL_CUT_COST = 20.0  # splitting a sentence
SHORT_COST, SHORT_COST_PER_S = 100.0, 10.0  # a segment shorter than the minimum
LONG_COST, LONG_COST_PER_S = 1000.0, 100.0  # longer than the maximum
MIN_INTERNAL_PAUSE_S = 0.15  # a silence inside a sentence worth splitting at


@dataclass
class Unit:
    """One sentence as the segmenter sees it."""

    index: int
    start: float
    end: float
    text: str
    translation: str
    words: list[dict] = field(default_factory=list)  # {word, start, end}, when aligned

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


@dataclass
class Cut:
    at: float  # the cut itself (middle of the pause)
    left_end: float  # where the segment before it ends
    right_start: float  # where the segment after it starts
    pause: float  # the pause's width, the cut's reward
    internal_to: int | None = None  # the sentence it splits, if any


@dataclass
class PlannedSegment:
    position: int
    start: float
    end: float
    text: str
    translation: str
    too_long: bool

    @property
    def duration(self) -> float:
        return self.end - self.start


def _cut(
    vad: Vad, window: tuple[float, float], gap: tuple[float, float], aligned: bool
) -> tuple[float, float, float, float]:
    """Refine a candidate: (cut, pause start, pause end, weight). `gap` is where the
    transcript says nobody speaks; `window` is where the cut may go."""
    g0, g1 = gap
    silence = vad.longest_silence(*window)
    if silence is not None:
        p0, p1 = silence
        at = (p0 + p1) / 2
        weight = max(g1 - g0, 0.0) if aligned else p1 - p0
        return at, p0, p1, weight
    at = (window[0] + window[1]) / 2
    return at, at, at, max(g1 - g0, 0.0) if aligned else 0.0


def boundary_cut(vad: Vad, left: Unit, right: Unit, aligned: bool) -> Cut:
    """The cut between two consecutive sentences."""
    if aligned:
        g0, g1 = left.end, right.start
        window = (g0, g1) if g1 > g0 else (g1, g1)
    else:
        g0, g1 = left.end, right.start
        lo = max(min(g0, g1) - BOUNDARY_SLACK_S, left.middle)
        hi = min(max(g0, g1) + BOUNDARY_SLACK_S, right.middle)
        window = (lo, hi) if hi > lo else ((lo + hi) / 2, (lo + hi) / 2)
    at, p0, p1, weight = _cut(vad, window, (g0, g1), aligned)
    left_end = min(at, max(p0, left.end) + EDGE_PAD_S)
    right_start = max(at, min(p1, right.start) - EDGE_PAD_S)
    return Cut(at, left_end, right_start, weight)


def internal_cuts(vad: Vad, unit: Unit, aligned: bool) -> list[Cut]:
    """Where a sentence that is too long could be split."""
    cuts = []
    if aligned and len(unit.words) > 1:
        for before, after in zip(unit.words, unit.words[1:], strict=False):
            g0, g1 = before["end"], after["start"]
            window = (g0, g1) if g1 > g0 else (g1, g1)
            at, p0, p1, weight = _cut(vad, window, (g0, g1), True)
            cuts.append(
                Cut(
                    at,
                    min(at, max(p0, g0) + EDGE_PAD_S),
                    max(at, min(p1, g1) - EDGE_PAD_S),
                    weight,
                    unit.index,
                )
            )
    elif not aligned:
        for p0, p1 in vad.silences(unit.start, unit.end):
            if p1 - p0 >= MIN_INTERNAL_PAUSE_S and unit.start < p0 and p1 < unit.end:
                at = (p0 + p1) / 2
                cuts.append(
                    Cut(at, min(at, p0 + EDGE_PAD_S), max(at, p1 - EDGE_PAD_S), p1 - p0, unit.index)
                )
    return cuts


def length_cost(length: float, low: float, high: float) -> float:
    if length > high:
        return LONG_COST + LONG_COST_PER_S * (length - high)
    if length < low:
        return SHORT_COST + SHORT_COST_PER_S * (low - length)
    return 0.0


def cut_cost(cut: Cut, bar: float = CUT_COST_S) -> float:
    reward = min(cut.pause, MAX_PAUSE_REWARD_S) - bar - 0.01  # a pause at the bar costs a bit
    return (INTERNAL_CUT_COST if cut.internal_to is not None else 0.0) - reward


def choose_cuts(cuts: list[Cut], start: float, end: float, low: float, high: float) -> list[int]:
    """Indices of the chosen cuts (dynamic programming over the candidates in time order).

    A segment from node a to node b runs from a's right_start to b's left_end. Only
    predecessors that keep the segment within `high` are tried, plus the nearest one beyond
    it, so a stretch without any usable pause still gets a (too long) segment."""
    between = [c.pause for c in cuts if c.internal_to is None]
    bar = max(CUT_COST_S, float(np.median(between))) if between else CUT_COST_S
    right_starts = [start] + [c.right_start for c in cuts]
    for i in range(1, len(right_starts)):  # monotone, for the bisection
        right_starts[i] = max(right_starts[i], right_starts[i - 1])
    n = len(cuts)
    best = [0.0] + [math.inf] * (n + 1)
    back = [-1] * (n + 2)
    for b in range(1, n + 2):
        seg_end = cuts[b - 1].left_end if b <= n else end
        own = cut_cost(cuts[b - 1], bar) if b <= n else 0.0
        first = bisect.bisect_left(right_starts, seg_end - high, 0, b)
        for a in range(max(first - 1, 0), b):
            if best[a] == math.inf:
                continue
            cost = best[a] + length_cost(seg_end - right_starts[a], low, high) + own
            if cost < best[b]:
                best[b], back[b] = cost, a
    chosen, node = [], back[n + 1]
    while node > 0:
        chosen.append(node - 1)
        node = back[node]
    return chosen[::-1]


def _pieces(unit: Unit, split: bool, aligned: bool) -> list[tuple[float, str, str]]:
    """(time, text, translation) of a sentence, word by word when it is split."""
    if not split:
        return [(unit.middle, unit.text, unit.translation)]
    if aligned and unit.words:
        timed = [((w["start"] + w["end"]) / 2, w["word"]) for w in unit.words]
    else:  # no word times: spread the words over the sentence by their length
        tokens = tokenize(unit.text)
        weights = np.array([len(t) + 1 for t in tokens], dtype=np.float64)
        edges = np.concatenate(([0.0], np.cumsum(weights))) / max(weights.sum(), 1.0)
        span = unit.end - unit.start
        timed = [
            (unit.start + span * (edges[i] + edges[i + 1]) / 2, token)
            for i, token in enumerate(tokens)
        ]
    pieces = [(t, word, "") for t, word in timed]
    pieces.append((unit.middle, "", unit.translation))  # the translation goes with the middle
    return pieces


def plan_segments(
    units: list[Unit], vad: Vad, duration: float, low: float, high: float, aligned: bool
) -> list[PlannedSegment]:
    """The segments of one recording (see the module docstring)."""
    units = sorted((u for u in units if u.end > u.start), key=lambda u: (u.start, u.end))
    if not units:
        return []
    candidates: list[Cut] = []
    for i, unit in enumerate(units):
        if unit.end - unit.start > high:
            candidates += internal_cuts(vad, unit, aligned)
        if i + 1 < len(units):
            candidates.append(boundary_cut(vad, unit, units[i + 1], aligned))
    candidates.sort(key=lambda c: c.at)
    first = max(0.0, units[0].start - EDGE_PAD_S)
    last = min(duration, max(u.end for u in units) + EDGE_PAD_S)
    chosen = [candidates[i] for i in choose_cuts(candidates, first, last, low, high)]
    starts = [first] + [c.right_start for c in chosen]
    ends = [c.left_end for c in chosen] + [last]
    split_units = {c.internal_to for c in chosen if c.internal_to is not None}

    boundaries = [c.at for c in chosen]
    texts: list[list[str]] = [[] for _ in starts]
    translations: list[list[str]] = [[] for _ in starts]
    for unit in units:
        for when, text, translation in _pieces(unit, unit.index in split_units, aligned):
            k = bisect.bisect_right(boundaries, when)
            if text:
                texts[k].append(text)
            if translation:
                translations[k].append(translation)
    flagged = [False] * len(starts)
    for k, cut in enumerate(chosen):
        if cut.internal_to is not None:
            flagged[k] = flagged[k + 1] = True
    segments = []
    for k, (start, end) in enumerate(zip(starts, ends, strict=True)):
        start, end = round(float(start), 3), round(float(end), 3)
        segments.append(
            PlannedSegment(
                position=k,
                start=start,
                end=end,
                text=" ".join(texts[k]),
                translation=" ".join(translations[k]),
                too_long=flagged[k] or end - start > high + 1e-6,
            )
        )
    return segments


# --------------------------------------------------------------------------------- the stage

WAITING = (S.REVIEWED, S.ALIGNED)
DONE = (S.SEGMENTED, S.SEGMENTS_REVIEWED, S.DENOISED, S.EXPORTED)
OPEN_TASK = (AssignmentStatus.PENDING, AssignmentStatus.IN_PROGRESS, AssignmentStatus.REJECTED)


def outcome(status: str, sample_id, message: str, **extra) -> dict:
    return {"status": status, "label": str(sample_id), "message": message, **extra}


def get_sample(sample_id) -> Sample:
    sample = db.session.get(Sample, uuid.UUID(str(sample_id)))
    if sample is None:
        raise PermanentError(f"no sample {sample_id}", code="missing")
    return sample


def word_timings(transcript_revision_id) -> dict[int, list[dict]]:
    rows = db.session.execute(
        sa.select(
            WordAlignment.sentence_index,
            WordAlignment.word,
            WordAlignment.start_s,
            WordAlignment.end_s,
        )
        .where(WordAlignment.transcript_revision_id == transcript_revision_id)
        .order_by(WordAlignment.sentence_index, WordAlignment.word_index)
    ).all()
    words: dict[int, list[dict]] = {}
    for index, word, start, end in rows:
        words.setdefault(index, []).append({"word": word, "start": start, "end": end})
    return words


def units_of(rows: list[dict], words: dict[int, list[dict]]) -> list[Unit]:
    units = []
    for index, row in enumerate(rows):
        timed = words.get(index) or []
        start, end = (timed[0]["start"], timed[-1]["end"]) if timed else (row["start"], row["end"])
        units.append(Unit(index, float(start), float(end), row["text"], row["translation"], timed))
    return units


def alignment_running(sample_id) -> bool:
    return bool(
        db.session.scalar(
            sa.select(sa.func.count()).where(
                JobRun.stage == "align",
                JobRun.subject == str(sample_id),
                JobRun.status == JobStatus.RUNNING,
                JobRun.lease_expires_at > db_now(),
            )
        )
    )


def plan_for(sample: Sample) -> tuple[list[PlannedSegment], dict]:
    """The segments the stage would make for `sample`, and what they were made from."""
    transcript = latest_transcript(sample.id)
    if transcript is None or not transcript.sentences:
        raise PermanentError(f"sample {sample.id} has no transcript to segment", code="no_text")
    translation = latest_translation(sample.id)
    rows = rows_of(transcript, translation)
    words = word_timings(transcript.id)
    aligned = bool(words)
    info = open_master(sample)
    pcm = read_pcm(info)
    vad = Vad.from_pcm(pcm, info.sample_rate)
    config = current_app.config
    planned = plan_segments(
        units_of(rows, words),
        vad,
        info.duration_s,
        config["SEGMENT_MIN_SECONDS"],
        config["SEGMENT_MAX_SECONDS"],
        aligned,
    )
    made_from = {
        "transcript": transcript,
        "translation": translation,
        "aligned": aligned,
        "wav": info,
        "pcm": pcm,
        "vad_threshold_db": round(vad.threshold_db, 1),
    }
    return planned, made_from


def summary(planned: list[PlannedSegment], aligned: bool) -> str:
    flagged = sum(s.too_long for s in planned)
    basis = "word timings" if aligned else "sentence times"
    return f"{len(planned)} segments from {basis}" + (
        f", {flagged} flagged too long" if flagged else ""
    )


def run(sample_id, *, dry_run: bool = False) -> dict:
    """Segment one sample: idempotent (a segmented sample is left alone), all-or-nothing."""
    sample = get_sample(sample_id)
    state = sample.processing_state
    if state in DONE:
        return outcome("already_segmented", sample.id, f"already {state.value}")
    if state not in WAITING:
        return outcome("skipped", sample.id, f"is {state.value}; segmentation follows review")
    if state is S.REVIEWED and not dry_run and alignment_running(sample.id):
        raise TransientError(
            "alignment of this sample is still running", "segmentation waits for its word times"
        )
    planned, made_from = plan_for(sample)
    if not planned:
        raise PermanentError(f"sample {sample.id} has no timed sentences", code="no_text")
    message = summary(planned, made_from["aligned"])
    if dry_run:
        return outcome("would_segment", sample.id, message, segments=len(planned))

    try:
        save_segments(sample, planned, made_from)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return outcome(
        "segmented",
        sample.id,
        message,
        segments=len(planned),
        too_long=sum(s.too_long for s in planned),
        aligned=made_from["aligned"],
    )


def save_segments(sample: Sample, planned: list[PlannedSegment], made_from: dict):
    """Replace the sample's segments, move it on, and open the segment review."""
    db.session.execute(sa.delete(Segment).where(Segment.sample_id == sample.id))
    transcript, translation = made_from["transcript"], made_from["translation"]
    db.session.add_all(
        Segment(
            sample_id=sample.id,
            position=seg.position,
            start_s=seg.start,
            end_s=seg.end,
            text=seg.text,
            translation=seg.translation,
            transcript_revision_id=transcript.id,
            translation_revision_id=translation.id if translation else None,
            too_long=seg.too_long,
        )
        for seg in planned
    )
    transition(sample, S.SEGMENTED)
    already_open = db.session.scalar(
        sa.select(sa.func.count()).where(
            Assignment.sample_id == sample.id,
            Assignment.task_type == TaskType.AUDIO_SEGMENTATION,
            Assignment.status.in_(OPEN_TASK),
        )
    )
    if not already_open:
        create_tasks(sample, TaskType.AUDIO_SEGMENTATION, reviewer=None)
