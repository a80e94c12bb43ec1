"""Translation checks run on every Gemini result; each flag is a reason shown to reviewers.

Rules, with the config setting of each threshold:

| flag                             | when                                                  |
|----------------------------------|-------------------------------------------------------|
| `empty_translation`              | the sentence has words, its translation none          |
| `english_untranslated: w1, w2`   | at least GEMINI_FLAG_ENGLISH_MIN_WORDS English words  |
|                                  | left in the Vietnamese, apart from the glossary's     |
|                                  | keep-English terms and GEMINI_KEEP_ENGLISH; names and |
|                                  | acronyms are not counted (GEMINI_FLAG_ENGLISH_SKIP_   |
|                                  | NAMES)                                                |
| `length_ratio: 3.2`              | translation/sentence length in characters outside     |
|                                  | [GEMINI_FLAG_LENGTH_RATIO_MIN, _MAX], for sentences   |
|                                  | of at least GEMINI_FLAG_LENGTH_MIN_CHARS characters   |
| `sentence_count: 1→3`            | the translation has more than                         |
|                                  | GEMINI_FLAG_SENTENCE_COUNT_TOLERANCE sentences more   |
|                                  | or fewer than its source                              |
| `inverted_times`                 | the sentence ends before it starts (or at its start)  |
| `before_start`                   | it starts before 0                                    |
| `out_of_order`                   | it starts before the previous sentence started        |
| `overlap`                        | it starts more than GEMINI_FLAG_OVERLAP_TOLERANCE_    |
|                                  | SECONDS before the previous sentence ended            |
| `beyond_end`                     | it ends more than GEMINI_FLAG_END_TOLERANCE_SECONDS   |
|                                  | after the end of the audio                            |

English words are found with `ra_app.core.text.word_languages`, the same vi/en tagging
the review pages show, so context decides the words valid in both languages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ra_app.core.text import nfc, word_core, word_key, word_languages

TRANSLATION_RULES = frozenset(
    {"empty_translation", "english_untranslated", "length_ratio", "sentence_count"}
)
SENTENCE_END = re.compile(r"[.!?…]+(?=\s|$)")


def rule_of(flag: str) -> str:
    return flag.split(":", 1)[0].strip()


def is_translation_flag(flag: str) -> bool:
    return rule_of(flag) in TRANSLATION_RULES


@dataclass(frozen=True)
class Thresholds:
    english_min_words: int = 1
    english_skip_names: bool = True
    length_ratio_min: float = 0.4
    length_ratio_max: float = 2.5
    length_min_chars: int = 15
    sentence_count_tolerance: int = 1
    overlap_tolerance_s: float = 0.25
    end_tolerance_s: float = 0.5

    @classmethod
    def from_config(cls, config: Mapping) -> Thresholds:
        return cls(
            english_min_words=config["GEMINI_FLAG_ENGLISH_MIN_WORDS"],
            english_skip_names=config["GEMINI_FLAG_ENGLISH_SKIP_NAMES"],
            length_ratio_min=config["GEMINI_FLAG_LENGTH_RATIO_MIN"],
            length_ratio_max=config["GEMINI_FLAG_LENGTH_RATIO_MAX"],
            length_min_chars=config["GEMINI_FLAG_LENGTH_MIN_CHARS"],
            sentence_count_tolerance=config["GEMINI_FLAG_SENTENCE_COUNT_TOLERANCE"],
            overlap_tolerance_s=config["GEMINI_FLAG_OVERLAP_TOLERANCE_SECONDS"],
            end_tolerance_s=config["GEMINI_FLAG_END_TOLERANCE_SECONDS"],
        )


class KeepList:
    """Terms a translation may keep in English; a term may be several words ("check in")."""

    def __init__(self, terms: Iterable[str]):
        self.terms = {
            tuple(keys)
            for term in terms
            if (keys := [word_key(t) for t in nfc(term).split() if word_key(t)])
        }
        self.longest = max((len(t) for t in self.terms), default=0)

    @classmethod
    def from_config(cls, config: Mapping, glossary_terms: Iterable[str] = ()) -> KeepList:
        configured = [t.strip() for t in (config["GEMINI_KEEP_ENGLISH"] or "").split(",")]
        return cls([t for t in configured if t] + list(glossary_terms))

    def covered(self, keys: list[str]) -> set[int]:
        """Positions of `keys` that are part of a kept term."""
        found: set[int] = set()
        for start in range(len(keys)):
            for length in range(1, min(self.longest, len(keys) - start) + 1):
                if tuple(keys[start : start + length]) in self.terms:
                    found.update(range(start, start + length))
        return found


def _has_letters(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _looks_like_name(core: str, position: int, tokens: list[str]) -> bool:
    """An acronym (CEO), an inner capital (iPhone, TikTok), or a capitalised word that does
    not start a sentence (Shopee, John): names are kept in translations."""
    if len(core) >= 2 and core.isupper():
        return True
    if any(ch.isupper() for ch in core[1:]):
        return True
    starts_sentence = position == 0 or tokens[position - 1].rstrip().endswith((".", "!", "?", ":"))
    return core[:1].isupper() and not starts_sentence


def english_words(translation: str, keep: KeepList, skip_names: bool = True) -> list[str]:
    """The English words left in a Vietnamese translation (lowercase, first occurrence)."""
    words = word_languages(translation)
    tokens = [w["text"] for w in words]
    covered = keep.covered([word_key(t) for t in tokens])
    found: list[str] = []
    for i, word in enumerate(words):
        core = word_core(nfc(word["text"]))
        if word["lang"] != "en" or i in covered or not any(ch.isalpha() for ch in core):
            continue
        if skip_names and _looks_like_name(core, i, tokens):
            continue
        if core.lower() not in found:
            found.append(core.lower())
    return found


def count_sentences(text: str) -> int:
    pieces = SENTENCE_END.split(nfc(text))
    return sum(1 for piece in pieces if _has_letters(piece))


def ratio_text(ratio: float) -> str:
    return f"{ratio:.2g}" if ratio < 10 else f"{ratio:.0f}"


def translation_flags(text: str, translation: str, keep: KeepList, t: Thresholds) -> list[str]:
    """The translation rules for one sentence."""
    source, target = nfc(text), nfc(translation)
    if not _has_letters(target):
        return ["empty_translation"] if _has_letters(source) else []
    flags = []
    english = english_words(target, keep, t.english_skip_names)
    if english and len(english) >= t.english_min_words:
        flags.append("english_untranslated: " + ", ".join(english))
    if len(source) >= t.length_min_chars:
        ratio = len(target) / len(source)
        if ratio > t.length_ratio_max or ratio < t.length_ratio_min:
            flags.append(f"length_ratio: {ratio_text(ratio)}")
    source_n, target_n = count_sentences(source), count_sentences(target)
    if abs(source_n - target_n) > t.sentence_count_tolerance:
        flags.append(f"sentence_count: {source_n}→{target_n}")
    return flags


def time_flags(rows: list[dict], duration_s: float, t: Thresholds) -> list[list[str]]:
    """The timestamp rules, each sentence against the previous one and the audio's end."""
    result = []
    for i, row in enumerate(rows):
        flags = []
        start, end = float(row["start"]), float(row["end"])
        if end <= start:
            flags.append("inverted_times")
        if start < 0:
            flags.append("before_start")
        if i > 0:
            previous = rows[i - 1]
            if start < float(previous["start"]):
                flags.append("out_of_order")
            elif start < float(previous["end"]) - t.overlap_tolerance_s:
                flags.append("overlap")
        if max(start, end) > duration_s + t.end_tolerance_s:
            flags.append("beyond_end")
        result.append(flags)
    return result


def detect(rows: list[dict], duration_s: float, keep: KeepList, t: Thresholds) -> list[dict]:
    """`rows` with their `flags` (timestamp flags first, then translation flags)."""
    timing = time_flags(rows, duration_s, t)
    return [
        {
            **row,
            "flags": timing[i] + translation_flags(row["text"], row["translation"], keep, t),
        }
        for i, row in enumerate(rows)
    ]
