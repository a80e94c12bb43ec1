"""Typed records that stages exchange (the shape stored in the JSON sentence lists)."""

from __future__ import annotations

from typing import NotRequired, TypedDict


class Sentence(TypedDict):
    """One time-stamped sentence of a transcript; times in seconds from the sample's start."""

    start: float
    end: float
    text: str


class TranslatedSentence(TypedDict):
    """The translation of the transcript sentence with the same index."""

    index: int
    translation: str
    flags: NotRequired[list[str]]


class Word(TypedDict):
    word: str
    start: float
    end: float
    score: NotRequired[float | None]
    language: NotRequired[str]
    interpolated: NotRequired[bool]
