"""The JSON bodies of the task endpoints (draft, submit, decide, touch, report), checked for
shape and size before anything else reads them: a malformed field is a 422 that names it,
never a 500, and a draft is held to the same shapes as a submit (only its times may still be
blank)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import Invalid

MAX_ROWS = 5000  # an hour has ~900 sentences; a window far fewer
MAX_TEXT = 5000  # characters of one sentence or translation
MAX_SPANS = 20000  # played stretches reported by the player

Text = Annotated[str, Field(max_length=MAX_TEXT)]
Word = Annotated[str, Field(max_length=200)]
Flag = Annotated[str, Field(max_length=200)]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


def finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class Sentence(Body):
    start: float
    end: float
    text: Text = ""
    translation: Text = ""
    lang_overrides: dict[Word, Literal["vi", "en"]] = Field(default_factory=dict, max_length=500)
    flags: list[Flag] = Field(default_factory=list, max_length=50)

    _finite = field_validator("start", "end")(finite)


class DraftSentence(Sentence):
    start: float | None = None  # a time being typed may be blank in a draft
    end: float | None = None


class SegmentIn(Body):
    start: float
    end: float

    _finite = field_validator("start", "end")(finite)


class DraftSegment(Body):
    start: float | None = None
    end: float | None = None
    text: Text = ""
    translation: Text = ""
    too_long: bool = False

    _finite = field_validator("start", "end")(finite)


Span = tuple[float, float]


class Listened(Body):
    listened: list[Span] | None = Field(default=None, max_length=MAX_SPANS)

    @field_validator("listened")
    @classmethod
    def spans_are_finite(cls, spans):
        for a, b in spans or []:
            if not (math.isfinite(a) and math.isfinite(b)):
                raise ValueError("played stretches must be finite numbers")
        return spans


class Touch(Listened):
    pass


class Draft(Listened):
    sentences: list[DraftSentence] | None = Field(default=None, max_length=MAX_ROWS)
    segments: list[DraftSegment] | None = Field(default=None, max_length=MAX_ROWS)
    progress: float | None = Field(default=None, ge=0, le=1)
    draft_version: int | None = Field(default=None, ge=0)


class Submit(Listened):
    sentences: list[Sentence] | None = Field(default=None, max_length=MAX_ROWS)
    segments: list[SegmentIn] | None = Field(default=None, max_length=MAX_ROWS)
    force: bool = False
    # The draft the page's work builds on; the task page always sends it, other callers may not.
    draft_version: int | None = Field(default=None, ge=0)


class Decide(Submit):
    decision: str | None = None
    comment: Annotated[str, Field(max_length=MAX_TEXT)] | None = None


class Report(Listened):
    """A skip (reason: the reviewer's words) or an unusable-audio report (reason: a code)."""

    kind: Literal["skip", "unusable"]
    reason: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    comment: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
    draft_version: int | None = Field(default=None, ge=0)


def field_name(location: tuple) -> str:
    """('sentences', 3, 'lang_overrides') -> 'sentences[3].lang_overrides'."""
    name = ""
    for part in location:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def parse(model: type[Body], payload: dict) -> Body:
    """`payload` as `model`, or Invalid (422) listing each malformed field by name."""
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        problems = [
            f"{field_name(e['loc'])}: {e['msg']}"
            for e in error.errors(include_url=False, include_context=False)
        ]
        raise Invalid(f"The request was malformed: {problems[0]}", problems=problems[:20]) from None
