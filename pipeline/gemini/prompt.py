"""What Gemini is told: instructions, few-shot examples, glossary hints, the prompt version.

The system instruction states the task and its rules once, shows worked examples of
Vietnamese–English code-switched speech (the right transcript of each, the usual mistakes,
and the translation), and ends with the glossary: approved lexicon terms as vocabulary
(spell them this way) and as keep-English terms (leave them untranslated). The user turn
carries the audio and a short request naming its length, and for a chunk of a long
recording, which part it is.

The prompt version recorded with every revision is the text's version plus a short hash of
the approved terms (`v1+lex:1a2b3c4d`), so a change of the glossary is a new version and
WER/CER per prompt version stays meaningful.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

PROMPT_VERSION = "v1"
REPAIR_PROMPT_VERSION = "repair-v1"


@dataclass(frozen=True)
class Glossary:
    """Approved lexicon terms, as the prompt uses them."""

    vocabulary: tuple[tuple[str, str | None], ...] = ()  # (term, preferred translation)
    keep_english: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.vocabulary and not self.keep_english

    def fingerprint(self) -> str:
        data = json.dumps([sorted(self.vocabulary), sorted(self.keep_english)], ensure_ascii=False)
        return hashlib.sha256(data.encode()).hexdigest()[:8]


def versioned(base: str, glossary: Glossary) -> str:
    return base if glossary.empty else f"{base}+lex:{glossary.fingerprint()}"


def prompt_version(glossary: Glossary) -> str:
    return versioned(PROMPT_VERSION, glossary)


def repair_prompt_version(glossary: Glossary) -> str:
    return versioned(REPAIR_PROMPT_VERSION, glossary)


# --- transcribe + translate --------------------------------------------------------------

TASK = """\
You transcribe and translate Vietnamese–English code-switched speech for a speech-translation \
corpus. Speakers mix Vietnamese and English, often inside one sentence.

For the audio you are given, return every sentence that is spoken, in order, each with:
- "start" and "end": when the sentence starts and ends, in seconds from the start of this \
audio (decimals, e.g. 12.35). Sentences follow each other without overlapping and never go \
past the end of the audio.
- "text": the verbatim transcript. Write every word in the language and script it was \
spoken in: Vietnamese words in Vietnamese with all their diacritics, English words in \
normal English spelling. Never write an English word the way it sounds in Vietnamese \
("review", not "ri viu"; "laptop", not "láp tóp") and never translate while transcribing. \
Keep Vietnamese particles (nhé, nha, á, ạ, hả). Leave out hesitation sounds (ờ, ừm, uh, um), \
words cut off in the middle, and non-speech sounds. Write numbers as digits when they were \
said as numbers.
- "translation": the whole sentence in natural, fluent Vietnamese. Translate the English \
parts; keep people's names, brand and product names, and the glossary's keep-English terms \
as they are. Do not add or leave out anything. A sentence spoken entirely in Vietnamese is \
its own translation.

