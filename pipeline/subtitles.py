"""Turn WebVTT / SRT subtitles into time-stamped transcript sentences.

Ingestion calls :func:`load_subtitle_file` for ``name.vtt`` / ``name.srt`` sidecars and
for subtitles downloaded from YouTube.  YouTube's automatic captions need two extra
steps before they are usable as a reference transcript: their "rolling" layout repeats
every line (:func:`dedupe_rolling`) and they carry no punctuation, so sentences are cut
at pauses instead (:func:`cues_to_sentences`).

Standard library only, so it runs the same in the web process and in Celery workers.
All text comes out NFC-normalised with whitespace collapsed: Vietnamese diacritics may
arrive decomposed (NFD) from some editors, and reviewers' diffs must not flag that.
"""

from __future__ import annotations

import bisect
import codecs
import html
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.records import Sentence

__all__ = [
    "PAUSE_S",
    "Cue",
    "SubtitleError",
    "cues_to_sentences",
    "dedupe_rolling",
    "load_subtitle_file",
    "parse_subtitles",
]

PAUSE_S = 0.6
"""Silence between cues (seconds) that ends a sentence when punctuation is missing."""

_TRANSITION_MAX_S = 0.05
"""YouTube's 'transition' cues last ~10 ms; anything this short that only repeats is one."""

_PUNCTUATED_CUE_SHARE = 0.1
"""Share of cues that must contain a sentence end before punctuation alone is trusted."""


class SubtitleError(ValueError):
    """A subtitle file that cannot be used; the message names the line when it can."""


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


# --------------------------------------------------------------------------- parsing

_TIMING_RE = re.compile(r"^\s*(?P<start>\S+?)\s*-->\s*(?P<end>\S+)(?:\s+.*)?$")
# A line that tries to be a timing line, so a typo is reported instead of being read as text.
_TIMING_LIKE_RE = re.compile(r"^\s*\d+:\d+\S*\s*(?:-+>|=>|–>|—>)")
_STAMP_RE = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>\d{1,2}):(?P<s>\d{1,2})(?:[.,](?P<f>\d{1,3}))?$")
_VTT_BLOCK_RE = re.compile(r"^(?:NOTE|STYLE|REGION)(?:[ \t]|$)")
# Tags start with a letter or '/' (<i>, </c>, <c.colorE5E5E5>, <v Anna>, <font ...>) or
# are karaoke timestamps (<00:00:01.234>); a bare "a < b" is left alone.
_TAG_RE = re.compile(r"</?[A-Za-z][^<>]*>|<\d[\d:.]*>")
_ASS_OVERRIDE_RE = re.compile(r"\{\\[^{}]*\}")  # {\an8} etc., common in SRT from .ass
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff"))


