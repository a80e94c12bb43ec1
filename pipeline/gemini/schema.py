"""The structured replies asked of Gemini (its response schema) and their validation.

The same pydantic models are given to the SDK as `response_schema` and used to validate
the reply text: a reply that is not JSON or does not match raises `BadReply`, and the stage
writes nothing. The models are deliberately loose about values (a negative time, an end
before its start): those are the detection rules' business, flagged for a reviewer rather
than thrown away.
"""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, Field, ValidationError


class SentenceReply(BaseModel):
    start: float = Field(description="Start of the sentence, in seconds from the audio's start.")
    end: float = Field(description="End of the sentence, in seconds from the audio's start.")
    text: str = Field(
        description="Verbatim transcript: each word in the language and script it was spoken "
        "in (Vietnamese with full diacritics, English in English spelling)."
    )
    translation: str = Field(description="The whole sentence in natural Vietnamese.")


class TranscriptReply(BaseModel):
    sentences: list[SentenceReply] = Field(description="Every sentence spoken, in order.")


class RepairItem(BaseModel):
    index: int = Field(description="The index of the sentence being translated.")
    translation: str = Field(description="The new Vietnamese translation of that sentence.")


class RepairReply(BaseModel):
    translations: list[RepairItem] = Field(
        description="One new translation for each sentence that was asked for."
    )


class BadReply(ValueError):
    """The reply is not JSON, or not the JSON the schema asks for."""

    def __init__(self, message: str, code: str):
        super().__init__(message, code)
        self.code = code  # not_json | schema_mismatch

    def __str__(self) -> str:
        return str(self.args[0])


M = TypeVar("M", bound=BaseModel)


def snippet(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_reply(text: str, model: type[M]) -> M:
    """Validate the reply text against `model`; raise BadReply saying what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadReply(
            f"the reply is not JSON ({error.msg} at char {error.pos}): {snippet(text)!r}",
            "not_json",
        ) from None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
            for e in error.errors()[:3]
        )
        raise BadReply(
            f"the reply does not match the schema ({problems}): {snippet(text)!r}",
            "schema_mismatch",
        ) from None
