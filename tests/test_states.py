import itertools
from types import SimpleNamespace

import pytest

from ra_app.core.states import TRANSITIONS, IllegalTransition, ProcessingState, transition

S = ProcessingState

# The pipeline's order, written out by hand so a change to the table must change this too.
LEGAL = (
    {
        (S.INGESTED, S.TRANSCRIBED),
        (S.INGESTED, S.IN_REVIEW),
        (S.TRANSCRIBED, S.IN_REVIEW),
        (S.IN_REVIEW, S.REVIEWED),
        (S.IN_REVIEW, S.TRANSCRIBED),
        (S.REVIEWED, S.ALIGNED),
        (S.REVIEWED, S.SEGMENTED),
        (S.REVIEWED, S.IN_REVIEW),
        (S.ALIGNED, S.SEGMENTED),
        (S.ALIGNED, S.IN_REVIEW),
        (S.SEGMENTED, S.SEGMENTS_REVIEWED),
        (S.SEGMENTED, S.IN_REVIEW),
        (S.SEGMENTS_REVIEWED, S.DENOISED),
        (S.SEGMENTS_REVIEWED, S.EXPORTED),
        (S.SEGMENTS_REVIEWED, S.IN_REVIEW),
        (S.DENOISED, S.EXPORTED),
        (S.DENOISED, S.IN_REVIEW),
        (S.EXPORTED, S.IN_REVIEW),
    }
    | {(state, S.DISCARDED) for state in S if state is not S.DISCARDED}
    | {
        (S.DISCARDED, state)
        for state in S
        if state is not S.DISCARDED  # a reversed discard
    }
)


@pytest.mark.parametrize("current,target", list(itertools.product(S, S)))
def test_every_pair_of_states(current, target):
    sample = SimpleNamespace(processing_state=current)
    if (current, target) in LEGAL:
        transition(sample, target)
        assert sample.processing_state is target
    else:
        with pytest.raises(IllegalTransition) as raised:
            transition(sample, target)
        message = str(raised.value)
        assert f"'{current}'" in message and f"'{target}'" in message
        assert sample.processing_state is current  # unchanged


def test_table_has_every_state():
    assert set(TRANSITIONS) == set(S)


def test_accepts_state_names_as_strings():
    sample = SimpleNamespace(processing_state="ingested")
    transition(sample, "transcribed")
    assert sample.processing_state is S.TRANSCRIBED
    with pytest.raises(ValueError):
        transition(sample, "no-such-state")
