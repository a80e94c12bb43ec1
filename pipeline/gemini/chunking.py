"""Long recordings: overlapping chunks cut from the master, and their sentences joined back.

A recording longer than GEMINI_LONG_AUDIO_SECONDS is cut into the fewest chunks of at most
that length, all the same length, each overlapping the next by GEMINI_CHUNK_OVERLAP_SECONDS
(`plan_chunks`). Each chunk is cut from the 16 kHz master with ffmpeg into a temporary
compressed file (`cut`), sent on its own, and its sentence times are moved by the chunk's
start.

Joining two neighbours (`join`): both transcribe the overlap, and a sentence at a chunk's
edge may be cut in the middle. The cut point is the middle of the overlap, far from both
edges. A sentence of the overlap that both chunks heard alike (at least MIN_ANCHOR_WORDS
words in common, mostly the same words, about the same time) is the anchor: the earlier
chunk's sentences up to the anchor are kept, then the later chunk's sentences after it, so
nothing is lost or repeated even where the two chunks split the speech differently. A
one- or two-word sentence is never an anchor: backchannels ("dạ", "ừ", "vâng") come again
and again in Vietnamese conversation, and two of them alike say nothing about where the
chunks meet. Of the pairs alike, the anchor is the one whose two readings agree best in
time (then the one nearest the cut point). With no pair alike (silence in the overlap, or
two different readings) the sentences are split at the cut point by their middles. Either
way the joined sentences keep their order: a later sentence that mostly repeats the time of
the one before is dropped, and none starts before the one before it.
"""

from __future__ import annotations

import difflib
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ra_app.core.audio import cut_clip
from ra_app.core.scoring import normalize_for_scoring

from ..errors import PermanentError

SIMILAR_TEXT = 0.6  # word-level similarity of two readings of one sentence
MIN_ANCHOR_WORDS = 3  # words two readings must share to anchor a join
SIMILAR_TIME_S = 3.0  # how far apart their middles may be
DUPLICATE_TIME_SHARE = 0.5  # a sentence that is mostly inside the previous one's time


@dataclass(frozen=True)
class Chunk:
    index: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def plan_chunks(duration_s: float, max_s: float, overlap_s: float) -> list[Chunk]:
    """The fewest equal chunks of at most `max_s` seconds, overlapping by `overlap_s`."""
    if duration_s <= max_s:
        return [Chunk(0, 0.0, duration_s)]
    if not 0 <= overlap_s < max_s / 2:
        raise ValueError("the chunk overlap must be less than half the chunk length")
    n = math.ceil((duration_s - overlap_s) / (max_s - overlap_s))
    length = (duration_s + (n - 1) * overlap_s) / n
    step = length - overlap_s
    chunks = [Chunk(i, round(i * step, 3), round(i * step + length, 3)) for i in range(n)]
    chunks[-1] = Chunk(n - 1, chunks[-1].start, duration_s)
    return chunks


def cut(master: Path, chunk: Chunk, dest: Path) -> Path:
    """The chunk's audio as AAC in MP4 (the same format as the browser rendition)."""
    try:
        return cut_clip(master, dest, chunk.start, chunk.end)
    except subprocess.CalledProcessError as error:
        raise PermanentError(
            f"could not cut {chunk.start:.1f}–{chunk.end:.1f} s from the master: "
            f"{(error.stderr or '').strip()[-300:] or f'ffmpeg exit {error.returncode}'}",
            code="ffmpeg_failed",
        ) from error


def shift(rows: list[dict], offset: float) -> list[dict]:
    return [
        {**row, "start": round(row["start"] + offset, 3), "end": round(row["end"] + offset, 3)}
        for row in rows
    ]


def _words(text: str) -> list[str]:
    return normalize_for_scoring(text).split()


def _middle(row: dict) -> float:
    return (row["start"] + row["end"]) / 2


def alike(a: dict, b: dict) -> bool:
    """Two readings of the same sentence: enough words in common, about the same time."""
    if abs(_middle(a) - _middle(b)) > SIMILAR_TIME_S:
        return False
    wa, wb = _words(a["text"]), _words(b["text"])
    if len(wa) < MIN_ANCHOR_WORDS or len(wb) < MIN_ANCHOR_WORDS:
        return False
    matcher = difflib.SequenceMatcher(None, wa, wb, autojunk=False)
    shared = sum(block.size for block in matcher.get_matching_blocks())
    return shared >= MIN_ANCHOR_WORDS and matcher.ratio() >= SIMILAR_TEXT


def join(earlier: list[dict], later: list[dict], overlap_start: float, overlap_end: float):
    """The sentences of two neighbouring chunks (times on the recording's clock) as one list."""
    cut_at = (overlap_start + overlap_end) / 2
    pairs = [
        (i, j)
        for i, a in enumerate(earlier)
        if a["end"] > overlap_start
        for j, b in enumerate(later)
        if b["start"] < overlap_end and alike(a, b)
    ]
    if pairs:
        i, j = min(
            pairs,
            key=lambda p: (
                round(abs(_middle(earlier[p[0]]) - _middle(later[p[1]])), 1),
                abs(_middle(earlier[p[0]]) - cut_at),
            ),
        )
        # The anchor's reading from the chunk in which it lies farther from the edge.
        anchor = earlier[i] if _middle(earlier[i]) <= cut_at else later[j]
        return in_order(earlier[:i], [anchor, *later[j + 1 :]])
    kept = [a for a in earlier if _middle(a) < cut_at]
    return in_order(kept, [b for b in later if _middle(b) >= cut_at])


def in_order(head: list[dict], tail: list[dict]) -> list[dict]:
    """`head` then `tail`, where no sentence of the tail starts before the one before it
    (it is dropped when it mostly repeats that one's time, else starts at its end)."""
    joined = list(head)
    for row in tail:
        if joined:
            previous = joined[-1]
            if _mostly_within(row, previous):
                continue
            if row["start"] < previous["start"] or row["start"] < previous["end"] - 0.25:
                row = {**row, "start": previous["end"]}
                if row["end"] - row["start"] < 0.05:
                    continue
        joined.append(row)
    return joined


def _mostly_within(row: dict, previous: dict) -> bool:
    length = row["end"] - row["start"]
    shared = min(row["end"], previous["end"]) - max(row["start"], previous["start"])
    return length > 0 and shared / length > DUPLICATE_TIME_SHARE


def merge(chunks: list[Chunk], results: list[list[dict]]) -> list[dict]:
    """Every chunk's sentences (already shifted to the recording's clock) as one list."""
    merged = results[0] if results else []
    for previous, chunk, rows in zip(chunks, chunks[1:], results[1:], strict=False):
        merged = join(merged, rows, chunk.start, previous.end)
    return merged