Split at the ends of sentences or at clear pauses; a sentence should last no more than about \
15 seconds. If nobody speaks, return an empty list of sentences."""

EXAMPLES = [
    {
        "heard": "hôm nay mình sẽ review cái laptop này, performance khá ổn",
        "wrong": "hôm nay mình sẽ ri viu cái láp tóp này, pơ phóc mần khá ổn",
        "reply": {
            "start": 0.4,
            "end": 4.1,
            "text": "Hôm nay mình sẽ review cái laptop này, performance khá ổn.",
            "translation": "Hôm nay mình sẽ đánh giá cái máy tính xách tay này, hiệu năng khá ổn.",
        },
    },
    {
        "heard": "deadline của project là thứ sáu nên team mình phải push nhanh lên nha",
        "wrong": "đét lai của project là thứ sáu nên tim mình phải pút nhanh lên nha",
        "reply": {
            "start": 4.6,
            "end": 8.9,
            "text": "Deadline của project là thứ sáu nên team mình phải push nhanh lên nha.",
            "translation": "Hạn chót của dự án là thứ sáu nên nhóm mình phải đẩy nhanh lên nha.",
        },
    },
    {
        "heard": "let's check the report before lunch, xong rồi mình gửi cho anh Minh",
        "wrong": "Hãy kiểm tra báo cáo trước bữa trưa, xong rồi mình gửi cho anh Minh.",
        "reply": {
            "start": 9.3,
            "end": 12.8,
            "text": "Let's check the report before lunch, xong rồi mình gửi cho anh Minh.",
            "translation": "Hãy kiểm tra báo cáo trước bữa trưa, xong rồi mình gửi cho anh Minh.",
        },
    },
    {
        "heard": "em đặt trên Shopee hôm qua mà giờ vẫn chưa thấy ship tới",
        "wrong": "em đặt trên sô pi hôm qua mà giờ vẫn chưa thấy síp tới",
        "reply": {
            "start": 13.2,
            "end": 16.0,
            "text": "Em đặt trên Shopee hôm qua mà giờ vẫn chưa thấy ship tới.",
            "translation": "Em đặt trên Shopee hôm qua mà giờ vẫn chưa thấy giao tới.",
        },
    },
]


def examples_text() -> str:
    lines = ["Examples (what was said, a wrong transcript to avoid, the right sentence):"]
    for i, example in enumerate(EXAMPLES, 1):
        lines += [
            f"{i}. Said: {example['heard']}",
            f"   Wrong: {example['wrong']}",
            f"   Right: {json.dumps(example['reply'], ensure_ascii=False)}",
        ]
    return "\n".join(lines)


def glossary_text(glossary: Glossary) -> str:
    if glossary.empty:
        return ""
    lines = ["Glossary (terms reviewers have corrected before):"]
    if glossary.vocabulary:
        lines.append("Spell these terms exactly like this when you hear them:")
        for term, translation in glossary.vocabulary:
            lines.append(f"- {term}" + (f" (translate as: {translation})" if translation else ""))
    if glossary.keep_english:
        lines.append("Keep these English terms untranslated in the Vietnamese translation:")
        lines += [f"- {term}" for term in glossary.keep_english]
    return "\n".join(lines)


def system_instruction(glossary: Glossary) -> str:
    return "\n\n".join(p for p in (TASK, examples_text(), glossary_text(glossary)) if p)


def clock(seconds: float) -> str:
    minutes, secs = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes)}:{secs:04.1f}"


def transcribe_request(duration_s: float, part: int = 1, parts: int = 1) -> str:
    text = (
        f"Transcribe and translate this audio. It is {duration_s:.1f} seconds long "
        f"({clock(duration_s)}); every time must be between 0 and {duration_s:.1f}."
    )
    if parts > 1:
        text += (
            f" It is part {part} of {parts} of a longer recording, so it may begin and end in "
            "the middle of a sentence: transcribe what you hear of those sentences too. Times "
            "are from the start of this part."
        )
    return text


# --- repair ------------------------------------------------------------------------------

REPAIR_TASK = """\
You correct Vietnamese translations of Vietnamese–English code-switched sentences for a \
speech-translation corpus. Some translations were flagged by automatic checks (English left \
untranslated, an empty translation, a translation much longer or shorter than its sentence, \
a different number of sentences). For each sentence you are asked about, write one new \
translation in natural, fluent Vietnamese: translate every English word except people's \
names, brand and product names and the glossary's keep-English terms; do not add or leave \
out anything; keep it one translation of that one sentence. The neighbouring sentences are \
given only as context; do not translate them. Answer with the index of each sentence and \
its new translation."""


def repair_instruction(glossary: Glossary) -> str:
    return "\n\n".join(p for p in (REPAIR_TASK, glossary_text(glossary)) if p)


def repair_request(rows: list[dict], indexes: list[int], context: int) -> str:
    """The flagged sentences with their neighbours, as JSON the model reads easily."""
    wanted = set(indexes)
    shown = sorted(
        {j for i in indexes for j in range(i - context, i + context + 1) if 0 <= j < len(rows)}
    )
    sentences = [
        {
            "index": j,
            "text": rows[j]["text"],
            "current_translation": rows[j].get("translation", ""),
            **({"problems": rows[j].get("flags", [])} if j in wanted else {}),
            "translate": j in wanted,
        }
        for j in shown
    ]
    return (
        f'Translate again the sentences with "translate": true (indexes {sorted(wanted)}); '
        "the others are context.\n" + json.dumps({"sentences": sentences}, ensure_ascii=False)
    )
