"""Subtitle cues (pipeline/subtitles.py parses them) and the transcript sentences they make:
cut at sentence punctuation where the cues have it, and at pauses (PAUSE_S) where they have
none (YouTube's automatic captions)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.records import Sentence
from ra_app.core.text import nfc


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle cue: times in seconds, text cleaned (no tags/entities, NFC).

    ``lines`` keeps the cleaned on-screen lines; only :func:`dedupe_rolling` uses them
    (YouTube repeats the previous *line*), so it is ignored by ``==`` and may be empty
    for cues built by hand.
    """

    start: float
    end: float
    text: str
    lines: tuple[str, ...] = field(default=(), compare=False, repr=False)


PAUSE_S = 0.6
"""Silence between cues (seconds) that ends a sentence when punctuation is missing."""

_PUNCTUATED_CUE_SHARE = 0.1
"""Share of cues that must contain a sentence end before punctuation alone is trusted."""

_CLOSERS = "\"'”’»)]」』"
_CUT_RE = re.compile(r"[.?!…。．？！]+[" + re.escape(_CLOSERS) + r"]*")
_FULL_WIDTH = frozenset("。．？！")
_NEXT_CHAR_RE = re.compile(r"\s*(\S)")
_ABBREVIATIONS = frozenset(
    # English titles and Latin; Vietnamese TP. (thành phố), TS./ThS. (tiến sĩ, thạc sĩ),
    # GS./PGS. (giáo sư), BS. (bác sĩ) are followed by a name, not a new sentence.
    "mr mrs ms dr prof sr jr st vs e.g i.e tp ts ths gs pgs bs".split()
)


def _sentence_cuts(text: str) -> list[int]:
    """Offsets just after each sentence-final punctuation run in ``text``."""
    cuts = []
    for m in _CUT_RE.finditer(text):
        nxt = _NEXT_CHAR_RE.match(text, m.end())
        marks = m.group().rstrip(_CLOSERS)
        if not _FULL_WIDTH.intersection(marks):
            if m.end() < len(text) and not text[m.end()].isspace():
                continue  # 3.5, v1.2, "vs.Mark"
            if m.group() == ".":
                token = text[text.rfind(" ", 0, m.start()) + 1 : m.start()]
                if token.lstrip("\"'“‘([").lower() in _ABBREVIATIONS:
                    continue
            if set(marks) <= {".", "…"} and ("…" in marks or len(marks) > 1):
                if nxt is not None and nxt.group(1).islower():
                    continue  # "Hmm… để mình nghĩ": a trailing-off, not a sentence end
        cuts.append(m.end())
    return cuts


@dataclass(slots=True)
class _Piece:
    """Part of one cue between sentence cuts, with interpolated times."""

    text: str
    start: float
    end: float
    opens_cue: bool
    ends_sentence: bool


def _pieces(cues: list[Cue]) -> tuple[list[_Piece], bool]:
    texts = [nfc(c.text) for c in cues]  # the form every stored transcript text uses
    joined = " ".join(texts)
    cuts = _sentence_cuts(joined)
    cut_set = set(cuts)
    pieces: list[_Piece] = []
    punctuated_cues = 0
    offset = 0
    for cue, text in zip(cues, texts, strict=True):
        lo, hi = offset, offset + len(text)
        offset = hi + 1
        inner = cuts[bisect.bisect_right(cuts, lo) : bisect.bisect_right(cuts, hi)]
        punctuated_cues += bool(inner)
        bounds = [lo, *inner] + ([] if inner and inner[-1] == hi else [hi])
        span = cue.end - cue.start
        for a, b in zip(bounds, bounds[1:], strict=False):
            piece = joined[a:b].strip()
            if piece:
                pieces.append(
                    _Piece(
                        piece,
                        cue.start + span * (a - lo) / (hi - lo),
                        cue.start + span * (b - lo) / (hi - lo),
                        opens_cue=a == lo,
                        ends_sentence=b in cut_set,
                    )
                )
    trusted = punctuated_cues >= max(1.0, _PUNCTUATED_CUE_SHARE * len(cues))
    return pieces, trusted


def cues_to_sentences(
    cues: Iterable[Cue], max_sentence_s: float = 30.0, *, pause_s: float = PAUSE_S
) -> list[Sentence]:
    """Join cue text and cut it into sentences with start/end times.

    Sentences end at . ? ! … (and full-width 。．？！); a sentence ending inside a cue
    gets a time interpolated by character offset within that cue.  When punctuation
    is (nearly) absent, as in automatic captions, a cue boundary with a gap of at least
    ``pause_s`` also ends a sentence.  A cue boundary is cut too when the sentence
    would otherwise run past ``max_sentence_s`` (a single longer cue stays whole).
    Cues are taken in start-time order; times come out in milliseconds, monotonic,
    with start < end, and no sentence is empty (punctuation-only fragments are
    attached to a neighbour).
    """
    ordered = sorted((c for c in cues if c.text.strip()), key=lambda c: c.start)
    pieces, trusted = _pieces(ordered)
    pause_ms = round(pause_s * 1000)

    groups: list[tuple[float, float, list[str]]] = []
    current: list[_Piece] = []

    def flush() -> None:
        if current:
            groups.append((current[0].start, current[-1].end, [p.text for p in current]))
            current.clear()

    for piece in pieces:
        if current and piece.opens_cue:
            paused = round((piece.start - current[-1].end) * 1000) >= pause_ms
            too_long = piece.end - current[0].start > max_sentence_s + 1e-9
            if (paused and not trusted) or too_long:
                flush()
        current.append(piece)
        if piece.ends_sentence:
            flush()
    flush()
    return _finalise(groups)


def _finalise(groups: list[tuple[float, float, list[str]]]) -> list[Sentence]:
    """Round to ms and enforce the invariants reviewers' tools rely on."""
    out: list[Sentence] = []
    carry: Sentence | None = None  # leading fragment with nothing before it yet
    for raw_start, raw_end, texts in groups:
        start, end, text = round(raw_start, 3), round(raw_end, 3), " ".join(texts)
        if out:
            start = max(start, out[-1]["end"])  # overlapping cues (two speakers)
        if not any(ch.isalnum() for ch in text) or end <= start:
            if out:
                out[-1]["text"] += " " + text
                out[-1]["end"] = max(out[-1]["end"], end)
            elif carry is None:
                carry = Sentence(start=start, end=end, text=text)
            else:
                carry["text"] += " " + text
                carry["end"] = max(carry["end"], end)
            continue
        if carry is not None:
            start, text = min(start, carry["start"]), carry["text"] + " " + text
            carry = None
        out.append(Sentence(start=start, end=end, text=text))
    if carry is not None:  # nothing but fragments / zero-length cues
        carry["end"] = max(carry["end"], round(carry["start"] + 0.001, 3))
        out.append(carry)
    return out
