"""Text helpers for Vietnamese–English code-switched transcripts: normalisation, words and
their language tags (WER/CER and the display diff are in `scoring`).

Everything here is a pure function of its arguments (no Flask, no database), so the review
pages, the workers and the tests share one definition of "a word", "the same text" and "the
language of a word".

Language guess (`guess_language`, `word_languages`)
----------------------------------------------------
Each word's core (`word_core`, lowercased) gets evidence for Vietnamese and English:

1. Strong Vietnamese: it contains a letter only Vietnamese spells with (ă â đ ê ô ơ ư) or one of
   the five tone marks (à á ả ã ạ, on any vowel). So a French "café" counts as Vietnamese:
   in these transcripts an accented Latin word is far more likely Vietnamese.
2. Strong English: it is not a possible Vietnamese syllable. A syllable is
   (onset)(vowel nucleus)(final): onsets b c ch d g gh gi h k kh l m n ng ngh nh p ph qu r s t
   th tr v x, the nuclei and diphthongs of Vietnamese spelling, finals c ch m n ng nh p t, with
   the spelling rules k/gh/ngh only before e i y and c/ng never before them. So letters f j w z,
   clusters ("laptop", "shopping", "project"), finals like -ck -ng after i, -ing, -s, -r,
   apostrophes ("let's") and multi-syllable words ("review", "okay") are English.
   In text that is written with Vietnamese diacritics, a toneless syllable ending in p t c ch is
   also English ("hot", "chat", "top"): Vietnamese checked syllables always carry sắc or nặng.
3. Otherwise the word is valid in both languages ("anh", "em", "in", "to", "me", "say"): weak
   evidence, the lean ``zipf_en - zipf_vi`` of wordfreq's Zipf frequencies (its small word
   lists, shipped inside the package: nothing is downloaded). A word missing from the English
   list leans Vietnamese by at least 3.5. Vietnamese is the matrix language, so the lean is
   asymmetric: towards English it is capped below the cost of one switch (a both-valid word
   never breaks away from a Vietnamese neighbour: "me ơi", "to quá"), towards Vietnamese it is
   not (a particle breaks away from English: "team nha", "email cho team").
   Without wordfreq installed the fallback is a built-in list of frequent English words that
   are also valid syllables (lean +1); every other valid syllable leans -2 (so a particle
   still breaks away from one English neighbour, not from two).
4. Tokens without letters (numbers, symbols) and letter-only tokens without a vowel (acronyms
   and units: "TP", "HCM", "km") carry no evidence.

`word_languages` then picks the tag sequence with the least total cost (Viterbi over two
states): the cost of each word's tag (its lean; strong evidence costs 6) plus 1.5 per switch
between consecutive words. So a weak word follows its context ("in" is Vietnamese in "anh in
cái này", English in "check in liền", where it sits where the languages meet and its own lean
decides); strong evidence and the reviewer's overrides always win. Tokens without evidence take
the language of the previous word (the next one at the start; "vi" if there is none).
Out of context (`guess_language`) a weak word goes by frequency alone, ties going to "vi".
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

try:  # Optional: frequency data for words that are valid in both languages.
    from wordfreq import zipf_frequency as _wordfreq_zipf
except ImportError:  # pragma: no cover - the tests run this in a subprocess
    _wordfreq_zipf = None

Lang = Literal["vi", "en"]
LANGS: tuple[Lang, Lang] = ("vi", "en")

_zipf: Callable[..., float] | None = _wordfreq_zipf

# --- Unicode ------------------------------------------------------------------------------

_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")  # huyền sắc ngã hỏi nặng
_VOWEL_MARKS = frozenset("\u0302\u0306\u031b")  # circumflex (â ê ô), breve (ă), horn (ơ ư)
_VI_MARKS = _TONE_MARKS | _VOWEL_MARKS
_INVISIBLE = {ord("\ufeff"): None, ord("\u200b"): " ", ord("\u2060"): None, ord("\u02bc"): "'"}


def nfc(text: str) -> str:
    """NFC with whitespace collapsed: NFD input (common from macOS and some ASR tools) and
    precomposed input must compare equal, and diacritics must survive untouched."""
    text = unicodedata.normalize("NFC", text.translate(_INVISIBLE))
    return " ".join(text.split())


def tokenize(text: str) -> list[str]:
    """The words as the reviewer typed them, punctuation attached, split on whitespace."""
    return nfc(text).split()


def _is_core_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LNM"


def word_core(token: str) -> str:
    """`token` without leading/trailing punctuation ("(laptop)," -> "laptop"); inner marks such
    as "let's" or "COVID-19" stay, since they belong to the word."""
    start, end = 0, len(token)
    while start < end and not _is_core_char(token[start]):
        start += 1
    while end > start and not _is_core_char(token[end - 1]):
        end -= 1
    return token[start:end]


def word_key(token: str) -> str:
    """The form reviewer overrides are keyed by: lowercase (casefolded) NFC core, so "Review,"
    and "review" share one override."""
    return unicodedata.normalize("NFC", word_core(nfc(token)).casefold())


def has_vietnamese_marks(text: str) -> bool:
    """True if `text` has a letter only Vietnamese uses here (đ, or a vowel/tone mark)."""
    decomposed = unicodedata.normalize("NFD", text)
    return any(ch in _VI_MARKS or ch in "đĐ" for ch in decomposed)


# --- Vietnamese syllable structure ---------------------------------------------------------

_ONSETS = (
    "ngh", "ng", "gh", "gi", "kh", "nh", "ph", "th", "tr", "ch", "qu",
    "b", "c", "d", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "x", "",
)  # fmt: skip
# Nuclei written without their marks (â ă -> a, ê -> e, ô ơ -> o, ư -> u).
_OPEN_RHYMES = frozenset(
    "a e i o u y ai ao au ay eo eu ia iu oa oe oi ua ue ui uo uu uy "
    "oai oay oeo uay ueo ieu yeu uoi uou uya uyu".split()
)
_FINALS_AFTER = {
    "a": "c ch m n ng nh p t",
    "e": "c ch m n ng nh p t",
    "i": "ch m n nh p t",
    "o": "c m n ng p t",
    "u": "c m n ng p t",
    "ie": "c m n ng p t",
    "ye": "m n ng t",
    "uo": "c m n ng p t",
    "oa": "c ch m n ng nh p t",
    "oe": "m n ng t",
    "ua": "c m n ng p t",
    "ue": "ch n nh t",
    "uy": "ch n nh p t",
    "uye": "n t",
    "oo": "c ng",
}
_CLOSED_RHYMES = frozenset(
    nucleus + final for nucleus, finals in _FINALS_AFTER.items() for final in finals.split()
)
_RHYMES = _OPEN_RHYMES | _CLOSED_RHYMES
_CHECKED_FINALS = ("p", "t", "c", "ch")


def _onset_fits(onset: str, rhyme: str) -> bool:
    front = rhyme[0] in "eiy"
    if onset in ("k", "gh", "ngh"):
        return front
    if onset in ("c", "ng"):
        return not front
    if onset == "g":
        return rhyme[0] not in "ey"  # "gi..." is the gi- onset written once
    return True


def is_vietnamese_syllable(word: str) -> bool:
    """Whether `word` (letters a-z, no marks) could be one Vietnamese syllable written without
    diacritics; English words that cannot ("laptop", "team", "check") are safely English."""
    word = word.lower()
    if not word.isascii() or not word.isalpha():
        return False
    for onset in _ONSETS:
        if word.startswith(onset):
            rhyme = word[len(onset) :]
            if onset == "qu" and "u" + rhyme in _RHYMES:
                return True  # the u of qu- is also the rhyme's glide: quynh ~ huynh
            if rhyme in _RHYMES and _onset_fits(onset, rhyme):
                return True
    return False


# --- Language guess ------------------------------------------------------------------------

_STRONG = 6.0  # more than two switch penalties: context never flips it
_SWITCH = 1.5
_EN_CAP = 1.4  # below one switch: an English lean never breaks away from Vietnamese
_VI_CAP = 4.0  # below _STRONG: a Vietnamese lean can, even between two English words
_TIE = 0.01  # tiny lean to Vietnamese, the matrix language, so that ties go to "vi"
_NOT_ENGLISH_LEAN = -3.5  # valid syllable, absent from the English list: surely Vietnamese
_FALLBACK_LEAN = -2.0  # valid syllable, absent from the short fallback list: probably so

# Fallback without wordfreq: frequent English words that are also valid Vietnamese syllables.
_FALLBACK_ENGLISH = frozenset(
    "a i in on at it up so no go do be me my by he hi an am the to can man men then than them "
    "not but got get let yet set hot top chat cut hit sit lot day say tip map cap tap pet ten "
    "sun run fun gun bus".split()
)

Evidence = tuple[float, float] | None  # (cost if tagged vi, cost if tagged en)


def _frequency_lean(word: str) -> float:
    """> 0 leans English, < 0 Vietnamese, in Zipf units (log10 of frequency per billion)."""
    if _zipf is None:
        return 1.0 if word in _FALLBACK_ENGLISH else _FALLBACK_LEAN
    zipf_en = _zipf(word, "en", wordlist="small")
    zipf_vi = _zipf(word, "vi", wordlist="small")
    lean = zipf_en - zipf_vi
    if zipf_en == 0:
        lean = min(lean, _NOT_ENGLISH_LEAN)
    return lean


def _run_evidence(run: str, diacritised_text: bool) -> Evidence:
    """Evidence for one run of plain letters a-z (lowercase)."""
    if not any(ch in "aeiouy" for ch in run):
        return None
    if not is_vietnamese_syllable(run):
        return (_STRONG, 0.0)
    if diacritised_text and run.endswith(_CHECKED_FINALS):
        return (_STRONG, 0.0)
    lean = _frequency_lean(run)
    return (min(max(lean, 0.0), _EN_CAP), min(max(-lean, 0.0), _VI_CAP) + _TIE)


def _evidence(core: str, diacritised_text: bool = False) -> Evidence:
    """(cost_vi, cost_en) for a word core, or None when it says nothing about language."""
    if not core or not any(ch.isalpha() for ch in core):
        return None
    if has_vietnamese_marks(core):
        return (0.0, _STRONG)
    word = core.lower()
    if "'" in word or "\u2019" in word:
        return (_STRONG, 0.0)  # Vietnamese has no apostrophes: "let's", "don't"
    foreign = [ch for ch in word if ch.isalpha() and not ("a" <= ch <= "z")]
    if foreign:
        if any("LATIN" in unicodedata.name(ch, "") for ch in foreign):
            return (_STRONG, 0.0)  # ñ, ü, ç...: a Latin-script word that is not Vietnamese
        return None  # another script: no basis for either tag
    runs = re.findall(r"[a-z]+", word)
    evidence = [e for e in (_run_evidence(run, diacritised_text) for run in runs) if e]
    if not evidence:
        return None
    return (max(e[0] for e in evidence), max(e[1] for e in evidence))


def guess_language(word: str) -> Lang:
    """The language of one word out of context; see the module docstring for the rule. Words
    valid in both languages go by frequency here; `word_languages` lets context decide them."""
    evidence = _evidence(word_core(nfc(word)))
    if evidence is None:
        return "vi"
    return "en" if evidence[1] < evidence[0] else "vi"


def _viterbi(costs: Sequence[tuple[float, float]]) -> list[Lang]:
    """Cheapest tag sequence: sum of tag costs plus `_SWITCH` per change of language."""
    if not costs:
        return []
    total = list(costs[0])
    back: list[tuple[int, int]] = []
    for cost in costs[1:]:
        step = []
        new = []
        for lang in (0, 1):
            stay, switch = total[lang], total[1 - lang] + _SWITCH
            prev = lang if stay <= switch else 1 - lang
            step.append(prev)
            new.append(min(stay, switch) + cost[lang])
        back.append((step[0], step[1]))
        total = new
    lang = 0 if total[0] <= total[1] else 1
    path = [lang]
    for step in reversed(back):
        lang = step[lang]
        path.append(lang)
    path.reverse()
    return [LANGS[i] for i in path]


def _normalise_overrides(overrides: Mapping[str, str] | None) -> dict[str, Lang]:
    result: dict[str, Lang] = {}
    for key, lang in (overrides or {}).items():
        if lang not in LANGS:
            raise ValueError(f"override for {key!r} must be 'vi' or 'en', not {lang!r}")
        result[word_key(key)] = lang  # type: ignore[assignment]
    return result


def word_languages(text: str, overrides: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Each token of `text` as ``{"text", "lang", "manual"}``. `overrides` maps `word_key`
    forms to the reviewer's choice, which beats the guess (and informs its neighbours)."""
    tokens = tokenize(text)
    chosen = _normalise_overrides(overrides)
    diacritised = has_vietnamese_marks(text)
    keys = [word_key(token) for token in tokens]
    evidence: list[Evidence] = []
    for token, key in zip(tokens, keys, strict=True):
        if key in chosen:
            evidence.append((0.0, math.inf) if chosen[key] == "vi" else (math.inf, 0.0))
        else:
            evidence.append(_evidence(word_core(token), diacritised))
    scored = [(i, e) for i, e in enumerate(evidence) if e is not None]
    tags: list[Lang | None] = [None] * len(tokens)
    for (i, _), lang in zip(scored, _viterbi([e for _, e in scored]), strict=True):
        tags[i] = lang
    for i in range(len(tags)):  # no evidence: the previous word's language
        if tags[i] is None and i > 0:
            tags[i] = tags[i - 1]
    following: Lang = "vi"
    for i in reversed(range(len(tags))):  # leading ones: the next word's language
        tags[i] = following = tags[i] or following
    return [
        {"text": token, "lang": tag, "manual": key in chosen}
        for token, key, tag in zip(tokens, keys, tags, strict=True)
    ]


def _word_tags(text: str, overrides: Mapping[str, str] | None) -> list[Lang]:
    """Tags of the word tokens only (those with a letter): numbers and symbols don't count."""
    return [
        w["lang"]
        for w in word_languages(text, overrides)
        if any(ch.isalpha() for ch in word_core(w["text"]))
    ]


def english_share(text: str, overrides: Mapping[str, str] | None = None) -> float:
    """Share of word tokens tagged English, 0..1 (0 for no words): how code-switched it is."""
    tags = _word_tags(text, overrides)
    return sum(tag == "en" for tag in tags) / len(tags) if tags else 0.0


def switch_points(text: str, overrides: Mapping[str, str] | None = None) -> int:
    """Number of language changes between consecutive word tokens."""
    tags = _word_tags(text, overrides)
    return sum(a != b for a, b in zip(tags, tags[1:], strict=False))
