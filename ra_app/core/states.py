"""Processing states of a sample and the only legal moves between them.

Every stage and view changes a sample's state through `transition`, so the pipeline's
order lives here and nowhere else.
"""

from __future__ import annotations

import enum


class ProcessingState(enum.StrEnum):
    INGESTED = "ingested"  # master, browser rendition and peaks exist
    TRANSCRIBED = "transcribed"  # a machine transcript and translation exist
    IN_REVIEW = "in_review"  # people are correcting the transcript or translation
    REVIEWED = "reviewed"  # corrections submitted and approved
    ALIGNED = "aligned"  # word timings from forced alignment
    SEGMENTED = "segmented"  # cut into 10–30 s segments, awaiting segment review
    SEGMENTS_REVIEWED = "segments_reviewed"
    DENOISED = "denoised"
    EXPORTED = "exported"
    DISCARDED = "discarded"  # taken out of the corpus by an admin


S = ProcessingState

TRANSITIONS: dict[ProcessingState, frozenset[ProcessingState]] = {
    S.INGESTED: frozenset({S.TRANSCRIBED, S.IN_REVIEW}),
    S.TRANSCRIBED: frozenset({S.IN_REVIEW}),
    S.IN_REVIEW: frozenset({S.REVIEWED, S.TRANSCRIBED}),
    # Alignment needs a GPU host; without one, segmentation falls back to sentences.
    S.REVIEWED: frozenset({S.ALIGNED, S.SEGMENTED, S.IN_REVIEW}),
    S.ALIGNED: frozenset({S.SEGMENTED, S.IN_REVIEW}),
    S.SEGMENTED: frozenset({S.SEGMENTS_REVIEWED, S.IN_REVIEW}),
    S.SEGMENTS_REVIEWED: frozenset({S.DENOISED, S.EXPORTED, S.IN_REVIEW}),
    S.DENOISED: frozenset({S.EXPORTED, S.IN_REVIEW}),
    S.EXPORTED: frozenset({S.IN_REVIEW}),
    # An admin who reverses a discard (an unusable report) puts the sample back where it was.
    S.DISCARDED: frozenset(set(S) - {S.DISCARDED}),
}
# Any sample can be taken out of the corpus.
for _state in S:
    if _state is not S.DISCARDED:
        TRANSITIONS[_state] = TRANSITIONS[_state] | {S.DISCARDED}


class IllegalTransition(ValueError):
    def __init__(self, current: ProcessingState, target: ProcessingState):
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing"
        super().__init__(
            f"cannot move a sample from '{current}' to '{target}' "
            f"(from '{current}' it can go to: {allowed})"
        )
        self.current = current
        self.target = target


def can_transition(current: ProcessingState | str, target: ProcessingState | str) -> bool:
    return ProcessingState(target) in TRANSITIONS[ProcessingState(current)]


def check_transition(current: ProcessingState | str, target: ProcessingState | str) -> None:
    current, target = ProcessingState(current), ProcessingState(target)
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)


def transition(sample, target: ProcessingState | str) -> None:
    """Move `sample` to `target` or raise `IllegalTransition` naming both states."""
    check_transition(sample.processing_state, target)
    sample.processing_state = ProcessingState(target)