def _normalise(text: str) -> str:
    """NFC and single spaces: the form every stored transcript text uses."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _clean_line(line: str) -> str:
    """Strip markup from one cue line; entities are decoded after tags are removed so
    that an escaped ``&lt;i&gt;`` survives as literal text."""
    line = _ASS_OVERRIDE_RE.sub("", _TAG_RE.sub("", line))
    return _normalise(html.unescape(line).translate(_INVISIBLE))


def _is_timing_line(line: str) -> bool:
    stripped = line.lstrip()
    return bool(stripped[:1].isdigit() and "-->" in stripped) or bool(_TIMING_LIKE_RE.match(line))


def _parse_stamp(stamp: str, lineno: int) -> int:
    """Timestamp to integer milliseconds (exact, so cue times round-trip)."""
    m = _STAMP_RE.match(stamp)
    if m is None or int(m["m"]) > 59 or int(m["s"]) > 59:
        raise SubtitleError(
            f"line {lineno}: malformed timestamp {stamp!r}; "
            "expected [hh:]mm:ss.mmm (WebVTT) or hh:mm:ss,mmm (SRT)"
        )
    frac = (m["f"] or "0").ljust(3, "0")
    return ((int(m["h"] or 0) * 60 + int(m["m"])) * 60 + int(m["s"])) * 1000 + int(frac)


def _parse_timing(line: str, lineno: int) -> tuple[float, float]:
    m = _TIMING_RE.match(line)
    if m is None:
        raise SubtitleError(
            f"line {lineno}: malformed cue timing {line.strip()!r}; expected 'START --> END'"
        )
    start, end = _parse_stamp(m["start"], lineno), _parse_stamp(m["end"], lineno)
    if end < start:
        raise SubtitleError(f"line {lineno}: cue ends before it starts ({m['end']} < {m['start']})")
    return start / 1000, end / 1000


def _resolve_format(text: str, fmt: str | None) -> str:
    if fmt is None:
        head = text.lstrip()
        is_vtt = head.startswith("WEBVTT") and head[6:7] in ("", " ", "\t", "\n")
        return "vtt" if is_vtt else "srt"
    kind = fmt.lower().lstrip(".")
    if kind in ("vtt", "webvtt"):
        return "vtt"
    if kind in ("srt", "subrip"):
        return "srt"
    raise SubtitleError(f"unknown subtitle format {fmt!r}; expected 'vtt' or 'srt'")


def _vtt_body_start(lines: list[str]) -> int:
    """Index of the first line after the WEBVTT header block (0 if there is none)."""
    idx = 0
    while idx < len(lines) and not lines[idx].strip():
        idx += 1
    if idx == len(lines) or not lines[idx].startswith("WEBVTT"):
        return 0
    idx += 1
    while idx < len(lines) and lines[idx].strip() and not _is_timing_line(lines[idx]):
        idx += 1
    return idx


def parse_subtitles(text: str, fmt: str | None = None) -> list[Cue]:
    """Parse WebVTT or SRT text into cues, in file order, dropping cues without text.

    ``fmt`` is ``"vtt"`` or ``"srt"``; ``None`` detects it (a ``WEBVTT`` header means
    WebVTT).  Both parsers accept either decimal separator and optional hours, because
    real files mix them up.  Raises :class:`SubtitleError` naming the line on a bad
    timestamp, and when the file has no cue with text.
    """
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    kind = _resolve_format(text, fmt)
    lines = text.split("\n")
    first = _vtt_body_start(lines) if kind == "vtt" else 0

    raw: list[tuple[float, float, list[str]]] = []
    at_block_start, skipping = True, False
    for idx in range(first, len(lines)):
        line, lineno = lines[idx], idx + 1
        if not line.strip():
            # YouTube puts whitespace-only lines *inside* cues; they end nothing that
            # matters, because a timing line always starts a new cue anyway.
            at_block_start, skipping = True, False
            continue
        if skipping:
            continue
        if kind == "vtt" and at_block_start and _VTT_BLOCK_RE.match(line):
            skipping = True  # NOTE / STYLE / REGION block, up to the next blank line
            continue
        at_block_start = False
        if _is_timing_line(line):
            start, end = _parse_timing(line, lineno)
            raw.append((start, end, []))
        elif idx + 1 < len(lines) and _is_timing_line(lines[idx + 1]):
            continue  # cue identifier ("1", "intro", ...)
        elif not raw:
            raise SubtitleError(
                f"line {lineno}: expected a cue timing line such as "
                f"'00:00:01.000 --> 00:00:02.000', got {line.strip()!r}"
            )
        else:
            raw[-1][2].append(line)

    cues = []
    for start, end, text_lines in raw:
        cleaned = tuple(c for c in map(_clean_line, text_lines) if c)
        if cleaned:
            cues.append(Cue(start, end, " ".join(cleaned), cleaned))
    if not cues:
        raise SubtitleError(
            f"no subtitle cues with text found (parsed as {kind.upper()}): expected "
            "blocks of a '00:00:01.000 --> 00:00:02.000' line followed by text"
        )
    return cues


# ---------------------------------------------------------------- rolling captions


def _repeated_words(prev: Cue, cue: Cue) -> int:
    """How many leading words of ``cue`` only repeat what ``prev`` already showed."""
    words, prev_words = cue.text.split(), prev.text.split()
    if len(words) <= len(prev_words) and prev_words[len(prev_words) - len(words) :] == words:
        return len(words)  # transition cue, or a cue shown twice
    if prev.lines and cue.lines:
        # Rolling layout: the new cue's top line is the previous cue's bottom line.
        return len(cue.lines[0].split()) if cue.lines[0] == prev.lines[-1] else 0
    for k in range(min(len(prev_words), len(words) - 1), 0, -1):
        if prev_words[-k:] == words[:k]:
            return k
    return 0


def dedupe_rolling(cues: Sequence[Cue]) -> list[Cue]:
    """Drop the repetition of YouTube "rolling" automatic captions.

    Each rolling cue shows the previous line again above the new words, and ~10 ms
    transition cues show only the old line; keeping them would transcribe every word
    twice.  Each word is kept once, with the times of the cue where it first appeared.
    Subtitles that do not look rolling (most consecutive cues must overlap) are
    returned unchanged, so a line that is genuinely said twice survives there.
    """
    cues = list(cues)
    if len(cues) < 2:
        return cues
    repeats = [_repeated_words(prev, cue) for prev, cue in zip(cues, cues[1:], strict=False)]
    overlapping = sum(1 for k in repeats if k)
    has_transition = any(
        k and k >= len(cue.text.split()) and cue.end - cue.start <= _TRANSITION_MAX_S
        for cue, k in zip(cues[1:], repeats, strict=True)
    )
    if overlapping * 2 < len(repeats) or not (overlapping >= 2 or has_transition):
        return cues

    out = [cues[0]]
    for cue, k in zip(cues[1:], repeats, strict=True):
        words = cue.text.split()
        if k >= len(words):
            continue
        if k == 0:
            out.append(cue)
        else:
            rest = " ".join(words[k:])
            out.append(Cue(cue.start, cue.end, rest, (rest,)))
    return out


# ----------------------------------------------------------------------- sentences

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
    texts = [_normalise(c.text) for c in cues]
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


# --------------------------------------------------------------------------- files


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def load_subtitle_file(
    path: str | os.PathLike[str], *, max_sentence_s: float = 30.0
) -> list[Sentence]:
    """Read a ``.vtt`` / ``.srt`` file into sentences (parse, dedupe, cut).

    The file must be UTF-8 (a BOM is fine; UTF-16 with a BOM is accepted too).
    Errors are :class:`SubtitleError` prefixed with the path.
    """
    p = Path(path)
    try:
        text = _decode(p.read_bytes())
    except UnicodeDecodeError as exc:
        raise SubtitleError(
            f"{p}: not valid UTF-8 (byte offset {exc.start}); save the subtitles as UTF-8"
        ) from exc
    try:
        cues = parse_subtitles(text, "vtt" if p.suffix.lower() == ".vtt" else None)
    except SubtitleError as exc:
        raise SubtitleError(f"{p}: {exc}") from exc
    return cues_to_sentences(dedupe_rolling(cues), max_sentence_s)
