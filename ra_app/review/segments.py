"""A segmentation review's submit: the window's segments are checked together with the ones
of the rest of the recording, which other tasks own and which stay as they are, then
replace the window's segments. Segments are rows only; every clip is cut from the master
by its start and end when exported (pipeline/stages/export.py)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from ..core.models import Assignment, Sample, Segment
from ..core.revisions import (
    Window,
    latest_revisions,
    rows_inside,
    rows_of,
)
from ..extensions import db
from .errors import Invalid
from .page import window_of

EDGE_TOLERANCE_S = 0.05  # a boundary this close past the end is the end
OVERLAP_TOLERANCE_S = 0.001


@dataclass
class Span:
    start: float
    end: float
    kept: bool = False  # another window's, left as it is

    def label(self) -> str:
        return f"{self.start:.1f}–{self.end:.1f} s"


def length_problem(number: int, seg: Span, inside: list[dict], duration: float) -> str | None:
    """The 10–30 s rule and its two documented exceptions: one sentence longer than the
    maximum (up to SEGMENT_LONG_MAX_SECONDS), and a recording shorter than the minimum."""
    config = current_app.config
    low, high = config["SEGMENT_MIN_SECONDS"], config["SEGMENT_MAX_SECONDS"]
    longest = config["SEGMENT_LONG_MAX_SECONDS"]
    length = seg.end - seg.start
    one_long_sentence = len(inside) == 1 and inside[0]["end"] - inside[0]["start"] > high
    if one_long_sentence:
        if length > longest:
            return (
                f"Segment {number} is {length:.1f} s long; even a single long sentence must "
                f"fit in {longest:g} s: cut it at a pause."
            )
        return None
    if length < low and duration < low:
        return None  # the whole recording is shorter than a segment may be
    if not (low <= length <= high):
        return f"Segment {number} is {length:.1f} s long; segments must be {low:g}–{high:g} s."
    return None


def check_segments(window: Window, sent: list[dict], kept: list[Span], duration: float, rows):
    """The window's segments as Spans, or Invalid listing every problem with the whole set."""
    mine, problems = [], []
    for number, raw in enumerate(sorted(sent, key=lambda s: s["start"]), 1):
        seg = Span(round(raw["start"], 3), round(raw["end"], 3))
        if seg.start < 0 or seg.start >= duration:
            problems.append(
                f"Segment {number} starts at {seg.start:.1f} s, outside the recording "
                f"(0–{duration:.1f} s)."
            )
        elif seg.end > duration + EDGE_TOLERANCE_S:
            problems.append(
                f"Segment {number} ends at {seg.end:.1f} s, after the end of the recording "
                f"({duration:.1f} s)."
            )
        seg.end = min(seg.end, duration)
        if not window.holds({"start": seg.start}):
            problems.append(
                f"Segment {number} starts outside this task's window ({window.label()})."
            )
        elif seg.end <= seg.start:
            problems.append(f"Segment {number} ends before it starts.")
        else:
            problem = length_problem(number, seg, rows_inside(rows, seg.start, seg.end), duration)
            if problem:
                problems.append(problem)
        mine.append(seg)
    problems += overlaps(mine, kept)
    if problems:
        raise Invalid("The segments need fixing before they can be submitted.", problems=problems)
    return mine


def overlaps(mine: list[Span], kept: list[Span]) -> list[str]:
    """Every two neighbours of the whole recording that overlap, said from this window's side."""
    number = {id(seg): n for n, seg in enumerate(mine, 1)}
    ordered = sorted(mine + kept, key=lambda s: (s.start, s.end))
    problems = []
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after.start >= before.end - OVERLAP_TOLERANCE_S or (before.kept and after.kept):
            continue
        if after.kept:
            problems.append(
                f"Segment {number[id(before)]} ({before.label()}) overlaps the segment "
                f"{after.label()} of the next part of the recording: end it by "
                f"{after.start:.1f} s."
            )
        elif before.kept:
            problems.append(
                f"Segment {number[id(after)]} ({after.label()}) overlaps the segment "
                f"{before.label()} of the part before: start it at {before.end:.1f} s or later."
            )
        else:
            problems.append(f"Segment {number[id(after)]} overlaps the one before it.")
    return problems


def submit_segments(task: Assignment, sample: Sample, sent: list[dict] | None) -> dict:
    """Replace the window's segments; their text and translation follow the sentences."""
    if not sent:
        raise Invalid("No segments were sent.")
    window = window_of(task)
    transcript, translation = latest_revisions(sample.id)
    rows = rows_of(transcript, translation)
    existing = db.session.scalars(sa.select(Segment).where(Segment.sample_id == sample.id)).all()
    kept = [s for s in existing if not window.holds({"start": s.start_s})]
    mine = check_segments(
        window, sent, [Span(s.start_s, s.end_s, kept=True) for s in kept], sample.duration_s, rows
    )
    high = current_app.config["SEGMENT_MAX_SECONDS"]
    # The window's cut before and after, for the sample's page (and a second review's
    # agreement, which reads "segments").
    before = sorted([s.start_s, s.end_s] for s in existing if s not in kept)
    task.answer = {"before": before, "segments": [[s.start, s.end] for s in mine]}
    for segment in existing:
        if segment not in kept:
            db.session.delete(segment)
    db.session.flush()
    ordered = sorted(
        [(s.start_s, s) for s in kept] + [(s.start, s) for s in mine], key=lambda p: p[0]
    )
    for position, (_, item) in enumerate(ordered):
        if isinstance(item, Segment):
            item.position = -1 - position  # out of the way of the unique (sample, position)
    db.session.flush()
    for position, (_, item) in enumerate(ordered):
        if isinstance(item, Segment):
            item.position = position
            continue
        inside = rows_inside(rows, item.start, item.end)
        db.session.add(
            Segment(
                sample_id=sample.id,
                position=position,
                start_s=item.start,
                end_s=item.end,
                text=" ".join(r["text"] for r in inside),
                translation=" ".join(r["translation"] for r in inside if r["translation"]),
                too_long=item.end - item.start > high,
                transcript_revision_id=transcript.id if transcript else None,
                translation_revision_id=translation.id if translation else None,
            )
        )
    return {"segments": len(mine)}
