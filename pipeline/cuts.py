"""Where to cut a recording into 10–30 s training segments: at natural pauses.

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
3. A voice-activity detector (pipeline/vad.py) refines each candidate: the cut goes to the
   middle of the longest silence inside the candidate's window. Without alignment the
   silence's length is the pause's weight.
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
segment review form does. The segment stage (pipeline/stages/segment.py) plans with this
and stores the result.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np

from ra_app.core.text import tokenize

from .vad import Vad

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
