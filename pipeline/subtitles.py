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

import codecs
import html
import os
import re
from collections.abc import Sequence
from pathlib import Path

from pipeline.records import Sentence
from ra_app.core.text import nfc

from .cue_sentences import Cue, cues_to_sentences

__all__ = [
    "Cue",
    "SubtitleError",
    "dedupe_rolling",
    "load_subtitle_file",
    "parse_subtitles",
]


_TRANSITION_MAX_S = 0.05
"""YouTube's 'transition' cues last ~10 ms; anything this short that only repeats is one."""


class SubtitleError(ValueError):
    """A subtitle file that cannot be used; the message names the line when it can."""


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


def _clean_line(line: str) -> str:
    """Strip markup from one cue line; entities are decoded after tags are removed so
    that an escaped ``&lt;i&gt;`` survives as literal text."""
    line = _ASS_OVERRIDE_RE.sub("", _TAG_RE.sub("", line))
    return nfc(html.unescape(line).translate(_INVISIBLE))


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
