"""The lexicon: terms reviewers correct again and again, edited by admins, given to Gemini.

`learn_terms` compares each human revision with the machine draft it corrected, word by
word (`ra_app.core.scoring.word_diff`), and counts the words reviewers put in (replaced or
inserted) per term: in transcripts these become `vocabulary` (spell it this way), in
translations an English word a reviewer put back becomes `keep_english`. Terms corrected at
least GEMINI_LEXICON_MIN_CORRECTIONS times are added unapproved; an admin approves, edits
or deletes them (ra_app/core/lexicon.py). Only approved terms reach the
prompt (`glossary`), and the prompt version changes with them.

Counting is recomputed from all revisions each time, so running it twice changes nothing,
and for each run of human revisions after a machine draft only the last one counts (a
second reviewer's pass does not count the first one's fixes again).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import sqlalchemy as sa

from ra_app.core.models import (
    HUMAN_ORIGINS,
    LexiconTerm,
    TranscriptRevision,
    TranslationRevision,
)
from ra_app.core.scoring import word_diff
from ra_app.core.text import guess_language, nfc, word_core, word_key
from ra_app.extensions import db

from .prompt import Glossary

MAX_TERM_WORDS = 3


def glossary(limit: int = 300) -> Glossary:
    """The approved terms, as the prompt uses them (the most corrected first)."""
    rows = db.session.scalars(
        sa.select(LexiconTerm)
        .where(LexiconTerm.approved.is_(True))
        .order_by(LexiconTerm.corrections.desc(), sa.func.lower(LexiconTerm.term))
        .limit(limit)
    ).all()
    vocabulary = tuple(
        (r.term, r.translation)
        for r in sorted(rows, key=lambda r: r.term.casefold())
        if r.kind == "vocabulary"
    )
    keep = tuple(sorted((r.term for r in rows if r.kind == "keep_english"), key=str.casefold))
    return Glossary(vocabulary=vocabulary, keep_english=keep)


# --- learning from reviewers -------------------------------------------------------------


@dataclass
class Candidate:
    term: str
    kind: str
    corrections: int
    status: str = ""  # added | updated | known


def _joined(sentences: list[dict], field: str) -> str:
    return " ".join(str(s.get(field) or "") for s in sentences)


def _pairs(model) -> list[tuple]:
    """(machine draft, final human revision) of each run of human revisions after a draft."""
    rows = db.session.scalars(sa.select(model).order_by(model.sample_id, model.version)).all()
    pairs, draft, last_human, sample = [], None, None, None
    for rev in [*rows, None]:
        if rev is None or rev.sample_id != sample:
            if draft is not None and last_human is not None:
                pairs.append((draft, last_human))
            draft = last_human = None
            if rev is None:
                break
            sample = rev.sample_id
        if rev.origin in HUMAN_ORIGINS:
            last_human = rev
        else:
            if draft is not None and last_human is not None:
                pairs.append((draft, last_human))
            draft, last_human = rev, None
    return pairs


def _terms(human_side: str) -> list[str]:
    """A human-side change as terms: a short phrase whole, a longer one word by word."""
    words = [w for w in (word_core(t) for t in human_side.split()) if any(c.isalpha() for c in w)]
    if not words:
        return []
    return [" ".join(words)] if len(words) <= MAX_TERM_WORDS else words


def count_corrections() -> dict[str, tuple[str, str, int]]:
    """{term key: (the spelling reviewers used most, its kind, corrections)}."""
    counts: Counter = Counter()
    spellings: dict[str, Counter] = defaultdict(Counter)
    kinds: dict[str, Counter] = defaultdict(Counter)

    def add(term: str, kind: str) -> None:
        key = word_key_of(term)
        counts[key] += 1
        spellings[key][term] += 1
        kinds[key][kind] += 1

    for draft, human in _pairs(TranscriptRevision):
        for op in word_diff(_joined(draft.sentences, "text"), _joined(human.sentences, "text")):
            if op["op"] in ("replace", "insert"):
                for term in _terms(op["human"]):
                    add(term, "vocabulary")
    for draft, human in _pairs(TranslationRevision):
        before = _joined(draft.sentences, "translation")
        after = _joined(human.sentences, "translation")
        for op in word_diff(before, after):
            if op["op"] in ("replace", "insert"):
                for term in _terms(op["human"]):
                    if all(guess_language(w) == "en" for w in term.split()):
                        add(term, "keep_english")
    return {
        key: (spellings[key].most_common(1)[0][0], kinds[key].most_common(1)[0][0], n)
        for key, n in counts.items()
    }


def learn_terms(min_corrections: int = 3, *, dry_run: bool = False) -> list[Candidate]:
    """Add terms corrected at least `min_corrections` times, update known terms' counts.

    Admins' choices (kind, translation, approval) are never changed. Commits unless dry_run.
    """
    known = {word_key_of(t.term): t for t in db.session.scalars(sa.select(LexiconTerm))}
    found = []
    ranked = sorted(count_corrections().items(), key=lambda item: (-item[1][2], item[0]))
    for key, (spelling, kind, n) in ranked:
        row = known.get(key)
        if row is not None:
            status = "known" if row.corrections == n else "updated"
            if not dry_run:
                row.corrections = n
            found.append(Candidate(row.term, row.kind, n, status))
        elif n >= min_corrections:
            if not dry_run:
                row = LexiconTerm(term=spelling, kind=kind, corrections=n, approved=False)
                db.session.add(row)
                known[key] = row
            found.append(Candidate(spelling, kind, n, "added"))
    if not dry_run:
        db.session.commit()
    return found


def word_key_of(term: str) -> str:
    return " ".join(word_key(t) for t in nfc(term).split())
