"""The rows a submit sends, made what the sample keeps: cleaned (NFC text, times to the ms),
checked as a whole (every problem named), and for a translation review only its own fields
taken, for a transcript correction the translations written meanwhile kept."""

from __future__ import annotations

from ..core import text
from ..core.models import Assignment
from .errors import Invalid
from .page import window_of


def clean_row(row: dict) -> dict:
    """One sentence as sent (already of the right shapes): NFC text, times to the ms."""
    return {
        "start": round(row["start"], 3),
        "end": round(row["end"], 3),
        "text": text.nfc(row["text"]),
        "translation": text.nfc(row["translation"]),
        "lang_overrides": {text.nfc(k).lower(): v for k, v in row["lang_overrides"].items()},
        "flags": list(row["flags"]),
    }


def validate_rows(task: Assignment, rows: list[dict] | None) -> list[dict]:
    if rows is None:
        raise Invalid("No sentences were sent.")
    window = window_of(task)
    duration = task.sample.duration_s
    cleaned = sorted((clean_row(r) for r in rows), key=lambda r: r["start"])
    problems = []
    for i, row in enumerate(cleaned, 1):
        if not row["text"]:
            problems.append(f"Sentence {i} is empty: type its text or delete it.")
        if row["end"] <= row["start"]:
            problems.append(f"Sentence {i} ends before it starts.")
        if row["start"] < 0 or row["end"] > duration + 0.05:
            problems.append(f"Sentence {i} runs outside the recording (0–{duration:.1f} s).")
        if not window.holds(row):
            problems.append(
                f"Sentence {i} starts at {row['start']:.2f} s, outside this task's "
                f"window ({window.label()})."
            )
    if problems:
        raise Invalid("The sentences need fixing before they can be submitted.", problems=problems)
    return cleaned


def comparable(rows: list[dict]) -> list[tuple]:
    return [(r["start"], r["end"], r["text"], r.get("translation", "")) for r in rows]


def keep_newer_translations(edited: list[dict], base: list[dict], current: list[dict]):
    """Rows of a transcript correction with the translations (and flags) that a translation
    review wrote since the task started, wherever this reviewer left the translation as it
    was. Only when the sentences themselves are unchanged since (else the reviewer chose to
    replace the window as a whole)."""
    same_sentences = len(base) == len(current) and all(
        (b["start"], b["end"], b["text"]) == (c["start"], c["end"], c["text"])
        for b, c in zip(base, current, strict=True)
    )
    if not same_sentences:
        return edited
    newer = [
        (b, c)
        for b, c in zip(base, current, strict=True)
        if (b["translation"], b["flags"]) != (c["translation"], c["flags"])
    ]
    merged = []
    for row in edited:
        for b, c in newer:
            overlaps = row["start"] < b["end"] and b["start"] < row["end"]
            if overlaps and row["translation"] == b["translation"]:
                row = {**row, "translation": c["translation"], "flags": list(c["flags"])}
                break
        merged.append(row)
    return merged


def translated_rows(current: list[dict], sent: list[dict] | None) -> list[dict]:
    """translation_review edits only translations and flags; the transcript stays as it is."""
    if sent is None or len(sent) != len(current):
        raise Invalid("The sentences changed while you were reviewing; reload the task.")
    rows = []
    for i, (row, edit) in enumerate(zip(current, sent, strict=True)):
        translation = text.nfc(edit["translation"])
        if not translation:
            raise Invalid(f"Sentence {i + 1} has no translation.")
        kept_flags = [f for f in edit["flags"] if f in row["flags"]]  # clear, never add
        rows.append({**row, "translation": translation, "flags": kept_flags})
    return rows
